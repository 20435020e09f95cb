// The GEMM panel (gemm.h) of a 32-value packed type (Q4_0, Q5_0, Q8_0): what every such
// decoder shares. Each block of a group starts with its 8 rows' FP16 scales; panel rows 0..7
// come from the first group, 8..15 from the second, and a second group past n_rows is zeros.
#pragma once

#include <cstdint>
#include <cstring>

#include "edgeq/core/half.h"
#include "gemm.h"
#include "packed.h"

namespace edgeq::cpu {
namespace {

// Calls body(blk, qs, sc) for each block of each present group: blk the packed block
// (block_bytes long), qs its group's 32 panel bytes of values 0..3 (values j..j+3 at
// qs + j * k_gemm_rows), sc its group's 8 panel scales, which body fills from blk's FP16 ones.
template <size_t block_bytes, typename Body>
inline void decode_panel_32(const uint8_t* groups, int n_rows, int64_t k, uint8_t* panel,
                            const Body& body) {
    const int64_t n_blocks = k / 32;
    auto* scale = reinterpret_cast<float*>(panel + k * k_gemm_rows);
    const int n_groups = n_rows > k_pack_rows ? 2 : 1;
    for (int g = 0; g < 2; ++g) {
        for (int64_t b = 0; b < n_blocks; ++b) {
            uint8_t* qs = panel + b * 32 * k_gemm_rows + 32 * g;
            float* sc = scale + b * k_gemm_rows + k_pack_rows * g;
            if (g >= n_groups) {
                for (int v = 0; v < 8; ++v) std::memset(qs + v * 4 * k_gemm_rows, 0, 32);
                std::memset(sc, 0, k_pack_rows * sizeof(float));
                continue;
            }
            body(groups + static_cast<size_t>(g * n_blocks + b) * block_bytes, qs, sc);
        }
    }
}

// The 8 FP16 scales at the start of a packed block as floats.
inline void scales_f16x8(const uint8_t* blk, float* sc) {
    for (int r = 0; r < k_pack_rows; ++r) {
        uint16_t d;
        std::memcpy(&d, blk + 2 * r, 2);
        sc[r] = fp16_to_fp32(d);
    }
}

}  // namespace
}  // namespace edgeq::cpu
