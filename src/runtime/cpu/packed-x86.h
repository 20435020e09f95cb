// The x86 runs of the packed layouts (packed.h), written once for 256-bit vectors and compiled
// twice: packed-avx2.cpp (EDGEQ_VNNI 0) and packed-avx512.cpp (EDGEQ_VNNI 1). Each run<NA>
// decodes a block of the group's 8 rows once and uses it for NA activation rows; one int32 or
// float lane per weight row throughout, so a row's result never needs a horizontal sum.
//
// Include only from those two files, after defining EDGEQ_VNNI.
#pragma once

#include <immintrin.h>

#include <cstring>

#include "../../quant/blocks.h"
#include "gemm.h"
#include "packed.h"
#include "simd-x86.h"
#include "vec-dot.h"

namespace edgeq::cpu {
namespace {

inline __m256i bcast4(const int8_t* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

// Stores the first n_rows lanes of v at out.
inline void store_rows(__m256 v, float* out, int n_rows) {
    if (n_rows == k_pack_rows) {
        _mm256_storeu_ps(out, v);
    } else {
        alignas(32) float tmp[k_pack_rows];
        _mm256_store_ps(tmp, v);
        std::memcpy(out, tmp, static_cast<size_t>(n_rows) * sizeof(float));
    }
}

// Q4_0 (layout in pack-q4_0.cpp): per block, the scales convert as one vector and each chunk's
// nibbles give values 4v.. (low) and 16 + 4v.. (high) of all 8 rows.
struct PQ4_0 {
    template <int NA>
    static void run(int64_t k, const uint8_t* group, const uint8_t* a, size_t as, float* out,
                    int64_t os, int n_rows) {
        const __m256i m4 = _mm256_set1_epi8(0x0f);
        __m256 acc[NA];
        for (int c = 0; c < NA; ++c) acc[c] = _mm256_setzero_ps();
        for (int64_t b = 0; b < k / 32; ++b) {
            const uint8_t* blk = group + b * 144;
            const __m256 dw =
                _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk)));
            __m256i lo[4], hi[4];
            for (int v = 0; v < 4; ++v) {
                const __m256i bits = load(blk + 16 + 32 * v);
                lo[v] = _mm256_and_si256(bits, m4);
                hi[v] = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
            }
            for (int c = 0; c < NA; ++c) {
                const ActBlockQ8& y = act<ActBlockQ8>(a, as, c, b);
                __m256i s = _mm256_set1_epi32(-8 * y.sum);
                for (int v = 0; v < 4; ++v) {
                    s = dot_us_add(s, lo[v], bcast4(y.qs + 4 * v));
                    s = dot_us_add(s, hi[v], bcast4(y.qs + 16 + 4 * v));
                }
                acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s),
                                         _mm256_mul_ps(dw, _mm256_set1_ps(y.d)), acc[c]);
            }
        }
        for (int c = 0; c < NA; ++c) store_rows(acc[c], out + c * os, n_rows);
    }
};

#include "packed-q6_k-x86.h"

template <typename P>
void packed_run(int64_t k, const uint8_t* group, const uint8_t* a, size_t as, int n_acts,
                float* out, int64_t os, int n_rows) {
    static_assert(k_max_acts == 4);
    switch (n_acts) {
        case 1:
            return P::template run<1>(k, group, a, as, out, os, n_rows);
        case 2:
            return P::template run<2>(k, group, a, as, out, os, n_rows);
        case 3:
            return P::template run<3>(k, group, a, as, out, os, n_rows);
        default:
            return P::template run<4>(k, group, a, as, out, os, n_rows);
    }
}

inline void add_x86_packed(KernelTable& t) {
    // The reference's layout functions with this build's runs.
    static const PackedKernel q4_0 = [] {
        PackedKernel p = packed_q4_0_reference();
        p.run = packed_run<PQ4_0>;
        return p;
    }();
    t.packed[type_index(GgmlType::Q4_0)] = &q4_0;
    static const PackedKernel q6_k = [] {
        PackedKernel p = packed_q6_k_reference();
        p.run = packed_run<PQ6_K>;
        p.decode_panel = decode_panel_q6_k;
        return p;
    }();
    t.packed[type_index(GgmlType::Q6_K)] = &q6_k;
}

}  // namespace
}  // namespace edgeq::cpu
