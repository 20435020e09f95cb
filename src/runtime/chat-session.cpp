// Chat sessions: render, reuse the cached prefix, decode the rest, sample the reply.
#include "edgeq/runtime/chat-session.h"

#include <algorithm>
#include <chrono>

#include "edgeq/core/error.h"

namespace edgeq {
namespace {

double ms_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
        .count();
}

}  // namespace

ChatSession::ChatSession(ChatModel& model, const std::string& template_source,
                         const ChatSessionOptions& options)
    : model_(model),
      template_(template_source),
      options_(options),
      sampler_(options.sampling, model.n_vocab()) {
    reset();
}

void ChatSession::reset() {
    history_.clear();
    if (!options_.system_prompt.empty()) history_.push_back({"system", options_.system_prompt});
    // The cache is kept: the next turn reuses whatever prefix still matches.
}

std::string ChatSession::reply(const std::string& user_text,
                               const std::function<bool(int32_t)>& on_token) {
    stats_ = {};
    history_.push_back({"user", user_text});
    std::vector<int32_t> prompt;
    try {
        const std::string text =
            template_.render(history_, true, options_.bos_token, options_.eos_token);
        prompt = model_.tokenize(text);
        if (prompt.empty()) fail("chat: the rendered conversation has no tokens");
        if (static_cast<int64_t>(prompt.size()) >= model_.n_ctx()) {
            fail("chat: the conversation is {} tokens, the context holds {} (/reset starts over)",
                 prompt.size(), model_.n_ctx());
        }
    } catch (...) {
        history_.pop_back();
        throw;
    }

    // Keep the longest common prefix; at least one token is decoded to get logits.
    size_t n_common = 0;
    while (n_common < cached_.size() && n_common < prompt.size() &&
           cached_[n_common] == prompt[n_common])
        ++n_common;
    n_common = std::min(n_common, prompt.size() - 1);
    const auto t_prompt = std::chrono::steady_clock::now();
    model_.truncate(static_cast<int32_t>(n_common));
    cached_.resize(n_common);
    const float* logits = model_.decode(std::span<const int32_t>(prompt).subspan(n_common));
    cached_ = prompt;
    stats_.n_prompt = static_cast<int32_t>(prompt.size());
    stats_.n_reused = static_cast<int32_t>(n_common);
    stats_.prompt_ms = ms_since(t_prompt);

    const auto t_generation = std::chrono::steady_clock::now();
    sampler_.reset();
    std::string reply;
    while (options_.max_reply_tokens < 0 || stats_.n_generated < options_.max_reply_tokens) {
        if (static_cast<int64_t>(cached_.size()) >= model_.n_ctx()) break;
        const int32_t id = sampler_.sample(logits);
        if (model_.is_end_of_generation(id)) break;
        sampler_.accept(id);
        reply += model_.piece(id);
        ++stats_.n_generated;
        if (!on_token(id)) break;
        logits = model_.decode(std::span<const int32_t>(&id, 1));
        cached_.push_back(id);
    }
    stats_.generation_ms = ms_since(t_generation);
    history_.push_back({"assistant", reply});
    return reply;
}

std::string default_chat_template(const std::string& architecture) {
    if (architecture.rfind("gemma", 0) == 0) {
        return "{{ bos_token }}{% if messages and messages[0]['role'] == 'system' %}"
               "{% set prefix = messages[0]['content'] + '\\n\\n' %}"
               "{% set turns = messages[1:] %}"
               "{% else %}{% set prefix = '' %}{% set turns = messages %}{% endif %}"
               "{% for message in turns %}"
               "{% if message['role'] == 'assistant' %}{% set role = 'model' %}"
               "{% else %}{% set role = message['role'] %}{% endif %}"
               "{{ '<start_of_turn>' + role + '\\n' + (prefix if loop.first else '') + "
               "message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}"
               "{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}";
    }
    return "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
           "message['content'] + '<|im_end|>\\n' }}{% endfor %}"
           "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
}

}  // namespace edgeq
