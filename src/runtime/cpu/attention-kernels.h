// The tile kernels behind edgeq/runtime/cpu/attention.h. attention.cpp converts a tile of cache
// positions to floats and holds the reference kernel; attention-avx2.cpp and
// attention-avx512.cpp (one source, attention-x86.h) the vector ones.
#pragma once

#include <cstdint>

#include "edgeq/runtime/cpu/attention.h"

namespace edgeq::cpu {

// One tile: n_cols cache positions (columns) against n_rows query rows.
struct TileJob {
    const float* const* q;  // n_rows rows of dk floats
    int32_t n_rows, dk, dv_pad, n_cols;
    const int32_t* lo;  // row r attends to columns [lo[r], hi[r]); none when lo[r] >= hi[r]
    const int32_t* hi;
    const float* kt;  // dk x k_attention_tile: kt[d * k_attention_tile + j], 0 for j >= n_cols
    const float* vt;  // n_cols x dv_pad
    float scale, softcap;
    float* scores;  // n_rows x k_attention_tile, scratch
    float* corr;    // n_rows, scratch
    float* max;     // n_rows running maxima (-inf before the first tile)
    float* sum;     // n_rows running denominators
    float* acc;     // n_rows x dv_pad unnormalised outputs
};

// Folds the tile into each row's running state (max, sum, acc).
using TileFn = void (*)(const TileJob& job);

// Null when this CPU lacks the ISA.
TileFn attention_tile_avx2();
TileFn attention_tile_avx512();

}  // namespace edgeq::cpu
