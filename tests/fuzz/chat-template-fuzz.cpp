// Fuzzes the chat-template parser and interpreter: the input is a template, rendered over a
// fixed conversation (with tools) under small limits, so that no input can hang or exhaust
// memory. Any input either renders or gives an edgeq::Error. Seeds are in
// tests/fuzz/corpus/chat-template/ (the published templates of the unit-test fixtures).
#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "edgeq/core/error.h"
#include "edgeq/tokenizer/chat-template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const nlohmann::ordered_json context = nlohmann::ordered_json::parse(R"({
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": " Hi \u00e9 "},
            {"role": "assistant", "content": "<think>x</think>Hello", "tool_calls": [
                {"function": {"name": "f", "arguments": {"a": 1.5, "b": [true, null]}}}]},
            {"role": "tool", "content": "{\"r\": 2}"},
            {"role": "user", "content": "Bye"}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
        "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>"})");
    edgeq::ChatTemplateLimits limits;
    limits.max_output_bytes = 1 << 16;
    limits.max_steps = 200000;
    limits.max_depth = 64;
    try {
        edgeq::ChatTemplate tmpl(std::string_view(reinterpret_cast<const char*>(data), size),
                                 limits);
        tmpl.render(context);
    } catch (const edgeq::Error&) {
    }
    return 0;
}
