// ChatSession over a fake model whose tokens are bytes and whose KV cache is a vector: after
// every turn the cache holds exactly the tokens of the rendered conversation (computed here
// with the template directly) plus the decoded reply; a new turn decodes only what follows
// the common prefix; reset, stop and context overflow keep the history consistent.
#include "edgeq/runtime/chat-session.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "edgeq/core/error.h"

namespace edgeq {
namespace {

constexpr int32_t k_eog = 256;

// Bytes are tokens 0..255, 256 ends generation. The logits favour the next byte of a
// scripted reply, then the end.
class FakeModel : public ChatModel {
  public:
    std::vector<int32_t> tokenize(const std::string& text) override {
        return std::vector<int32_t>(text.begin(), text.end());
    }
    std::string piece(int32_t id) override { return std::string(1, static_cast<char>(id)); }
    bool is_end_of_generation(int32_t id) override { return id == k_eog; }
    const float* decode(std::span<const int32_t> tokens) override {
        EXPECT_FALSE(tokens.empty());
        if (static_cast<int32_t>(kv.size() + tokens.size()) > n_ctx_)
            fail("fake: context overflow");
        kv.insert(kv.end(), tokens.begin(), tokens.end());
        decoded.push_back(std::vector<int32_t>(tokens.begin(), tokens.end()));
        // After the prompt, the reply's i-th byte is favoured where i counts the tokens
        // decoded since the last multi-token decode.
        reply_pos = tokens.size() > 1 ? 0 : reply_pos + 1;
        logits.assign(257, 0.0f);
        const size_t i = reply_pos;
        logits[i < script.size() ? static_cast<unsigned char>(script[i]) : k_eog] = 10.0f;
        return logits.data();
    }
    void truncate(int32_t n_past) override {
        ASSERT_LE(static_cast<size_t>(n_past), kv.size());
        kv.resize(static_cast<size_t>(n_past));
    }
    int32_t n_ctx() override { return n_ctx_; }
    int32_t n_vocab() override { return 257; }

    std::string script = "Hi!";
    std::vector<int32_t> kv;
    std::vector<std::vector<int32_t>> decoded;
    std::vector<float> logits;
    size_t reply_pos = 0;
    int32_t n_ctx_ = 4096;
};

const std::string k_template =
    "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}</>{% endfor %}"
    "{% if add_generation_prompt %}<assistant>{% endif %}";

std::vector<int32_t> bytes(const std::string& s) {
    return {s.begin(), s.end()};
}

ChatSessionOptions greedy(const std::string& system) {
    ChatSessionOptions options;
    options.system_prompt = system;
    options.sampling.temperature = 0.0f;
    options.bos_token.push_back('^');
    return options;
}

TEST(ChatSession, DecodesOnlyWhatTheCacheLacks) {
    FakeModel model;
    ChatSession chat(model, k_template, greedy("Be kind."));
    std::vector<int32_t> streamed;
    const std::string first = chat.reply("Hello", [&](int32_t id) {
        streamed.push_back(id);
        return true;
    });
    EXPECT_EQ(first, "Hi!");
    EXPECT_EQ(streamed, bytes("Hi!"));
    const std::string prompt1 = "^<system>Be kind.</><user>Hello</><assistant>";
    EXPECT_EQ(model.decoded.front(), bytes(prompt1));
    EXPECT_EQ(model.kv, bytes(std::string(prompt1).append("Hi!")));
    EXPECT_EQ(chat.last_turn().n_prompt, static_cast<int32_t>(prompt1.size()));
    EXPECT_EQ(chat.last_turn().n_reused, 0);
    EXPECT_EQ(chat.last_turn().n_generated, 3);

    // The second rendering shares "...<assistant>Hi!" with the cache; only the rest is new.
    model.script = "Bye";
    model.decoded.clear();
    EXPECT_EQ(chat.reply("More", [](int32_t) { return true; }), "Bye");
    const std::string prompt2 = std::string(prompt1).append("Hi!</><user>More</><assistant>");
    EXPECT_EQ(chat.last_turn().n_reused, static_cast<int32_t>(prompt1.size() + 3));
    EXPECT_EQ(model.decoded.front(), bytes("</><user>More</><assistant>"));
    EXPECT_EQ(model.kv, bytes(std::string(prompt2).append("Bye")));
    ASSERT_EQ(chat.history().size(), 5u);
    EXPECT_EQ(chat.history()[3].content, "More");
    EXPECT_EQ(chat.history()[4].role, "assistant");
}

TEST(ChatSession, ResetForgetsTheConversationButTheSystemPrompt) {
    FakeModel model;
    ChatSession chat(model, k_template, greedy("S"));
    chat.reply("one", [](int32_t) { return true; });
    chat.reset();
    ASSERT_EQ(chat.history().size(), 1u);
    model.decoded.clear();
    chat.reply("two", [](int32_t) { return true; });
    const std::string prompt = "^<system>S</><user>two</><assistant>";
    EXPECT_EQ(chat.last_turn().n_reused,
              static_cast<int32_t>(std::string("^<system>S</><user>").size()));
    EXPECT_EQ(model.kv, bytes(std::string(prompt).append("Hi!")));
}

TEST(ChatSession, AStoppedReplyKeepsWhatWasShown) {
    FakeModel model;
    model.script = "abcdef";
    ChatSession chat(model, k_template, greedy(""));
    int n = 0;
    EXPECT_EQ(chat.reply("x", [&](int32_t) { return ++n < 2; }), "ab");
    EXPECT_EQ(chat.history().back().content, "ab");
    // "b" was shown but not decoded: the cache ends at "a".
    EXPECT_EQ(model.kv, bytes("^<user>x</><assistant>a"));
    ChatSessionOptions limited = greedy("");
    limited.max_reply_tokens = 4;
    ChatSession chat4(model, k_template, limited);
    EXPECT_EQ(chat4.reply("x", [](int32_t) { return true; }), "abcd");
}

TEST(ChatSession, AConversationLongerThanTheContextIsAnErrorAndNotRemembered) {
    FakeModel model;
    model.n_ctx_ = 60;
    ChatSession chat(model, k_template, greedy(""));
    EXPECT_EQ(chat.reply("hi", [](int32_t) { return true; }), "Hi!");
    EXPECT_THROW(chat.reply(std::string(50, 'x'), [](int32_t) { return true; }), Error);
    EXPECT_EQ(chat.history().size(), 2u);
    // The reply stops when the context is full.
    model.script = std::string(100, 'z');
    const std::string reply = chat.reply("hey", [](int32_t) { return true; });
    EXPECT_EQ(model.kv.size(), 60u);
    EXPECT_EQ(reply.size(),
              60u - std::string("^<user>hi</><assistant>Hi!</><user>hey</><assistant>").size());
}

TEST(ChatSession, DefaultTemplatesRender) {
    const std::vector<ChatMessage> messages = {
        {"system", "S"}, {"user", " U "}, {"assistant", "A"}};
    EXPECT_EQ(
        render_chat_template(default_chat_template("gemma3"), messages, true, "<bos>", ""),
        "<bos><start_of_turn>user\nS\n\nU<end_of_turn>\n<start_of_turn>model\nA<end_of_turn>\n"
        "<start_of_turn>model\n");
    EXPECT_EQ(render_chat_template(default_chat_template("llama"), messages, false, "", ""),
              "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\n U <|im_end|>\n"
              "<|im_start|>assistant\nA<|im_end|>\n");
}

}  // namespace
}  // namespace edgeq
