// Chat templates: the Jinja programs that Hugging Face models ship (tokenizer_config.json's
// chat_template, GGUF's tokenizer.chat_template) turning a conversation into the prompt text.
//
//   std::string prompt = render_chat_template(source, {{"system", "Be brief."},
//                                                      {"user", "Hi"}},
//                                             /*add_generation_prompt=*/true, "<bos>", "<eos>");
//
// edgeq implements the subset of Jinja these templates use and renders exactly what Python's
// jinja2 renders in transformers' environment (trim_blocks, lstrip_blocks, loop controls,
// raise_exception, tojson as json.dumps): {{ }}, {# #}, whitespace control, if / elif / else,
// for (with loop.*, else, an if filter, tuple unpacking, break / continue), set (including
// namespace() attributes and {% set x %}...{% endset %}), macros without call blocks, the
// usual operators, filters, tests and string / dict methods. Anything else, and templates
// that raise, give an Error naming the line; resource limits bound every render.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace edgeq {

struct ChatMessage {
    std::string role;  // "system", "user", "assistant", "tool"
    std::string content;
};

// Bounds on one render, so that no template (or fuzz input) can exhaust memory or time.
struct ChatTemplateLimits {
    size_t max_output_bytes = size_t{64} << 20;  // also bounds every string built
    int64_t max_steps = 50'000'000;              // statements and expressions evaluated
    int32_t max_depth = 256;                     // nesting of expressions, blocks and calls
};

class ChatTemplate {
  public:
    // Parses `source`; a syntax error or an unsupported construct is an Error with its line.
    explicit ChatTemplate(std::string_view source, const ChatTemplateLimits& limits = {});
    ChatTemplate(ChatTemplate&&) noexcept;
    ChatTemplate& operator=(ChatTemplate&&) noexcept;
    ~ChatTemplate();

    // Renders with `context`'s members (a JSON object, order kept) as the template's
    // variables: messages, add_generation_prompt, bos_token, tools, enable_thinking...
    std::string render(const nlohmann::ordered_json& context) const;
    std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                       const std::string& bos_token, const std::string& eos_token) const;

    struct Program;

  private:
    std::unique_ptr<Program> program_;
    ChatTemplateLimits limits_;
};

// Parses and renders in one call.
std::string render_chat_template(const std::string& source,
                                 const std::vector<ChatMessage>& messages,
                                 bool add_generation_prompt, const std::string& bos_token,
                                 const std::string& eos_token);

}  // namespace edgeq
