// A chat conversation over a model: the history, rendered with the model's chat template each
// turn; only the tokens the KV cache lacks are decoded (the cache keeps the longest common
// prefix of what it holds and the new rendering); the reply is sampled until an
// end-of-generation token, the token limit, a full context or the caller's stop.
//
//   ChatSession chat(model, template_source, {.system_prompt = "Be brief."});
//   std::string reply = chat.reply("Hello", [&](int32_t id) { show(id); return !interrupted; });
//   chat.reset();   // forget the conversation (the system prompt stays)
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "edgeq/runtime/sampler.h"
#include "edgeq/tokenizer/chat-template.h"

namespace edgeq {

// What a chat needs of a model and its KV cache (the engine in edgeq chat; a fake in tests).
class ChatModel {
  public:
    virtual ~ChatModel() = default;
    // Token ids of rendered template text: special-token text becomes those tokens, no BOS
    // is added (the template writes bos_token itself).
    virtual std::vector<int32_t> tokenize(const std::string& text) = 0;
    virtual std::string piece(int32_t id) = 0;  // the bytes of a token ("" for control)
    virtual bool is_end_of_generation(int32_t id) = 0;
    // Appends `tokens` to the KV cache; the logits of the last one (n_vocab floats).
    virtual const float* decode(std::span<const int32_t> tokens) = 0;
    virtual void truncate(int32_t n_past) = 0;  // keeps the first n_past cached tokens
    virtual int32_t n_ctx() = 0;
    virtual int32_t n_vocab() = 0;
};

struct ChatSessionOptions {
    std::string system_prompt;      // empty: none
    int32_t max_reply_tokens = -1;  // < 0: until end of generation or a full context
    SamplingParams sampling;
    std::string bos_token;  // the text the template's bos_token / eos_token stand for
    std::string eos_token;
};

class ChatSession {
  public:
    ChatSession(ChatModel& model, const std::string& template_source,
                const ChatSessionOptions& options);

    // Adds the user's message and generates the reply; on_token sees each generated token
    // (not the end-of-generation one) and returns false to stop after it. The reply, even a
    // stopped one, joins the history. A conversation too long for the context is an Error
    // and leaves the history as it was.
    std::string reply(const std::string& user_text, const std::function<bool(int32_t)>& on_token);
    void reset();  // forgets the conversation but the system prompt

    const std::vector<ChatMessage>& history() const { return history_; }
    const std::vector<int32_t>& cached_tokens() const { return cached_; }

    struct TurnStats {
        int32_t n_prompt = 0;     // tokens of the rendered conversation
        int32_t n_reused = 0;     // of those, already in the KV cache
        int32_t n_generated = 0;  // reply tokens
        double prompt_ms = 0.0;
        double generation_ms = 0.0;
    };
    const TurnStats& last_turn() const { return stats_; }

  private:
    ChatModel& model_;
    ChatTemplate template_;
    ChatSessionOptions options_;
    Sampler sampler_;
    std::vector<ChatMessage> history_;
    std::vector<int32_t> cached_;  // what the KV cache holds
    TurnStats stats_;
};

// A template for models whose file carries none: Gemma's turns for gemma* architectures,
// ChatML otherwise (what llama.cpp falls back to).
std::string default_chat_template(const std::string& architecture);

}  // namespace edgeq
