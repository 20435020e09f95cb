// Speed and memory of the engine on one model, measured the way llama-bench measures them, so
// that `edgeq bench` and `llama-bench` numbers of the same file can be set side by side.
//
//   BenchOptions options{.n_prompt = 512, .n_gen = 128, .n_threads = 4, .repetitions = 5};
//   BenchResult r = run_bench("tinyllama-Q4_K_M.gguf", options);
//   fmt::print("{:.1f} ± {:.1f} t/s\n", *r.tg_tps, *r.tg_tps_sd);
//
// What one run_bench() does:
//   load       LoadedModel::load (mmap and checks), timed: load_ms. The first decode of one
//              token after it is timed too (first_decode_ms): with a mapped file, the weights
//              are read from the page cache there, not in load().
//   warm-up    the prompt test once (when n_prompt > 0), results discarded.
//   pp         per repetition: from an empty KV cache, one decode() of n_prompt random token
//              ids (steps of n_batch); tokens/s = n_prompt / time.
//   tg         per repetition: from an empty KV cache, n_gen decode() calls of one token each;
//              tokens/s = n_gen / time. As llama-bench does, the ids are random, drawn before
//              the clock starts (no sampling is timed); nothing is generated from the logits.
// Token ids come from a generator with a fixed seed, uniform over the vocabulary, so runs are
// repeatable and need no tokenizer. The KV cache is F16 and holds n_prompt + n_gen positions
// (llama-bench's context size), at most the model's training context.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace edgeq {

class GgufFile;

struct BenchOptions {
    int32_t n_prompt = 512;  // tokens of the prompt test; 0 skips it
    int32_t n_gen = 128;     // tokens of the generation test; 0 skips it
    int32_t n_threads = 0;   // 0: one per hardware thread
    int32_t n_batch = 512;   // prompt tokens per forward step
    int32_t repetitions = 5;
    uint64_t seed = 1234;  // of the random token ids
};

// What bench reports of a GGUF file without running it.
struct ModelFileFacts {
    std::string type;           // general.file_type as llama.cpp names it ("Q4_K_M"), or "unknown"
    uint64_t file_bytes = 0;    // the file's size
    uint64_t tensor_bytes = 0;  // bytes of every tensor's data
    int64_t n_params = 0;       // values of every tensor
    double bpw = 0.0;           // bits per weight: 8 * tensor_bytes / n_params, over every tensor
};
ModelFileFacts model_file_facts(const GgufFile& file);

struct BenchResult {
    std::string model;  // the path as given
    std::string type;
    std::string isa;  // the kernels' instruction set (isa_name(active_isa()))
    int32_t threads = 0;
    int32_t n_prompt = 0;
    int32_t n_gen = 0;
    int32_t n_batch = 0;
    int32_t repetitions = 0;
    int64_t n_params = 0;
    double size_mb = 0.0;  // file size in MiB (2^20 bytes)
    double bpw = 0.0;
    double load_ms = 0.0;
    double first_decode_ms = 0.0;
    // The process's resident-memory high-water mark in MiB after the run (VmHWM): with several
    // runs in one process it is the largest of them up to this one.
    double peak_rss_mb = 0.0;
    std::vector<double> pp_samples_tps;  // one per repetition; empty when n_prompt is 0
    std::vector<double> tg_samples_tps;
    // Mean and sample standard deviation (n - 1; 0 for one repetition) of the samples; empty
    // when the test was skipped.
    std::optional<double> pp_tps, pp_tps_sd, tg_tps, tg_tps_sd;
};

// Throws an Error naming the first option out of range.
void check_bench_options(const BenchOptions& options);

// Loads `path` and measures it as described at the top of this file. Throws an Error for bad
// options, a file that cannot be loaded, or tests longer than the model's context.
BenchResult run_bench(const std::string& path, const BenchOptions& options);

struct MeanSd {
    double mean = 0.0;
    double sd = 0.0;  // sample standard deviation; 0 for fewer than two values
};
MeanSd mean_sd(std::span<const double> values);

// "1,2,4" -> {1, 2, 4}; throws an Error naming the item that is not a positive integer.
std::vector<int32_t> parse_thread_list(const std::string& text);

// One object per result with the keys documented in bench/README.md; a skipped test's
// *_tps values are null.
nlohmann::ordered_json bench_json(std::span<const BenchResult> results);
// A Markdown table: a header, then one row per result.
std::string bench_markdown(std::span<const BenchResult> results);
// The plain-text table's header and its row for one result (columns of fixed width).
std::string bench_text_header(const BenchOptions& options);
std::string bench_text_row(const BenchResult& result);

}  // namespace edgeq
