// edgeq quantize IN.gguf OUT.gguf TYPE [THREADS]: requantize a GGUF model to a type or a mix.
#include <fmt/format.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>

#include "commands.h"
#include "edgeq/core/error.h"
#include "edgeq/core/thread-pool.h"
#include "edgeq/formats/quantize-file.h"

namespace edgeq::cli {
namespace {

struct QuantizeArgs {
    std::string input;
    std::string output;
    std::string type;
    int threads = 0;
    std::string imatrix;
    MixFlags mix;
    bool dry_run = false;
    bool verbose = false;
};

void print_report(const QuantizeArgs& args, const QuantMix& mix, const QuantizeReport& report,
                  double seconds) {
    if (args.dry_run) {
        for (const TensorOutcome& t : report.tensors) {
            std::string shape;
            for (int64_t d : t.shape) shape += (shape.empty() ? "" : " x ") + std::to_string(d);
            fmt::print("{:<44} {:>22} {:>7} -> {:<7} {:10.2f} MiB\n", t.name, shape,
                       dtype(t.from).name, dtype(t.to).name, t.bytes_out / 1048576.0);
        }
    }
    std::map<std::string_view, std::pair<int, uint64_t>> by_type;
    for (const TensorOutcome& t : report.tensors) {
        auto& [count, bytes] = by_type[dtype(t.to).name];
        ++count;
        bytes += t.bytes_out;
    }
    fmt::print("{:<8} {:>8} {:>12}\n", "type", "tensors", "MiB");
    for (const auto& [name, stats] : by_type)
        fmt::print("{:<8} {:>8} {:>12.2f}\n", name, stats.first, stats.second / 1048576.0);
    fmt::print(
        "{} {}: {:.2f} MiB of tensors (from {:.2f} MiB), {:.3f} bits per weight, {:.2f} B "
        "parameters{}\n",
        args.dry_run ? "would write" : "wrote", args.dry_run ? mix.name : args.output,
        report.bytes_out / 1048576.0, report.bytes_in / 1048576.0, report.bits_per_weight(),
        report.n_elements / 1e9,
        args.dry_run ? ""
                     : fmt::format(", file {:.2f} MiB, {:.1f} s", report.file_size_out / 1048576.0,
                                   seconds));
    if (report.n_fallbacks > 0) {
        fmt::print(
            "{} tensors had rows that do not divide their type's block and use a compatible type\n",
            report.n_fallbacks);
    }
}

}  // namespace

void add_quantize(CLI::App& app) {
    auto args = std::make_shared<QuantizeArgs>();
    CLI::App* cmd = app.add_subcommand(
        "quantize", "Quantize a GGUF model to a type or a mix (Q4_K_M, Q8_0, IQ4_XS...)");
    cmd->add_option("input", args->input, "Input GGUF file")->required();
    cmd->add_option("output", args->output,
                    "Output GGUF file (written atomically; never the input)")
        ->required();
    cmd->add_option("type", args->type, "Type or mix: " + mix_names())->required();
    cmd->add_option("threads", args->threads, "Threads (default: all)");
    cmd->add_option("-t,--threads", args->threads, "Threads (default: all)");
    cmd->add_option("--imatrix", args->imatrix,
                    "Importance matrix (llama.cpp's GGUF or legacy .dat format)");
    add_mix_flags(*cmd, args->mix, "Keep output.weight as it is");
    cmd->add_flag("--dry-run", args->dry_run, "Print the plan and final size, write nothing");
    cmd->add_flag("-v,--verbose", args->verbose, "A line per tensor");
    cmd->callback([args] {
        const auto start = std::chrono::steady_clock::now();
        QuantizeFileOptions options;
        options.mix = &parse_mix(args->type);
        options.mix_options = parse_mix_flags(args->mix);
        options.dry_run = args->dry_run;
        options.verbose = args->verbose;
        std::optional<Imatrix> imatrix;
        if (!args->imatrix.empty()) {
            imatrix = load_imatrix(args->imatrix);
            options.imatrix = &*imatrix;
        }
        if (args->threads < 0) fail("threads must be positive, got {}", args->threads);
        const GgufFile input = GgufFile::open(args->input);
        ThreadPool pool(args->threads);
        const QuantizeReport report = quantize_file(input, args->output, options, pool);
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        print_report(*args, *options.mix, report, seconds);
    });
}

}  // namespace edgeq::cli
