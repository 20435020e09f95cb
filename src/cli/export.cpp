// edgeq export MODEL --format onnx -o DIR [--precision ...] [--ops ort|standard]: a GGUF file or
// a Hugging Face checkpoint as an ONNX decoder (model.onnx + model.onnx.data), its tokenizer
// files and onnxruntime-genai's genai_config.json.
#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>

#include "commands.h"
#include "edgeq/core/error.h"
#include "edgeq/core/temp-files.h"
#include "edgeq/core/thread-pool.h"
#include "edgeq/formats/hf-checkpoint.h"
#include "edgeq/model/gguf-export.h"
#include "edgeq/model/hf-import.h"
#include "edgeq/model/hf-tokenizer-export.h"
#include "edgeq/model/onnx-export.h"

namespace edgeq::cli {
namespace {

namespace fs = std::filesystem;

struct ExportArgs {
    std::string model;
    std::string format = "onnx";
    std::string output;
    std::string precision = "fp32";
    std::string ops = "ort";
    int block_size = 32;
    bool symmetric = false;
    bool asymmetric = false;
    int accuracy_level = 4;
    std::string attention;
    int threads = 0;
};

// The tokenizer and generation files onnxruntime-genai reads, as the checkpoint has them.
constexpr const char* k_tokenizer_files[] = {
    "tokenizer.json",    "tokenizer_config.json",  "tokenizer.model", "special_tokens_map.json",
    "added_tokens.json", "generation_config.json", "vocab.json",      "merges.txt",
};

// A GGUF written from a checkpoint, removed when done: the exporter reads every model through
// the runtime's view of a GGUF file.
class TempGguf {
  public:
    TempGguf(const std::string& dir, const std::string& out_dir, ThreadPool& pool) {
        const HfCheckpoint checkpoint = HfCheckpoint::open(dir);
        ExportOptions options;
        options.mix = &parse_mix("f32");
        const Model model = import_hf(checkpoint, {export_file_type(options)});
        path_ = (fs::path(out_dir) / ".edgeq-export-source.gguf").string();
        register_temp_file(path_);
        write_gguf(model, path_, options, pool);
    }
    ~TempGguf() {
        std::error_code ec;
        fs::remove(path_, ec);
        unregister_temp_file(path_);
    }
    TempGguf(const TempGguf&) = delete;
    TempGguf& operator=(const TempGguf&) = delete;
    const std::string& path() const { return path_; }

  private:
    std::string path_;
};

}  // namespace

void add_export(CLI::App& app) {
    auto args = std::make_shared<ExportArgs>();
    CLI::App* cmd = app.add_subcommand(
        "export", "Export a GGUF file or Hugging Face checkpoint for another runtime (ONNX)");
    cmd->add_option("model", args->model, "GGUF file or Hugging Face checkpoint directory")
        ->required();
    cmd->add_option("--format", args->format, "Output format: onnx")->capture_default_str();
    cmd->add_option("-o,--output", args->output, "Output directory")->required();
    cmd->add_option("--precision", args->precision, "fp32, fp16, int8 or int4")
        ->capture_default_str();
    cmd->add_option("--ops", args->ops,
                    "ort: ONNX Runtime's contrib operators; standard: standard ONNX only")
        ->capture_default_str();
    cmd->add_option("--block-size", args->block_size, "int4/int8: 16, 32, 64 or 128")
        ->capture_default_str();
    cmd->add_flag("--symmetric", args->symmetric, "int4/int8: no zero points (default)");
    cmd->add_flag("--asymmetric", args->asymmetric, "int4/int8: zero points per block");
    cmd->add_option("--accuracy-level", args->accuracy_level,
                    "MatMulNBits accuracy_level, 0-4 (4: int8 activations)")
        ->capture_default_str();
    cmd->add_option("--attention", args->attention,
                    "ort ops: gqa (ONNX Runtime's GroupQueryAttention) or subgraph (standard "
                    "operators; the default, measured as fast)");
    cmd->add_option("-t,--threads", args->threads, "Threads (default: all)");
    cmd->callback([args] {
        const auto start = std::chrono::steady_clock::now();
        if (args->format != "onnx")
            fail("--format {}: edgeq exports onnx (mlx and openvino are not written yet)",
                 args->format);
        OnnxExportOptions options;
        if (args->precision == "fp32")
            options.precision = OnnxPrecision::fp32;
        else if (args->precision == "fp16")
            options.precision = OnnxPrecision::fp16;
        else if (args->precision == "int8")
            options.precision = OnnxPrecision::int8;
        else if (args->precision == "int4")
            options.precision = OnnxPrecision::int4;
        else
            fail("--precision {}: expected fp32, fp16, int8 or int4", args->precision);
        if (args->ops == "ort")
            options.ops = OnnxOps::ort;
        else if (args->ops == "standard")
            options.ops = OnnxOps::standard;
        else
            fail("--ops {}: expected ort or standard", args->ops);
        const int b = args->block_size;
        if (b != 16 && b != 32 && b != 64 && b != 128)
            fail("--block-size {}: expected 16, 32, 64 or 128", b);
        options.block_size = b;
        if (args->symmetric && args->asymmetric)
            fail("--symmetric and --asymmetric exclude each other");
        options.symmetric = !args->asymmetric;
        if (args->accuracy_level < 0 || args->accuracy_level > 4)
            fail("--accuracy-level {}: expected 0 to 4", args->accuracy_level);
        options.accuracy_level = args->accuracy_level;
        if (args->attention == "gqa")
            options.fused_attention = true;
        else if (args->attention == "subgraph")
            options.fused_attention = false;
        else if (!args->attention.empty())
            fail("--attention {}: expected gqa or subgraph", args->attention);
        if (args->threads < 0) fail("threads must be positive, got {}", args->threads);
        if (!fs::exists(args->model)) fail("{}: no such file or directory", args->model);

        std::error_code ec;
        fs::create_directories(args->output, ec);
        if (!fs::is_directory(args->output))
            fail("{}: cannot create the output directory", args->output);
        ThreadPool pool(args->threads);
        const bool from_hf = fs::is_directory(args->model);
        std::optional<TempGguf> temp;
        if (from_hf) temp.emplace(args->model, args->output, pool);
        const GgufFile file = GgufFile::open(from_hf ? temp->path() : args->model);
        const OnnxExportReport report = export_onnx(file, args->output, options, pool);
        if (from_hf) {
            for (const char* name : k_tokenizer_files) {
                const fs::path src = fs::path(args->model) / name;
                if (fs::exists(src))
                    fs::copy_file(src, fs::path(args->output) / name,
                                  fs::copy_options::overwrite_existing);
            }
        }
        // Without the checkpoint's tokenizer.json (a GGUF, or a SentencePiece checkpoint),
        // the GGUF vocabulary is written in that form for onnxruntime-genai.
        std::optional<std::string> no_tokenizer;
        if (!from_hf || !fs::exists(fs::path(args->model) / "tokenizer.json"))
            no_tokenizer = write_hf_tokenizer(file, args->output);
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        fmt::print(
            "wrote {}: model.onnx {:.2f} MiB, model.onnx.data {:.2f} MiB, {:.2f} M weights, {} "
            "ops, {}, {:.1f} s\n",
            args->output, report.model_bytes / 1048576.0, report.data_bytes / 1048576.0,
            report.n_weights / 1e6, args->ops, args->precision, seconds);
        if (no_tokenizer)
            fmt::print(
                "note: no tokenizer.json written: {}; copy tokenizer.json and "
                "tokenizer_config.json beside model.onnx for onnxruntime-genai\n",
                *no_tokenizer);
    });
}

}  // namespace edgeq::cli
