// tokenizer.ggml.pre from the structure of tokenizer.json. The converter encodes a test text
// and looks the hash of the ids up in a table; that name follows from the pre-tokenizer
// (splitting regex, digits, byte-level mapping), the normalizer and the tokens a
// post-processor adds, which are read here directly. Vocabularies that share a structure
// are told apart by a token they differ in (SmolLM and StarCoder; GPT-2).
#include <string_view>

#include "edgeq/core/error.h"
#include "hf-tokenizer-internal.h"

namespace edgeq::hf_tokenizer {
namespace {

constexpr std::string_view k_llama3_regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view k_qwen2_regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view k_tekken_regex =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view k_deepseek_bos =
    "<\xef\xbd\x9c"
    "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>";

constexpr std::string_view k_recognised =
    "llama-bpe (Llama 3: Split by the Llama 3 regex, then ByteLevel without its regex), "
    "qwen2 (Qwen: the same with single digits \\p{N}), "
    "deepseek-r1-qwen (the Qwen structure with a <\xef\xbd\x9c"
    "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c> template), "
    "tekken (Mistral-Nemo: Split by the tekken regex, then ByteLevel), "
    "smollm / starcoder (Digits one by one, then ByteLevel; token 1 <|im_start|> / <fim_prefix>), "
    "gpt-2 (ByteLevel alone, the GPT-2 vocabulary); each with no normalizer or NFC";

bool has_type(const json& value, std::string_view type) {
    if (!value.is_object()) return false;
    const auto it = value.find("type");
    return it != value.end() && it->is_string() && it->get_ref<const std::string&>() == type;
}

// A boolean field, with tokenizers' default when absent.
bool field(const json& object, std::string_view key, bool fallback) {
    const auto it = object.find(key);
    return it == object.end() || !it->is_boolean() ? fallback : it->get<bool>();
}

bool byte_level(const json& value, bool use_regex) {
    return has_type(value, "ByteLevel") && !field(value, "add_prefix_space", true) &&
           field(value, "use_regex", true) == use_regex;
}

// The regex of a Split that isolates its matches, if `value` is one.
std::optional<std::string> split_regex(const json& value) {
    if (!has_type(value, "Split") || field(value, "invert", false)) return std::nullopt;
    const auto behavior = value.find("behavior");
    if (behavior == value.end() || *behavior != "Isolated") return std::nullopt;
    const auto pattern = value.find("pattern");
    if (pattern == value.end() || !pattern->is_object()) return std::nullopt;
    const auto regex = pattern->find("Regex");
    if (regex == pattern->end() || !regex->is_string()) return std::nullopt;
    return regex->get<std::string>();
}

bool digits(const json& value) {
    return has_type(value, "Digits") && field(value, "individual_digits", false);
}

// The special token the post-processor puts first ("" if none).
std::string leading_special(const json& tokenizer) {
    const auto it = tokenizer.find("post_processor");
    if (it == tokenizer.end() || !it->is_object()) return {};
    std::vector<const json*> processors = {&*it};
    if (has_type(*it, "Sequence")) {
        processors.clear();
        const auto list = it->find("processors");
        if (list != it->end() && list->is_array()) {
            for (const json& p : *list) processors.push_back(&p);
        }
    }
    for (const json* p : processors) {
        if (!has_type(*p, "TemplateProcessing")) continue;
        const auto single = p->find("single");
        if (single == p->end() || !single->is_array() || single->size() < 2) continue;
        const json& first = (*single)[0];
        if (!first.is_object()) continue;
        const auto special = first.find("SpecialToken");
        if (special == first.end() || !special->is_object()) continue;
        const auto id = special->find("id");
        if (id != special->end() && id->is_string()) return id->get<std::string>();
    }
    return {};
}

// A short rendering of a pre-tokenizer or normalizer for messages.
std::string sketch(const json& value) {
    if (value.is_null()) return "none";
    if (!value.is_object()) return describe(value);
    const auto type = value.find("type");
    std::string name = type != value.end() && type->is_string() ? type->get<std::string>() : "?";
    if (name == "Sequence") {
        for (const char* list_key : {"pretokenizers", "normalizers"}) {
            const auto list = value.find(list_key);
            if (list == value.end() || !list->is_array()) continue;
            std::string items;
            for (const json& item : *list) items += (items.empty() ? "" : ", ") + sketch(item);
            return "Sequence[" + items + "]";
        }
    }
    if (const auto regex = split_regex(value)) return "Split(\"" + shown(*regex) + "\")";
    if (name == "ByteLevel") {
        return fmt::format("ByteLevel(add_prefix_space={}, use_regex={})",
                           field(value, "add_prefix_space", true), field(value, "use_regex", true));
    }
    return name;
}

[[noreturn]] void unrecognised(const std::string& where, const json& pre, const json& normalizer) {
    fail(
        "{}: pre-tokenizer {} with normalizer {} is not one recognised here (the converter "
        "would not know it either); recognised: {}",
        where, sketch(pre), sketch(normalizer), k_recognised);
}

}  // namespace

std::string bpe_pre_tokenizer(Sources& sources) {
    const std::string where = sources.path("tokenizer.json");
    const json* tokenizer = sources.tokenizer_json();
    if (tokenizer == nullptr)
        fail("{}: missing; a checkpoint without tokenizer.model needs it", where);
    if (!tokenizer->is_object()) fail("{}: is {}, expected an object", where, describe(*tokenizer));
    static const json k_null = nullptr;
    const auto member = [&](const json& object, const char* key) -> const json& {
        const auto it = object.find(key);
        return it == object.end() ? k_null : *it;
    };
    const json& model = member(*tokenizer, "model");
    if (!has_type(model, "BPE")) {
        fail("{}: the model is {}, expected a byte-level BPE (or a tokenizer.model)", where,
             model.is_object() ? sketch(model) : describe(model));
    }
    const json& normalizer = member(*tokenizer, "normalizer");
    const json& pre = member(*tokenizer, "pre_tokenizer");
    if (!normalizer.is_null() && !has_type(normalizer, "NFC")) unrecognised(where, pre, normalizer);

    // The token with id 1 and the size of the base vocabulary, to tell vocabularies apart.
    const json& vocab = member(model, "vocab");
    const auto token_with_id = [&](int64_t id) -> std::string {
        if (!vocab.is_object()) return {};
        for (auto it = vocab.begin(); it != vocab.end(); ++it) {
            if (as_int(*it) == id) return it.key();
        }
        return {};
    };

    const json& steps = member(pre, "pretokenizers");
    if (has_type(pre, "Sequence") && steps.is_array() && steps.size() == 2) {
        const json& first = steps[0];
        const json& second = steps[1];
        if (const auto regex = split_regex(first); regex && byte_level(second, false)) {
            if (*regex == k_llama3_regex) return "llama-bpe";
            if (*regex == k_tekken_regex) return "tekken";
            if (*regex == k_qwen2_regex) {
                // A template that adds a token first changes the converter's hash: only
                // DeepSeek-R1's distilled Qwen models are known with one.
                const std::string bos = leading_special(*tokenizer);
                if (bos.empty()) return "qwen2";
                if (bos == k_deepseek_bos) return "deepseek-r1-qwen";
            }
        }
        if (digits(first) && byte_level(second, true)) {
            const std::string second_token = token_with_id(1);
            if (second_token == "<|im_start|>") return "smollm";
            if (second_token == "<fim_prefix>") return "starcoder";
        }
    }
    if (byte_level(pre, true) && vocab.is_object() && vocab.size() == 50257 &&
        token_with_id(50256) == "<|endoftext|>") {
        return "gpt-2";
    }
    unrecognised(where, pre, normalizer);
}

}  // namespace edgeq::hf_tokenizer
