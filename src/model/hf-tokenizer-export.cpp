// tokenizer.json from tokenizer.ggml.*: the vocabulary, the merges (given for BPE, derived from
// the scores for SentencePiece), the special tokens as added tokens, and the pre-tokenizer,
// normalizer and decoder that reproduce the family's splitting.
#include "edgeq/model/hf-tokenizer-export.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <unordered_map>

#include "edgeq/core/error.h"

namespace edgeq {
namespace {

using nlohmann::json;

// tokenizer.ggml.token_type values.
constexpr int32_t k_normal = 1, k_unknown = 2, k_control = 3, k_user_defined = 4, k_unused = 5;

// The byte-level BPE regexes, by tokenizer.ggml.pre.
constexpr const char* k_llama3_regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr const char* k_qwen2_regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

struct Vocab {
    std::vector<std::string> texts;
    std::vector<float> scores;
    std::vector<int32_t> types;
};

Vocab read_vocab(const GgufFile& file) {
    Vocab v;
    const GgufValue& tokens = file.get("tokenizer.ggml.tokens");
    const uint64_t n = tokens.array_size();
    v.texts.reserve(n);
    for (uint64_t i = 0; i < n; ++i) v.texts.push_back(tokens.string_at(i));
    v.scores.assign(n, 0.0f);
    v.types.assign(n, k_normal);
    if (const GgufValue* s = file.find("tokenizer.ggml.scores")) {
        if (s->array_size() != n)
            fail("{}: tokenizer.ggml.scores has {} values, expected {}", file.path(),
                 s->array_size(), n);
        for (uint64_t i = 0; i < n; ++i)
            v.scores[i] = static_cast<float>(s->element_at(i).to_double());
    }
    if (const GgufValue* t = file.find("tokenizer.ggml.token_type")) {
        if (t->array_size() != n)
            fail("{}: tokenizer.ggml.token_type has {} values, expected {}", file.path(),
                 t->array_size(), n);
        for (uint64_t i = 0; i < n; ++i)
            v.types[i] = static_cast<int32_t>(t->element_at(i).to_int());
    }
    return v;
}

std::optional<int64_t> token_id(const GgufFile& file, const char* key, size_t n) {
    const std::optional<uint64_t> id = file.get_uint(key);
    if (!id || *id >= n) return std::nullopt;
    return static_cast<int64_t>(*id);
}

bool flag(const GgufFile& file, const char* key, bool fallback) {
    const GgufValue* v = file.find(key);
    return v != nullptr ? v->to_bool() : fallback;
}

// Control, unknown and user-defined tokens are matched in the text before the model runs.
json added_tokens(const Vocab& v) {
    json out = json::array();
    for (size_t i = 0; i < v.texts.size(); ++i) {
        const int32_t t = v.types[i];
        if (t != k_control && t != k_unknown && t != k_user_defined && t != k_unused) continue;
        if (v.texts[i].empty()) continue;
        out.push_back({{"id", i},
                       {"content", v.texts[i]},
                       {"single_word", false},
                       {"lstrip", false},
                       {"rstrip", false},
                       {"normalized", false},
                       {"special", t != k_user_defined}});
    }
    return out;
}

// The byte length of the UTF-8 sequence that starts with byte c (1 for a stray byte).
size_t utf8_length(unsigned char c) {
    return c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 1;
}

// SentencePiece BPE merges: every split of a normal piece into two pieces, the pieces with the
// highest score merging first; ties (one piece, several splits) by the halves' ids.
json spm_merges(const Vocab& v) {
    std::unordered_map<std::string_view, int32_t> ids;
    for (size_t i = 0; i < v.texts.size(); ++i) {
        if (v.types[i] == k_normal || v.types[i] == k_user_defined)
            ids.emplace(v.texts[i], static_cast<int32_t>(i));
    }
    struct Merge {
        float score;
        int32_t piece, left, right;
        size_t split;
    };
    std::vector<Merge> merges;
    for (size_t i = 0; i < v.texts.size(); ++i) {
        if (v.types[i] != k_normal) continue;
        const std::string& p = v.texts[i];
        if (p.find(' ') != std::string::npos) continue;
        for (size_t at = utf8_length(static_cast<unsigned char>(p[0])); at < p.size();
             at += utf8_length(static_cast<unsigned char>(p[at]))) {
            const auto l = ids.find(std::string_view(p).substr(0, at));
            const auto r = ids.find(std::string_view(p).substr(at));
            if (l != ids.end() && r != ids.end())
                merges.push_back({v.scores[i], static_cast<int32_t>(i), l->second, r->second, at});
        }
    }
    std::stable_sort(merges.begin(), merges.end(), [](const Merge& a, const Merge& b) {
        if (a.score != b.score) return a.score > b.score;
        if (a.piece != b.piece) return a.piece < b.piece;
        if (a.left != b.left) return a.left < b.left;
        return a.right < b.right;
    });
    json out = json::array();
    for (const Merge& m : merges) {
        const std::string& p = v.texts[static_cast<size_t>(m.piece)];
        out.push_back(p.substr(0, m.split) + " " + p.substr(m.split));
    }
    return out;
}

json vocab_object(const Vocab& v) {
    json out = json::object();
    for (size_t i = 0; i < v.texts.size(); ++i) out[v.texts[i]] = i;
    return out;
}

json template_with_bos(const std::string& bos, int64_t bos_id) {
    return {{"type", "TemplateProcessing"},
            {"single",
             {{{"SpecialToken", {{"id", bos}, {"type_id", 0}}}},
              {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
            {"pair",
             {{{"SpecialToken", {{"id", bos}, {"type_id", 0}}}},
              {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
              {{"SpecialToken", {{"id", bos}, {"type_id", 1}}}},
              {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}}},
            {"special_tokens", {{bos, {{"id", bos}, {"ids", {bos_id}}, {"tokens", {bos}}}}}}};
}

json byte_level(bool use_regex) {
    return {{"type", "ByteLevel"},
            {"add_prefix_space", false},
            {"trim_offsets", false},
            {"use_regex", use_regex}};
}

}  // namespace

std::optional<std::string> write_hf_tokenizer(const GgufFile& file, const std::string& dir) {
    const std::string model = file.get_string("tokenizer.ggml.model").value_or("");
    const std::string pre = file.get_string("tokenizer.ggml.pre").value_or("default");
    if (file.find("tokenizer.ggml.tokens") == nullptr) return "the file has no vocabulary";
    if (model == "gpt2" && file.find("tokenizer.ggml.merges") == nullptr)
        return "a gpt2 vocabulary without tokenizer.ggml.merges";
    if (model != "gpt2" && model != "llama")
        return "tokenizer.ggml.model '" + model + "' (edgeq writes gpt2 and llama vocabularies)";
    const Vocab v = read_vocab(file);
    const size_t n = v.texts.size();
    const bool spm = model == "llama";
    const std::optional<int64_t> bos = token_id(file, "tokenizer.ggml.bos_token_id", n);
    const std::optional<int64_t> eos = token_id(file, "tokenizer.ggml.eos_token_id", n);
    const std::optional<int64_t> unk = token_id(file, "tokenizer.ggml.unknown_token_id", n);
    const std::optional<int64_t> pad = token_id(file, "tokenizer.ggml.padding_token_id", n);
    const bool add_bos = flag(file, "tokenizer.ggml.add_bos_token", spm) && bos.has_value();
    const bool add_eos = flag(file, "tokenizer.ggml.add_eos_token", false) && eos.has_value();
    auto text = [&](const std::optional<int64_t>& id) -> json {
        return id ? json(v.texts[static_cast<size_t>(*id)]) : json(nullptr);
    };

    json tok = {{"version", "1.0"}, {"truncation", nullptr}, {"padding", nullptr}};
    tok["added_tokens"] = added_tokens(v);
    json bpe = {{"type", "BPE"},
                {"dropout", nullptr},
                {"unk_token", spm ? text(unk) : json(nullptr)},
                {"continuing_subword_prefix", nullptr},
                {"end_of_word_suffix", nullptr},
                {"fuse_unk", spm},
                {"byte_fallback", spm},
                {"ignore_merges", false}};
    if (spm) {
        const bool space_prefix = flag(file, "tokenizer.ggml.add_space_prefix", true);
        json replace = {
            {"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\xe2\x96\x81"}};
        tok["normalizer"] =
            space_prefix ? json{{"type", "Sequence"},
                                {"normalizers",
                                 {{{"type", "Prepend"}, {"prepend", "\xe2\x96\x81"}}, replace}}}
                         : replace;
        tok["pre_tokenizer"] = nullptr;
        json decoders = {
            {{"type", "Replace"}, {"pattern", {{"String", "\xe2\x96\x81"}}}, {"content", " "}},
            {{"type", "ByteFallback"}},
            {{"type", "Fuse"}}};
        if (space_prefix)
            decoders.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
        tok["decoder"] = {{"type", "Sequence"}, {"decoders", decoders}};
        bpe["merges"] = spm_merges(v);
    } else {
        json pre_tokenizer;
        tok["normalizer"] = nullptr;
        auto split = [&](const char* regex) {
            return json{{"type", "Sequence"},
                        {"pretokenizers",
                         {{{"type", "Split"},
                           {"pattern", {{"Regex", regex}}},
                           {"behavior", "Isolated"},
                           {"invert", false}},
                          byte_level(false)}}};
        };
        if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3") {
            pre_tokenizer = split(k_llama3_regex);
            bpe["ignore_merges"] = true;
        } else if (pre == "qwen2") {
            pre_tokenizer = split(k_qwen2_regex);
            tok["normalizer"] = {{"type", "NFC"}};
        } else if (pre == "smollm" || pre == "starcoder" || pre == "refact") {
            pre_tokenizer = {
                {"type", "Sequence"},
                {"pretokenizers",
                 {{{"type", "Digits"}, {"individual_digits", true}}, byte_level(true)}}};
        } else if (pre == "default" || pre == "gpt-2" || pre == "gpt2") {
            pre_tokenizer = byte_level(true);
        } else {
            return "tokenizer.ggml.pre '" + pre +
                   "' (edgeq writes default, gpt-2, llama-bpe, qwen2, smollm, starcoder)";
        }
        tok["pre_tokenizer"] = pre_tokenizer;
        tok["decoder"] = byte_level(true);
        const GgufValue& merges = file.get("tokenizer.ggml.merges");
        json m = json::array();
        for (uint64_t i = 0; i < merges.array_size(); ++i) m.push_back(merges.string_at(i));
        bpe["merges"] = std::move(m);
    }
    tok["post_processor"] = add_bos ? template_with_bos(text(bos), *bos) : json(nullptr);
    bpe["vocab"] = vocab_object(v);
    tok["model"] = std::move(bpe);

    json config = {
        {"add_bos_token", add_bos},
        {"add_eos_token", add_eos},
        {"bos_token", text(bos)},
        {"eos_token", text(eos)},
        {"unk_token", text(unk)},
        {"pad_token", text(pad)},
        {"clean_up_tokenization_spaces", false},
        {"model_max_length",
         file.get_uint(file.get_string("general.architecture").value_or("") + ".context_length")
             .value_or(2048)},
        {"tokenizer_class", spm ? "LlamaTokenizer" : "GPT2Tokenizer"}};
    if (spm) config["legacy"] = false;

    const std::filesystem::path base(dir);
    for (const auto& [name, value] :
         {std::pair{"tokenizer.json", &tok}, std::pair{"tokenizer_config.json", &config}}) {
        const std::string path = (base / name).string();
        std::ofstream out(path);
        out << value->dump(2, ' ', false, json::error_handler_t::replace) << "\n";
        if (!out) fail("{}: cannot write", path);
    }
    return std::nullopt;
}

}  // namespace edgeq
