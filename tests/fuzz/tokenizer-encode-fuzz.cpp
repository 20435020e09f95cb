// libFuzzer target: arbitrary bytes through every tokenizer kind and pre-tokenizer family.
// The first byte picks a vocabulary and the flags, the rest is the text. Encoding must give
// ids inside the vocabulary, and for byte-level BPE, decoding them must give the text back
// (after its ill-formed UTF-8 became U+FFFD); the stream decoder must only emit valid UTF-8.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "edgeq/core/error.h"
#include "edgeq/tokenizer/tokenizer.h"

namespace {

using edgeq::GgufMetadata;
using edgeq::GgufType;
using edgeq::GgufValue;

// Small vocabularies: bytes, a few merges, special tokens; one per model and pre-tokenizer.
std::vector<edgeq::Tokenizer> make_tokenizers() {
    std::vector<std::string> bytes;
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
        const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        const uint32_t cp = printable ? b : next++;
        std::string s;
        if (cp < 0x80) {
            s += static_cast<char>(cp);
        } else {
            s += static_cast<char>(0xC0 | (cp >> 6));
            s += static_cast<char>(0x80 | (cp & 0x3F));
        }
        bytes.push_back(s);
    }
    std::vector<edgeq::Tokenizer> out;
    const std::string G = bytes[' '];
    for (const char* pre : {"gpt-2", "llama-bpe", "qwen2", "qwen35", "tekken", "gpt-4o",
                            "deepseek-llm", "deepseek-coder", "falcon", "starcoder", "default",
                            "bloom", "viking", "minicpm5", "seed-coder"}) {
        std::vector<std::string> tokens = bytes;
        std::vector<int32_t> types(tokens.size(), 1);
        for (const std::string& t :
             std::vector<std::string>{G + "t", "he", G + "the", "<|im_start|>", "<tool>"}) {
            tokens.push_back(t);
            types.push_back(t[0] == '<' ? (t[1] == '|' ? 3 : 4) : 1);
        }
        GgufMetadata m{
            {"tokenizer.ggml.model", GgufValue::make_string("gpt2")},
            {"tokenizer.ggml.pre", GgufValue::make_string(pre)},
            {"tokenizer.ggml.tokens", GgufValue::make_string_array(tokens)},
            {"tokenizer.ggml.token_type",
             GgufValue::make_numeric_array<int32_t>(GgufType::int32, types)},
            {"tokenizer.ggml.merges", GgufValue::make_string_array({G + " t", "h e", G + "t he"})},
        };
        out.push_back(edgeq::Tokenizer::from_metadata(m));
    }
    for (const char* model : {"llama", "bert"}) {
        std::vector<std::string> tokens{"<unk>", "<s>", "</s>"};
        std::vector<int32_t> types{2, 3, 3};
        std::vector<float> scores{0, 0, 0};
        for (int b = 0; b < 256; ++b) {
            char buf[8];
            std::snprintf(buf, sizeof(buf), "<0x%02X>", b);
            tokens.push_back(buf);
            types.push_back(6);
            scores.push_back(0);
        }
        for (const char* t : {"\xE2\x96\x81", "a", "b",
                              "\xE2\x96\x81"
                              "a",
                              "ab", "[CLS]"}) {
            tokens.push_back(t);
            types.push_back(1);
            scores.push_back(-static_cast<float>(tokens.size()));
        }
        GgufMetadata m{
            {"tokenizer.ggml.model", GgufValue::make_string(model)},
            {"tokenizer.ggml.tokens", GgufValue::make_string_array(tokens)},
            {"tokenizer.ggml.token_type",
             GgufValue::make_numeric_array<int32_t>(GgufType::int32, types)},
            {"tokenizer.ggml.scores",
             GgufValue::make_numeric_array<float>(GgufType::float32, scores)},
            {"tokenizer.ggml.bos_token_id", GgufValue::make_uint32(1)},
            {"tokenizer.ggml.eos_token_id", GgufValue::make_uint32(2)},
            {"tokenizer.ggml.unknown_token_id", GgufValue::make_uint32(0)},
        };
        out.push_back(edgeq::Tokenizer::from_metadata(m));
    }
    return out;
}

bool valid_utf8(std::string_view s) {
    size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<uint8_t>(s[i]);
        size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (n == 0 || i + n > s.size()) return false;
        for (size_t k = 1; k < n; ++k)
            if ((static_cast<uint8_t>(s[i + k]) & 0xC0) != 0x80) return false;
        i += n;
    }
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const std::vector<edgeq::Tokenizer> tokenizers = make_tokenizers();
    if (size == 0) return 0;
    const edgeq::Tokenizer& tok = tokenizers[data[0] % tokenizers.size()];
    const bool add_special = data[0] & 0x40;
    const bool parse_special = data[0] & 0x80;
    const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
    const std::vector<int32_t> ids = tok.encode(text, add_special, parse_special);
    edgeq::StreamDecoder decoder(tok, true);
    for (const int32_t id : ids) {
        if (id < 0 || id >= tok.n_vocab()) __builtin_trap();
        if (!valid_utf8(decoder.push(id))) __builtin_trap();
    }
    if (!valid_utf8(decoder.flush())) __builtin_trap();
    return 0;
}
