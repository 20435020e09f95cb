// edgeq imatrix MODEL --text F -o imatrix.gguf [--chunks N] [-c 512] [-t N]: the importance
// matrix of a model over a calibration text, in llama.cpp's GGUF imatrix format
// (edgeq/eval/imatrix-collector.h says how it is computed).
#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "commands.h"
#include "edgeq/core/error.h"
#include "edgeq/core/progress.h"
#include "edgeq/eval/imatrix-collector.h"
#include "edgeq/formats/imatrix.h"
#include "edgeq/tokenizer/tokenizer.h"

namespace edgeq::cli {
namespace {

struct ImatrixArgs {
    std::string model;
    std::string text;
    std::string output = "imatrix.gguf";
    ImatrixOptions options;
    bool parse_special = false;
    std::string cache_type = "f16";
};

std::string read_text(const std::string& path) {
    std::error_code error;
    if (!std::filesystem::is_regular_file(path, error))
        fail("{}: no such file (expected a calibration text)", path);
    std::ifstream in(path, std::ios::binary);
    if (!in) fail("{}: cannot be read", path);
    std::ostringstream text;
    text << in.rdbuf();
    std::string s = text.str();
    // As llama.cpp's -f reads a prompt file: one trailing newline dropped.
    if (!s.empty() && s.back() == '\n') s.pop_back();
    return s;
}

void run(ImatrixArgs args) {
    if (args.cache_type != "f16" && args.cache_type != "f32")
        fail("imatrix: --cache-type must be f16 or f32, not '{}'", args.cache_type);
    args.options.kv_f32 = args.cache_type == "f32";
    std::error_code error;
    for (const std::string& input : {args.model, args.text}) {
        if (std::filesystem::equivalent(input, args.output, error))
            fail("imatrix: the output {} is an input; choose another path", args.output);
    }
    const auto start = std::chrono::steady_clock::now();
    const std::string text = read_text(args.text);
    const auto model = LoadedModel::load(args.model);
    const std::vector<int32_t> tokens = model->tokenizer().encode(text, true, args.parse_special);
    const int32_t n_chunks = imatrix_chunks(tokens.size(), args.options);
    fmt::print(stderr, "imatrix: {} tokens, {} chunks of {}\n", tokens.size(), n_chunks,
               args.options.n_ctx);
    Progress progress("imatrix", static_cast<uint64_t>(n_chunks));
    const ImatrixStatsMap stats = compute_imatrix(*model, tokens, args.options,
                                                  [&](int32_t, int32_t) { progress.advance(1); });
    progress.finish();
    ImatrixInfo info;
    info.datasets.push_back(args.text);
    info.chunk_size = static_cast<uint32_t>(args.options.n_ctx);
    info.chunk_count = imatrix_chunk_count(stats, args.options.n_ctx);
    save_imatrix(args.output, stats, info);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    fmt::print(stderr, "imatrix: wrote {} entries ({} chunks of {} tokens) to {} in {:.1f} s\n",
               stats.size(), info.chunk_count, info.chunk_size, args.output, seconds);
}

}  // namespace

void add_imatrix(CLI::App& app) {
    auto args = std::make_shared<ImatrixArgs>();
    CLI::App* cmd = app.add_subcommand(
        "imatrix", "Compute an importance matrix over a text (llama.cpp's imatrix GGUF format)");
    cmd->add_option("model", args->model, "GGUF model file")->required();
    cmd->add_option("-f,--text", args->text, "Calibration text file")->required();
    cmd->add_option("-o,--output", args->output, "Output file (written atomically)")
        ->capture_default_str();
    cmd->add_option("--chunks", args->options.n_chunks, "Chunks to process; < 0: all")
        ->capture_default_str();
    cmd->add_option("-c,--ctx-size", args->options.n_ctx, "Tokens per chunk")
        ->capture_default_str();
    cmd->add_option("-t,--threads", args->options.n_threads, "Threads (default: all)");
    cmd->add_flag("--process-output", args->options.process_output,
                  "Also collect output.weight (as llama-imatrix --process-output)");
    cmd->add_option("--cache-type", args->cache_type, "KV cache type (f16 or f32)")
        ->capture_default_str();
    cmd->add_flag("--parse-special", args->parse_special,
                  "Text of control tokens becomes those tokens");
    cmd->callback([args] { run(*args); });
}

}  // namespace edgeq::cli
