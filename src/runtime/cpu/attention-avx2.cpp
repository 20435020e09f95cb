// The attention tile kernel with AVX2 + FMA (8 floats a vector); see attention-x86.h. And the
// F16 cache's tile loader (AVX2 + F16C), which the AVX-512 kernel takes too.
#define EDGEQ_SIMD_WIDTH 8
#include <algorithm>

#include "attention-x86.h"

namespace edgeq::cpu {
namespace {

// The tile from an F16 cache: keys eight positions by eight dimensions at a time, converted
// (exactly) and transposed in registers; a position past n_cols reads as zeros.
void load_tile_f16(const TileLoad& t) {
    const auto row = [&](const uint8_t* base, size_t stride, int32_t j) {
        return reinterpret_cast<const uint16_t*>(base + static_cast<size_t>(t.t0 + j) * stride);
    };
    const int32_t d8 = t.dk / 8 * 8;
    for (int32_t j0 = 0; j0 < k_attention_tile; j0 += 8) {
        const int32_t n = std::min(8, t.n_cols - j0);
        if (n <= 0) {
            for (int32_t d = 0; d < t.dk; ++d)
                _mm256_storeu_ps(t.kt + d * k_attention_tile + j0, _mm256_setzero_ps());
            continue;
        }
        const uint16_t* k[8];
        for (int32_t i = 0; i < 8; ++i)
            k[i] = i < n ? row(t.k_rows, t.k_pos_stride, j0 + i) : nullptr;
        for (int32_t d0 = 0; d0 < d8; d0 += 8) {
            __m256 r[8];
            for (int i = 0; i < 8; ++i)
                r[i] = k[i] != nullptr ? _mm256_cvtph_ps(_mm_loadu_si128(
                                             reinterpret_cast<const __m128i*>(k[i] + d0)))
                                       : _mm256_setzero_ps();
            // 8 x 8 transpose: pairs, then quads, then halves.
            __m256 a[8], b[8];
            for (int i = 0; i < 8; i += 2) {
                a[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
                a[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
            }
            for (int i = 0; i < 8; i += 4) {
                for (int h = 0; h < 2; ++h) {
                    b[i + h] = _mm256_shuffle_ps(a[i + h], a[i + 2 + h], 0x44);
                    b[i + 2 + h] = _mm256_shuffle_ps(a[i + h], a[i + 2 + h], 0xee);
                }
            }
            // b[0..3]: dims d0 + {0, 2, 1, 3} (and + 4 in the high halves) of rows 0..3; b[4..7]
            // the same of rows 4..7.
            constexpr int dim_of[4] = {0, 2, 1, 3};
            for (int q = 0; q < 4; ++q) {
                const int d = dim_of[q];
                float* lo = t.kt + (d0 + d) * k_attention_tile + j0;
                float* hi = t.kt + (d0 + d + 4) * k_attention_tile + j0;
                _mm256_storeu_ps(lo, _mm256_permute2f128_ps(b[q], b[q + 4], 0x20));
                _mm256_storeu_ps(hi, _mm256_permute2f128_ps(b[q], b[q + 4], 0x31));
            }
        }
        for (int32_t d = d8; d < t.dk; ++d)
            for (int32_t i = 0; i < 8; ++i)
                t.kt[d * k_attention_tile + j0 + i] = k[i] != nullptr ? _cvtsh_ss(k[i][d]) : 0.0f;
    }
    const int32_t dv8 = t.dv / 8 * 8;
    for (int32_t j = 0; j < t.n_cols; ++j) {
        const uint16_t* v = row(t.v_rows, t.v_pos_stride, j);
        float* out = t.vt + static_cast<size_t>(j) * static_cast<size_t>(t.dv_pad);
        for (int32_t d = 0; d < dv8; d += 8)
            _mm256_storeu_ps(
                out + d, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(v + d))));
        for (int32_t d = dv8; d < t.dv; ++d) out[d] = _cvtsh_ss(v[d]);
    }
}

}  // namespace

TileFn attention_tile_avx2() {
    const CpuFeatures& f = cpu_features();
    return f.avx2 && f.fma ? tile_simd : nullptr;
}

LoadTileFn attention_load_f16_avx2() {
    const CpuFeatures& f = cpu_features();
    return f.avx2 && f.f16c ? load_tile_f16 : nullptr;
}

}  // namespace edgeq::cpu
