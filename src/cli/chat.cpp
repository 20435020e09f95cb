// edgeq chat MODEL: an interactive conversation on stdin / stdout with the model's chat
// template. /reset forgets the conversation; Ctrl-C stops a reply, and at the prompt (or
// end of input) leaves.
#include <fmt/format.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>

#include "commands.h"
#include "edgeq/core/error.h"
#include "edgeq/runtime/chat-session.h"
#include "edgeq/runtime/engine.h"
#include "edgeq/tokenizer/tokenizer.h"

namespace edgeq::cli {

// The sampling flags, shared with edgeq run (defined in run.cpp).
void add_sampling_flags(CLI::App& cmd, SamplingParams& params);

namespace {

std::atomic<bool> g_interrupted{false};
extern "C" void on_sigint(int) {
    g_interrupted.store(true);
}

// The engine as a ChatModel.
class EngineChat : public ChatModel {
  public:
    EngineChat(const LoadedModel& model, Session& session) : model_(model), session_(session) {}
    std::vector<int32_t> tokenize(const std::string& text) override {
        return model_.tokenizer().encode(text, false, true);
    }
    std::string piece(int32_t id) override { return model_.tokenizer().piece(id); }
    bool is_end_of_generation(int32_t id) override {
        return model_.tokenizer().is_end_of_generation(id);
    }
    const float* decode(std::span<const int32_t> tokens) override {
        return session_.decode(tokens);
    }
    void truncate(int32_t n_past) override { session_.truncate(n_past); }
    int32_t n_ctx() override { return session_.n_ctx(); }
    int32_t n_vocab() override { return model_.n_vocab(); }

  private:
    const LoadedModel& model_;
    Session& session_;
};

struct ChatArgs {
    std::string model;
    std::string system;
    SessionOptions session;
    SamplingParams sampling;
};

std::string metadata_string(const GgufFile& file, const char* key) {
    const GgufValue* v = file.find(key);
    return v != nullptr && v->type() == GgufType::string ? v->to_string() : std::string();
}

void chat(const ChatArgs& args) {
    const auto model = LoadedModel::load(args.model);
    const Tokenizer& tok = model->tokenizer();
    std::string source = metadata_string(model->file(), "tokenizer.chat_template");
    if (source.empty()) {
        const std::string arch = metadata_string(model->file(), "general.architecture");
        source = default_chat_template(arch);
        std::fprintf(stderr, "edgeq: %s has no chat template; using a default for '%s'\n",
                     args.model.c_str(), arch.c_str());
    }
    SessionOptions options = args.session;
    options.n_ctx = std::min(options.n_ctx, model->n_ctx_train());
    Session session(*model, options);
    EngineChat engine(*model, session);
    ChatSessionOptions chat_options;
    chat_options.system_prompt = args.system;
    chat_options.sampling = args.sampling;
    if (tok.bos() >= 0) chat_options.bos_token = tok.token_text(tok.bos());
    if (tok.eos() >= 0) chat_options.eos_token = tok.token_text(tok.eos());
    ChatSession conversation(engine, source, chat_options);

    struct sigaction action {};
    action.sa_handler = on_sigint;  // no SA_RESTART: Ctrl-C at the prompt ends the read
    sigemptyset(&action.sa_mask);
    struct sigaction previous {};
    sigaction(SIGINT, &action, &previous);
    std::fprintf(stderr,
                 "edgeq chat: /reset forgets the conversation, Ctrl-C stops a reply, "
                 "Ctrl-C or Ctrl-D at the prompt leaves\n");
    std::string line;
    while (true) {
        std::fputs("> ", stdout);
        std::fflush(stdout);
        g_interrupted.store(false);
        if (!std::getline(std::cin, line) || g_interrupted.load()) break;
        if (line == "/reset") {
            conversation.reset();
            continue;
        }
        if (line.empty()) continue;
        StreamDecoder out(tok);
        try {
            conversation.reply(line, [&](int32_t id) {
                std::fputs(out.push(id).c_str(), stdout);
                std::fflush(stdout);
                return !g_interrupted.load();
            });
        } catch (const Error& e) {
            std::fprintf(stderr, "edgeq: error: %s\n", e.what());
            continue;
        }
        std::fputs(out.flush().c_str(), stdout);
        std::fputs("\n", stdout);
        const auto& s = conversation.last_turn();
        std::fprintf(stderr, "[%d prompt tokens (%d reused), %d generated, %.1f tok/s]\n",
                     s.n_prompt, s.n_reused, s.n_generated,
                     s.generation_ms > 0 ? s.n_generated * 1000.0 / s.generation_ms : 0.0);
    }
    std::fputs("\n", stdout);
    sigaction(SIGINT, &previous, nullptr);
}

}  // namespace

void add_chat(CLI::App& app) {
    auto args = std::make_shared<ChatArgs>();
    args->session.n_ctx = 4096;
    CLI::App* cmd = app.add_subcommand("chat", "Chat with a GGUF model on the terminal");
    cmd->add_option("model", args->model, "GGUF model file")->required();
    cmd->add_option("-c,--ctx-size", args->session.n_ctx, "Context length (at most the model's)")
        ->capture_default_str();
    cmd->add_option("-t,--threads", args->session.n_threads, "Threads (default: all)");
    cmd->add_option("--system", args->system, "System prompt");
    add_sampling_flags(*cmd, args->sampling);
    cmd->callback([args] { chat(*args); });
}

}  // namespace edgeq::cli
