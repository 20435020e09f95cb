// The tile kernels behind edgeq/runtime/cpu/attention.h. attention.cpp converts a tile of cache
// positions to floats (a row at a time, or with the x86 F16 loader) and holds the reference
// kernel; attention-avx2.cpp and attention-avx512.cpp (one source, attention-x86.h) the vector
// ones.
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

// Writes the tile's keys (kt: dk x k_attention_tile, transposed, columns n_cols.. zero) and
// values (vt: n_cols rows of dv floats, dv_pad apart) from positions [t0, t0 + n_cols) of one
// head's cache rows (k_rows, v_rows: that head's first row; pos_stride bytes between positions).
struct TileLoad {
    const uint8_t* k_rows;
    const uint8_t* v_rows;
    size_t k_pos_stride, v_pos_stride;
    int32_t t0, n_cols, dk, dv, dv_pad;
    float* kt;
    float* vt;
};
using LoadTileFn = void (*)(const TileLoad& load);

// Null when this CPU lacks the ISA.
TileFn attention_tile_avx2();
TileFn attention_tile_avx512();
// F16 caches: eight positions converted and transposed at once. Null without AVX2 + F16C.
LoadTileFn attention_load_f16_avx2();

}  // namespace edgeq::cpu
