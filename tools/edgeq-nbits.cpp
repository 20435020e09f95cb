// A developer's driver for the MatMulNBits weights (edgeq/formats/onnx-matmul-nbits.h): quantizes
// a raw float32 matrix, or carries raw GGUF Q4_0 / Q8_0 blocks, and writes the operator's
// initializers as raw files, for tests/integration/test_onnx_matmul_nbits.py and
// bench/onnx_nbits_vs_ort.py to load into ONNX Runtime. Not part of the edgeq command line.
//
//   edgeq-nbits quantize W.f32 --rows N --cols K [--bits 4|8] [--block-size 16|32|64|128]
//               [--asymmetric] [--importance I.f32] [--fp16-scales] [-t THREADS] -o DIR
//   edgeq-nbits carry BLOCKS.bin --type Q4_0|Q8_0 --rows N --cols K -o DIR
//
// W.f32 holds N rows of K little-endian floats (GGUF's order: K contiguous); I.f32 K floats.
// DIR receives packed.u8 (N x n_blocks x blob), scales.f32 (N x n_blocks), zero_points.u8
// (asymmetric only) and dequant.f32 (N x K, dequantize_matmul_nbits). Errors go to stderr, exit 1.
#include <CLI/CLI.hpp>

#include <cstring>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "edgeq/core/error.h"
#include "edgeq/core/thread-pool.h"
#include "edgeq/formats/onnx-matmul-nbits.h"
#include "edgeq/quant/dtype.h"

namespace {

std::vector<char> read_file(const std::string& path, size_t expected_bytes) {
    std::ifstream in(path, std::ios::binary);
    if (!in) edgeq::fail("cannot read {}", path);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (bytes.size() != expected_bytes) {
        edgeq::fail("{} holds {} bytes, expected {}", path, bytes.size(), expected_bytes);
    }
    return bytes;
}

template <typename T>
void write_file(const std::filesystem::path& path, const std::vector<T>& data) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(data.data()),
              static_cast<std::streamsize>(data.size() * sizeof(T)));
    if (!out) edgeq::fail("cannot write {}", path.string());
}

void write_weights(const std::string& dir, const edgeq::MatMulNBitsWeights& q) {
    std::filesystem::create_directories(dir);
    const std::filesystem::path d(dir);
    write_file(d / "packed.u8", q.packed);
    write_file(d / "scales.f32", q.scales);
    if (!q.zero_points.empty()) write_file(d / "zero_points.u8", q.zero_points);
    write_file(d / "dequant.f32", edgeq::dequantize_matmul_nbits(q));
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"MatMulNBits weights for ONNX Runtime (developer tool)"};
    app.require_subcommand(1);
    std::string input;
    std::string output;
    int64_t rows = 0;
    int64_t cols = 0;
    auto* quantize = app.add_subcommand("quantize", "quantize a float32 matrix");
    edgeq::MatMulNBitsOptions options;
    bool asymmetric = false;
    std::string importance_path;
    int threads = 1;
    quantize->add_option("input", input, "N x K float32, raw")->required();
    quantize->add_option("--rows", rows, "N")->required();
    quantize->add_option("--cols", cols, "K")->required();
    quantize->add_option("--bits", options.bits, "4 or 8");
    quantize->add_option("--block-size", options.block_size, "16, 32, 64 or 128");
    quantize->add_flag("--asymmetric", asymmetric, "with zero points");
    quantize->add_option("--importance", importance_path, "K float32 importance weights, raw");
    quantize->add_flag("--fp16-scales", options.fp16_scales, "scales rounded to F16");
    quantize->add_option("-t,--threads", threads, "threads");
    quantize->add_option("-o,--output", output, "output directory")->required();
    auto* carry = app.add_subcommand("carry", "relayout GGUF Q4_0 / Q8_0 blocks");
    std::string type_name;
    carry->add_option("input", input, "the raw GGUF blocks of an N x K tensor")->required();
    carry->add_option("--type", type_name, "Q4_0 or Q8_0")->required();
    carry->add_option("--rows", rows, "N")->required();
    carry->add_option("--cols", cols, "K")->required();
    carry->add_option("-o,--output", output, "output directory")->required();
    CLI11_PARSE(app, argc, argv);
    try {
        if (rows <= 0 || cols <= 0) edgeq::fail("--rows and --cols must be positive");
        if (quantize->parsed()) {
            const std::vector<char> raw = read_file(input, static_cast<size_t>(rows * cols) * 4);
            std::vector<float> w(static_cast<size_t>(rows * cols));
            std::memcpy(w.data(), raw.data(), raw.size());
            std::vector<float> importance;
            if (!importance_path.empty()) {
                const std::vector<char> imp =
                    read_file(importance_path, static_cast<size_t>(cols) * 4);
                importance.resize(static_cast<size_t>(cols));
                std::memcpy(importance.data(), imp.data(), imp.size());
                options.importance = importance.data();
            }
            options.symmetric = !asymmetric;
            edgeq::ThreadPool pool(threads);
            options.pool = &pool;
            write_weights(output, edgeq::quantize_matmul_nbits(w.data(), rows, cols, options));
        } else {
            const edgeq::DType* type = edgeq::find_dtype(type_name);
            if (type == nullptr) edgeq::fail("--type: unknown type '{}'", type_name);
            if (cols % type->block_size != 0) {
                edgeq::fail("--cols {} is not a multiple of {}'s block size {}", cols, type->name,
                            type->block_size);
            }
            const std::vector<char> raw =
                read_file(input, static_cast<size_t>(rows) * edgeq::row_size(type->type, cols));
            const auto q = edgeq::carry_matmul_nbits(type->type, raw.data(), rows, cols);
            if (!q)
                edgeq::fail("--type: {} does not map onto MatMulNBits, expected Q4_0 or Q8_0",
                            type->name);
            write_weights(output, *q);
        }
    } catch (const std::exception& e) {
        std::cerr << "edgeq-nbits: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
