// The Hugging Face tokenizer import against what llama.cpp's converter writes, as
// /tmp/convert-spec.md sections 6 and 7 describe it: tokenizer directories are written here
// (SentencePiece models made with the generated protobuf classes, tokenizer.json and its
// companions as JSON) and the keys, their order, GGUF types and values are checked against
// expectations written from that description. Then one clear Error per malformed input.
#include "edgeq/formats/hf-tokenizer.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "edgeq/core/error.h"
#include "src/formats/sentencepiece-model.pb.h"

namespace edgeq {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using SpPiece = sentencepiece::ModelProto::SentencePiece;

constexpr int64_t k_max_vocab_for_test = (int64_t{1} << 24) + 1;  // one past what is accepted
constexpr int32_t NORMAL = 1, UNKNOWN = 2, CONTROL = 3, USER_DEFINED = 4, UNUSED = 5, BYTE = 6;

const std::string k_llama3_regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const std::string k_qwen2_regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

json byte_level(bool use_regex) {
    return {{"type", "ByteLevel"},
            {"add_prefix_space", false},
            {"trim_offsets", true},
            {"use_regex", use_regex}};
}

json split_then_byte_level(const std::string& regex) {
    return {{"type", "Sequence"},
            {"pretokenizers",
             {{{"type", "Split"},
               {"pattern", {{"Regex", regex}}},
               {"behavior", "Isolated"},
               {"invert", false}},
              byte_level(false)}}};
}

json added(int id, const std::string& content, bool special = true) {
    return {{"id", id},        {"content", content},  {"single_word", false}, {"lstrip", false},
            {"rstrip", false}, {"normalized", false}, {"special", special}};
}

json template_processing(const std::string& bos, const std::string& eos = "") {
    json single = json::array();
    if (!bos.empty()) single.push_back({{"SpecialToken", {{"id", bos}, {"type_id", 0}}}});
    single.push_back({{"Sequence", {{"id", "A"}, {"type_id", 0}}}});
    if (!eos.empty()) single.push_back({{"SpecialToken", {{"id", eos}, {"type_id", 0}}}});
    json pair = single;
    if (!bos.empty()) pair.push_back({{"SpecialToken", {{"id", bos}, {"type_id", 1}}}});
    pair.push_back({{"Sequence", {{"id", "B"}, {"type_id", 1}}}});
    if (!eos.empty()) pair.push_back({{"SpecialToken", {{"id", eos}, {"type_id", 1}}}});
    return {{"type", "TemplateProcessing"},
            {"single", single},
            {"pair", pair},
            {"special_tokens", json::object()}};
}

struct Piece {
    std::string text;
    float score;
    int type;
};

class HfTokenizerTest : public ::testing::Test {
  protected:
    void SetUp() override {
        std::string pattern = ::testing::TempDir() + "edgeq-tok-XXXXXX";
        ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
        dir_ = pattern;
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    std::string path(const std::string& name) const { return (fs::path(dir_) / name).string(); }
    void write_text(const std::string& name, const std::string& text) const {
        fs::create_directories(fs::path(path(name)).parent_path());
        std::ofstream(path(name), std::ios::binary) << text;
    }
    void write_json(const std::string& name, const json& value) const {
        write_text(name, value.dump(1));
    }

    // A SentencePiece model file from pieces, through the generated protobuf classes.
    void write_model(
        const std::vector<Piece>& pieces, bool byte_fallback = false,
        sentencepiece::TrainerSpec::ModelType type = sentencepiece::TrainerSpec::BPE) const {
        sentencepiece::ModelProto model;
        model.mutable_trainer_spec()->set_model_type(type);
        model.mutable_trainer_spec()->set_byte_fallback(byte_fallback);
        for (const Piece& p : pieces) {
            SpPiece* piece = model.add_pieces();
            piece->set_piece(p.text);
            piece->set_score(p.score);
            piece->set_type(static_cast<SpPiece::Type>(p.type));
        }
        write_text("tokenizer.model", model.SerializeAsString());
    }

    // The Llama-2-like pieces most tests use: <unk> <s> </s> and five more.
    void write_small_model() const {
        write_model({{"<unk>", 0.0f, UNKNOWN},
                     {"<s>", 0.0f, CONTROL},
                     {"</s>", 0.0f, CONTROL},
                     {"\xe2\x96\x81"
                      "a",
                      -1.5f, NORMAL},
                     {"b", -2.0f, USER_DEFINED},
                     {"c", -3.25f, UNUSED},
                     {"d", -0.0f, NORMAL},
                     {"<|x|>", -4.0f, NORMAL}});
    }

    // A byte-level BPE tokenizer.json: `n_base` tokens t0..t(n-1), then `added_tokens`.
    json bpe_json(const json& pre_tokenizer, int n_base, const json& added_tokens,
                  const json& merges, const json& normalizer = nullptr) const {
        json vocab = json::object();
        for (int i = 0; i < n_base; ++i) vocab[fmt::format("t{}", i)] = i;
        return {
            {"version", "1.0"},
            {"added_tokens", added_tokens},
            {"normalizer", normalizer},
            {"pre_tokenizer", pre_tokenizer},
            {"post_processor", byte_level(true)},
            {"decoder", byte_level(true)},
            {"model",
             {{"type", "BPE"}, {"byte_fallback", false}, {"vocab", vocab}, {"merges", merges}}}};
    }

    GgufMetadata run(const std::string& arch, int64_t vocab_size,
                     const json& config = nullptr) const {
        return hf_tokenizer_metadata(HfTokenizerInput{dir_, config, arch, vocab_size});
    }

    void expect_error(const std::string& arch, int64_t vocab_size,
                      const std::vector<std::string>& fragments,
                      const json& config = nullptr) const {
        try {
            (void)run(arch, vocab_size, config);
            ADD_FAILURE() << "no Error; expected one containing '" << fragments[0] << "'";
        } catch (const Error& e) {
            for (const std::string& fragment : fragments) {
                EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos)
                    << "message: " << e.what() << "\nexpected to contain: " << fragment;
            }
        }
    }

    std::string dir_;
};

std::vector<std::string> names(const GgufMetadata& keys) {
    std::vector<std::string> out;
    for (const auto& [key, value] : keys) out.push_back(key);
    return out;
}

const GgufValue& value(const GgufMetadata& keys, const std::string& key) {
    for (const auto& [k, v] : keys) {
        if (k == key) return v;
    }
    throw std::runtime_error("no key " + key);
}

bool has(const GgufMetadata& keys, const std::string& key) {
    for (const auto& [k, v] : keys) {
        if (k == key) return true;
    }
    return false;
}

std::vector<std::string> strings(const GgufValue& v) {
    EXPECT_EQ(v.type(), GgufType::array);
    EXPECT_EQ(v.element_type(), GgufType::string);
    std::vector<std::string> out;
    for (uint64_t i = 0; i < v.array_size(); ++i) out.push_back(v.string_at(i));
    return out;
}

std::vector<int32_t> int32s(const GgufValue& v) {
    EXPECT_EQ(v.element_type(), GgufType::int32);
    std::vector<int32_t> out(v.array_size());
    std::memcpy(out.data(), v.element_bytes().data(), 4 * out.size());
    return out;
}

std::vector<uint32_t> float_bits(const GgufValue& v) {
    EXPECT_EQ(v.element_type(), GgufType::float32);
    std::vector<uint32_t> out(v.array_size());
    std::memcpy(out.data(), v.element_bytes().data(), 4 * out.size());
    return out;
}

uint32_t bits(float f) {
    uint32_t b;
    std::memcpy(&b, &f, 4);
    return b;
}

uint32_t id(const GgufMetadata& keys, const std::string& key) {
    const GgufValue& v = value(keys, key);
    EXPECT_EQ(v.type(), GgufType::uint32) << key;
    return static_cast<uint32_t>(v.to_uint());
}

bool flag(const GgufMetadata& keys, const std::string& key) {
    const GgufValue& v = value(keys, key);
    EXPECT_EQ(v.type(), GgufType::boolean) << key;
    return v.to_bool();
}

// ---- SentencePiece ----

TEST_F(HfTokenizerTest, SentencePieceTokensScoresTypesAndPadding) {
    write_small_model();
    const GgufMetadata keys =
        run("llama", 10, {{"bos_token_id", 1}, {"eos_token_id", 2}, {"unk_token_id", 0}});
    EXPECT_EQ(names(keys), (std::vector<std::string>{
                               "tokenizer.ggml.model", "tokenizer.ggml.pre",
                               "tokenizer.ggml.tokens", "tokenizer.ggml.scores",
                               "tokenizer.ggml.token_type", "tokenizer.ggml.bos_token_id",
                               "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id"}));
    EXPECT_EQ(value(keys, "tokenizer.ggml.model").to_string(), "llama");
    EXPECT_EQ(value(keys, "tokenizer.ggml.pre").to_string(), "default");
    EXPECT_EQ(strings(value(keys, "tokenizer.ggml.tokens")),
              (std::vector<std::string>{"<unk>", "<s>", "</s>",
                                        "\xe2\x96\x81"
                                        "a",
                                        "b", "c", "d", "<|x|>", "[PAD8]", "[PAD9]"}));
    // USER_DEFINED pieces become NORMAL; padding is UNUSED with score -10000.
    EXPECT_EQ(int32s(value(keys, "tokenizer.ggml.token_type")),
              (std::vector<int32_t>{UNKNOWN, CONTROL, CONTROL, NORMAL, NORMAL, UNUSED, NORMAL,
                                    NORMAL, UNUSED, UNUSED}));
    EXPECT_EQ(float_bits(value(keys, "tokenizer.ggml.scores")),
              (std::vector<uint32_t>{bits(0), bits(0), bits(0), bits(-1.5f), bits(-2), bits(-3.25f),
                                     bits(-0.0f), bits(-4), bits(-10000), bits(-10000)}));
    EXPECT_EQ(id(keys, "tokenizer.ggml.bos_token_id"), 1u);
    EXPECT_EQ(id(keys, "tokenizer.ggml.eos_token_id"), 2u);
    EXPECT_EQ(id(keys, "tokenizer.ggml.unknown_token_id"), 0u);
}

TEST_F(HfTokenizerTest, SentencePieceVocabSizeFromModelOrTruncated) {
    write_small_model();
    EXPECT_EQ(value(run("llama", 0), "tokenizer.ggml.tokens").array_size(),
              8u);                                                     // unknown: the model's
    const GgufMetadata keys = run("llama", 5, {{"eos_token_id", 7}});  // pieces past 5 dropped
    EXPECT_EQ(strings(value(keys, "tokenizer.ggml.tokens")),
              (std::vector<std::string>{"<unk>", "<s>", "</s>",
                                        "\xe2\x96\x81"
                                        "a",
                                        "b"}));
    EXPECT_FALSE(has(keys, "tokenizer.ggml.eos_token_id"));  // 7 is not below 5: skipped
}

TEST_F(HfTokenizerTest, SentencePieceBytePieces) {
    std::vector<Piece> pieces = {{"<unk>", 0, UNKNOWN}, {"<s>", 0, CONTROL}, {"</s>", 0, CONTROL}};
    for (int b = 0; b < 256; ++b) pieces.push_back({fmt::format("<0x{:02X}>", b), 0, BYTE});
    pieces.push_back({"\xe2\x96\x81the", -1, NORMAL});
    write_model(pieces, true);
    const GgufMetadata keys = run("llama", 0);
    const std::vector<int32_t> types = int32s(value(keys, "tokenizer.ggml.token_type"));
    ASSERT_EQ(types.size(), 260u);
    EXPECT_EQ(types[3], BYTE);
    EXPECT_EQ(types[258], BYTE);
    EXPECT_EQ(types[259], NORMAL);
    EXPECT_EQ(strings(value(keys, "tokenizer.ggml.tokens"))[3 + 0x41], "<0x41>");
}

TEST_F(HfTokenizerTest, AddedTokensDecoderAndAddedTokensJson) {
    write_small_model();
    // Keys "6" and "06" both name id 6: the later in the file wins, as in a Python dict.
    write_text("tokenizer_config.json", R"({"added_tokens_decoder": {
        "1": {"content": "<s>", "special": true},
        "3": {"content": "\u2581hello\u2581world", "special": false},
        "4": {"content": "<|user|>", "special": false},
        "5": {"content": "<unused7>", "special": false},
        "7": {"content": "<mask>", "special": false},
        "8": {"content": "\n\n", "special": false},
        "6": {"content": "first", "special": false},
        "06": {"content": "<\uff5cx\uff5c>", "special": false},
        "12": {"content": "<beyond>", "special": true}}})");
    write_json("added_tokens.json", {{"<pad>", 9}, {"<far>", 40}});
    const GgufMetadata keys = run("llama", 10);
    EXPECT_EQ(
        strings(value(keys, "tokenizer.ggml.tokens")),
        (std::vector<std::string>{"<unk>", "<s>", "</s>", " hello world", "<|user|>", "<unused7>",
                                  "<\xef\xbd\x9cx\xef\xbd\x9c>", "<mask>", "\n\n", "<pad>"}));
    EXPECT_EQ(int32s(value(keys, "tokenizer.ggml.token_type")),
              (std::vector<int32_t>{UNKNOWN, CONTROL, CONTROL, USER_DEFINED, CONTROL, CONTROL,
                                    CONTROL, CONTROL, USER_DEFINED, USER_DEFINED}));
    const std::vector<uint32_t> scores = float_bits(value(keys, "tokenizer.ggml.scores"));
    EXPECT_EQ(scores[0], bits(0));
    EXPECT_EQ(scores[2], bits(0));  // </s> is not in added_tokens_decoder
    for (const size_t i : {1, 3, 4, 5, 6, 7, 8, 9}) EXPECT_EQ(scores[i], bits(-1000.0f)) << i;
}

TEST_F(HfTokenizerTest, Phi3VariantHasNoLooksSpecialAndReadsTokenizerJsonLast) {
    write_small_model();
    write_json("tokenizer_config.json",
               {{"tokenizer_class", "LlamaTokenizer"},
                {"added_tokens_decoder",
                 {{"3", {{"content", "\xe2\x96\x81x"}, {"special", false}}},  // no "▁" replacement
                  {"4", {{"content", "<|end|>"}, {"special", false}}},  // does not "look special"
                  {"2", {{"content", "</s>"}, {"special", true}}}}}});
    write_json("tokenizer.json",
               {{"added_tokens", {added(2, "</s>", false), added(9, "<|endoftext|>")}},
                {"model", {{"type", "BPE"}}}});
    const GgufMetadata keys = run("phi3", 10, {{"eos_token_id", 9}});
    const std::vector<std::string> tokens = strings(value(keys, "tokenizer.ggml.tokens"));
    EXPECT_EQ(tokens[3], "\xe2\x96\x81x");
    EXPECT_EQ(tokens[9], "<|endoftext|>");
    EXPECT_EQ(int32s(value(keys, "tokenizer.ggml.token_type")),
              (std::vector<int32_t>{UNKNOWN, CONTROL, USER_DEFINED, USER_DEFINED, USER_DEFINED,
                                    UNUSED, NORMAL, NORMAL, UNUSED, CONTROL}));
    EXPECT_EQ(id(keys, "tokenizer.ggml.eos_token_id"), 9u);

    // Phi-3 has no range check: an id past vocab_size is an error, not a skipped token.
    write_json("tokenizer.json",
               {{"added_tokens", {added(10, "<x>")}}, {"model", {{"type", "BPE"}}}});
    expect_error("phi3", 10,
                 {"tokenizer.json: added_tokens[0]", "id 10 is not below vocab_size 10"});
    fs::remove(path("tokenizer.json"));
    fs::remove(path("tokenizer_config.json"));
    write_json("tokenizer_config.json", {{"bos_token", "<s>"}});
    expect_error("phi3", 10, {"tokenizer_config.json", "no tokenizer_class"});
}

TEST_F(HfTokenizerTest, SpecialIdsFromTokenizerConfigThenConfig) {
    write_small_model();
    // bos as an object, eos as a string; both looked up among tokenizer.json's added tokens
    // (the first match), not in the vocabulary. unk only in the model: not found there.
    write_json("tokenizer_config.json",
               {{"bos_token", {{"content", "<s>"}, {"__type", "AddedToken"}}},
                {"eos_token", "<|x|>"},
                {"unk_token", "<unk>"},
                {"pad_token", "</s>"}});
    write_json("tokenizer.json",
               {{"added_tokens",
                 {added(1, "<s>"), added(7, "<|x|>"), added(5, "<|x|>"), added(2, "</s>")}},
                {"model", {{"type", "BPE"}}}});
    const json config = {
        {"bos_token_id", 4},
        {"eos_token_id", {1, 2}},
        {"unk_token_id", true},
        {"text_config", {{"sep_token_id", 3}, {"pad_token_id", 6}, {"mask_token_id", 99}}}};
    const GgufMetadata keys = run("llama", 8, config);
    // Insertion order: the tokenizer_config stage first (bos, eos, pad), then config.json's (unk,
    // sep).
    std::vector<std::string> ids;
    for (const std::string& k : names(keys)) {
        if (k.ends_with("_token_id")) ids.push_back(k);
    }
    EXPECT_EQ(ids, (std::vector<std::string>{
                       "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                       "tokenizer.ggml.padding_token_id", "tokenizer.ggml.unknown_token_id",
                       "tokenizer.ggml.seperator_token_id"}));
    EXPECT_EQ(id(keys, "tokenizer.ggml.bos_token_id"), 1u);
    EXPECT_EQ(id(keys, "tokenizer.ggml.eos_token_id"), 7u);
    EXPECT_EQ(id(keys, "tokenizer.ggml.padding_token_id"), 2u);
    EXPECT_EQ(id(keys, "tokenizer.ggml.unknown_token_id"), 1u);  // true counts as 1, as in Python
    EXPECT_EQ(id(keys, "tokenizer.ggml.seperator_token_id"), 3u);
    EXPECT_FALSE(has(keys, "tokenizer.ggml.mask_token_id"));  // 99 is not below 8

    expect_error("llama", 8, {"config.json", "invalid value for special token type pad: -1"},
                 {{"pad_token_id", -1}});
}

TEST_F(HfTokenizerTest, AddFlagsFromPostProcessorThenTokenizerConfig) {
    write_small_model();
    // TinyLlama: the template adds <s> first (bos True); the pair <s> A <s> B has a middle
    // that is neither sep nor eos (sep False); eos comes from tokenizer_config.
    write_json("tokenizer_config.json", {{"bos_token", "<s>"},
                                         {"eos_token", "</s>"},
                                         {"add_bos_token", false},
                                         {"add_eos_token", false},
                                         {"add_unk_token", true}});
    write_json("tokenizer.json", {{"added_tokens", {added(1, "<s>")}},
                                  {"post_processor", template_processing("<s>")},
                                  {"model", {{"type", "BPE"}}}});
    GgufMetadata keys = run("llama", 8);
    std::vector<std::string> flags;
    for (const std::string& k : names(keys)) {
        if (k.find(".add_") != std::string::npos) flags.push_back(k);
    }
    EXPECT_EQ(flags, (std::vector<std::string>{"tokenizer.ggml.add_bos_token",
                                               "tokenizer.ggml.add_sep_token",
                                               "tokenizer.ggml.add_eos_token"}));
    EXPECT_TRUE(flag(keys, "tokenizer.ggml.add_bos_token"));  // the post-processor wins
    EXPECT_FALSE(flag(keys, "tokenizer.ggml.add_sep_token"));
    EXPECT_FALSE(flag(keys, "tokenizer.ggml.add_eos_token"));

    // A template that appends a token other than eos: eos becomes that token, and the old eos
    // is kept as eot.
    write_json("tokenizer.json",
               {{"added_tokens", {added(1, "<s>"), added(2, "</s>"), added(7, "<|x|>")}},
                {"post_processor", template_processing("<s>", "<|x|>")},
                {"model", {{"type", "BPE"}}}});
    keys = run("llama", 8);
    EXPECT_TRUE(flag(keys, "tokenizer.ggml.add_eos_token"));
    EXPECT_EQ(id(keys, "tokenizer.ggml.eos_token_id"), 7u);
    EXPECT_EQ(id(keys, "tokenizer.ggml.eot_token_id"), 2u);

    // RobertaProcessing: bos, eos and sep all True; bos falls back to cls.
    write_json("tokenizer_config.json",
               {{"cls_token", "<s>"}, {"sep_token", "</s>"}, {"add_sep_token", false}});
    write_json("tokenizer.json",
               {{"added_tokens", {added(1, "<s>"), added(2, "</s>")}},
                {"post_processor",
                 {{"type", "RobertaProcessing"}, {"sep", {"</s>", 2}}, {"cls", {"<s>", 1}}}},
                {"model", {{"type", "BPE"}}}});
    keys = run("llama", 8);
    EXPECT_TRUE(flag(keys, "tokenizer.ggml.add_bos_token"));
    EXPECT_TRUE(flag(keys, "tokenizer.ggml.add_eos_token"));
    EXPECT_TRUE(flag(keys, "tokenizer.ggml.add_sep_token"));
    EXPECT_EQ(id(keys, "tokenizer.ggml.bos_token_id"), 1u);
    EXPECT_EQ(id(keys, "tokenizer.ggml.eos_token_id"), 2u);
}

TEST_F(HfTokenizerTest, ChatTemplates) {
    write_small_model();
    // A string in tokenizer_config.json wins over chat_template.jinja.
    write_json("tokenizer_config.json", {{"chat_template", "{{ messages }}"}});
    write_text("chat_template.jinja", "from the file");
    EXPECT_EQ(value(run("llama", 8), "tokenizer.chat_template").to_string(), "{{ messages }}");

    // Without one there, the .jinja file verbatim (newlines as Python reads them).
    write_json("tokenizer_config.json", {{"bos_token", "<s>"}});
    write_text("chat_template.jinja", "line one\r\nline two\rthree\n");
    EXPECT_EQ(value(run("llama", 8), "tokenizer.chat_template").to_string(),
              "line one\nline two\nthree\n");

    // With additional_chat_templates/: each file is a named template.
    write_text("additional_chat_templates/tool use.jinja", "TOOLS");
    write_text("additional_chat_templates/readme.txt", "not a template");
    GgufMetadata keys = run("llama", 8);
    EXPECT_EQ(value(keys, "tokenizer.chat_template.tool_use").to_string(), "TOOLS");
    EXPECT_EQ(strings(value(keys, "tokenizer.chat_templates")),
              (std::vector<std::string>{"tool_use"}));
    EXPECT_EQ(value(keys, "tokenizer.chat_template").to_string(), "line one\nline two\nthree\n");
    fs::remove_all(path("additional_chat_templates"));
    fs::remove(path("chat_template.jinja"));

    // chat_template.json when there is no .jinja.
    write_json("chat_template.json", {{"chat_template", "from json"}});
    EXPECT_EQ(value(run("llama", 8), "tokenizer.chat_template").to_string(), "from json");

    // A list: named templates first (names sanitized), the array of names, then the default.
    const json templates = json::array({{{"name", "default"}, {"template", "D"}},
                                        {{"name", "rag-v2"}, {"template", "R"}},
                                        {{"name", "tool_use"}, {"template", "T"}},
                                        {{"name", "empty"}, {"template", ""}}});
    write_json("tokenizer_config.json", {{"chat_template", templates}});
    keys = run("llama", 8);
    std::vector<std::string> template_keys;
    for (const std::string& k : names(keys)) {
        if (k.starts_with("tokenizer.chat")) template_keys.push_back(k);
    }
    EXPECT_EQ(template_keys,
              (std::vector<std::string>{"tokenizer.chat_template.rag_v2",
                                        "tokenizer.chat_template.tool_use",
                                        "tokenizer.chat_templates", "tokenizer.chat_template"}));
    std::vector<std::string> listed = strings(value(keys, "tokenizer.chat_templates"));
    std::sort(listed.begin(), listed.end());  // gguf-py builds it from a set
    EXPECT_EQ(listed, (std::vector<std::string>{"empty", "rag_v2", "tool_use"}));
    EXPECT_EQ(value(keys, "tokenizer.chat_template").to_string(), "D");

    // An empty template is not written; without tokenizer_config.json none is read at all.
    write_json("tokenizer_config.json", {{"chat_template", ""}});
    EXPECT_FALSE(has(run("llama", 8), "tokenizer.chat_template"));
    fs::remove(path("tokenizer_config.json"));
    EXPECT_FALSE(has(run("llama", 8), "tokenizer.chat_template"));
}

TEST_F(HfTokenizerTest, FamilyKeys) {
    write_small_model();
    write_json("tokenizer_config.json", {{"add_prefix_space", false}, {"chat_template", "T"}});
    // Llama: add_space_prefix from tokenizer_config, before everything else.
    GgufMetadata keys = run("llama", 8);
    EXPECT_EQ(names(keys).front(), "tokenizer.ggml.add_space_prefix");
    EXPECT_FALSE(flag(keys, "tokenizer.ggml.add_space_prefix"));
    // Gemma: always False, written last. Qwen and Phi-3: never.
    for (const char* arch : {"gemma2", "gemma3"}) {
        keys = run(arch, 8);
        EXPECT_EQ(names(keys).back(), "tokenizer.ggml.add_space_prefix") << arch;
        EXPECT_EQ(names(keys).front(), "tokenizer.ggml.model") << arch;
    }
    EXPECT_FALSE(has(run("qwen2", 8), "tokenizer.ggml.add_space_prefix"));
    write_json("tokenizer_config.json",
               {{"add_prefix_space", true}, {"tokenizer_class", "LlamaTokenizer"}});
    EXPECT_FALSE(has(run("phi3", 8), "tokenizer.ggml.add_space_prefix"));
    // CodeLlama (vocab 32016): a second special vocabulary writes eot 32010, last.
    keys = run("llama", 32016);
    EXPECT_EQ(names(keys).back(), "tokenizer.ggml.eot_token_id");
    EXPECT_EQ(id(keys, "tokenizer.ggml.eot_token_id"), 32010u);

    fs::remove(path("tokenizer.model"));
    expect_error("gemma2", 8, {"tokenizer.model", "missing"});
    expect_error("phi3", 8, {"tokenizer.model", "missing"});
    expect_error("falcon", 8, {"no tokenizer import for architecture 'falcon'"});
}

// ---- byte-level BPE ----

TEST_F(HfTokenizerTest, Llama3StyleBpe) {
    // Merges in the pair form: a space inside a part becomes U+0120.
    write_json("tokenizer.json",
               bpe_json(split_then_byte_level(k_llama3_regex), 6,
                        {added(6, "<|begin_of_text|>"), added(7, "<|eot_id|>")},
                        json::array({json::array({"t0", "t1"}), json::array({"a b", "c"})})));
    write_json(
        "tokenizer_config.json",
        {{"bos_token", "<|begin_of_text|>"}, {"eos_token", "<|eot_id|>"}, {"chat_template", "T"}});
    const GgufMetadata keys = run("llama", 10, {{"bos_token_id", 6}, {"eos_token_id", {7, 8}}});
    EXPECT_EQ(names(keys), (std::vector<std::string>{
                               "tokenizer.ggml.model", "tokenizer.ggml.pre",
                               "tokenizer.ggml.tokens", "tokenizer.ggml.token_type",
                               "tokenizer.ggml.merges", "tokenizer.ggml.bos_token_id",
                               "tokenizer.ggml.eos_token_id", "tokenizer.ggml.add_bos_token",
                               "tokenizer.ggml.add_eos_token", "tokenizer.chat_template"}));
    EXPECT_EQ(value(keys, "tokenizer.ggml.model").to_string(), "gpt2");
    EXPECT_EQ(value(keys, "tokenizer.ggml.pre").to_string(), "llama-bpe");
    EXPECT_EQ(strings(value(keys, "tokenizer.ggml.tokens")),
              (std::vector<std::string>{"t0", "t1", "t2", "t3", "t4", "t5", "<|begin_of_text|>",
                                        "<|eot_id|>", "[PAD8]", "[PAD9]"}));
    EXPECT_EQ(int32s(value(keys, "tokenizer.ggml.token_type")),
              (std::vector<int32_t>{NORMAL, NORMAL, NORMAL, NORMAL, NORMAL, NORMAL, CONTROL,
                                    CONTROL, UNUSED, UNUSED}));
    EXPECT_EQ(strings(value(keys, "tokenizer.ggml.merges")), (std::vector<std::string>{"t0 t1",
                                                                                       "a\xc4\xa0"
                                                                                       "b c"}));
    EXPECT_EQ(id(keys, "tokenizer.ggml.eos_token_id"), 7u);
    EXPECT_FALSE(has(keys, "tokenizer.ggml.scores"));

    // Token ids past vocab_size: the converter's assertion.
    expect_error("llama", 7, {"token id 7 is not below the vocabulary size 7"});
}

TEST_F(HfTokenizerTest, QwenStyleBpeAddedTokenTypes) {
    write_json("tokenizer.json",
               bpe_json(split_then_byte_level(k_qwen2_regex), 4,
                        {added(4, "<|endoftext|>"), added(5, "<tool_call>", false),
                         added(6, "<|fim_prefix|>", false), added(7, "\xe2\x96\x81sp", false),
                         added(2, "t2")},
                        {"t0 t1"}, {{"type", "NFC"}}));
    write_json("tokenizer_config.json", {{"eos_token", "<|endoftext|>"}, {"bos_token", nullptr}});
    const GgufMetadata keys = run("qwen2", 9, {{"bos_token_id", 4}});
    EXPECT_EQ(value(keys, "tokenizer.ggml.pre").to_string(), "qwen2");
    EXPECT_EQ(strings(value(keys, "tokenizer.ggml.tokens")),
              (std::vector<std::string>{"t0", "t1", "t2", "t3", "<|endoftext|>", "<tool_call>",
                                        "<|fim_prefix|>", " sp", "[PAD8]"}));
    // An added token that is also in the vocabulary (t2) is an added token too.
    EXPECT_EQ(int32s(value(keys, "tokenizer.ggml.token_type")),
              (std::vector<int32_t>{NORMAL, NORMAL, CONTROL, NORMAL, CONTROL, USER_DEFINED, CONTROL,
                                    USER_DEFINED, UNUSED}));
    EXPECT_EQ(strings(value(keys, "tokenizer.ggml.merges")), (std::vector<std::string>{"t0 t1"}));
    EXPECT_FALSE(flag(keys, "tokenizer.ggml.add_bos_token"));  // ByteLevel post-processor
    EXPECT_EQ(id(keys, "tokenizer.ggml.eos_token_id"), 4u);
}

TEST_F(HfTokenizerTest, AddedTokenIdsAndFlagsAsAutoTokenizerHoldsThem) {
    // tokenizers gives added tokens the next free ids in order (the ids written are not used);
    // tokenizer_config.json's added_tokens_decoder overrides flags; named special tokens become
    // special, and are appended when missing.
    write_json("tokenizer.json",
               bpe_json(split_then_byte_level(k_qwen2_regex), 4,
                        {added(40, "<a>", false), added(41, "<b>", false), added(3, "t3", false)},
                        json::array()));
    write_json("tokenizer_config.json",
               {{"added_tokens_decoder", {{"5", {{"content", "<b>"}, {"special", true}}}}},
                {"eos_token", "<a>"},
                {"pad_token", "<new>"}});
    const GgufMetadata keys = run("qwen2", 8);
    EXPECT_EQ(strings(value(keys, "tokenizer.ggml.tokens")),
              (std::vector<std::string>{"t0", "t1", "t2", "t3", "<a>", "<b>", "<new>", "[PAD7]"}));
    EXPECT_EQ(int32s(value(keys, "tokenizer.ggml.token_type")),
              (std::vector<int32_t>{NORMAL, NORMAL, NORMAL, USER_DEFINED, CONTROL, CONTROL, CONTROL,
                                    UNUSED}));
    EXPECT_FALSE(has(keys, "tokenizer.ggml.merges"));
}

TEST_F(HfTokenizerTest, PreTokenizerNames) {
    const json starcoder_pre = {
        {"type", "Sequence"},
        {"pretokenizers", {{{"type", "Digits"}, {"individual_digits", true}}, byte_level(true)}}};
    json tokenizer = bpe_json(starcoder_pre, 4, json::array(), {"t0 t1"});
    tokenizer["model"]["vocab"] = {
        {"<|endoftext|>", 0}, {"<|im_start|>", 1}, {"<|im_end|>", 2}, {"a", 3}};
    write_json("tokenizer.json", tokenizer);
    EXPECT_EQ(value(run("llama", 4), "tokenizer.ggml.pre").to_string(), "smollm");
    tokenizer["model"]["vocab"] = {
        {"<|endoftext|>", 0}, {"<fim_prefix>", 1}, {"<fim_middle>", 2}, {"a", 3}};
    write_json("tokenizer.json", tokenizer);
    EXPECT_EQ(value(run("llama", 4), "tokenizer.ggml.pre").to_string(), "starcoder");
    tokenizer["model"]["vocab"] = {{"a", 0}, {"b", 1}};
    write_json("tokenizer.json", tokenizer);
    expect_error("llama", 4, {"tokenizer.json", "is not one recognised", "recognised: llama-bpe"});

    // Qwen's structure with DeepSeek-R1's BOS template; with another BOS it is not known.
    tokenizer = bpe_json(split_then_byte_level(k_qwen2_regex), 4, json::array(), {"t0 t1"});
    tokenizer["post_processor"] = template_processing(
        "<\xef\xbd\x9c"
        "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>");
    write_json("tokenizer.json", tokenizer);
    EXPECT_EQ(value(run("qwen2", 4), "tokenizer.ggml.pre").to_string(), "deepseek-r1-qwen");
    tokenizer["post_processor"] = template_processing("<s>");
    write_json("tokenizer.json", tokenizer);
    expect_error("qwen2", 4, {"is not one recognised"});

    // ByteLevel alone is GPT-2's only with GPT-2's vocabulary.
    tokenizer =
        bpe_json(byte_level(true), 50256, json::array({added(50256, "<|endoftext|>")}), {"t0 t1"});
    tokenizer["model"]["vocab"]["<|endoftext|>"] = 50256;
    write_json("tokenizer.json", tokenizer);
    EXPECT_EQ(value(run("llama", 50257), "tokenizer.ggml.pre").to_string(), "gpt-2");
    write_json("tokenizer.json", bpe_json(byte_level(true), 4, json::array(), {"t0 t1"}));
    expect_error("llama", 4, {"ByteLevel(add_prefix_space=false, use_regex=true)"});

    // A normalizer other than NFC changes the tokens: not known.
    write_json("tokenizer.json", bpe_json(split_then_byte_level(k_llama3_regex), 4, json::array(),
                                          {"t0 t1"}, {{"type", "Lowercase"}}));
    expect_error("llama", 4, {"normalizer Lowercase"});
}

TEST_F(HfTokenizerTest, SmolLmVocabForcesAddBosFalseInPlace) {
    const json pre = {
        {"type", "Sequence"},
        {"pretokenizers", {{{"type", "Digits"}, {"individual_digits", true}}, byte_level(true)}}};
    json tokenizer =
        bpe_json(pre, 3, {added(0, "<|endoftext|>"), added(1, "<|im_start|>")}, {"t0 t1"});
    tokenizer["model"]["vocab"] = {{"<|endoftext|>", 0}, {"<|im_start|>", 1}, {"<|im_end|>", 2}};
    tokenizer["post_processor"] = template_processing("<|im_start|>");
    write_json("tokenizer.json", tokenizer);
    write_json("tokenizer_config.json", {{"bos_token", "<|im_start|>"}, {"chat_template", "T"}});
    const GgufMetadata keys = run("llama", 49152);
    EXPECT_FALSE(flag(keys, "tokenizer.ggml.add_bos_token"));
    // Still before the chat template, where the special vocabulary put it.
    const std::vector<std::string> order = names(keys);
    EXPECT_LT(std::find(order.begin(), order.end(), "tokenizer.ggml.add_bos_token"),
              std::find(order.begin(), order.end(), "tokenizer.chat_template"));
}

TEST_F(HfTokenizerTest, MergesTxtAndNormalizerFlags) {
    write_json("tokenizer.json", bpe_json(split_then_byte_level(k_llama3_regex), 4, json::array(),
                                          json::array(), {{"type", "NFC"}}));
    write_text("merges.txt", "#version: 0.2\nt0 t1\n\nbad line here\r\n  t2   t3  \n");
    GgufMetadata keys = run("llama", 4);
    EXPECT_EQ(strings(value(keys, "tokenizer.ggml.merges")),
              (std::vector<std::string>{"t0 t1", "t2 t3"}));

    // Normalizer flags come from tokenizer.json on the SentencePiece path too.
    fs::remove(path("merges.txt"));
    write_small_model();
    const json normalizers = json::array(
        {{{"type", "BertNormalizer"}, {"lowercase", false}}, {{"type", "StripAccents"}}});
    json tokenizer = {{"normalizer", {{"type", "Sequence"}, {"normalizers", normalizers}}},
                      {"model", {{"type", "BPE"}}}};
    write_json("tokenizer.json", tokenizer);
    keys = run("llama", 8);
    EXPECT_FALSE(flag(keys, "tokenizer.ggml.normalizer.lowercase"));
    EXPECT_TRUE(flag(keys, "tokenizer.ggml.normalizer.strip_accents"));
}

TEST_F(HfTokenizerTest, LlamaHfVocabForByteFallbackBpe) {
    // No tokenizer.model, a BPE with byte fallback and a Sequence decoder: SentencePiece-style
    // tokens without padding, scores -1000.
    json vocab = {{"<unk>", 0},
                  {"<s>", 1},
                  {"</s>", 2},
                  {"<0x0A>", 3},
                  {"\xe2\x96\x81"
                   "a",
                   4}};
    write_json("tokenizer.json", {{"added_tokens",
                                   {added(0, "<unk>"), added(1, "<s>"), added(2, "</s>"),
                                    added(5, "<|im_start|>"), added(6, "<x>", false)}},
                                  {"decoder", {{"type", "Sequence"}, {"decoders", json::array()}}},
                                  {"model",
                                   {{"type", "BPE"},
                                    {"byte_fallback", true},
                                    {"vocab", vocab},
                                    {"merges", json::array()}}}});
    write_json("tokenizer_config.json", {{"bos_token", "<s>"},
                                         {"eos_token", "</s>"},
                                         {"unk_token", "<unk>"},
                                         {"additional_special_tokens", {"<|im_start|>"}}});
    const GgufMetadata keys = run("llama", 32000);
    EXPECT_EQ(value(keys, "tokenizer.ggml.model").to_string(), "llama");
    EXPECT_EQ(strings(value(keys, "tokenizer.ggml.tokens")),
              (std::vector<std::string>{"<unk>", "<s>", "</s>", "<0x0A>",
                                        "\xe2\x96\x81"
                                        "a",
                                        "<|im_start|>", "<x>"}));
    EXPECT_EQ(
        int32s(value(keys, "tokenizer.ggml.token_type")),
        (std::vector<int32_t>{CONTROL, CONTROL, CONTROL, BYTE, NORMAL, CONTROL, USER_DEFINED}));
    for (const uint32_t b : float_bits(value(keys, "tokenizer.ggml.scores")))
        EXPECT_EQ(b, bits(-1000.0f));
}

// ---- malformed input: one clear Error each ----

TEST_F(HfTokenizerTest, MalformedTokenizerJson) {
    const auto expect_json_error = [&](const std::string& text,
                                       const std::vector<std::string>& fragments) {
        write_text("tokenizer.json", text);
        expect_error("qwen2", 8, fragments);
    };
    expect_json_error("{\"model\": ", {"tokenizer.json", "offset", "not valid JSON"});
    expect_json_error("\xef\xbb\xbf{}", {"tokenizer.json", "byte-order mark"});
    expect_json_error(std::string(2000, '[') + std::string(2000, ']'),
                      {"tokenizer.json", "nested deeper"});
    expect_json_error("[1, 2]", {"tokenizer.json", "is an array, expected an object"});
    expect_json_error(R"({"model": {"type": "BPE", "vocab": {"a": "zero"}}})",
                      {"model.vocab", "\"a\" has id \"zero\""});
    expect_json_error(R"({"model": {"type": "BPE", "vocab": {"a": -1}}})",
                      {"model.vocab", "\"a\" has id -1"});
    expect_json_error(R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 0}}})",
                      {"both have id 0"});
    expect_json_error(
        R"({"model": {"type": "BPE", "vocab": {"a": 0}}, "added_tokens": [{"id": 1}]})",
        {"added_tokens[0]", "content is missing"});
    expect_json_error(R"({"model": {"type": "BPE", "vocab": {"a": 0}}, "added_tokens": {"x": 1}})",
                      {"added_tokens is an object, expected an array"});
    expect_json_error(R"({"model": {"type": "WordPiece", "vocab": {"a": 0}}})",
                      {"expected a byte-level BPE"});

    // Merges of an unknown shape, or mixed.
    json tokenizer = bpe_json(split_then_byte_level(k_qwen2_regex), 4, json::array(), {{1, 2}});
    write_json("tokenizer.json", tokenizer);
    expect_error("qwen2", 8, {"model.merges: unknown format"});
    tokenizer["model"]["merges"] = {"t0 t1", 5};
    write_json("tokenizer.json", tokenizer);
    expect_error("qwen2", 8, {"model.merges[1] is an integer, expected a string"});
    tokenizer["model"]["merges"] = json::array({json::array({"t0", "t1"}), "t2 t3"});
    write_json("tokenizer.json", tokenizer);
    expect_error("qwen2", 8, {"model.merges[1] is a string, expected a pair of strings"});

    fs::remove(path("tokenizer.json"));
    expect_error("qwen2", 8, {"tokenizer.json: missing"});
}

TEST_F(HfTokenizerTest, MalformedTokenizerConfigAndCompanions) {
    write_small_model();
    write_text("tokenizer_config.json", "[]");
    expect_error("llama", 8, {"tokenizer_config.json", "is an array, expected an object"});
    write_json("tokenizer_config.json", {{"added_tokens_decoder", {{"x1", {{"content", "a"}}}}}});
    expect_error("llama", 8, {"added_tokens_decoder: \"x1\"", "not a token id"});
    write_json("tokenizer_config.json", {{"added_tokens_decoder", {{"1", {{"special", true}}}}}});
    expect_error("llama", 8, {"added_tokens_decoder: \"1\"", "content is null, expected a string"});
    write_json("tokenizer_config.json", {{"added_tokens_decoder", {{"-2", {{"content", "a"}}}}}});
    expect_error("llama", 8, {"token id -2 is negative"});
    write_json("tokenizer_config.json", {{"added_tokens_decoder", nullptr}});
    expect_error("llama", 8, {"added_tokens_decoder: is null, expected an object"});
    write_json("tokenizer_config.json", {{"chat_template", {{{"name", 5}, {"template", "x"}}}}});
    expect_error("llama", 8, {"name is an integer, expected a string"});
    write_json("tokenizer_config.json", {{"chat_template", {{{"name", "x"}, {"template", 5}}}}});
    expect_error("llama", 8, {"chat template for tokenizer.chat_template.x is an integer"});
    fs::remove(path("tokenizer_config.json"));

    write_json("added_tokens.json", {{"<x>", "3"}});
    expect_error("llama", 8, {"added_tokens.json", "\"<x>\" has id \"3\""});
    write_json("added_tokens.json", json::array());
    expect_error("llama", 8, {"added_tokens.json", "is an array, expected an object"});
    fs::remove(path("added_tokens.json"));

    write_json("tokenizer_config.json", {{"bos_token", "<s>"}});
    write_text("chat_template.jinja", "bad \xff utf-8");
    expect_error("llama", 8, {"chat_template.jinja", "not valid UTF-8"});
    fs::remove(path("chat_template.jinja"));

    // A post-processor the converter's parsing would trip over.
    write_json("tokenizer.json",
               {{"post_processor", {{"type", "TemplateProcessing"}, {"single", "ab"}}}});
    expect_error("llama", 8, {"post_processor: single", "expected an array"});
    write_json("tokenizer.json", {{"post_processor", {{"type", "Sequence"}, {"processors", 3}}}});
    expect_error("llama", 8, {"processors", "expected an array"});
    fs::remove(path("tokenizer.json"));

    expect_error("llama", 8, {"config.json: text_config", "expected an object"},
                 {{"text_config", 3}});
}

TEST_F(HfTokenizerTest, MalformedSentencePieceModels) {
    write_text("tokenizer.model", "\xff\xff\xff\xff not a model");
    expect_error("llama", 8, {"tokenizer.model", "not a SentencePiece model"});
    write_model({{"a", 0, NORMAL}});
    expect_error("llama", 8, {"tokenizer.model", "no unknown (UNKNOWN) piece"});
    write_model({{"<unk>", 0, UNKNOWN}, {"a", 0, NORMAL}, {"a", -1, USER_DEFINED}});
    expect_error("llama", 8, {"tokenizer.model", "piece 2 \"a\" is already defined"});
    write_model({{"<unk>", 0, UNKNOWN}, {"", 0, NORMAL}});
    expect_error("llama", 8, {"piece 1 is empty"});
    write_model({{"<unk>", 0, UNKNOWN}, {"a\xff", 0, NORMAL}});
    expect_error("llama", 8, {"piece 1", "not valid UTF-8"});
    write_model({{"<unk>", 0, UNKNOWN}, {"<0x41>", 0, BYTE}});
    expect_error("llama", 8, {"byte piece 1 \"<0x41>\" although byte_fallback is false"});
    write_model({{"<unk>", 0, UNKNOWN}, {"<0x4g>", 0, BYTE}}, true);
    expect_error("llama", 8, {"byte piece 1 \"<0x4g>\" is not <0xXX>"});
    write_model({{"<unk>", 0, UNKNOWN}, {"<0x41>", 0, BYTE}}, true);
    expect_error("llama", 8, {"not all 256 byte pieces"});
    write_model({{"<unk>", 0, UNKNOWN}, {"a", NAN, NORMAL}}, false,
                sentencepiece::TrainerSpec::UNIGRAM);
    expect_error("llama", 8, {"piece 1 \"a\" has score nan"});
    write_model({{"<unk>", 0, UNKNOWN}, {"a", NAN, NORMAL}}, false,
                sentencepiece::TrainerSpec::BPE);
    EXPECT_EQ(value(run("llama", 0), "tokenizer.ggml.tokens").array_size(), 2u);  // BPE allows it
    expect_error("llama", k_max_vocab_for_test, {"vocab_size", "refused"});
}

TEST(ReadSentencePieceModel, PiecesAsTheFileHoldsThem) {
    sentencepiece::ModelProto model;
    for (const auto& [text, score, type] : std::vector<std::tuple<std::string, float, int>>{
             {"<unk>", 0.0f, UNKNOWN}, {"<|u|>", -1.0f, USER_DEFINED}, {"x", -2.5f, UNUSED}}) {
        SpPiece* p = model.add_pieces();
        p->set_piece(text);
        p->set_score(score);
        p->set_type(static_cast<SpPiece::Type>(type));
    }
    model.add_pieces()->set_piece("default-type");  // no type: NORMAL
    const std::string bytes = model.SerializeAsString();
    const std::vector<SentencePiecePiece> pieces = read_sentencepiece_model(
        {reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}, "m");
    ASSERT_EQ(pieces.size(), 4u);
    EXPECT_EQ(pieces[1].piece, "<|u|>");
    EXPECT_EQ(pieces[1].type, USER_DEFINED);
    EXPECT_EQ(pieces[2].score, -2.5f);
    EXPECT_EQ(pieces[2].type, UNUSED);
    EXPECT_EQ(pieces[3].type, NORMAL);
}

}  // namespace
}  // namespace edgeq
