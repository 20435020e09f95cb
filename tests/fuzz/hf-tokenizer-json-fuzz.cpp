// Fuzzes the JSON side of the Hugging Face tokenizer import: tokenizer.json,
// tokenizer_config.json, config.json and a fourth file (chat_template.jinja, merges.txt or
// added_tokens.json), cut from one input at NUL bytes, for every architecture, with or
// without a small fixed tokenizer.model. Any input either gives metadata or an edgeq::Error.
// Seeds are in tests/fuzz/corpus/hf-tokenizer-json/ (generate.py writes them and describes
// the layout).
#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "edgeq/core/error.h"
#include "edgeq/formats/hf-tokenizer.h"

namespace {

// A SentencePiece model: <unk> <s> </s> "▁a" "b" (hand-encoded ModelProto).
const char k_model[] =
    "\x0a\x0e\x0a\x05\x3c\x75\x6e\x6b\x3e\x15\x00\x00\x00\x00\x18\x02"
    "\x0a\x0c\x0a\x03\x3c\x73\x3e\x15\x00\x00\x00\x00\x18\x03"
    "\x0a\x0d\x0a\x04\x3c\x2f\x73\x3e\x15\x00\x00\x00\x00\x18\x03"
    "\x0a\x0d\x0a\x04\xe2\x96\x81\x61\x15\x00\x00\x80\xbf\x18\x01"
    "\x0a\x0a\x0a\x01\x62\x15\x00\x00\x00\xc0\x18\x01";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    // Byte 0: the architecture (bits 0-2) and which optional files there are.
    static const char* const k_archs[] = {"llama", "qwen2", "qwen3", "gemma3", "phi3", "gemma2"};
    const uint8_t selector = data[0];
    const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
    std::vector<std::string> parts;
    size_t at = 0;
    while (parts.size() < 4) {
        const size_t nul = text.find('\0', at);
        parts.emplace_back(
            text.substr(at, nul == std::string_view::npos ? std::string_view::npos : nul - at));
        if (nul == std::string_view::npos) break;
        at = nul + 1;
    }
    parts.resize(4);

    edgeq::HfTokenizerFiles files;
    files.tokenizer_json = parts[0];
    if ((selector & 0x08) == 0) files.tokenizer_config_json = parts[1];
    if (selector & 0x10) files.chat_template_jinja = parts[3];
    if (selector & 0x20) files.merges_txt = parts[3];
    if (selector & 0x40) files.added_tokens_json = parts[3];
    if (selector & 0x80) files.tokenizer_model = std::string(k_model, sizeof k_model - 1);
    nlohmann::json config = nullptr;
    if (!parts[2].empty()) {
        config = nlohmann::json::parse(parts[2], nullptr, false);
        if (config.is_discarded()) config = nullptr;
    }
    int64_t vocab_size = 0;  // config.json's, bounded to keep runs fast
    if (config.is_object() && config.contains("vocab_size") &&
        config["vocab_size"].is_number_integer()) {
        vocab_size = config["vocab_size"].get<int64_t>() % 5000;
    }
    try {
        const edgeq::HfTokenizerInput input{"fuzz", config, k_archs[(selector & 0x07) % 6],
                                            vocab_size};
        const edgeq::GgufMetadata keys = edgeq::hf_tokenizer_metadata(input, files);
        for (const auto& [key, value] : keys) {
            if (key.rfind("tokenizer.", 0) != 0) std::abort();
            (void)value.summary(4);
        }
    } catch (const edgeq::Error&) {
    }
    return 0;
}
