// The prompt-processing matmul (a few activation rows or more): weights decoded once per
// call, a panel of k_gemm_rows rows at a time, into unsigned bytes interleaved four values per
// row, so that one vpdpbusd multiplies four values of every row of the panel with four values
// of one activation row (broadcast); a register tile of the panel's rows times a group of
// k_gemm_acts activation rows accumulates in int32 per sub-block, then in float.
//
// Every weight type with a GEMM kernel is written as
//     value = scale[s] * (u - offset) + min[s]     (u an unsigned byte, s its sub-block)
// so that a sub-block's dot product with an activation sub-block (scale d, quants a) is
//     scale[s] * d * (sum u * a - offset * sum a) + min[s] * d * sum a,
// where the offset term goes into the integer accumulator's start value and the minimum term
// into the float accumulator. The integer part equals the reference kernel's; only the float
// rounding differs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "edgeq/core/tensor.h"
#include "edgeq/core/thread-pool.h"

namespace edgeq::cpu {

constexpr int k_gemm_rows = 16;  // weight rows per panel (one zmm of int32 lanes)
constexpr int k_gemm_acts = 12;  // activation rows per group (the register tile's columns)

// Activations in the GEMM's layout, in groups of k_gemm_acts rows (the last group padded with
// zero rows). Group g, sub-block s (of `sub_block` values), row c of the group:
//   qs:   k * k_gemm_acts int8 per group; the four values j..j+3 (j % 4 == 0) of row c at
//         qs[g * k * A + j * A + 4 * c]   (A = k_gemm_acts)
//   d:    the activation scale of the sub-block: d[(g * n_sub + s) * A + c]
//   corr: -offset * (sum of the sub-block's quants), the integer accumulator's start
//   dsum: d * (sum of the sub-block's quants), for the types with a minimum
struct GemmActs {
    const int8_t* qs = nullptr;
    const float* d = nullptr;
    const int32_t* corr = nullptr;
    const float* dsum = nullptr;
    int64_t k = 0;
    int64_t m = 0;
    int64_t n_sub = 0;  // sub-blocks per row
};

// A decoded panel: k_gemm_rows rows (rows past the matrix's end are zeros).
//   qs:    k * k_gemm_rows bytes; values j..j+3 of row r at qs[j * k_gemm_rows + 4 * r]
//   scale: n_sub * k_gemm_rows floats, min: as many (types with a minimum)
inline size_t gemm_panel_bytes(int64_t k, int sub_block) {
    const size_t n_sub = static_cast<size_t>(k / sub_block);
    return static_cast<size_t>(k) * k_gemm_rows + 2 * n_sub * k_gemm_rows * sizeof(float);
}

struct GemmKernel {
    int sub_block;  // values per scale: 16 or 32
    int offset;     // subtracted from every u
    bool has_min;
    // The fewest activation rows for which decoding the panels pays (below, the row-by-row
    // dot products run): measured on Zen 4.
    int64_t min_m;
    // Decodes rows [0, n_rows) (n_rows <= k_gemm_rows) of k values, row r at w + r * w_row,
    // into `panel` (gemm_panel_bytes(k, sub_block) bytes, 64-byte aligned).
    void (*decode)(const uint8_t* w, size_t w_row, int n_rows, int64_t k, uint8_t* panel);
    // y[c * y_stride + r] for r < n_rows, c < n_acts: the panel times rows c of activation group
    // `group` (n_acts <= k_gemm_acts).
    void (*run)(const uint8_t* panel, const GemmActs& a, int64_t group, int n_acts, float* y,
                int64_t y_stride, int n_rows);
};

// Converts m quantized activation rows (activation_type(weight) rows of a_row bytes) into the
// GEMM layout for `kernel`, held in `storage` (grown when too small).
GemmActs gemm_prepare_acts(GgmlType act, const uint8_t* a, size_t a_row, int64_t m, int64_t k,
                           const GemmKernel& kernel, std::vector<uint8_t>& storage,
                           ThreadPool& pool);

// The first 64-byte aligned address of `buffer`, grown to hold `bytes` past it.
uint8_t* aligned_scratch(std::vector<uint8_t>& buffer, size_t bytes);

}  // namespace edgeq::cpu
