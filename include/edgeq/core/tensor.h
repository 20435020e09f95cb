// Tensor views: a typed, shaped window onto bytes held elsewhere (a mapped file, a buffer).
// The tensor types are ggml's, with GGUF's type ids; edgeq/quant/dtype.h describes each one.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace edgeq {

enum class GgmlType : uint32_t {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    IQ2_XXS = 16,
    IQ2_XS = 17,
    IQ3_XXS = 18,
    IQ1_S = 19,
    IQ4_NL = 20,
    IQ3_S = 21,
    IQ2_S = 22,
    IQ4_XS = 23,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    IQ1_M = 29,
    BF16 = 30,
    TQ1_0 = 34,
    TQ2_0 = 35,
    MXFP4 = 39,
    NVFP4 = 40,
    Q1_0 = 41,
    Q2_0 = 42,
};

// A tensor in GGUF's convention: shape[0] is the contiguous dimension (a matrix's input
// features), then rows, then further dimensions. The view does not own `data`.
struct TensorView {
    std::string_view name;
    GgmlType type;
    std::vector<int64_t> shape;
    const uint8_t* data;
    uint64_t n_bytes;

    int64_t n_elements() const {
        int64_t n = 1;
        for (int64_t d : shape) n *= d;
        return n;
    }
    // Rows of shape[0] values (every dimension after the first).
    int64_t n_rows() const { return shape.empty() || shape[0] == 0 ? 0 : n_elements() / shape[0]; }
};

}  // namespace edgeq
