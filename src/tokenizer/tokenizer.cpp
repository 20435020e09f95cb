// Tokenizer construction from tokenizer.ggml.* metadata, special-token splitting, the encode
// dispatch, pieces and the streaming decoder.
#include "edgeq/tokenizer/tokenizer.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <map>

#include "edgeq/core/error.h"
#include "tokenizer-internal.h"
#include "unicode.h"

namespace edgeq {

namespace {

constexpr std::string_view k_space_marker = "\xE2\x96\x81";  // "▁"

class Keys {
  public:
    explicit Keys(const GgufMetadata& metadata) {
        for (const auto& [key, value] : metadata) map_.emplace(key, &value);
    }
    const GgufValue* find(const std::string& key) const {
        const auto it = map_.find(key);
        return it == map_.end() ? nullptr : it->second;
    }
    std::string string(const std::string& key, const std::string& fallback) const {
        const GgufValue* v = find(key);
        if (v == nullptr) return fallback;
        if (v->type() != GgufType::string)
            fail("{}: is {}, expected STRING", key, gguf_type_name(v->type()));
        return v->to_string();
    }
    bool boolean(const std::string& key, bool fallback) const {
        const GgufValue* v = find(key);
        if (v == nullptr) return fallback;
        if (v->type() != GgufType::boolean)
            fail("{}: is {}, expected BOOL", key, gguf_type_name(v->type()));
        return v->to_bool();
    }
    // A token id: -1 when absent or outside the vocabulary (as llama.cpp, which ignores those).
    int32_t id(const std::string& key, size_t n_vocab) const {
        const GgufValue* v = find(key);
        if (v == nullptr) return -1;
        if (!v->is_integer())
            fail("{}: is {}, expected an integer", key, gguf_type_name(v->type()));
        const int64_t id = v->to_int();
        return id >= 0 && static_cast<uint64_t>(id) < n_vocab ? static_cast<int32_t>(id) : -1;
    }
    // An array of `expected` elements of at least `n` entries.
    const GgufValue* array(const std::string& key, std::initializer_list<GgufType> expected,
                           size_t n) const {
        const GgufValue* v = find(key);
        if (v == nullptr) return nullptr;
        if (v->type() != GgufType::array)
            fail("{}: is {}, expected ARRAY", key, gguf_type_name(v->type()));
        if (std::find(expected.begin(), expected.end(), v->element_type()) == expected.end()) {
            fail("{}: is an ARRAY of {}, expected {}", key, gguf_type_name(v->element_type()),
                 gguf_type_name(*expected.begin()));
        }
        if (v->array_size() < n) fail("{}: {} entries for {} tokens", key, v->array_size(), n);
        return v;
    }

  private:
    std::map<std::string, const GgufValue*, std::less<>> map_;
};

template <typename T>
T element(const GgufValue& array, size_t i) {
    T v;
    std::memcpy(&v, array.element_bytes().data() + i * sizeof(T), sizeof(T));
    return v;
}

// Texts that mark the end of a turn (besides EOS and the metadata's EOT / EOM ids).
constexpr std::string_view k_end_of_generation_texts[] = {
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "</s>",
    "<|endoftext|>",
    "<|eom_id|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "<end_of_utterance>",
    "<|return|>",
    "<|call|>",
    "[EOT]",
    "[EOS]",
    "<\xEF\xBD\x9C"
    "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",  // DeepSeek
};

bool is_special_type(int32_t type) {
    return type == k_type_control || type == k_type_user_defined || type == k_type_unknown;
}

}  // namespace

Tokenizer Tokenizer::from_metadata(const GgufMetadata& metadata) {
    const Keys keys(metadata);
    auto impl = std::make_unique<Impl>();
    Impl& t = *impl;

    const GgufValue* model = keys.find("tokenizer.ggml.model");
    if (model == nullptr) fail("tokenizer.ggml.model: missing; the file has no tokenizer");
    t.model_name = keys.string("tokenizer.ggml.model", "");
    if (t.model_name == "llama") {
        t.kind = VocabKind::spm;
    } else if (t.model_name == "gpt2") {
        t.kind = VocabKind::bpe;
    } else if (t.model_name == "bert") {
        t.kind = VocabKind::wordpiece;
    } else {
        fail("tokenizer.ggml.model: \"{}\" is not a tokenizer edgeq implements (llama, gpt2, bert)",
             t.model_name);
    }

    const GgufValue* tokens = keys.find("tokenizer.ggml.tokens");
    if (tokens == nullptr) fail("tokenizer.ggml.tokens: missing");
    keys.array("tokenizer.ggml.tokens", {GgufType::string}, 0);
    const uint64_t n_tokens = tokens->array_size();
    if (n_tokens == 0 || n_tokens > static_cast<uint64_t>(INT32_MAX))
        fail("tokenizer.ggml.tokens: {} tokens, expected 1 to {}", n_tokens, INT32_MAX);
    const size_t n = static_cast<size_t>(n_tokens);

    const GgufValue* scores =
        keys.array("tokenizer.ggml.scores", {GgufType::float32, GgufType::int32}, n);
    const GgufValue* types = keys.array("tokenizer.ggml.token_type", {GgufType::int32}, n);
    t.texts.resize(n);
    t.scores.assign(n, 0.0f);
    t.types.assign(n, k_type_normal);
    t.ids.reserve(n);
    for (size_t i = 0; i < n; ++i) {
        t.texts[i] = tokens->string_at(i);
        if (t.texts[i].empty()) t.texts[i] = "[EMPTY_" + std::to_string(i) + "]";
        t.ids[t.texts[i]] = static_cast<int32_t>(i);
        t.max_token_bytes = std::max(t.max_token_bytes, t.texts[i].size());
        if (scores != nullptr) {
            t.scores[i] = scores->element_type() == GgufType::float32
                              ? element<float>(*scores, i)
                              : static_cast<float>(element<int32_t>(*scores, i));
        }
        if (types != nullptr) t.types[i] = element<int32_t>(*types, i);
    }

    t.pre_name = keys.string("tokenizer.ggml.pre", "default");
    if (t.kind == VocabKind::bpe) {
        t.pre = find_pre_tokenizer(t.pre_name);
        if (t.pre == nullptr) {
            fail("tokenizer.ggml.pre: \"{}\" is not a pre-tokenizer edgeq implements; known: {}",
                 t.pre_name, known_pre_tokenizers());
        }
        const GgufValue* merges = keys.array("tokenizer.ggml.merges", {GgufType::string}, 0);
        if (merges == nullptr) fail("tokenizer.ggml.merges: missing, a gpt2 tokenizer needs it");
        const uint64_t n_merges = merges->array_size();
        if (n_merges > static_cast<uint64_t>(INT32_MAX))
            fail("tokenizer.ggml.merges: {} merges, at most {}", n_merges, INT32_MAX);
        t.merge_ranks.reserve(static_cast<size_t>(n_merges));
        for (uint64_t i = 0; i < n_merges; ++i) {
            const std::string& m = merges->string_at(i);
            const size_t space = m.size() > 1 ? m.find(' ', 1) : std::string::npos;
            if (space == std::string::npos)
                fail("tokenizer.ggml.merges[{}]: \"{}\" is not two tokens joined by a space", i, m);
            // The first rank wins for a duplicated pair.
            t.merge_ranks.emplace(Impl::pair_key(std::string_view(m).substr(0, space),
                                                 std::string_view(m).substr(space + 1)),
                                  static_cast<int32_t>(i));
        }
    }

    const bool spm = t.kind == VocabKind::spm;
    const bool wordpiece = t.kind == VocabKind::wordpiece;
    t.bos = keys.id("tokenizer.ggml.bos_token_id", n);
    t.eos = keys.id("tokenizer.ggml.eos_token_id", n);
    t.unk = keys.id("tokenizer.ggml.unknown_token_id", n);
    t.eot = keys.id("tokenizer.ggml.eot_token_id", n);
    const int32_t eom = keys.id("tokenizer.ggml.eom_token_id", n);
    t.sep = keys.id("tokenizer.ggml.seperator_token_id", n);
    if (t.sep < 0) t.sep = keys.id("tokenizer.ggml.separator_token_id", n);
    if (wordpiece) {
        if (const int32_t cls = keys.id("tokenizer.ggml.cls_token_id", n); cls >= 0) t.bos = cls;
    }
    t.add_bos = keys.boolean("tokenizer.ggml.add_bos_token",
                             spm || wordpiece || (t.pre != nullptr && t.pre->add_bos));
    t.add_eos = keys.boolean("tokenizer.ggml.add_eos_token", false);
    t.add_sep = keys.boolean("tokenizer.ggml.add_sep_token", wordpiece);
    t.add_space_prefix = keys.boolean("tokenizer.ggml.add_space_prefix", spm);
    t.lowercase = keys.boolean("tokenizer.ggml.normalizer.lowercase", true);
    t.strip_accents = keys.boolean("tokenizer.ggml.normalizer.strip_accents", t.lowercase);

    // End of generation: EOS, EOT, EOM and the tokens whose text says so; those are control
    // tokens whatever their recorded type (as llama.cpp treats them).
    t.end_of_generation.assign(n, 0);
    for (const int32_t id : {t.eos, t.eot, eom}) {
        if (id >= 0) t.end_of_generation[static_cast<size_t>(id)] = 1;
    }
    for (std::string_view text : k_end_of_generation_texts) {
        const int32_t id = t.find(text);
        if (id < 0) continue;
        t.end_of_generation[static_cast<size_t>(id)] = 1;
        t.types[static_cast<size_t>(id)] = k_type_control;
    }

    // gpt-oss (harmony): <|end|> closes a message, not the generation, when <|return|> and
    // <|call|> exist; its text is then printed like a user-defined token's.
    if (const int32_t end = t.find("<|end|>");
        end >= 0 && t.find("<|return|>") >= 0 && t.find("<|call|>") >= 0) {
        t.end_of_generation[static_cast<size_t>(end)] = 0;
        t.types[static_cast<size_t>(end)] = k_type_user_defined;
    }

    for (size_t i = 0; i < n; ++i) {
        if (is_special_type(t.types[i])) t.specials.push_back(static_cast<int32_t>(i));
    }
    std::stable_sort(t.specials.begin(), t.specials.end(), [&](int32_t a, int32_t b) {
        return t.texts[static_cast<size_t>(a)].size() > t.texts[static_cast<size_t>(b)].size();
    });

    // Phi-3's added tokens swallow the spaces that follow them (its tokenizer.json says rstrip).
    t.lstrip.assign(n, 0);
    t.rstrip.assign(n, 0);
    std::string name = keys.string("general.name", "");
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (name.find("phi-3") != std::string::npos || name.find("phi3") != std::string::npos) {
        for (const int32_t id : t.specials) t.rstrip[static_cast<size_t>(id)] = 1;
        if (const int32_t id = t.find("</s>"); id >= 0) t.rstrip[static_cast<size_t>(id)] = 1;
        for (std::string_view text : {"<unk>", "<s>", "<|endoftext|>"}) {
            if (const int32_t id = t.find(text); id >= 0) t.rstrip[static_cast<size_t>(id)] = 0;
        }
    }

    t.byte_ids.fill(-1);
    if (spm) {
        for (int b = 0; b < 256; ++b) {
            int32_t id = t.find(fmt::format("<0x{:02X}>", b));
            if (id < 0) id = t.find(std::string(1, static_cast<char>(b)));
            t.byte_ids[static_cast<size_t>(b)] = id;
        }
    }

    t.pieces.resize(n);
    for (size_t i = 0; i < n; ++i) t.pieces[i] = t.make_piece(static_cast<int32_t>(i));
    return Tokenizer(std::move(impl));
}

std::string Tokenizer::Impl::make_piece(int32_t id) const {
    const std::string& text = texts[static_cast<size_t>(id)];
    switch (types[static_cast<size_t>(id)]) {
        case k_type_user_defined:
            return text;
        case k_type_normal:
            break;
        case k_type_byte: {
            unsigned value = 0;
            if (text.size() == 6 && text.starts_with("<0x") && text.back() == '>' &&
                std::sscanf(text.c_str() + 3, "%2x", &value) == 1) {
                return std::string(1, static_cast<char>(value));
            }
            break;  // a byte token spelled as the byte itself
        }
        default:
            return "";  // control, unknown: only with `special`; unused, undefined: never
    }
    std::string out;
    if (kind == VocabKind::bpe) {
        for (const uint32_t cp : unicode::decode(text)) {
            const int b = byte_of_codepoint(cp);
            if (b >= 0) {
                out += static_cast<char>(b);
            } else {
                unicode::append_utf8(out, cp);
            }
        }
        return out;
    }
    for (size_t i = 0; i < text.size();) {
        if (text.compare(i, k_space_marker.size(), k_space_marker) == 0) {
            out += ' ';
            i += k_space_marker.size();
        } else {
            out += text[i++];
        }
    }
    return out;
}

namespace {

struct Fragment {
    int32_t token;  // -1: text [begin, end) of the input
    size_t begin;
    size_t end;
};

// Finds which special tokens occur in `text` at all (one pass over it with a trie), so that
// the splitting below only visits those.
class SpecialIndex {
  public:
    void add(std::string_view s, int32_t id) {
        int node = 0;
        for (const char c : s) {
            auto& edges = nodes_[static_cast<size_t>(node)].edges;
            auto it = std::find_if(edges.begin(), edges.end(),
                                   [c](const auto& e) { return e.first == c; });
            if (it == edges.end()) {
                nodes_.push_back({});
                // `edges` may dangle after push_back: index again.
                nodes_[static_cast<size_t>(node)].edges.emplace_back(
                    c, static_cast<int>(nodes_.size() - 1));
                node = static_cast<int>(nodes_.size() - 1);
            } else {
                node = it->second;
            }
        }
        nodes_[static_cast<size_t>(node)].ids.push_back(id);
    }
    std::vector<uint8_t> occurring(std::string_view text, size_t n_vocab) const {
        std::vector<uint8_t> seen(n_vocab, 0);
        for (size_t i = 0; i < text.size(); ++i) {
            int node = 0;
            for (size_t k = i; k < text.size(); ++k) {
                const auto& edges = nodes_[static_cast<size_t>(node)].edges;
                auto it = std::find_if(edges.begin(), edges.end(),
                                       [c = text[k]](const auto& e) { return e.first == c; });
                if (it == edges.end()) break;
                node = it->second;
                for (const int32_t id : nodes_[static_cast<size_t>(node)].ids)
                    seen[static_cast<size_t>(id)] = 1;
            }
        }
        return seen;
    }

  private:
    struct Node {
        std::vector<std::pair<char, int>> edges;
        std::vector<int32_t> ids;
    };
    std::vector<Node> nodes_{1};
};

bool is_c_space(char c) {
    return std::isspace(static_cast<unsigned char>(c)) != 0;
}

}  // namespace

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special,
                                       bool parse_special) const {
    const Impl& t = *impl_;
    std::vector<Fragment> fragments;
    if (!text.empty()) fragments.push_back({-1, 0, text.size()});

    // Special tokens, longest text first: each splits the text fragments left by the longer
    // ones. User-defined tokens always; control and unknown ones only when parse_special.
    SpecialIndex index;
    bool any = false;
    for (const int32_t id : t.specials) {
        if (!parse_special && t.types[static_cast<size_t>(id)] != k_type_user_defined) continue;
        index.add(t.texts[static_cast<size_t>(id)], id);
        any = true;
    }
    if (any && !text.empty()) {
        const std::vector<uint8_t> occurs = index.occurring(text, t.texts.size());
        std::vector<Fragment> next;
        for (const int32_t id : t.specials) {
            if (!occurs[static_cast<size_t>(id)]) continue;
            const std::string& special = t.texts[static_cast<size_t>(id)];
            const bool lstrip = t.lstrip[static_cast<size_t>(id)] != 0;
            const bool rstrip = t.rstrip[static_cast<size_t>(id)] != 0;
            next.clear();
            for (const Fragment& f : fragments) {
                if (f.token >= 0) {
                    next.push_back(f);
                    continue;
                }
                size_t begin = f.begin;
                while (begin < f.end) {
                    const size_t at = text.substr(0, f.end).find(special, begin);
                    if (at == std::string_view::npos) break;
                    size_t left_end = at;
                    if (lstrip) {
                        while (left_end > begin && is_c_space(text[left_end - 1])) --left_end;
                    }
                    if (left_end > begin) next.push_back({-1, begin, left_end});
                    next.push_back({id, 0, 0});
                    begin = at + special.size();
                    if (rstrip) {
                        while (begin < f.end && is_c_space(text[begin])) ++begin;
                    }
                }
                if (begin < f.end) next.push_back({-1, begin, f.end});
            }
            fragments.swap(next);
        }
    }

    std::vector<int32_t> out;
    const bool bos = add_special && t.add_bos && t.bos >= 0;
    switch (t.kind) {
        case VocabKind::spm: {
            if (bos) out.push_back(t.bos);
            bool after_special = true;  // the first text gets the space prefix too
            std::string escaped;
            for (const Fragment& f : fragments) {
                if (f.token >= 0) {
                    out.push_back(f.token);
                    after_special = true;
                    continue;
                }
                escaped.clear();
                if (t.add_space_prefix && after_special) escaped += k_space_marker;
                for (const char c : text.substr(f.begin, f.end - f.begin)) {
                    if (c == ' ') {
                        escaped += k_space_marker;
                    } else {
                        escaped += c;
                    }
                }
                t.encode_spm(escaped, out);
                after_special = false;
            }
            break;
        }
        case VocabKind::bpe:
            if (bos) out.push_back(t.bos);
            for (const Fragment& f : fragments) {
                if (f.token >= 0) {
                    out.push_back(f.token);
                } else {
                    t.encode_bpe(text.substr(f.begin, f.end - f.begin), out);
                }
            }
            break;
        case VocabKind::wordpiece:
            if (bos) out.push_back(t.bos);
            for (const Fragment& f : fragments) {
                if (f.token >= 0) {
                    out.push_back(f.token);
                } else {
                    t.encode_wordpiece(text.substr(f.begin, f.end - f.begin), out);
                }
            }
            if (add_special && t.add_sep && t.sep >= 0) out.push_back(t.sep);
            break;
    }
    if (add_special && t.add_eos && t.eos >= 0) out.push_back(t.eos);
    return out;
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

std::string Tokenizer::piece(int32_t id, bool special) const {
    const std::string& text = token_text(id);
    const int32_t type = impl_->types[static_cast<size_t>(id)];
    if (special && (type == k_type_control || type == k_type_unknown)) return text;
    return impl_->pieces[static_cast<size_t>(id)];
}

const std::string& Tokenizer::token_text(int32_t id) const {
    if (id < 0 || static_cast<size_t>(id) >= impl_->texts.size())
        fail("token id {} is outside the vocabulary of {} tokens", id, impl_->texts.size());
    return impl_->texts[static_cast<size_t>(id)];
}

int32_t Tokenizer::n_vocab() const {
    return static_cast<int32_t>(impl_->texts.size());
}
int32_t Tokenizer::bos() const {
    return impl_->bos;
}
int32_t Tokenizer::eos() const {
    return impl_->eos;
}

bool Tokenizer::is_end_of_generation(int32_t id) const {
    return id >= 0 && static_cast<size_t>(id) < impl_->texts.size() &&
           impl_->end_of_generation[static_cast<size_t>(id)] != 0;
}

bool Tokenizer::is_control(int32_t id) const {
    return id >= 0 && static_cast<size_t>(id) < impl_->texts.size() &&
           impl_->types[static_cast<size_t>(id)] == k_type_control;
}

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool special)
    : tokenizer_(tokenizer), special_(special) {}

std::string StreamDecoder::push(int32_t id) {
    pending_ += tokenizer_.piece(id, special_);
    const size_t complete = unicode::complete_prefix(pending_);
    std::string out = unicode::sanitize(std::string_view(pending_).substr(0, complete));
    pending_.erase(0, complete);
    return out;
}

std::string StreamDecoder::flush() {
    std::string out = unicode::sanitize(pending_);
    pending_.clear();
    return out;
}

}  // namespace edgeq
