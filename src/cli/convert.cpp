// edgeq convert HF_DIR [-o OUT.gguf] [--type TYPE]: a Hugging Face checkpoint to GGUF, quantized
// on the way if TYPE is a quantized type or mix, in one streaming pass.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>

#include "commands.h"
#include "edgeq/core/error.h"
#include "edgeq/core/thread-pool.h"
#include "edgeq/formats/hf-checkpoint.h"
#include "edgeq/formats/imatrix.h"
#include "edgeq/model/gguf-export.h"
#include "edgeq/model/hf-import.h"

namespace edgeq::cli {
namespace {

struct ConvertArgs {
    std::string dir;
    std::string output;
    std::string type = "f16";
    int threads = 0;
    std::string imatrix;
    MixFlags mix;
    bool verbose = false;
};

std::string metadata_string(const Model& model, const char* key) {
    const GgufValue* v = model.find(key);
    return v != nullptr && v->type() == GgufType::string ? v->to_string() : std::string();
}

// "<basename>-<size label>-<finetune>-<version>-<TYPE>.gguf", as llama.cpp's converter names
// its output.
std::string default_output(const Model& model, const std::string& dir, const QuantMix& mix) {
    std::string name = metadata_string(model, "general.basename");
    if (name.empty()) name = std::filesystem::path(dir).lexically_normal().filename().string();
    if (name.empty()) name = "model";
    for (const char* key : {"general.size_label", "general.finetune", "general.version"}) {
        const std::string part = metadata_string(model, key);
        if (!part.empty()) name += "-" + part;
    }
    std::replace(name.begin(), name.end(), ' ', '-');
    return name + "-" + std::string(mix.name) + ".gguf";
}

}  // namespace

void add_convert(CLI::App& app) {
    auto args = std::make_shared<ConvertArgs>();
    CLI::App* cmd = app.add_subcommand(
        "convert", "Convert a Hugging Face checkpoint to GGUF (and quantize it on the way)");
    cmd->add_option("dir", args->dir,
                    "Checkpoint directory (config.json, *.safetensors, tokenizer files)")
        ->required();
    cmd->add_option("-o,--output", args->output,
                    "Output GGUF file (default: <name>-<size>-<TYPE>.gguf here)");
    cmd->add_option(
        "--type", args->type,
        "f32, f16 (default), bf16, q8_0, or any type or mix of edgeq quantize (Q4_K_M...)");
    cmd->add_option("-t,--threads", args->threads, "Threads (default: all)");
    cmd->add_option("--imatrix", args->imatrix, "Importance matrix for the quantized types");
    add_mix_flags(*cmd, args->mix, "Keep output.weight as in the F16 file");
    cmd->add_flag("-v,--verbose", args->verbose, "A line per tensor");
    cmd->callback([args] {
        const auto start = std::chrono::steady_clock::now();
        ExportOptions options;
        options.mix = &parse_mix(args->type);
        options.mix_options = parse_mix_flags(args->mix);
        std::optional<Imatrix> imatrix;
        if (!args->imatrix.empty()) {
            imatrix = load_imatrix(args->imatrix);
            options.imatrix = &*imatrix;
        }
        if (args->threads < 0) fail("threads must be positive, got {}", args->threads);

        const HfCheckpoint checkpoint = HfCheckpoint::open(args->dir);
        const Model model = import_hf(checkpoint, {export_file_type(options)});
        const std::string output =
            args->output.empty() ? default_output(model, args->dir, *options.mix) : args->output;
        ThreadPool pool(args->threads);
        const ExportReport report = write_gguf(model, output, options, pool);

        std::map<std::string_view, std::pair<int, uint64_t>> by_type;
        for (const ExportedTensor& t : report.tensors) {
            auto& [count, bytes] = by_type[dtype(t.type).name];
            ++count;
            bytes += t.n_bytes;
            if (args->verbose)
                fmt::print("{:<44} {:<7} {:10.2f} MiB\n", t.name, dtype(t.type).name,
                           t.n_bytes / 1048576.0);
        }
        fmt::print("{:<8} {:>8} {:>12}\n", "type", "tensors", "MiB");
        for (const auto& [name, stats] : by_type)
            fmt::print("{:<8} {:>8} {:>12.2f}\n", name, stats.first, stats.second / 1048576.0);
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        fmt::print(
            "wrote {}: {} {}, {:.2f} B parameters, {:.3f} bits per weight, file {:.2f} MiB, {:.1f} "
            "s\n",
            output, model.architecture(), options.mix->name, report.n_elements / 1e9,
            report.n_elements > 0 ? 8.0 * static_cast<double>(report.bytes_out) /
                                        static_cast<double>(report.n_elements)
                                  : 0.0,
            report.file_size / 1048576.0, seconds);
    });
}

}  // namespace edgeq::cli
