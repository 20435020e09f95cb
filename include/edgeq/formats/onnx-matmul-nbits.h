// Weights for ONNX Runtime's MatMulNBits contrib operator (com.microsoft domain): a matrix
// quantized in blocks along its input dimension K, packed the way the operator reads it.
//
//   auto q = quantize_matmul_nbits(w, n_out, n_in, {.bits = 4, .block_size = 32});
//   // q.packed -> initializer B (uint8, [N, n_blocks, block_size * bits / 8])
//   // q.scales -> initializer scales ([N * n_blocks]); q.zero_points -> zero_points or none
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "edgeq/quant/dtype.h"

namespace edgeq {

struct MatMulNBitsOptions {
    int bits = 4;                       // 4 or 8
    int block_size = 32;                // 16, 32, 64 or 128
    bool symmetric = true;              // no zero_points input (the operator's default zero point)
    const float* importance = nullptr;  // optional per-column weights (n_in floats), e.g. imatrix
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

// Quantizes w (n_out rows of n_in floats, row-major as GGUF stores a weight) with edgeq's
// own error-minimising search.
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
