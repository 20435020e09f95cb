// The kernel tables behind edgeq/runtime/cpu/matmul.h: for each ISA, each weight type's dot
// product (one weight row with up to k_max_acts activation rows at once) and the activation
// quantizers. vec-dot-scalar.cpp holds the reference for every type; vec-dot-avx2.cpp and
// vec-dot-avx512.cpp fill in the types they accelerate and leave the rest null.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "edgeq/core/tensor.h"
#include "edgeq/runtime/cpu/matmul.h"

namespace edgeq::cpu {

// One activation block of the 32-value weight formats (Q4_0 ... Q8_0, IQ4_NL): q = round(x / d)
// in [-127, 127], and the sum of the 32 q, which the formats with an offset or a minimum
// (Q4_0, Q5_0, Q4_1, Q5_1) need and the VNNI kernels use to work on unsigned weights.
struct ActBlockQ8 {
    float d;
    int32_t sum;
    int8_t qs[32];
};
static_assert(sizeof(ActBlockQ8) == 40);

// The most activation rows one call of a multi-row dot product takes.
constexpr int k_max_acts = 4;

// out[c * out_stride] = dot(weight row w, activation row a + c * a_stride) for c < n_acts
// (1 <= n_acts <= k_max_acts), each row n values long. Every output is computed exactly as a
// single-row call computes it, whatever n_acts is.
using MultiDotFn = void (*)(int64_t n, const void* w, const void* a, size_t a_stride, int n_acts,
                            float* out, int64_t out_stride);

// Converts n floats to the activation format (n a multiple of its block size).
using ActQuantFn = void (*)(const float* x, void* dst, int64_t n);

constexpr size_t k_n_types = 64;  // GgmlType ids are below this

struct GemmKernel;    // gemm.h
struct PackedKernel;  // packed.h

struct KernelTable {
    std::array<VecDotFn, k_n_types> dot{};
    std::array<MultiDotFn, k_n_types> multi_dot{};
    std::array<const GemmKernel*, k_n_types> gemm{};      // prompt processing (gemm.h)
    std::array<const PackedKernel*, k_n_types> packed{};  // repacked weights (packed.h)
    ActQuantFn quantize_q8 = nullptr;                     // ActBlockQ8 rows
    ActQuantFn quantize_q8_k = nullptr;                   // BlockQ8_K rows
};

const KernelTable& scalar_kernels();
// Null when this CPU lacks the ISA; their entries are null where the ISA has no kernel of its
// own (the caller falls back to the scalar one).
const KernelTable* avx2_kernels();
const KernelTable* avx512_kernels();

// Fill in the GEMM kernels (gemm-avx2.cpp, gemm-avx512.cpp).
void add_avx2_gemm(KernelTable& t);
void add_avx512_gemm(KernelTable& t);

inline size_t type_index(GgmlType t) {
    return static_cast<size_t>(t);
}

}  // namespace edgeq::cpu
