// edgeq-kernel-bench: times cpu::matmul for weight types, ISAs and shapes, printing GB/s of
// weights streamed and GFLOP/s. Generation is m = 1 (bound by memory bandwidth), prompt
// processing m = 512 (bound by compute).
//
//   edgeq-kernel-bench                                  # Q4_0 Q8_0 Q4_K Q6_K Q5_0, every ISA
//   edgeq-kernel-bench --types q4_k --isa avx512 -m 1,512 --shape 5632x2048 -t 2
//   edgeq-kernel-bench --model tinyllama-Q4_0.gguf --prompt 512 -t 1   # a whole prompt
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "edgeq/core/cpu.h"
#include "edgeq/core/error.h"
#include "edgeq/core/thread-pool.h"
#include "edgeq/quant/dtype.h"
#include "edgeq/quant/quantize.h"
#include "edgeq/runtime/cpu/matmul.h"
#include "edgeq/runtime/engine.h"

namespace {

using namespace edgeq;

// CPU seconds of this process, all threads: on a loaded machine, the work per CPU second is
// steadier than per wall second.
double cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct Args {
    std::vector<std::string> types = {"q4_0", "q8_0", "q4_k", "q6_k", "q5_0"};
    std::vector<std::string> isas;  // empty: every ISA this CPU has
    std::vector<int64_t> ms = {1, 512};
    std::vector<std::string> shapes = {"2048x2048", "5632x2048"};
    int threads = 2;
    double min_seconds = 0.3;
    std::string model;  // set: time a prompt through the engine instead
    int prompt = 512;
    int reps = 2;
};

Isa parse_isa(const std::string& s) {
    if (s == "scalar") return Isa::scalar;
    if (s == "avx2") return Isa::avx2;
    if (s == "avx512") return Isa::avx512;
    fail("unknown ISA '{}', expected scalar, avx2 or avx512", s);
}

bool cpu_has(Isa isa) {
    const CpuFeatures& f = cpu_features();
    const bool avx2 = f.avx2 && f.fma && f.f16c;
    return isa == Isa::scalar || (isa == Isa::avx2 && avx2) ||
           (isa == Isa::avx512 && avx2 && f.avx512f && f.avx512bw && f.avx512vl);
}

void run(const Args& args) {
    std::vector<Isa> isas;
    for (const std::string& s : args.isas) isas.push_back(parse_isa(s));
    if (isas.empty()) {
        for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512}) {
            if (cpu_has(isa)) isas.push_back(isa);
        }
    }
    ThreadPool pool(args.threads);
    cpu::MatmulScratch scratch;
    std::mt19937 rng(1234);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::printf("%-7s %-7s %5s %6s %6s %10s %9s %10s\n", "type", "isa", "m", "n_out", "k", "ms",
                "GB/s", "GFLOP/s");
    for (const std::string& shape : args.shapes) {
        long long n_out_ll = 0, k_ll = 0;
        if (std::sscanf(shape.c_str(), "%lldx%lld", &n_out_ll, &k_ll) != 2 || n_out_ll <= 0 ||
            k_ll <= 0) {
            fail("--shape {}: expected N_OUTxK, like 5632x2048", shape);
        }
        const int64_t n_out = n_out_ll, k = k_ll;
        std::vector<float> wf(static_cast<size_t>(n_out * k));
        for (float& v : wf) v = 0.02f * normal(rng);
        for (const std::string& type_name : args.types) {
            const DType* t = find_dtype(type_name);
            if (t == nullptr) fail("unknown type '{}'", type_name);
            std::vector<uint8_t> w(row_size(t->type, k) * static_cast<size_t>(n_out));
            quantize_rows(t->type, wf.data(), w.data(), n_out, k, nullptr, &pool, "weights");
            for (int64_t m : args.ms) {
                std::vector<float> x(static_cast<size_t>(m * k));
                for (float& v : x) v = normal(rng);
                std::vector<float> y(static_cast<size_t>(m * n_out));
                for (Isa isa : isas) {
                    auto once = [&] {
                        cpu::matmul(t->type, w.data(), n_out, k, x.data(), m, y.data(), pool,
                                    scratch, isa);
                    };
                    once();  // warm-up
                    int reps = 0;
                    const auto start = std::chrono::steady_clock::now();
                    const double cpu_start = cpu_seconds();
                    double seconds = 0;
                    do {
                        once();
                        ++reps;
                        seconds =
                            std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
                                .count();
                    } while (seconds < args.min_seconds || reps < 3);
                    const double per = seconds / reps;
                    const double cpu_per = (cpu_seconds() - cpu_start) / reps;
                    std::printf("%-7s %-7s %5lld %6lld %6lld %10.3f %9.2f %10.1f %13.1f\n",
                                std::string(t->name).c_str(), isa_name(isa),
                                static_cast<long long>(m), static_cast<long long>(n_out),
                                static_cast<long long>(k), per * 1e3,
                                static_cast<double>(w.size()) / per * 1e-9,
                                2.0 * static_cast<double>(m * n_out * k) / per * 1e-9,
                                2.0 * static_cast<double>(m * n_out * k) / cpu_per * 1e-9);
                    std::fflush(stdout);
                }
            }
        }
    }
}

// A prompt of args.prompt token ids (fixed pseudo-random ones) through a Session, as
// llama-bench -p times it: the best of args.reps runs, wall and CPU time.
void run_prompt(const Args& args) {
    const auto model = LoadedModel::load(args.model);
    SessionOptions options;
    options.n_ctx = args.prompt;
    options.n_batch = args.prompt;
    options.n_threads = args.threads;
    Session session(*model, options);
    std::mt19937 rng(1234);
    std::uniform_int_distribution<int32_t> id(1, model->n_vocab() - 1);
    std::vector<int32_t> ids(static_cast<size_t>(args.prompt));
    for (int32_t& t : ids) t = id(rng);
    double best = 1e30, best_cpu = 1e30;
    for (int r = 0; r < args.reps; ++r) {
        session.reset();
        const auto start = std::chrono::steady_clock::now();
        const double cpu_start = cpu_seconds();
        session.decode(ids);
        best = std::min(
            best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
        best_cpu = std::min(best_cpu, cpu_seconds() - cpu_start);
    }
    std::printf("prompt of %d tokens, %d threads: %.1f ms, %.2f tokens/s, %.2f tokens per CPU s\n",
                args.prompt, args.threads, best * 1e3, args.prompt / best, args.prompt / best_cpu);
}

}  // namespace

int main(int argc, char** argv) {
    Args args;
    CLI::App app{"Time edgeq's CPU matmul kernels", "edgeq-kernel-bench"};
    app.add_option("--types", args.types, "Weight types (default q4_0 q8_0 q4_k q6_k q5_0)")
        ->delimiter(',');
    app.add_option("--isa", args.isas, "scalar, avx2, avx512 (default: every one the CPU has)")
        ->delimiter(',');
    app.add_option("-m", args.ms, "Activation rows (default 1,512)")->delimiter(',');
    app.add_option("--shape", args.shapes, "N_OUTxK (default 2048x2048,5632x2048)")->delimiter(',');
    app.add_option("-t,--threads", args.threads, "Threads (default 2)");
    app.add_option("--min-seconds", args.min_seconds, "Time per measurement (default 0.3)");
    app.add_option("--model", args.model, "Time a prompt through this GGUF model instead");
    app.add_option("--prompt", args.prompt, "Prompt tokens with --model (default 512)");
    app.add_option("--reps", args.reps, "Prompt runs with --model, best kept (default 2)");
    CLI11_PARSE(app, argc, argv);
    try {
        if (!args.model.empty()) {
            run_prompt(args);
            return 0;
        }
        run(args);
    } catch (const edgeq::Error& e) {
        std::fprintf(stderr, "edgeq-kernel-bench: error: %s\n", e.what());
        return 1;
    }
    return 0;
}
