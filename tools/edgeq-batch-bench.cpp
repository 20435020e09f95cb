// edgeq-batch-bench: aggregate generation speed of N sequences decoded together by a
// BatchSession (one forward pass per step, one token per sequence), against one Session.
// Each repetition resets every sequence, runs the N prompts in one step, then n_gen steps.
//
//   edgeq-batch-bench MODEL.gguf                          # N = 1, 2, 4, 8; -p 16 -n 32 -t 2
//   edgeq-batch-bench MODEL.gguf --parallel 1,4 -n 64 -t 4 -r 5
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "edgeq/core/error.h"
#include "edgeq/runtime/batch-session.h"
#include "edgeq/runtime/engine.h"

namespace {

using namespace edgeq;
using Clock = std::chrono::steady_clock;

// CPU seconds of this process, all threads: steadier than wall time on a loaded machine.
double cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

struct Args {
    std::string model;
    std::vector<int> parallel = {1, 2, 4, 8};
    int n_prompt = 16;
    int n_gen = 32;
    int threads = 2;
    int reps = 3;
};

struct Timing {
    double wall_s = 0, cpu_s = 0;
};

// The best of the repetitions (the least disturbed by other work on the machine).
Timing best(const std::vector<Timing>& runs) {
    Timing t = runs.front();
    for (const Timing& r : runs) {
        t.wall_s = std::min(t.wall_s, r.wall_s);
        t.cpu_s = std::min(t.cpu_s, r.cpu_s);
    }
    return t;
}

void print_row(const char* what, int n_seq, const Args& args, const Timing& t) {
    const double tokens = double(n_seq) * args.n_gen;
    std::printf("%-8s %4d %9.2f %12.1f %12.1f %13.1f\n", what, n_seq, t.wall_s * 1e3 / args.n_gen,
                tokens / t.wall_s, args.n_gen / t.wall_s, tokens / t.cpu_s);
}

void run(const Args& args) {
    const auto model = LoadedModel::load(args.model);
    std::mt19937 rng(1234);
    std::uniform_int_distribution<int32_t> token(0, model->n_vocab() - 1);
    SessionOptions options;
    options.n_ctx = args.n_prompt + args.n_gen;
    options.n_threads = args.threads;
    std::printf("%s, %d threads, prompt %d, %d steps, best of %d\n", args.model.c_str(),
                args.threads, args.n_prompt, args.n_gen, args.reps);
    std::printf("%-8s %4s %9s %12s %12s %13s\n", "engine", "seqs", "ms/step", "tok/s total",
                "tok/s each", "tok/cpu-s");
    {
        Session session(*model, options);
        std::vector<Timing> runs;
        for (int rep = 0; rep <= args.reps; ++rep) {  // the first is a warm-up
            std::vector<int32_t> prompt(size_t(args.n_prompt));
            for (int32_t& id : prompt) id = token(rng);
            session.reset();
            session.decode(prompt);
            const auto start = Clock::now();
            const double cpu0 = cpu_seconds();
            for (int i = 0; i < args.n_gen; ++i) {
                const int32_t id = token(rng);
                session.decode({&id, 1});
            }
            if (rep > 0) runs.push_back({seconds_since(start), cpu_seconds() - cpu0});
        }
        print_row("session", 1, args, best(runs));
    }
    for (const int n_seq : args.parallel) {
        if (n_seq < 1) fail("--parallel: {} sequences; expected at least 1", n_seq);
        SessionOptions batch_options = options;
        batch_options.n_batch = std::max(512, n_seq * args.n_prompt);
        BatchSession batch(*model, batch_options, n_seq);
        std::vector<BatchItem> prompts;
        std::vector<BatchItem> step(static_cast<size_t>(n_seq));
        std::vector<Timing> runs;
        for (int rep = 0; rep <= args.reps; ++rep) {
            prompts.clear();
            for (int32_t s = 0; s < n_seq; ++s) {
                batch.reset(s);
                for (int i = 0; i < args.n_prompt; ++i)
                    prompts.push_back({s, token(rng), i == args.n_prompt - 1});
            }
            if (!prompts.empty()) batch.decode(prompts);
            const auto start = Clock::now();
            const double cpu0 = cpu_seconds();
            for (int i = 0; i < args.n_gen; ++i) {
                for (int32_t s = 0; s < n_seq; ++s) step[size_t(s)] = {s, token(rng), true};
                batch.decode(step);
            }
            if (rep > 0) runs.push_back({seconds_since(start), cpu_seconds() - cpu0});
        }
        print_row("batch", n_seq, args, best(runs));
    }
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Aggregate generation speed of sequences decoded together (BatchSession)"};
    Args args;
    app.add_option("model", args.model, "GGUF model")->required();
    app.add_option("--parallel", args.parallel, "sequences per batch")->delimiter(',');
    app.add_option("-p,--prompt", args.n_prompt, "prompt tokens per sequence");
    app.add_option("-n,--gen", args.n_gen, "generation steps");
    app.add_option("-t,--threads", args.threads, "threads");
    app.add_option("-r,--reps", args.reps, "repetitions (best is printed)");
    CLI11_PARSE(app, argc, argv);
    try {
        if (args.n_prompt < 0 || args.n_gen < 1 || args.reps < 1)
            fail("expected -p >= 0, -n >= 1 and -r >= 1");
        run(args);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "edgeq-batch-bench: %s\n", e.what());
        return 1;
    }
    return 0;
}
