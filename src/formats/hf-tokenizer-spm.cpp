// SentencePiece vocabularies: tokenizer.model read with protobuf, then the converter's
// _create_vocab_sentencepiece (or Phi-3's variant of it) over it.
#include <climits>
#include <cmath>
#include <string_view>
#include <unordered_set>

#include "edgeq/core/error.h"
#include "edgeq/core/log.h"
#include "hf-tokenizer-internal.h"
#include "src/formats/sentencepiece-model.pb.h"

namespace edgeq {
namespace {

using Piece = sentencepiece::ModelProto::SentencePiece;

// SentencePiece's PieceToByte: exactly "<0xXX>" with upper-case hex digits, or -1.
int piece_to_byte(std::string_view piece) {
    if (piece.size() != 6 || !piece.starts_with("<0x") || piece[5] != '>') return -1;
    int value = 0;
    for (const char c : piece.substr(3, 2)) {
        const int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (digit < 0) return -1;
        value = value * 16 + digit;
    }
    return value;
}

}  // namespace

std::vector<SentencePiecePiece> read_sentencepiece_model(std::span<const uint8_t> bytes,
                                                         const std::string& name) {
    if (bytes.size() > static_cast<size_t>(INT_MAX)) {
        fail("{}: {} bytes, more than a SentencePiece model can hold", name, bytes.size());
    }
    sentencepiece::ModelProto model;
    if (!model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
        fail("{}: not a SentencePiece model (the protobuf ModelProto does not parse)", name);
    }
    // What SentencePiece's ModelInterface::InitializePieces refuses, refused here too: the
    // converter's SentencePieceProcessor would not load the file.
    const bool byte_fallback = model.trainer_spec().byte_fallback();
    // The unigram model (the default type) also refuses a score that is not finite.
    const bool unigram = model.trainer_spec().model_type() == sentencepiece::TrainerSpec::UNIGRAM;
    std::unordered_set<std::string_view> normal_pieces;
    std::unordered_set<std::string_view> reserved_pieces;
    normal_pieces.reserve(static_cast<size_t>(model.pieces_size()));
    int unknown_id = -1;
    std::vector<bool> byte_found(256, false);
    std::vector<SentencePiecePiece> pieces;
    pieces.reserve(static_cast<size_t>(model.pieces_size()));
    for (int i = 0; i < model.pieces_size(); ++i) {
        const Piece& p = model.pieces(i);
        const std::string& text = p.piece();
        if (text.empty()) fail("{}: piece {} is empty", name, i);
        if (!hf_tokenizer::valid_utf8(text)) {
            fail("{}: piece {} \"{}\" is not valid UTF-8", name, i, hf_tokenizer::shown(text));
        }
        if (unigram && !std::isfinite(p.score())) {
            fail("{}: piece {} \"{}\" has score {}; a unigram model needs finite scores", name, i,
                 hf_tokenizer::shown(text), p.score());
        }
        const Piece::Type type = p.type();
        const bool normal =
            type == Piece::NORMAL || type == Piece::USER_DEFINED || type == Piece::UNUSED;
        if (!(normal ? normal_pieces : reserved_pieces).insert(text).second) {
            fail("{}: piece {} \"{}\" is already defined", name, i, hf_tokenizer::shown(text));
        }
        if (type == Piece::UNKNOWN) {
            if (unknown_id >= 0) {
                fail("{}: pieces {} and {} are both the unknown piece", name, unknown_id, i);
            }
            unknown_id = i;
        }
        if (type == Piece::BYTE) {
            if (!byte_fallback) {
                fail("{}: byte piece {} \"{}\" although byte_fallback is false", name, i,
                     hf_tokenizer::shown(text));
            }
            const int byte = piece_to_byte(text);
            if (byte < 0) {
                fail("{}: byte piece {} \"{}\" is not <0xXX>", name, i, hf_tokenizer::shown(text));
            }
            byte_found[static_cast<size_t>(byte)] = true;
        }
        pieces.push_back({text, p.score(), static_cast<int32_t>(type)});
    }
    if (unknown_id < 0) fail("{}: no unknown (UNKNOWN) piece among {} pieces", name, pieces.size());
    if (byte_fallback &&
        std::find(byte_found.begin(), byte_found.end(), false) != byte_found.end()) {
        fail("{}: byte_fallback is true but not all 256 byte pieces are present", name);
    }
    return pieces;
}

namespace hf_tokenizer {
namespace {

const json k_null = nullptr;

const json& member_or_null(const json& object, std::string_view key, std::string_view where) {
    const json* value = get(object, key, where);
    return value != nullptr ? *value : k_null;
}

// An id from the converter's int(value) on a JSON value.
int64_t int_of(const json& value, std::string_view where) {
    if (const auto i = as_int(value)) return *i;
    if (value.is_number_float()) {
        const double d = value.get<double>();
        if (!std::isfinite(d)) fail("{}: id {} is not a finite number", where, value.dump());
        return d >= 9.2e18 ? INT64_MAX : d <= -9.2e18 ? INT64_MIN : static_cast<int64_t>(d);
    }
    if (value.is_string()) {
        if (const auto i = python_int(value.get_ref<const std::string&>())) return *i;
    }
    fail("{}: id is {}, expected an integer", where,
         value.is_string() ? "\"" + shown(value.get<std::string>()) + "\"" : describe(value));
}

int32_t gguf_type(int32_t sentencepiece_type) {
    switch (sentencepiece_type) {
        case Piece::UNKNOWN:
            return k_unknown;
        case Piece::CONTROL:
            return k_control;
        case Piece::UNUSED:
            return k_unused;
        case Piece::BYTE:
            return k_byte;
        default:
            return k_normal;  // NORMAL and USER_DEFINED
    }
}

}  // namespace

Vocab sentencepiece_vocab(Sources& sources, bool phi3) {
    const HfTokenizerFiles& files = sources.files();
    const std::string model_path = sources.path("tokenizer.model");
    const std::string& bytes = *files.tokenizer_model;
    const std::vector<SentencePiecePiece> pieces = read_sentencepiece_model(
        {reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}, model_path);

    const auto n_pieces = static_cast<int64_t>(pieces.size());
    const int64_t n_vocab = sources.input().vocab_size > 0 ? sources.input().vocab_size : n_pieces;
    if (sources.input().vocab_size < 0) {
        fail("{}: vocab_size {} is negative", sources.path("config.json"),
             sources.input().vocab_size);
    }
    if (n_vocab > k_max_vocab) {
        fail("{}: vocab_size {} is more than {} tokens, refused", sources.path("config.json"),
             n_vocab, k_max_vocab);
    }
    Vocab vocab;
    const auto size = static_cast<size_t>(n_vocab);
    vocab.tokens.resize(size);
    for (size_t i = 0; i < size; ++i) vocab.tokens[i] = fmt::format("[PAD{}]", i);
    vocab.scores.assign(size, -10000.0f);
    vocab.types.assign(size, k_unused);

    if (n_pieces > n_vocab) {
        if (phi3) {
            fail("{}: {} pieces, more than vocab_size {}", model_path, n_pieces, n_vocab);
        }
        log_warn("{}: pieces from id {} ignored: vocab_size is {}", model_path, n_vocab, n_vocab);
    }
    for (int64_t id = 0; id < std::min(n_pieces, n_vocab); ++id) {
        const SentencePiecePiece& p = pieces[static_cast<size_t>(id)];
        vocab.tokens[static_cast<size_t>(id)] = p.piece;
        vocab.scores[static_cast<size_t>(id)] = p.score;
        vocab.types[static_cast<size_t>(id)] = gguf_type(p.type);
    }

    // An id inside the vocabulary, or nullopt (with a warning) for one past it.
    const auto checked_id = [&](int64_t id, std::string_view where,
                                bool range_checked) -> std::optional<size_t> {
        if (id < 0) fail("{}: token id {} is negative", where, id);
        if (id >= n_vocab) {
            if (!range_checked)
                fail("{}: token id {} is not below vocab_size {}", where, id, n_vocab);
            log_warn("{}: token id {} ignored: not below vocab_size {}", where, id, n_vocab);
            return std::nullopt;
        }
        return static_cast<size_t>(id);
    };

    if (files.added_tokens_json) {
        const std::string where = sources.path("added_tokens.json");
        const json added = parse_json(*files.added_tokens_json, where);
        if (!added.is_object()) fail("{}: is {}, expected an object", where, describe(added));
        for (const std::string& text : key_order(*files.added_tokens_json, "")) {
            const auto it = added.find(text);
            if (it == added.end()) continue;
            const std::optional<int64_t> id = as_int(*it);
            if (!id)
                fail("{}: \"{}\" has id {}, expected an integer", where, shown(text), it->dump());
            if (const auto at = checked_id(*id, where, true)) {
                vocab.tokens[*at] = text;
                vocab.scores[*at] = -1000.0f;
                vocab.types[*at] = k_user_defined;
            }
        }
    }

    const std::string config_where = sources.path("tokenizer_config.json");
    if (const json* config = sources.tokenizer_config()) {
        static const json k_empty = json::object();
        const json* decoder_value = get(*config, "added_tokens_decoder", config_where);
        const json& decoder = decoder_value != nullptr ? *decoder_value : k_empty;
        const std::string where = config_where + ": added_tokens_decoder";
        if (!decoder.is_object()) fail("{}: is {}, expected an object", where, describe(decoder));
        // Python's dict keeps the file's order; two keys naming one id ("1", "01") meet here.
        std::vector<std::string> keys =
            key_order(*files.tokenizer_config_json, "added_tokens_decoder");
        if (keys.size() != decoder.size()) {
            keys.clear();
            for (auto it = decoder.begin(); it != decoder.end(); ++it) keys.push_back(it.key());
        }
        for (const std::string& key : keys) {
            const auto entry = decoder.find(key);
            if (entry == decoder.end()) continue;
            const std::string entry_where = fmt::format("{}: \"{}\"", where, shown(key));
            const std::optional<int64_t> id = python_int(key);
            if (!id) fail("{}: the key is not a token id", entry_where);
            const json& content = member_or_null(*entry, "content", entry_where);
            if (!content.is_string()) {
                fail("{}: content is {}, expected a string", entry_where, describe(content));
            }
            const std::optional<size_t> at = checked_id(*id, entry_where, !phi3);
            if (!at) continue;
            const bool special = truthy(member_or_null(*entry, "special", entry_where));
            std::string text = content.get<std::string>();
            if (phi3) {
                vocab.types[*at] = special ? k_control : k_user_defined;
            } else if (special || looks_special(text)) {
                vocab.types[*at] = k_control;
            } else {
                text = replace_all(text, "\xe2\x96\x81", " ");  // user-defined "▁" pre-normalized
                vocab.types[*at] = k_user_defined;
            }
            vocab.tokens[*at] = std::move(text);
            vocab.scores[*at] = -1000.0f;
        }
    }

    // Phi-3 reads tokenizer.json's added tokens last, with the same rule.
    if (phi3) {
        if (const json* tokenizer = sources.tokenizer_json()) {
            const std::string where = sources.path("tokenizer.json") + ": added_tokens";
            static const json k_empty = json::array();
            const json* added_value = get(*tokenizer, "added_tokens", where);
            const json& added = added_value != nullptr ? *added_value : k_empty;
            if (!added.is_array() && truthy(added)) {
                fail("{}: is {}, expected an array", where, describe(added));
            }
            if (added.is_array()) {
                for (size_t i = 0; i < added.size(); ++i) {
                    const std::string entry_where = fmt::format("{}[{}]", where, i);
                    const json* id_value = get(added[i], "id", entry_where);
                    if (id_value == nullptr) fail("{}: no id", entry_where);
                    const int64_t id = int_of(*id_value, entry_where);
                    const json& content = member_or_null(added[i], "content", entry_where);
                    if (!content.is_string()) {
                        fail("{}: content is {}, expected a string", entry_where,
                             describe(content));
                    }
                    const size_t at = *checked_id(id, entry_where, false);
                    vocab.tokens[at] = content.get<std::string>();
                    vocab.scores[at] = -1000.0f;
                    const bool special = truthy(member_or_null(added[i], "special", entry_where));
                    vocab.types[at] = special ? k_control : k_user_defined;
                }
            }
        }
    }
    return vocab;
}

}  // namespace hf_tokenizer
}  // namespace edgeq
