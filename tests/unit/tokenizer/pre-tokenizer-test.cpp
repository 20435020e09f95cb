// The pre-tokenizer scanners against Hugging Face tokenizers' regex splitting (Oniguruma) of
// the same patterns: data/pretokenizer-splits.json, made by make_pretokenizer_splits.py.
// Word boundaries are code point offsets.
#include "tokenizer/pre-tokenizer.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tokenizer/unicode.h"

namespace edgeq {
namespace {

std::vector<std::pair<size_t, size_t>> split(const std::string& pre, const std::string& text) {
    const PreTokenizer* p = find_pre_tokenizer(pre);
    EXPECT_NE(p, nullptr) << pre;
    if (p == nullptr) return {};
    return pre_tokenize(*p, CodepointText(text));
}

TEST(PreTokenizer, MatchesOnigurumaSplits) {
    const auto path =
        std::filesystem::path(__FILE__).parent_path() / "data" / "pretokenizer-splits.json";
    std::ifstream in(path);
    ASSERT_TRUE(in) << path;
    const nlohmann::json cases = nlohmann::json::parse(in);
    ASSERT_GT(cases.size(), 100u);
    int n_failed = 0;
    for (const auto& c : cases) {
        const std::string pre = c["pre"];
        const std::string text = c["text"];
        std::vector<std::pair<size_t, size_t>> expected;
        for (const auto& w : c["words"]) expected.emplace_back(w[0], w[1]);
        const auto got = split(pre, text);
        if (got != expected && ++n_failed <= 10) {
            std::string g, e;
            for (auto [b, x] : got) g += fmt::format("[{},{}) ", b, x);
            for (auto [b, x] : expected) e += fmt::format("[{},{}) ", b, x);
            ADD_FAILURE() << pre << " \"" << text << "\"\n  expected " << e << "\n  got      " << g;
        }
    }
    EXPECT_EQ(n_failed, 0);
}

std::vector<std::string> words(const std::string& pre, const std::string& text) {
    const CodepointText t(text);
    std::vector<std::string> out;
    for (const auto& [b, e] : split(pre, text)) {
        std::string w;
        for (size_t i = b; i < e; ++i) unicode::append_utf8(w, t.cps[i]);
        out.push_back(w);
    }
    return out;
}

TEST(PreTokenizer, KnownSplits) {
    using V = std::vector<std::string>;
    EXPECT_EQ(words("gpt-2", "Hello  world's 1234!!"),
              (V{"Hello", " ", " world", "'s", " 1234", "!!"}));
    EXPECT_EQ(words("llama-bpe", "1234567 IT'S\n\n  x"),
              (V{"123", "456", "7", " IT", "'S", "\n\n", " ", " x"}));
    EXPECT_EQ(words("qwen2", "a123"), (V{"a", "1", "2", "3"}));
    EXPECT_EQ(words("tekken", "HelloWorld ABCdef"), (V{"Hello", "World", " ABCdef"}));
    EXPECT_EQ(words("starcoder", "x=12"), (V{"x", "=", "1", "2"}));
    EXPECT_EQ(words("gpt-2", ""), V{});
    EXPECT_EQ(find_pre_tokenizer("nonesuch"), nullptr);
    EXPECT_NE(known_pre_tokenizers().find("llama-bpe"), std::string::npos);
}

TEST(Unicode, DecodeIsLenientLikeLlamaCpp) {
    // Stray continuation, cut-short lead and 0xFF each become one U+FFFD; decoding resumes.
    EXPECT_EQ(unicode::decode("a\x80"
                              "b\xC3"
                              "c\xFF\xE2\x82\xAC"),
              (std::vector<uint32_t>{'a', 0xFFFD, 'b', 0xFFFD, 'c', 0xFFFD, 0x20AC}));
    EXPECT_TRUE(unicode::flags(0x3000) & unicode::k_whitespace);
    EXPECT_TRUE(unicode::flags(0x85) & unicode::k_whitespace);
    EXPECT_FALSE(unicode::flags(0x200B) & unicode::k_whitespace);  // ZERO WIDTH SPACE is Cf
    EXPECT_TRUE(unicode::flags(0x2167) & unicode::k_number);       // Ⅷ (Nl)
    EXPECT_EQ(unicode::decomposed_base(0xE9), uint32_t{'e'});
    EXPECT_EQ(unicode::to_lower(0xC4), 0xE4u);
}

}  // namespace
}  // namespace edgeq
