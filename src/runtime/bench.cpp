#include "edgeq/runtime/bench.h"

#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>

#include "edgeq/core/cpu.h"
#include "edgeq/core/error.h"
#include "edgeq/core/thread-pool.h"
#include "edgeq/formats/gguf.h"
#include "edgeq/quant/mix.h"
#include "edgeq/runtime/engine.h"

namespace edgeq {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// The high-water mark of this process's resident memory: /proc/self/status's VmHWM, which
// belongs to the current program (ru_maxrss also carries the parent's mark across fork and
// exec, so a bench started by a big process would report the parent's size). The kernel can
// lower VmHWM when it drops mapped pages, so the largest value seen is kept.
double peak_rss_mib() {
    static double largest = 0.0;
    double now = -1.0;
    if (std::FILE* f = std::fopen("/proc/self/status", "r")) {
        char line[256];
        long long kib = -1;
        while (std::fgets(line, sizeof line, f) != nullptr) {
            if (std::sscanf(line, "VmHWM: %lld kB", &kib) == 1) break;
        }
        std::fclose(f);
        if (kib >= 0) now = static_cast<double>(kib) / 1024.0;
    }
    if (now < 0) {
        rusage usage{};
        if (getrusage(RUSAGE_SELF, &usage) == 0)
            now = static_cast<double>(usage.ru_maxrss) / 1024.0;  // Linux reports KiB
    }
    largest = std::max(largest, now);
    return largest;
}

std::vector<int32_t> random_ids(std::mt19937_64& rng, int32_t n_vocab, int32_t count) {
    std::uniform_int_distribution<int32_t> pick(0, n_vocab - 1);
    std::vector<int32_t> ids(static_cast<size_t>(count));
    for (int32_t& id : ids) id = pick(rng);
    return ids;
}

}  // namespace

void check_bench_options(const BenchOptions& o) {
    if (o.n_prompt < 0) fail("bench: prompt length must be 0 or more, got {}", o.n_prompt);
    if (o.n_gen < 0) fail("bench: generation length must be 0 or more, got {}", o.n_gen);
    if (o.n_threads < 0) fail("bench: threads must be positive, got {}", o.n_threads);
    if (o.n_batch < 1) fail("bench: batch size must be positive, got {}", o.n_batch);
    if (o.repetitions < 1) fail("bench: repetitions must be positive, got {}", o.repetitions);
}

namespace {

std::string tps_text(const std::optional<double>& mean, const std::optional<double>& sd) {
    if (!mean) return "-";
    return fmt::format("{:.2f} ± {:.2f}", *mean, sd.value_or(0.0));
}

nlohmann::ordered_json optional_json(const std::optional<double>& v) {
    return v ? nlohmann::ordered_json(*v) : nlohmann::ordered_json(nullptr);
}

}  // namespace

ModelFileFacts model_file_facts(const GgufFile& file) {
    ModelFileFacts facts;
    facts.file_bytes = file.file_size();
    for (const GgufTensorInfo& t : file.tensors()) {
        facts.tensor_bytes += t.n_bytes;
        facts.n_params += t.n_elements();
    }
    if (facts.n_params > 0)
        facts.bpw =
            8.0 * static_cast<double>(facts.tensor_bytes) / static_cast<double>(facts.n_params);
    const auto file_type = file.get_uint("general.file_type");
    facts.type = file_type ? file_type_name(static_cast<uint32_t>(*file_type)) : "unknown";
    return facts;
}

MeanSd mean_sd(std::span<const double> values) {
    MeanSd out;
    if (values.empty()) return out;
    double sum = 0.0;
    for (double v : values) sum += v;
    out.mean = sum / static_cast<double>(values.size());
    if (values.size() < 2) return out;
    double squares = 0.0;
    for (double v : values) squares += (v - out.mean) * (v - out.mean);
    out.sd = std::sqrt(squares / static_cast<double>(values.size() - 1));
    return out;
}

std::vector<int32_t> parse_thread_list(const std::string& text) {
    std::vector<int32_t> threads;
    size_t i = 0;
    while (i <= text.size()) {
        size_t end = text.find(',', i);
        if (end == std::string::npos) end = text.size();
        const std::string item = text.substr(i, end - i);
        const bool digits =
            !item.empty() && item.size() <= 6 &&
            std::all_of(item.begin(), item.end(), [](char c) { return c >= '0' && c <= '9'; });
        const int32_t n = digits ? static_cast<int32_t>(std::stol(item)) : 0;
        if (n < 1)
            fail("threads: '{}' in '{}' is not a positive integer (expected a list like 1,2,4)",
                 item, text);
        threads.push_back(n);
        i = end + 1;
    }
    return threads;
}

BenchResult run_bench(const std::string& path, const BenchOptions& options) {
    check_bench_options(options);
    BenchResult r;
    r.model = path;
    r.isa = isa_name(active_isa());
    r.threads = options.n_threads > 0 ? options.n_threads : ThreadPool::hardware_threads();
    r.n_prompt = options.n_prompt;
    r.n_gen = options.n_gen;
    r.n_batch = options.n_batch;
    r.repetitions = options.repetitions;

    const auto load_start = Clock::now();
    const std::unique_ptr<LoadedModel> model = LoadedModel::load(path);
    r.load_ms = ms_since(load_start);

    const ModelFileFacts facts = model_file_facts(model->file());
    r.type = facts.type;
    r.n_params = facts.n_params;
    r.size_mb = static_cast<double>(facts.file_bytes) / 1048576.0;
    r.bpw = facts.bpw;

    const int32_t longest = std::max({options.n_prompt, options.n_gen, 1});
    if (longest > model->n_ctx_train())
        fail("bench: {}: a test of {} tokens does not fit the model's context of {}", path, longest,
             model->n_ctx_train());
    SessionOptions session_options;
    session_options.n_ctx =
        std::clamp(options.n_prompt + options.n_gen, longest, model->n_ctx_train());
    session_options.n_threads = r.threads;
    session_options.n_batch = options.n_batch;
    Session session(*model, session_options);

    std::mt19937_64 rng(options.seed);
    const int32_t n_vocab = model->n_vocab();
    const auto first_start = Clock::now();
    const std::vector<int32_t> first = random_ids(rng, n_vocab, 1);
    session.decode(first);
    r.first_decode_ms = ms_since(first_start);

    std::vector<int32_t> prompt;
    if (options.n_prompt > 0) {
        session.reset();
        prompt = random_ids(rng, n_vocab, options.n_prompt);
        session.decode(prompt);  // warm-up
    }
    for (int32_t rep = 0; rep < options.repetitions; ++rep) {
        if (options.n_prompt > 0) {
            prompt = random_ids(rng, n_vocab, options.n_prompt);
            session.reset();
            const auto start = Clock::now();
            session.decode(prompt);
            r.pp_samples_tps.push_back(options.n_prompt / (ms_since(start) / 1000.0));
        }
        if (options.n_gen > 0) {
            const std::vector<int32_t> ids = random_ids(rng, n_vocab, options.n_gen);
            session.reset();
            const auto start = Clock::now();
            for (const int32_t& id : ids) session.decode({&id, 1});
            r.tg_samples_tps.push_back(options.n_gen / (ms_since(start) / 1000.0));
        }
    }
    if (!r.pp_samples_tps.empty()) {
        const MeanSd pp = mean_sd(r.pp_samples_tps);
        r.pp_tps = pp.mean;
        r.pp_tps_sd = pp.sd;
    }
    if (!r.tg_samples_tps.empty()) {
        const MeanSd tg = mean_sd(r.tg_samples_tps);
        r.tg_tps = tg.mean;
        r.tg_tps_sd = tg.sd;
    }
    r.peak_rss_mb = peak_rss_mib();
    return r;
}

nlohmann::ordered_json bench_json(std::span<const BenchResult> results) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const BenchResult& r : results) {
        out.push_back({{"model", r.model},
                       {"type", r.type},
                       {"isa", r.isa},
                       {"threads", r.threads},
                       {"n_prompt", r.n_prompt},
                       {"n_gen", r.n_gen},
                       {"n_batch", r.n_batch},
                       {"reps", r.repetitions},
                       {"n_params", r.n_params},
                       {"size_mb", r.size_mb},
                       {"bpw", r.bpw},
                       {"load_ms", r.load_ms},
                       {"first_decode_ms", r.first_decode_ms},
                       {"peak_rss_mb", r.peak_rss_mb},
                       {"pp_tps", optional_json(r.pp_tps)},
                       {"pp_tps_sd", optional_json(r.pp_tps_sd)},
                       {"tg_tps", optional_json(r.tg_tps)},
                       {"tg_tps_sd", optional_json(r.tg_tps_sd)},
                       {"pp_samples_tps", r.pp_samples_tps},
                       {"tg_samples_tps", r.tg_samples_tps}});
    }
    return out;
}

std::string bench_markdown(std::span<const BenchResult> results) {
    const int32_t n_prompt = results.empty() ? 0 : results.front().n_prompt;
    const int32_t n_gen = results.empty() ? 0 : results.front().n_gen;
    std::string out = fmt::format(
        "| model | type | size MiB | bpw | isa | threads | load ms | pp{} t/s | tg{} t/s | peak "
        "RSS MiB |\n| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |\n",
        n_prompt, n_gen);
    for (const BenchResult& r : results) {
        out += fmt::format("| {} | {} | {:.2f} | {:.3f} | {} | {} | {:.1f} | {} | {} | {:.1f} |\n",
                           r.model, r.type, r.size_mb, r.bpw, r.isa, r.threads, r.load_ms,
                           tps_text(r.pp_tps, r.pp_tps_sd), tps_text(r.tg_tps, r.tg_tps_sd),
                           r.peak_rss_mb);
    }
    return out;
}

std::string bench_text_header(const BenchOptions& options) {
    const std::string pp = fmt::format("pp{} t/s", options.n_prompt);
    const std::string tg = fmt::format("tg{} t/s", options.n_gen);
    return fmt::format("{:<40} {:<8} {:>9} {:>6} {:<6} {:>3} {:>8} {:>18} {:>18} {:>9}\n", "model",
                       "type", "size MiB", "bpw", "isa", "thr", "load ms", pp, tg, "peak MiB");
}

std::string bench_text_row(const BenchResult& r) {
    return fmt::format(
        "{:<40} {:<8} {:>9.2f} {:>6.3f} {:<6} {:>3} {:>8.1f} {:>18} {:>18} {:>9.1f}\n", r.model,
        r.type, r.size_mb, r.bpw, r.isa, r.threads, r.load_ms, tps_text(r.pp_tps, r.pp_tps_sd),
        tps_text(r.tg_tps, r.tg_tps_sd), r.peak_rss_mb);
}

}  // namespace edgeq
