// The tokenizers on small vocabularies written here (byte fallback, special tokens, the
// stream decoder, metadata errors) and round trips on llama.cpp's vocabularies in
// ../shared/data/vocab (skipped when absent; tests/integration/test_tokenize.py checks their
// exact ids). UTF-8 validity is judged by libutf8proc, not by the code under test.
#include "edgeq/tokenizer/tokenizer.h"

#include <gtest/gtest.h>
#include <utf8proc.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "edgeq/core/error.h"
#include "edgeq/formats/gguf.h"
#include "test-random.h"

namespace edgeq {
namespace {

namespace fs = std::filesystem;
constexpr int32_t NORMAL = 1, UNKNOWN = 2, CONTROL = 3, USER_DEFINED = 4, BYTE = 6;

struct Token {
    std::string text;
    int32_t type = NORMAL;
    float score = 0.0f;
};

GgufMetadata metadata(const std::string& model, const std::vector<Token>& tokens,
                      GgufMetadata extra = {}) {
    std::vector<std::string> texts;
    std::vector<int32_t> types;
    std::vector<float> scores;
    for (const Token& t : tokens) {
        texts.push_back(t.text);
        types.push_back(t.type);
        scores.push_back(t.score);
    }
    GgufMetadata m{
        {"tokenizer.ggml.model", GgufValue::make_string(model)},
        {"tokenizer.ggml.tokens", GgufValue::make_string_array(texts)},
        {"tokenizer.ggml.token_type",
         GgufValue::make_numeric_array<int32_t>(GgufType::int32, types)},
        {"tokenizer.ggml.scores", GgufValue::make_numeric_array<float>(GgufType::float32, scores)},
    };
    for (auto& kv : extra) m.push_back(std::move(kv));
    return m;
}

// A SentencePiece vocabulary: <unk> <s> </s>, the 256 byte tokens, then `pieces` (scored by
// position: earlier is better).
std::vector<Token> spm_tokens(const std::vector<std::string>& pieces) {
    std::vector<Token> t{{"<unk>", UNKNOWN}, {"<s>", CONTROL}, {"</s>", CONTROL}};
    char buf[8];
    for (int b = 0; b < 256; ++b) {
        std::snprintf(buf, sizeof(buf), "<0x%02X>", b);
        t.push_back({buf, BYTE});
    }
    float score = -1.0f;
    for (const std::string& p : pieces) t.push_back({p, NORMAL, score--});
    return t;
}

Tokenizer spm(const std::vector<std::string>& pieces, GgufMetadata extra = {}) {
    extra.push_back({"tokenizer.ggml.bos_token_id", GgufValue::make_uint32(1)});
    extra.push_back({"tokenizer.ggml.eos_token_id", GgufValue::make_uint32(2)});
    extra.push_back({"tokenizer.ggml.unknown_token_id", GgufValue::make_uint32(0)});
    return Tokenizer::from_metadata(metadata("llama", spm_tokens(pieces), std::move(extra)));
}

int32_t byte_id(uint8_t b) {
    return 3 + b;
}

std::string decode_all(const Tokenizer& tok, const std::vector<int32_t>& ids) {
    std::string s;
    for (int32_t id : ids) s += tok.piece(id);
    return s;
}

bool valid_utf8(const std::string& s) {
    const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(s.data());
    utf8proc_ssize_t left = static_cast<utf8proc_ssize_t>(s.size());
    while (left > 0) {
        utf8proc_int32_t cp;
        const utf8proc_ssize_t n = utf8proc_iterate(p, left, &cp);
        if (n <= 0) return false;
        p += n;
        left -= n;
    }
    return true;
}

// Random well-formed text: ASCII, spaces and newlines, Latin-1, CJK, emoji, combining marks.
std::string random_text(testing::Random& rng, int max_chars) {
    static const std::vector<std::pair<uint32_t, uint32_t>> ranges = {
        {0x20, 0x7E},     {0x20, 0x20},       {0x0A, 0x0A},    {0x09, 0x09},
        {0xA0, 0xFF},     {0x300, 0x36F},     {0x400, 0x4FF},  {0x4E00, 0x4FFF},
        {0xAC00, 0xACFF}, {0x1F600, 0x1F64F}, {0x2000, 0x206F}};
    std::string s;
    const int n = rng.uniform_int(0, max_chars);
    for (int i = 0; i < n; ++i) {
        const auto& [lo, hi] =
            ranges[static_cast<size_t>(rng.uniform_int(0, static_cast<int>(ranges.size()) - 1))];
        const auto cp = static_cast<utf8proc_int32_t>(
            lo + static_cast<uint32_t>(rng.uniform_int(0, static_cast<int>(hi - lo))));
        utf8proc_uint8_t buf[4];
        s.append(reinterpret_cast<char*>(buf), static_cast<size_t>(utf8proc_encode_char(cp, buf)));
    }
    return s;
}

TEST(Tokenizer, SpmMergesByScoreAndFallsBackToBytes) {
    // "▁ab" beats "▁a" + "b" only through the pair merges: ▁a (score -1), ab (-2), ▁ab (-3).
    const Tokenizer tok =
        spm({"\xE2\x96\x81"
             "a",
             "ab",
             "\xE2\x96\x81"
             "ab",
             "c"});
    const int32_t first = 3 + 256;
    EXPECT_EQ(tok.encode("ab", false, false), (std::vector<int32_t>{first + 2}));
    EXPECT_EQ(tok.encode("ab", true, false), (std::vector<int32_t>{1, first + 2}));
    // "é" is not in the vocabulary: its two UTF-8 bytes as byte tokens; decoding restores it.
    const std::vector<int32_t> ids = tok.encode("c\xC3\xA9", false, false);
    EXPECT_EQ(ids, (std::vector<int32_t>{byte_id(0xE2), byte_id(0x96), byte_id(0x81), first + 3,
                                         byte_id(0xC3), byte_id(0xA9)}));
    // "▁" itself is no piece here: it went out as bytes and comes back as them.
    EXPECT_EQ(decode_all(tok, ids),
              "\xE2\x96\x81"
              "c\xC3\xA9");
    EXPECT_EQ(tok.piece(byte_id(0x41)), "A");
    EXPECT_EQ(tok.piece(first), " a");
}

TEST(Tokenizer, SpmSpacePrefixCanBeTurnedOff) {
    const Tokenizer tok = spm({"a",
                               "\xE2\x96\x81"
                               "a"},
                              {{"tokenizer.ggml.add_space_prefix", GgufValue::make_bool(false)}});
    EXPECT_EQ(tok.encode("a a", false, false), (std::vector<int32_t>{259, 260}));
}

TEST(Tokenizer, SpecialTokens) {
    // Control "<|x|>" and "<|x|>y" (longer, matched first), user-defined "<u>".
    std::vector<std::string> pieces{"\xE2\x96\x81"};
    for (char c = 'a'; c <= 'z'; ++c) pieces.push_back(std::string(1, c));
    for (const char* c : {"<", ">", "|"}) pieces.push_back(c);
    std::vector<Token> tokens = spm_tokens(pieces);
    const auto id_x = static_cast<int32_t>(tokens.size());
    tokens.push_back({"<|x|>", CONTROL});
    tokens.push_back({"<|x|>y", CONTROL});
    tokens.push_back({"<u>", USER_DEFINED});
    const Tokenizer tok = Tokenizer::from_metadata(metadata("llama", tokens));
    const std::string text = "a<|x|>b<|x|>y<u>";
    const std::vector<int32_t> parsed = tok.encode(text, false, true);
    const std::vector<int32_t> expected{
        259,      260,           // ▁a
        id_x,     259,     261,  // <|x|> ▁b (text after a special token gets the space prefix)
        id_x + 1, id_x + 2};     // the longer control token, the user-defined one
    EXPECT_EQ(parsed, expected);
    // Without parse_special the control tokens are text; the user-defined one still counts.
    const std::vector<int32_t> plain = tok.encode(text, false, false);
    EXPECT_EQ(std::count(plain.begin(), plain.end(), id_x), 0);
    EXPECT_EQ(std::count(plain.begin(), plain.end(), id_x + 1), 0);
    EXPECT_EQ(plain.back(), id_x + 2);
    EXPECT_EQ(decode_all(tok, std::vector<int32_t>(plain.begin(), plain.end() - 1)),
              " a<|x|>b<|x|>y");
    EXPECT_TRUE(tok.is_control(id_x));
    EXPECT_FALSE(tok.is_control(id_x + 2));
    EXPECT_EQ(tok.piece(id_x), "");
    EXPECT_EQ(tok.piece(id_x, true), "<|x|>");
    EXPECT_EQ(tok.piece(id_x + 2), "<u>");
    EXPECT_TRUE(tok.is_end_of_generation(2));  // </s>
    EXPECT_FALSE(tok.is_end_of_generation(id_x));
    EXPECT_THROW(tok.piece(static_cast<int32_t>(tokens.size())), Error);
    EXPECT_THROW(tok.token_text(-1), Error);
}

TEST(StreamDecoder, HoldsSplitCharactersAndReplacesInvalidBytes) {
    const Tokenizer tok = spm({});
    StreamDecoder d(tok);
    EXPECT_EQ(d.push(byte_id(0xE2)), "");
    EXPECT_EQ(d.push(byte_id(0x82)), "");
    EXPECT_EQ(d.push(byte_id(0xAC)), "\xE2\x82\xAC");  // €
    EXPECT_EQ(d.push(byte_id(0xFF)), "\xEF\xBF\xBD");  // never valid: replaced at once
    EXPECT_EQ(d.push(byte_id(0x80)), "\xEF\xBF\xBD");  // a stray continuation byte
    EXPECT_EQ(d.push(byte_id(0xF0)), "");
    EXPECT_EQ(d.push(byte_id(0x9F)), "");
    EXPECT_EQ(d.push(byte_id(0x41)),
              "\xEF\xBF\xBD"
              "A");  // cut short by 'A'
    EXPECT_EQ(d.push(byte_id(0xED)), "");
    EXPECT_EQ(d.push(byte_id(0xA0)), "\xEF\xBF\xBD\xEF\xBF\xBD");  // a surrogate: ill-formed
    EXPECT_EQ(d.push(byte_id(0xC3)), "");
    EXPECT_EQ(d.flush(), "\xEF\xBF\xBD");
    EXPECT_EQ(d.flush(), "");
}

TEST(StreamDecoder, RandomTextByteByByte) {
    testing::Random rng;
    SCOPED_TRACE(rng.trace());
    const Tokenizer tok = spm({});
    for (int round = 0; round < 200; ++round) {
        const std::string text = random_text(rng, 40);
        StreamDecoder d(tok);
        std::string out;
        for (const char c : text) {
            const std::string part = d.push(byte_id(static_cast<uint8_t>(c)));
            ASSERT_TRUE(valid_utf8(part));
            out += part;
        }
        out += d.flush();
        ASSERT_EQ(out, text);
        // Random bytes: every piece stays valid UTF-8 whatever comes.
        StreamDecoder noisy(tok);
        for (int i = 0; i < 30; ++i)
            ASSERT_TRUE(
                valid_utf8(noisy.push(byte_id(static_cast<uint8_t>(rng.uniform_int(0, 255))))));
        ASSERT_TRUE(valid_utf8(noisy.flush()));
    }
}

TEST(Tokenizer, MetadataErrors) {
    const std::vector<Token> tokens = spm_tokens({"a"});
    EXPECT_THROW(Tokenizer::from_metadata({}), Error);
    auto expect_error = [](const GgufMetadata& m, const std::string& needle) {
        try {
            (void)Tokenizer::from_metadata(m);
            ADD_FAILURE() << "no error, expected one naming " << needle;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
        }
    };
    expect_error(metadata("t5", tokens), "tokenizer.ggml.model");
    expect_error(metadata("gpt2", tokens), "tokenizer.ggml.merges");
    expect_error(metadata("gpt2", tokens,
                          {{"tokenizer.ggml.pre", GgufValue::make_string("nonesuch")},
                           {"tokenizer.ggml.merges", GgufValue::make_string_array({})}}),
                 "tokenizer.ggml.pre");
    expect_error(
        metadata("gpt2", tokens, {{"tokenizer.ggml.merges", GgufValue::make_string_array({"ab"})}}),
        "tokenizer.ggml.merges[0]");
    GgufMetadata short_scores = metadata("llama", tokens);
    short_scores[3].second =
        GgufValue::make_numeric_array<float>(GgufType::float32, std::vector<float>{1.0f});
    expect_error(short_scores, "tokenizer.ggml.scores");
    GgufMetadata wrong_type = metadata("llama", tokens);
    wrong_type[1].second = GgufValue::make_string("x");
    expect_error(wrong_type, "tokenizer.ggml.tokens");
}

// A byte-level BPE vocabulary: GPT-2's 256 byte characters and a few merges.
TEST(Tokenizer, ByteLevelBpe) {
    std::vector<Token> tokens;
    std::vector<std::string> chars;
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
        const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        const uint32_t cp = printable ? b : next++;
        utf8proc_uint8_t buf[4];
        chars.emplace_back(reinterpret_cast<char*>(buf), static_cast<size_t>(utf8proc_encode_char(
                                                             static_cast<int32_t>(cp), buf)));
        tokens.push_back({chars.back()});
    }
    const std::string G = chars[' '];  // "Ġ"
    for (const std::string& t :
         std::vector<std::string>{G + "h", "he", G + "he", "ll", G + "hell", "<|endoftext|>"})
        tokens.push_back({t});
    tokens.back().type = CONTROL;
    const GgufMetadata m =
        metadata("gpt2", tokens,
                 {{"tokenizer.ggml.pre", GgufValue::make_string("gpt-2")},
                  {"tokenizer.ggml.merges",
                   GgufValue::make_string_array({G + " h", "h e", G + "h e", "l l", G + "he ll"})},
                  {"tokenizer.ggml.eos_token_id", GgufValue::make_uint32(261)}});
    const Tokenizer tok = Tokenizer::from_metadata(m);
    // " hello": Ġ h -> Ġh, then Ġh e -> Ġhe (rank 2) before h e could apply, l l, Ġhe ll.
    EXPECT_EQ(tok.encode(" hello", true, false), (std::vector<int32_t>{260, 'o'}));
    EXPECT_EQ(tok.eos(), 261);
    EXPECT_TRUE(tok.is_end_of_generation(261));
    EXPECT_EQ(tok.encode("<|endoftext|>", false, true), (std::vector<int32_t>{261}));
    EXPECT_EQ(tok.encode("<|endoftext|>", false, false).size(), 13u);  // no merges: characters

    testing::Random rng;
    SCOPED_TRACE(rng.trace());
    for (int round = 0; round < 100; ++round) {
        const std::string text = random_text(rng, 60);
        ASSERT_EQ(decode_all(tok, tok.encode(text, false, false)), text);
    }
}

fs::path vocab_dir() {
    if (const char* env = std::getenv("EDGEQ_SHARED_DATA")) return fs::path(env) / "vocab";
    return fs::path(__FILE__).parent_path() / "../../../../shared/data/vocab";
}

Tokenizer load(const std::string& name) {
    const fs::path path = vocab_dir() / ("ggml-vocab-" + name + ".gguf");
    if (!fs::exists(path)) throw std::runtime_error("missing " + path.string());
    return Tokenizer::from_metadata(GgufFile::open(path.string()).metadata());
}

class SharedVocab : public ::testing::TestWithParam<std::string> {};

// Exact round trips: byte-level BPE loses nothing, SentencePiece adds its leading space.
TEST_P(SharedVocab, RoundTrip) {
    if (!fs::exists(vocab_dir())) GTEST_SKIP() << vocab_dir() << " not found";
    const Tokenizer tok = load(GetParam());
    testing::Random rng;
    SCOPED_TRACE(rng.trace());
    const bool spm = GetParam() == "llama-spm" || GetParam() == "phi-3";
    for (int round = 0; round < 100; ++round) {
        const std::string text = random_text(rng, 80);
        const std::vector<int32_t> ids = tok.encode(text, false, false);
        ASSERT_EQ(decode_all(tok, ids), (spm && !text.empty() ? " " : "") + text) << text;
        StreamDecoder d(tok);
        std::string streamed;
        for (int32_t id : ids) streamed += d.push(id);
        streamed += d.flush();
        ASSERT_EQ(streamed, (spm && !text.empty() ? " " : "") + text);
    }
}

INSTANTIATE_TEST_SUITE_P(Tokenizer, SharedVocab,
                         ::testing::Values("llama-spm", "phi-3", "gpt-2", "falcon", "starcoder",
                                           "deepseek-coder"));

// WordPiece normalizes (lower case, no accents, punctuation apart), so its round trip is to
// that normal form: lower-case words decode as " word".
TEST(Tokenizer, WordPieceRoundTrip) {
    if (!fs::exists(vocab_dir())) GTEST_SKIP() << vocab_dir() << " not found";
    const Tokenizer tok = load("bert-bge");
    EXPECT_EQ(tok.encode("Héllo, World", true, false), tok.encode("hello , world", true, false));
    const std::vector<int32_t> ids = tok.encode("hello", true, false);
    EXPECT_EQ(ids.front(), 101);
    EXPECT_EQ(ids.back(), 102);
    testing::Random rng;
    SCOPED_TRACE(rng.trace());
    for (int round = 0; round < 100; ++round) {
        std::string text;
        for (int w = rng.uniform_int(1, 8); w > 0; --w) {
            text += ' ';
            for (int c = rng.uniform_int(1, 9); c > 0; --c)
                text += static_cast<char>('a' + rng.uniform_int(0, 25));
        }
        const std::vector<int32_t> got = tok.encode(text, false, false);
        if (std::find(got.begin(), got.end(), 100) != got.end()) continue;  // [UNK]
        ASSERT_EQ(decode_all(tok, got), text);
    }
}

}  // namespace
}  // namespace edgeq
