// Byte-level BPE vocabularies: the converter's get_vocab_base, which reads the tokenizer that
// transformers' AutoTokenizer builds. Its ids and "special" flags are reproduced here:
//   1. tokenizers: tokenizer.json's added tokens, in order, get the id of their content in
//      model.vocab, else the next free id past the base vocabulary (the "id" written in the
//      file is not used); a repeat of a content with other flags replaces the first;
//   2. transformers: tokenizer_config.json's added_tokens_decoder, by id, likewise;
//   3. the named special tokens of tokenizer_config.json (bos/eos/unk/sep/pad/cls/mask_token,
//      any other string "*_token", extra_special_tokens given as an object) become special,
//      added where missing; extra_special_tokens (or additional_special_tokens) given as a
//      list are added where missing.
// Not reproduced: the special tokens that some tokenizer classes add by default when
// tokenizer_config.json names none (GPT2Tokenizer's and Qwen2Tokenizer's "<|endoftext|>"),
// and decode(encode(token)) for added tokens with normalized: false (a no-op for every
// tokenizer of the supported families).
#include <algorithm>
#include <cctype>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string_view>
#include <unordered_map>

#include "edgeq/core/error.h"
#include "hf-tokenizer-internal.h"

namespace edgeq::hf_tokenizer {
namespace {

const json k_null = nullptr;

struct AddedToken {
    std::string content;
    bool single_word = false;
    bool lstrip = false;
    bool rstrip = false;
    bool normalized = true;
    bool special = false;

    std::string signature() const {
        std::string s = content;
        s += '\0';
        for (const bool b : {single_word, lstrip, rstrip, normalized, special}) s += b ? '1' : '0';
        return s;
    }
};

// tokenizers' AddedVocabulary over a BPE model's vocabulary.
class AddedVocabulary {
  public:
    using Base = std::unordered_map<std::string_view, uint32_t>;

    AddedVocabulary() = default;
    explicit AddedVocabulary(const Base& base) : base_(&base), n_base_(base.size()) {}

    void add(const AddedToken& token) {
        if (token.content.empty() || signatures_[token.signature()] > 0) return;
        uint32_t id;
        if (const auto it = by_content_.find(token.content); it != by_content_.end()) {
            id = it->second;
        } else if (const auto b = base_->find(token.content); b != base_->end()) {
            id = b->second;
        } else if (!max_id_) {
            id = static_cast<uint32_t>(n_base_);
        } else {
            id =
                *max_id_ >= n_base_ || n_base_ == 0 ? *max_id_ + 1 : static_cast<uint32_t>(n_base_);
        }
        by_content_[token.content] = id;
        if (const auto old = by_id_.find(id); old != by_id_.end()) {
            --signatures_[old->second.signature()];
            old->second = token;
        } else {
            by_id_.emplace(id, token);
        }
        ++signatures_[token.signature()];
        max_id_ = std::max(max_id_.value_or(0), id);
    }

    bool contains(const std::string& content) const { return by_content_.count(content) > 0; }

    void make_special(const std::string& content) {
        const auto it = by_content_.find(content);
        if (it == by_content_.end()) return;
        AddedToken& token = by_id_.at(it->second);
        --signatures_[token.signature()];
        token.special = true;
        ++signatures_[token.signature()];
    }

    const std::map<uint32_t, AddedToken>& by_id() const { return by_id_; }
    const std::unordered_map<std::string, uint32_t>& by_content() const { return by_content_; }

  private:
    const Base* base_ = nullptr;  // model.vocab
    size_t n_base_ = 0;
    std::unordered_map<std::string, uint32_t> by_content_;
    std::map<uint32_t, AddedToken> by_id_;
    std::unordered_map<std::string, int> signatures_;  // of the tokens in by_id_
    std::optional<uint32_t> max_id_;
};

bool flag(const json& object, std::string_view key, bool fallback, std::string_view where) {
    const json* value = get(object, key, where);
    if (value == nullptr || value->is_null()) return fallback;
    if (!value->is_boolean())
        fail("{}: {} is {}, expected a boolean", where, key, describe(*value));
    return value->get<bool>();
}

std::string content_of(const json& token, std::string_view where) {
    const json* content = get(token, "content", where);
    if (content == nullptr || !content->is_string()) {
        fail("{}: content is {}, expected a string", where,
             content == nullptr ? "missing" : describe(*content));
    }
    return content->get<std::string>();
}

// A named special token's text: a string, or an object with a string "content".
std::optional<std::string> named_token(const json& value) {
    if (value.is_string()) return value.get<std::string>();
    if (value.is_object()) {
        const auto it = value.find("content");
        if (it != value.end() && it->is_string()) return it->get<std::string>();
    }
    return std::nullopt;
}

// What AutoTokenizer holds: model.vocab, and the added tokens over it.
struct TokenizerVocabulary {
    std::unique_ptr<AddedVocabulary::Base> base;  // views into tokenizer.json
    AddedVocabulary added;
    std::vector<std::string> special_tokens;  // all_special_tokens: the named, then the extra
};

TokenizerVocabulary load_vocabulary(Sources& sources) {
    TokenizerVocabulary result;
    const std::string where = sources.path("tokenizer.json");
    const json* tokenizer = sources.tokenizer_json();
    if (tokenizer == nullptr) {
        fail("{}: missing; a checkpoint without tokenizer.model needs it", where);
    }
    const json* model = get(*tokenizer, "model", where);
    if (model == nullptr) fail("{}: no model", where);
    const json* vocab_json = get(*model, "vocab", where + ": model");
    if (vocab_json == nullptr || !vocab_json->is_object()) {
        fail("{}: model.vocab is {}, expected an object of token: id", where,
             vocab_json == nullptr ? "missing" : describe(*vocab_json));
    }

    result.base = std::make_unique<AddedVocabulary::Base>();
    AddedVocabulary::Base& base = *result.base;
    base.reserve(vocab_json->size());
    std::unordered_map<uint32_t, std::string_view> base_by_id;
    base_by_id.reserve(vocab_json->size());
    for (auto it = vocab_json->begin(); it != vocab_json->end(); ++it) {
        const std::optional<int64_t> id = it->is_boolean() ? std::nullopt : as_int(*it);
        if (!id || *id < 0 || *id > std::numeric_limits<uint32_t>::max()) {
            fail("{}: model.vocab: \"{}\" has id {}, expected an integer from 0 to 2^32-1", where,
                 shown(it.key()), it->dump());
        }
        const auto id32 = static_cast<uint32_t>(*id);
        if (const auto [at, inserted] = base_by_id.emplace(id32, it.key()); !inserted) {
            fail("{}: model.vocab: \"{}\" and \"{}\" both have id {}", where, shown(at->second),
                 shown(it.key()), id32);
        }
        base.emplace(it.key(), id32);
    }

    // 1. tokenizer.json's added tokens.
    result.added = AddedVocabulary(base);
    AddedVocabulary& added = result.added;
    static const json k_empty = json::array();
    const json* added_json = get(*tokenizer, "added_tokens", where);
    const json& added_list = added_json != nullptr ? *added_json : k_empty;
    if (!added_list.is_array()) {
        fail("{}: added_tokens is {}, expected an array", where, describe(added_list));
    }
    for (size_t i = 0; i < added_list.size(); ++i) {
        const std::string token_where = fmt::format("{}: added_tokens[{}]", where, i);
        const json& entry = added_list[i];
        if (get(entry, "id", token_where) == nullptr) fail("{}: no id", token_where);
        AddedToken token;
        token.content = content_of(entry, token_where);
        token.single_word = flag(entry, "single_word", false, token_where);
        token.lstrip = flag(entry, "lstrip", false, token_where);
        token.rstrip = flag(entry, "rstrip", false, token_where);
        token.normalized = flag(entry, "normalized", true, token_where);
        token.special = flag(entry, "special", false, token_where);
        added.add(token);
    }

    // 2. and 3. tokenizer_config.json.
    if (const json* config = sources.tokenizer_config()) {
        const std::string config_where = sources.path("tokenizer_config.json");
        std::vector<AddedToken> to_add;
        if (const json* decoder = get(*config, "added_tokens_decoder", config_where);
            decoder != nullptr && !decoder->is_null()) {
            const std::string decoder_where = config_where + ": added_tokens_decoder";
            if (!decoder->is_object()) {
                fail("{}: is {}, expected an object", decoder_where, describe(*decoder));
            }
            std::map<int64_t, AddedToken> by_id;  // a later key naming the same id wins
            for (const std::string& key :
                 key_order(*sources.files().tokenizer_config_json, "added_tokens_decoder")) {
                const auto entry = decoder->find(key);
                if (entry == decoder->end()) continue;
                if (!entry->is_object()) continue;  // transformers skips what is not a token
                const std::string entry_where =
                    fmt::format("{}: \"{}\"", decoder_where, shown(key));
                const std::optional<int64_t> id = python_int(key);
                if (!id) fail("{}: the key is not a token id", entry_where);
                AddedToken token;
                token.content = content_of(*entry, entry_where);
                token.special = flag(*entry, "special", false, entry_where);
                token.normalized = flag(*entry, "normalized", !token.special, entry_where);
                token.lstrip = flag(*entry, "lstrip", false, entry_where);
                token.rstrip = flag(*entry, "rstrip", false, entry_where);
                token.single_word = flag(*entry, "single_word", false, entry_where);
                by_id[*id] = std::move(token);
            }
            std::unordered_map<std::string, int> present;
            for (const auto& [id, token] : added.by_id()) ++present[token.signature()];
            for (auto& [id, token] : by_id) {
                if (present.count(token.signature()) == 0) to_add.push_back(std::move(token));
            }
        }

        // The named special tokens, in transformers' order.
        std::vector<std::string> named;
        for (const char* type : {"bos", "eos", "unk", "sep", "pad", "cls", "mask"}) {
            const std::string key = std::string(type) + "_token";
            const auto it = config->find(key);
            if (it == config->end() || it->is_null()) continue;
            // transformers takes a string or a serialized AddedToken, and refuses anything else.
            const auto marker = it->is_object() ? it->find("__type") : it->end();
            if (!it->is_string() &&
                !(it->is_object() && marker != it->end() && *marker == "AddedToken")) {
                fail(
                    "{}: {} is {}, expected a string or an AddedToken (an object with "
                    "\"__type\": \"AddedToken\")",
                    config_where, key, describe(*it));
            }
            if (auto text = named_token(*it)) named.push_back(std::move(*text));
        }
        const json* extra = get(*config, "extra_special_tokens", config_where);
        if (extra == nullptr || extra->is_null())
            extra = get(*config, "additional_special_tokens", config_where);
        std::vector<std::string> extra_list;
        if (extra != nullptr && extra->is_object()) {
            for (const std::string& key :
                 key_order(*sources.files().tokenizer_config_json, "extra_special_tokens")) {
                const auto it = extra->find(key);
                if (it == extra->end()) continue;
                if (auto text = named_token(*it)) named.push_back(std::move(*text));
            }
        } else if (extra != nullptr && extra->is_array()) {
            for (const json& item : *extra) {
                if (auto text = named_token(item)) extra_list.push_back(std::move(*text));
            }
        }
        static const std::vector<std::string> k_standard = {"bos_token", "eos_token", "unk_token",
                                                            "sep_token", "pad_token", "cls_token",
                                                            "mask_token"};
        for (const std::string& key : key_order(*sources.files().tokenizer_config_json, "")) {
            if (!key.ends_with("_token") ||
                std::find(k_standard.begin(), k_standard.end(), key) != k_standard.end()) {
                continue;
            }
            const auto it = config->find(key);
            if (it != config->end() && it->is_string()) named.push_back(it->get<std::string>());
        }

        const auto listed = [&](const std::string& content) {
            return added.contains(content) ||
                   std::any_of(to_add.begin(), to_add.end(),
                               [&](const AddedToken& t) { return t.content == content; });
        };
        for (const std::string& content : named) {
            if (!listed(content)) to_add.push_back({content, false, false, false, false, true});
        }
        for (const std::string& content : extra_list) {
            if (!listed(content)) to_add.push_back({content, false, false, false, false, true});
        }
        for (AddedToken& token : to_add) {
            if (std::find(named.begin(), named.end(), token.content) != named.end())
                token.special = true;
            added.add(token);
        }
        for (const std::string& content : named) {
            if (!added.contains(content)) added.add({content, false, false, false, false, true});
            added.make_special(content);
        }
        for (const std::string& content : named) {
            if (std::find(result.special_tokens.begin(), result.special_tokens.end(), content) ==
                result.special_tokens.end()) {
                result.special_tokens.push_back(content);
            }
        }
        for (const std::string& content : extra_list) {
            if (std::find(result.special_tokens.begin(), result.special_tokens.end(), content) ==
                result.special_tokens.end()) {
                result.special_tokens.push_back(content);
            }
        }
    }
    return result;
}

}  // namespace

Vocab bpe_vocab(Sources& sources) {
    const std::string where = sources.path("tokenizer.json");
    const TokenizerVocabulary loaded = load_vocabulary(sources);
    const auto& base = *loaded.base;
    const AddedVocabulary& added = loaded.added;

    // tokenizer.vocab: model.vocab with the added tokens over it.
    int64_t n_tokens = static_cast<int64_t>(base.size());
    int64_t max_id = -1;
    for (const auto& [content, id] : base) max_id = std::max<int64_t>(max_id, id);
    for (const auto& [content, id] : added.by_content()) {
        if (base.find(content) == base.end()) ++n_tokens;
        max_id = std::max<int64_t>(max_id, id);
    }
    const int64_t vocab_size =
        sources.input().vocab_size > 0 ? sources.input().vocab_size : n_tokens;
    if (vocab_size > k_max_vocab) {
        fail("{}: vocab_size {} is more than {} tokens, refused", sources.path("config.json"),
             vocab_size, k_max_vocab);
    }
    if (max_id >= vocab_size) {
        fail("{}: token id {} is not below the vocabulary size {}", where, max_id, vocab_size);
    }

    const auto size = static_cast<size_t>(vocab_size);
    std::vector<std::string_view> texts(size);
    std::vector<bool> present(size, false);
    for (const auto& [content, id] : base) {
        texts[id] = content;
        present[id] = true;
    }
    std::vector<const AddedToken*> added_at(size, nullptr);
    for (const auto& [id, token] : added.by_id()) {
        if (present[id] && texts[id] != token.content) {
            fail("{}: id {} is both \"{}\" of model.vocab and the added token \"{}\"", where, id,
                 shown(texts[id]), shown(token.content));
        }
        texts[id] = token.content;
        present[id] = true;
        added_at[id] = &token;
    }

    Vocab vocab;
    vocab.tokens.resize(size);
    vocab.types.resize(size);
    for (size_t i = 0; i < size; ++i) {
        if (!present[i]) {
            vocab.tokens[i] = fmt::format("[PAD{}]", i);
            vocab.types[i] = k_unused;
        } else if (added_at[i] != nullptr) {
            const std::string_view text = texts[i];
            if (added_at[i]->special || looks_special(text)) {
                vocab.tokens[i] = std::string(text);
                vocab.types[i] = k_control;
            } else {
                vocab.tokens[i] = replace_all(text, "\xe2\x96\x81", " ");
                vocab.types[i] = k_user_defined;
            }
        } else {
            vocab.tokens[i] = std::string(texts[i]);
            vocab.types[i] = k_normal;
        }
    }
    return vocab;
}

Vocab llama_hf_vocab(Sources& sources) {
    const std::string where = sources.path("tokenizer.json");
    const TokenizerVocabulary loaded = load_vocabulary(sources);
    const auto& base = *loaded.base;
    const AddedVocabulary& added = loaded.added;
    const size_t n_base = base.size();

    // get_vocab(): model.vocab with the added tokens over it, by id.
    std::unordered_map<uint32_t, std::string_view> by_id;
    by_id.reserve(base.size() + added.by_id().size());
    for (const auto& [content, id] : base) by_id[id] = content;
    for (const auto& [id, token] : added.by_id()) by_id[id] = token.content;
    std::unordered_map<std::string_view, uint32_t> ids;
    for (const auto& [content, id] : base) ids[content] = id;
    for (const auto& [content, id] : added.by_content()) ids[content] = id;
    std::set<uint32_t> special_ids;
    for (const std::string& token : loaded.special_tokens) {
        if (const auto it = ids.find(token); it != ids.end()) special_ids.insert(it->second);
    }

    Vocab vocab;
    const auto push = [&](std::string token, int32_t type) {
        if (static_cast<int64_t>(vocab.tokens.size()) >= k_max_vocab) {
            fail("{}: more than {} tokens, refused", where, k_max_vocab);
        }
        vocab.tokens.push_back(std::move(token));
        vocab.scores.push_back(-1000.0f);
        vocab.types.push_back(type);
    };
    for (uint32_t id = 0; id < n_base; ++id) {
        const auto it = by_id.find(id);
        if (it == by_id.end()) fail("{}: model.vocab has no token with id {}", where, id);
        const std::string_view text = it->second;
        const bool is_byte = text.size() == 6 && text.starts_with("<0x") && text.ends_with('>') &&
                             std::isxdigit(static_cast<unsigned char>(text[3])) != 0 &&
                             std::isxdigit(static_cast<unsigned char>(text[4])) != 0;
        push(std::string(text), is_byte                     ? k_byte
                                : special_ids.count(id) > 0 ? k_control
                                                            : k_normal);
    }
    // The added tokens past the base vocabulary, in id order, with no padding.
    for (const auto& [id, token] : added.by_id()) {
        if (id < n_base) continue;
        const bool special = std::find(loaded.special_tokens.begin(), loaded.special_tokens.end(),
                                       token.content) != loaded.special_tokens.end();
        push(token.content, special ? k_control : k_user_defined);
    }
    return vocab;
}

}  // namespace edgeq::hf_tokenizer
