// edgeq run MODEL -p PROMPT [-n N]: decodes the prompt in one batch and streams the sampled
// continuation to stdout; speeds go to stderr.
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <memory>

#include "commands.h"
#include "edgeq/core/error.h"
#include "edgeq/runtime/engine.h"
#include "edgeq/runtime/sampler.h"
#include "edgeq/runtime/stop-strings.h"
#include "edgeq/tokenizer/tokenizer.h"

namespace edgeq::cli {

// --temp, --top-k, --top-p, --min-p, the penalties and --seed, named as llama.cpp names them;
// edgeq chat uses them too.
void add_sampling_flags(CLI::App& cmd, SamplingParams& params);
void add_sampling_flags(CLI::App& cmd, SamplingParams& p) {
    cmd.add_option("--temp", p.temperature, "Temperature; <= 0 is greedy")->capture_default_str();
    cmd.add_option("--top-k", p.top_k, "Keep the K most likely tokens; <= 0: all")
        ->capture_default_str();
    cmd.add_option("--top-p", p.top_p, "Keep the smallest set with this probability; 1: off")
        ->capture_default_str();
    cmd.add_option("--min-p", p.min_p, "Drop tokens below this fraction of the top one; 0: off")
        ->capture_default_str();
    cmd.add_option("--repeat-penalty", p.repeat_penalty, "Penalty for recent tokens; 1: off")
        ->capture_default_str();
    cmd.add_option("--repeat-last-n", p.repeat_last_n, "Recent tokens the penalties look at")
        ->capture_default_str();
    cmd.add_option("--frequency-penalty", p.frequency_penalty, "Subtracted per occurrence")
        ->capture_default_str();
    cmd.add_option("--presence-penalty", p.presence_penalty, "Subtracted once if present")
        ->capture_default_str();
    cmd.add_option("--seed", p.seed, "Random seed")->capture_default_str();
}

namespace {

struct RunArgs {
    std::string model;
    std::string prompt;
    int n_predict = 128;
    SessionOptions session;
    SamplingParams sampling;
    bool no_bos = false;
    std::vector<std::string> stops;
    std::string cache_type = "f16";
};

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

void run(const RunArgs& args) {
    const auto model = LoadedModel::load(args.model);
    const Tokenizer& tok = model->tokenizer();
    std::vector<int32_t> prompt = tok.encode(args.prompt, !args.no_bos, true);
    if (prompt.empty()) fail("the prompt has no tokens");
    SessionOptions options = args.session;
    options.kv_q8_0 = args.cache_type == "q8_0";
    options.kv_f32 = args.cache_type == "f32";
    if (options.n_ctx <= 0) options.n_ctx = model->n_ctx_train();
    options.n_ctx = std::min(options.n_ctx, model->n_ctx_train());
    Session session(*model, options);
    Sampler sampler(args.sampling, model->n_vocab());
    for (int32_t id : prompt) sampler.accept(id);

    StreamDecoder out(tok);
    StopStrings stops(args.stops);
    std::fputs(args.prompt.c_str(), stdout);
    std::fflush(stdout);
    const auto t_prompt = std::chrono::steady_clock::now();
    const float* logits = session.decode(prompt);
    const double prompt_s = seconds_since(t_prompt);

    const auto t_gen = std::chrono::steady_clock::now();
    int n_generated = 0;
    while ((args.n_predict < 0 || n_generated < args.n_predict) &&
           session.n_past() < session.n_ctx()) {
        const int32_t id = sampler.sample(logits);
        if (tok.is_end_of_generation(id)) break;
        sampler.accept(id);
        ++n_generated;
        std::fputs(stops.push(out.push(id)).c_str(), stdout);
        std::fflush(stdout);
        if (stops.stopped()) break;
        if (args.n_predict >= 0 && n_generated >= args.n_predict) break;
        logits = session.decode(std::span<const int32_t>(&id, 1));
    }
    if (!stops.stopped()) {
        const std::string rest = stops.push(out.flush());
        std::fputs((rest + stops.flush()).c_str(), stdout);
    }
    std::fputs("\n", stdout);
    std::fflush(stdout);
    const double gen_s = seconds_since(t_gen);
    std::fprintf(stderr, "prompt: %zu tokens, %.1f tok/s; generation: %d tokens, %.1f tok/s\n",
                 prompt.size(), prompt_s > 0 ? static_cast<double>(prompt.size()) / prompt_s : 0.0,
                 n_generated, gen_s > 0 ? n_generated / gen_s : 0.0);
}

}  // namespace

void add_run(CLI::App& app) {
    auto args = std::make_shared<RunArgs>();
    args->session.n_ctx = 4096;
    CLI::App* cmd = app.add_subcommand("run", "Generate text from a prompt with a GGUF model");
    cmd->add_option("model", args->model, "GGUF model file")->required();
    cmd->add_option("-p,--prompt", args->prompt, "Prompt text")->required();
    cmd->add_option("-n,--n-predict", args->n_predict, "Tokens to generate; < 0: until the end")
        ->capture_default_str();
    cmd->add_option("-c,--ctx-size", args->session.n_ctx, "Context length (at most the model's)")
        ->capture_default_str();
    cmd->add_option("-t,--threads", args->session.n_threads, "Threads (default: all)");
    cmd->add_flag("--no-bos", args->no_bos, "Do not add the BOS token");
    cmd->add_option("--stop", args->stops,
                    "Stop when the continuation contains this text (repeatable)");
    cmd->add_option("--cache-type", args->cache_type, "KV cache type (f16, q8_0 or f32)")
        ->check(CLI::IsMember({"f16", "q8_0", "f32"}))
        ->capture_default_str();
    add_sampling_flags(*cmd, args->sampling);
    cmd->callback([args] { run(*args); });
}

}  // namespace edgeq::cli
