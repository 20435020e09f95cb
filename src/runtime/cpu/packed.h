// Weights repacked at load for the x86 kernels: groups of k_pack_rows (8) weight rows,
// interleaved block by block so that one 256-bit vector holds four consecutive values of each
// of the 8 rows. One vpdpbusd then multiplies those values of all 8 rows with four activation
// values broadcast, and leaves each row's sum in its own int32 lane: no horizontal sums, and
// the rows' scales load as one vector. The packed group is as large as the 8 rows were (or a
// few bytes more), so generation reads no more memory than before.
//
// Each packed type has:
//   - a layout, fixed for every ISA, written by its pack function (pack-<type>.cpp);
//   - a scalar reference run, written from the layout alone (pack-<type>.cpp);
//   - x86 runs for AVX2 and AVX-512 VNNI (packed-<type>-x86.h, compiled twice);
//   - a decoder into the GEMM panel of gemm.h, so that prompt processing reads the same
//     packed copy (the file's rows are given back to the kernel once packed).
// Every run takes activations in activation_type(type)'s layout, as the row kernels do.
#pragma once

#include <cstddef>
#include <cstdint>

#include "edgeq/core/tensor.h"

namespace edgeq::cpu {

constexpr int k_pack_rows = 8;

struct PackedKernel {
    // Bytes of one group of k_pack_rows rows of k values (k a multiple of the block size).
    size_t (*group_bytes)(int64_t k);
    // Writes rows [0, n_rows) (n_rows <= k_pack_rows; row r at w + r * w_row, as the GGUF file
    // holds it) as one group at dst; the rows past n_rows are zero weights.
    void (*pack)(const uint8_t* w, size_t w_row, int n_rows, int64_t k, uint8_t* dst);
    // out[c * out_stride + r] = dot(row r of the group, activation row c) for r < n_rows and
    // c < n_acts (1 <= n_acts <= k_max_acts); activation row c at a + c * a_stride. The result
    // for one activation row does not depend on n_acts.
    void (*run)(int64_t k, const uint8_t* group, const uint8_t* a, size_t a_stride, int n_acts,
                float* out, int64_t out_stride, int n_rows);
    // Writes the GEMM panel (gemm.h) of rows [0, n_rows) (n_rows <= k_gemm_rows) from the
    // groups at `groups` (the second, when n_rows > k_pack_rows, at groups + group_bytes(k)),
    // for the GemmKernel of the same weight type; null where the type has no GEMM.
    void (*decode_panel)(const uint8_t* groups, int n_rows, int64_t k, uint8_t* panel);
    // The fewest activation rows for which the GEMM on panels decoded from the groups beats
    // `run` (measured per ISA, see add_x86_packed); 0: the GEMM kernel's own min_m (measured
    // for the rows); k_gemm_never: `run` at every m.
    int64_t gemm_min_m = 0;
};

constexpr int64_t k_gemm_never = INT64_MAX;

// The scalar reference of a packed type (its `run` written from the layout alone; the layout
// functions are shared by every ISA), or null for a type without a packed layout.
const PackedKernel* packed_reference(GgmlType type);
const PackedKernel& packed_q4_0_reference();
const PackedKernel& packed_q4_k_reference();
const PackedKernel& packed_q5_k_reference();  // pack-q4_k.cpp
const PackedKernel& packed_q8_0_reference();
const PackedKernel& packed_q5_0_reference();
const PackedKernel& packed_q6_k_reference();

// Fill in the packed kernels of the x86 builds (packed-avx2.cpp, packed-avx512.cpp).
struct KernelTable;
void add_avx2_packed(KernelTable& t);
void add_avx512_packed(KernelTable& t);

}  // namespace edgeq::cpu
