// Weights for ONNX Runtime's MatMulNBits contrib operator (com.microsoft domain): a matrix
// quantized in blocks along its input dimension K, packed the way the operator reads it.
//
//   auto q = quantize_matmul_nbits(w, n_out, n_in, {.bits = 4, .block_size = 32});
//   // q.packed -> initializer B (uint8, [N, n_blocks, block_size * bits / 8])
//   // q.scales -> initializer scales ([N, n_blocks]); q.zero_points -> zero_points or none
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "edgeq/quant/dtype.h"

namespace edgeq {

class ThreadPool;

struct MatMulNBitsOptions {
    int bits = 4;                       // 4 or 8
    int block_size = 32;                // 16, 32, 64 or 128
    bool symmetric = true;              // no zero_points input (the operator's default zero point)
    const float* importance = nullptr;  // optional per-column weights (n_in floats), e.g. imatrix
    bool fp16_scales = false;  // scales rounded to F16 values (lossless when the graph stores F16)
    ThreadPool* pool = nullptr;  // rows quantized in parallel when set
    // Symmetric: the search may put a block's value of largest magnitude beyond the outermost
    // level (least squared error); false keeps it on a level, as round-to-nearest does (lower
    // KL divergence in LLMs at large blocks, where the clipped outliers matter most).
    bool clip = true;
    // Without importance: weight each value by sigma^2 + x^2 (sigma^2 twice the block's mean
    // square) instead of 1, so that the search favours the large values.
    bool magnitude_weights = false;
};

struct MatMulNBitsWeights {
    int bits = 4;
    int block_size = 32;
    int64_t n_out = 0;                 // N: output features (rows of the GGUF weight)
    int64_t n_in = 0;                  // K: input features (contiguous in the GGUF weight)
    int64_t n_blocks = 0;              // ceil(K / block_size) per row
    std::vector<uint8_t> packed;       // N x n_blocks x (block_size * bits / 8)
    std::vector<float> scales;         // N x n_blocks
    std::vector<uint8_t> zero_points;  // empty when symmetric; else N x ceil(n_blocks * bits / 8)
};
// Layout (ORT's, checked against onnxruntime by tests/integration/test_onnx_matmul_nbits.py):
// value k of block b of row n is code(n, b, k) = bits [k * bits, (k + 1) * bits) of
// packed[n][b] (low nibble first for 4 bits), and it stands for scale * (code - zero_point).
// The zero point is 2^(bits - 1) when zero_points is empty; else 4-bit zero points are packed
// two per byte along the blocks, low nibble first (an odd last byte's high nibble holds 8, as
// ORT's quantizer writes), 8-bit ones one per byte. K is padded to n_blocks * block_size with
// codes equal to the zero point (the operator ignores them). Scales may be negative.

// Quantizes w (n_out rows of n_in floats, row-major as GGUF stores a weight) with edgeq's
// own error-minimising search (least importance-weighted squared error over a grid of scales,
// and of integer zero points when asymmetric). Fails on bad options or a non-finite weight.
MatMulNBitsWeights quantize_matmul_nbits(const float* w, int64_t n_out, int64_t n_in,
                                         const MatMulNBitsOptions& options);

// The same matrix without requantizing, when the GGUF blocks map exactly onto the operator's
// (Q4_0 -> 4 bits, block 32, symmetric; Q8_0 -> 8 bits, block 32, symmetric); nullopt for
// other types.
std::optional<MatMulNBitsWeights> carry_matmul_nbits(GgmlType type, const void* data, int64_t n_out,
                                                     int64_t n_in);

// The floats the operator computes with (dequantized), n_out x n_in: the reference the tests
// and the int4 export's checks use.
std::vector<float> dequantize_matmul_nbits(const MatMulNBitsWeights& q);

}  // namespace edgeq
