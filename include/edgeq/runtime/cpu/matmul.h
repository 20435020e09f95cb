// Matrix products of quantized weights and float activations, the runtime's hot loop.
//
//   cpu::MatmulScratch scratch;                       // reused across calls: no allocation
//   cpu::matmul(GgmlType::Q4_K, w, n_out, k, x, m, y, pool, scratch);
//   // y[i * n_out + r] = sum_j W[r][j] * x[i * k + j], for i < m, r < n_out
//
// Weights are n_out rows of k values of their GGML type, as a GGUF file holds them (row r at
// w + r * row_size(type, k)). Activations are quantized first to the type the weight type's
// dot product takes (activation_type()), as ggml does: Q8_0 blocks for the 32-value formats,
// Q8_K for the 256-value ones, F16 for F16 weights, BF16 for BF16 weights, F32 for F32. Each
// weight type has a scalar reference dot product and AVX2 / AVX-512 variants, chosen from
// active_isa() (EDGEQ_ISA forces one).
#pragma once

#include <cstdint>
#include <vector>

#include "edgeq/core/cpu.h"
#include "edgeq/core/tensor.h"
#include "edgeq/core/thread-pool.h"

namespace edgeq::cpu {

// The type activations are converted to before a dot product with `weight` rows.
GgmlType activation_type(GgmlType weight);

// Converts n floats (a multiple of the activation type's block size) to `act`.
void quantize_activations(GgmlType act, const float* x, void* dst, int64_t n);

// *out = dot(weight row w, activation row a), both n values long.
using VecDotFn = void (*)(int64_t n, float* out, const void* w, const void* a);

// The dot product for `weight` rows on `isa`; null if edgeq has none for that type.
VecDotFn vec_dot(GgmlType weight, Isa isa);

// Buffers a matmul reuses between calls (quantized activations, tiles).
struct MatmulScratch {
    std::vector<uint8_t> activations;
};

// y (m rows of n_out floats) = x (m rows of k floats) times the transpose of W (n_out rows of
// k values of `type`). Spread over the pool. Throws an Error for a type without a kernel or a
// k that is not a multiple of the type's block size.
void matmul(GgmlType type, const void* w, int64_t n_out, int64_t k, const float* x, int64_t m,
            float* y, ThreadPool& pool, MatmulScratch& scratch);

}  // namespace edgeq::cpu
