// edgeq bench MODEL... [-p 512] [-n 128] [-t 1,2,4] [-r 5] [--json|--md]: prompt processing and
// generation speed, load time and memory of each model at each thread count, measured as
// llama-bench measures them (edgeq/runtime/bench.h).
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "edgeq/core/error.h"
#include "edgeq/core/thread-pool.h"
#include "edgeq/runtime/bench.h"

namespace edgeq::cli {
namespace {

struct BenchArgs {
    std::vector<std::string> models;
    int32_t n_prompt = 512;
    int32_t n_gen = 128;
    std::vector<std::string> threads;
    int32_t repetitions = 5;
    int32_t n_batch = 512;
    uint64_t seed = 1234;
    bool json = false;
    bool markdown = false;
};

void run(const BenchArgs& args) {
    if (args.json && args.markdown) fail("bench: --json and --md cannot be combined");
    for (const std::string& path : args.models) {
        std::error_code error;
        if (!std::filesystem::is_regular_file(path, error))
            fail("{}: no such file (expected a GGUF model)", path);
    }
    std::vector<int32_t> threads;
    for (const std::string& list : args.threads) {
        for (int32_t n : parse_thread_list(list)) threads.push_back(n);
    }
    if (threads.empty()) threads.push_back(ThreadPool::hardware_threads());

    BenchOptions options;
    options.n_prompt = args.n_prompt;
    options.n_gen = args.n_gen;
    options.n_batch = args.n_batch;
    options.repetitions = args.repetitions;
    options.seed = args.seed;
    check_bench_options(options);
    const bool table = !args.json && !args.markdown;
    std::vector<BenchResult> results;
    for (const std::string& path : args.models) {
        for (int32_t n : threads) {
            options.n_threads = n;
            results.push_back(run_bench(path, options));
            if (table) {
                // The header waits for the first row, so that a run that fails prints nothing.
                if (results.size() == 1) fmt::print("{}", bench_text_header(options));
                fmt::print("{}", bench_text_row(results.back()));
                std::fflush(stdout);
            }
        }
    }
    if (args.json) fmt::print("{}\n", bench_json(results).dump(2));
    if (args.markdown) fmt::print("{}", bench_markdown(results));
}

}  // namespace

void add_bench(CLI::App& app) {
    auto args = std::make_shared<BenchArgs>();
    CLI::App* cmd = app.add_subcommand(
        "bench", "Measure prompt and generation speed, load time and memory (as llama-bench does)");
    cmd->add_option("models", args->models, "GGUF models")->required();
    cmd->add_option("-p,--n-prompt", args->n_prompt,
                    "Prompt tokens (0: no prompt test; default 512)");
    cmd->add_option("-n,--n-gen", args->n_gen,
                    "Generated tokens (0: no generation test; default 128)");
    cmd->add_option("-t,--threads", args->threads,
                    "Thread counts, comma-separated or repeated (default: all hardware threads)");
    cmd->add_option("-r,--repetitions", args->repetitions, "Repetitions of each test (default 5)");
    cmd->add_option("-b,--batch-size", args->n_batch,
                    "Prompt tokens per forward step (default 512)");
    cmd->add_option("--seed", args->seed, "Seed of the random token ids (default 1234)");
    cmd->add_flag("--json", args->json, "Print a JSON list, one object per model and thread count");
    cmd->add_flag("--md", args->markdown, "Print a Markdown table");
    cmd->callback([args] { run(*args); });
}

}  // namespace edgeq::cli
