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
#include "packed-panel.h"
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

// acc + u (unsigned bytes) times the 4 signed bytes at p in every lane. With VNNI, the
// broadcast is vpdpbusd's embedded one ({1to8}): the compiler emits a separate vpbroadcastd
// for each, and the multi-row runs issue as many of those as vpdpbusd.
inline __m256i dot_us_add_bcast4(__m256i acc, __m256i u, const int8_t* p) {
#if EDGEQ_VNNI
    __asm__("vpdpbusd %2%{1to8%}, %1, %0"
            : "+v"(acc)
            : "v"(u), "m"(*reinterpret_cast<const int32_t*>(p)));
    return acc;
#else
    return dot_us_add(acc, u, bcast4(p));
#endif
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

// Lane r (of int32 or float lanes) all ones for r < n_rows: the panel holds zeros for the rows
// past the matrix's end, whatever their packed bytes are.
inline __m256i row_mask(int n_rows) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n_rows), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

inline void store(uint8_t* p, __m256i v) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v);
}

inline __m256 load_f16x8(const uint8_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
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
            prefetch_block<NA>(blk, 144);
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
                // Independent sums, so that vpdpbusd's latency does not stall: four for one
                // activation row, two each for several (whose rows interleave). The first
                // starts from the -8 offset of the codes. Integer sums are exact in any order.
                constexpr int S = NA == 1 ? 4 : 2;
                __m256i s[S];
                s[0] = _mm256_set1_epi32(-8 * y.sum);
                for (int v = 1; v < S; ++v) s[v] = _mm256_setzero_si256();
                for (int v = 0; v < 4; ++v) {
                    s[v % S] = dot_us_add_bcast4(s[v % S], lo[v], y.qs + 4 * v);
                    s[v % S] = dot_us_add_bcast4(s[v % S], hi[v], y.qs + 16 + 4 * v);
                }
                __m256i sum = s[0];
                for (int v = 1; v < S; ++v) sum = _mm256_add_epi32(sum, s[v]);
                acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum),
                                         _mm256_mul_ps(dw, _mm256_set1_ps(y.d)), acc[c]);
            }
        }
        for (int c = 0; c < NA; ++c) store_rows(acc[c], out + c * os, n_rows);
    }
    // The reference's panel (pack-q4_0.cpp): a chunk's low nibbles are its group's 32 panel
    // bytes of values 4v.., its high nibbles those of values 16 + 4v...
    static void decode_panel(const uint8_t* groups, int n_rows, int64_t k, uint8_t* panel) {
        decode_panel_32<144>(groups, n_rows, k, panel,
                             [](const uint8_t* blk, uint8_t* qs, float* sc) {
                                 const __m256i m4 = _mm256_set1_epi8(0x0f);
                                 _mm256_storeu_ps(sc, load_f16x8(blk));
                                 for (int v = 0; v < 4; ++v) {
                                     const __m256i bits = load(blk + 16 + 32 * v);
                                     store(qs + 4 * v * k_gemm_rows, _mm256_and_si256(bits, m4));
                                     store(qs + (16 + 4 * v) * k_gemm_rows,
                                           _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4));
                                 }
                             });
    }
};

}  // namespace
}  // namespace edgeq::cpu

#include "packed-q4_k-x86.h"

namespace edgeq::cpu {
namespace {
// Q8_0 (layout in pack-q8_0.cpp): each chunk is u = q + 128 for values 4v.. of all 8 rows.
// VNNI: vpdpbusd on u directly, less 128 * sum(a). AVX2: vpmaddubsw would saturate on u * a,
// so it multiplies |q| by a with q's sign (pair sums <= 2 * 128 * 127 fit int16).
struct PQ8_0 {
    template <int NA>
    static void run(int64_t k, const uint8_t* group, const uint8_t* a, size_t as, float* out,
                    int64_t os, int n_rows) {
        __m256 acc[NA];
        for (int c = 0; c < NA; ++c) acc[c] = _mm256_setzero_ps();
        for (int64_t b = 0; b < k / 32; ++b) {
            const uint8_t* blk = group + b * 272;
            prefetch_block<NA>(blk, 272);
            const __m256 dw =
                _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk)));
            const ActBlockQ8* y[NA];
            __m256i s[NA];
            for (int c = 0; c < NA; ++c) {
                y[c] = &act<ActBlockQ8>(a, as, c, b);
#if EDGEQ_VNNI
                s[c] = _mm256_set1_epi32(-128 * y[c]->sum);
#else
                s[c] = _mm256_setzero_si256();
#endif
            }
            for (int v = 0; v < 8; ++v) {
                const __m256i u = load(blk + 16 + 32 * v);
#if EDGEQ_VNNI
                for (int c = 0; c < NA; ++c) s[c] = dot_us_add_bcast4(s[c], u, y[c]->qs + 4 * v);
#else
                const __m256i q = _mm256_xor_si256(u, _mm256_set1_epi8(-128));
                const __m256i mag = _mm256_abs_epi8(q);
                for (int c = 0; c < NA; ++c)
                    s[c] = dot_us_add(s[c], mag, _mm256_sign_epi8(bcast4(y[c]->qs + 4 * v), q));
#endif
            }
            for (int c = 0; c < NA; ++c) {
                acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[c]),
                                         _mm256_mul_ps(dw, _mm256_set1_ps(y[c]->d)), acc[c]);
            }
        }
        for (int c = 0; c < NA; ++c) store_rows(acc[c], out + c * os, n_rows);
    }
    // The reference's panel (pack-q8_0.cpp) with the scales converted eight at a time: each
    // chunk is already its group's 32 panel bytes.
    static void decode_panel(const uint8_t* groups, int n_rows, int64_t k, uint8_t* panel) {
        decode_panel_32<272>(groups, n_rows, k, panel,
                             [](const uint8_t* blk, uint8_t* qs, float* sc) {
                                 _mm256_storeu_ps(sc, load_f16x8(blk));
                                 for (int v = 0; v < 8; ++v)
                                     store(qs + 4 * v * k_gemm_rows, load(blk + 16 + 32 * v));
                             });
    }
};
// Q5_0 (layout in pack-q5_0.cpp): Q4_0's chunks, plus 16 added to the bytes that a fifth-bits
// word marks (AVX-512: the word is a byte mask; AVX2: spread by bytes_from_bits).
struct PQ5_0 {
    static __m256i add_fifth_bits(__m256i nibbles, const uint8_t* word) {
        uint32_t bits;
        std::memcpy(&bits, word, 4);
#if EDGEQ_VNNI
        return _mm256_mask_add_epi8(nibbles, bits, nibbles, _mm256_set1_epi8(16));
#else
        return _mm256_or_si256(nibbles,
                               _mm256_and_si256(bytes_from_bits(bits), _mm256_set1_epi8(16)));
#endif
    }
    // Values 4v.. (lo) and 16 + 4v.. (hi) of the 8 rows of block blk, as u = q + 16.
    static void decode_chunk(const uint8_t* blk, int v, __m256i& lo, __m256i& hi) {
        const __m256i m4 = _mm256_set1_epi8(0x0f);
        const __m256i bits = load(blk + 48 + 32 * v);
        lo = add_fifth_bits(_mm256_and_si256(bits, m4), blk + 16 + 4 * v);
        hi = add_fifth_bits(_mm256_and_si256(_mm256_srli_epi16(bits, 4), m4), blk + 32 + 4 * v);
    }
    template <int NA>
    static void run(int64_t k, const uint8_t* group, const uint8_t* a, size_t as, float* out,
                    int64_t os, int n_rows) {
        __m256 acc[NA];
        for (int c = 0; c < NA; ++c) acc[c] = _mm256_setzero_ps();
        for (int64_t b = 0; b < k / 32; ++b) {
            const uint8_t* blk = group + b * 176;
            prefetch_block<NA>(blk, 176);
            const __m256 dw =
                _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk)));
            const ActBlockQ8* y[NA];
            __m256i s[NA];
            for (int c = 0; c < NA; ++c) {
                y[c] = &act<ActBlockQ8>(a, as, c, b);
                s[c] = _mm256_set1_epi32(-16 * y[c]->sum);
            }
            for (int v = 0; v < 4; ++v) {
                __m256i lo, hi;
                decode_chunk(blk, v, lo, hi);
                for (int c = 0; c < NA; ++c) {
                    s[c] = dot_us_add_bcast4(s[c], lo, y[c]->qs + 4 * v);
                    s[c] = dot_us_add_bcast4(s[c], hi, y[c]->qs + 16 + 4 * v);
                }
            }
            for (int c = 0; c < NA; ++c) {
                acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[c]),
                                         _mm256_mul_ps(dw, _mm256_set1_ps(y[c]->d)), acc[c]);
            }
        }
        for (int c = 0; c < NA; ++c) store_rows(acc[c], out + c * os, n_rows);
    }
    // The reference's panel (pack-q5_0.cpp), 32 values of 8 rows per vector.
    static void decode_panel(const uint8_t* groups, int n_rows, int64_t k, uint8_t* panel) {
        decode_panel_32<176>(groups, n_rows, k, panel,
                             [](const uint8_t* blk, uint8_t* qs, float* sc) {
                                 _mm256_storeu_ps(sc, load_f16x8(blk));
                                 for (int v = 0; v < 4; ++v) {
                                     __m256i lo, hi;
                                     decode_chunk(blk, v, lo, hi);
                                     store(qs + 4 * v * k_gemm_rows, lo);
                                     store(qs + (16 + 4 * v) * k_gemm_rows, hi);
                                 }
                             });
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

// The fewest activation rows for which the GEMM on panels decoded from the groups beats `run`
// (PackedKernel::gemm_min_m), measured on Zen 4 with 2 threads: matmul(PackedWeights) forced
// down each path on 5632x2048, 2048x5632 and 2048x2048, best of 15, m = 2..16, 20..32 (and
// 128..512 on AVX2). `run` reads each group once for up to four activation rows and needs no
// panel, so it holds out past the row kernels' min_m (4, 8; 16 on AVX2). Run's time over the
// GEMM's on the three shapes, at min_m - 1 and at min_m, with VNNI:
//   Q4_0  0.93 0.77 0.92 | 1.08 1.35 1.04     Q5_0  1.05 0.96 1.01 | 0.99 1.08 1.08
//   Q8_0  0.96 0.91 0.83 | 1.03 1.06 0.90     Q4_K  0.99 0.97 0.97 | 1.03 1.00 1.01
//   Q5_K  noisy 1.03 1.02 | noisy 1.09 1.08
// Those shapes stay in L3. In a whole model, whose weights come from memory, run holds out far
// longer for Q4_0 and Q4_K: TinyLlama 1.1B, a decoding step of m sequences (BatchSession, 2
// threads, best of 2-3), ms with the GEMM from min_m 7 / 16 against run:
//   Q4_0    m=8 64.6 / 44.4   m=12 74.8 / 57.0   m=16 88.9 / 74.4   m=24 114 / 105
//           m=32 140 / 135    m=48 194 / 200
//   Q4_K_M  m=16 95.5 / 84.1  m=24 123 / 111
// (Q8_0 at m=8: 55.9 / 58.7, no gain), so both take the GEMM from 32 rows.
// Without VNNI the GEMM's vpmaddubsw + vpmaddwd per chunk cost what run's do, and run stays
// ahead at every m for Q4_0 (0.88-0.98 up to 512 rows), Q4_K and Q5_K (0.8-1.0, noisier);
// Q5_0 crosses at 11 (0.96 0.98 1.00 | 1.02 1.02 1.06); Q8_0 has no AVX2 GEMM.
#if EDGEQ_VNNI
constexpr int64_t k_min_m_q4_0 = 32, k_min_m_q5_0 = 8, k_min_m_q8_0 = 10, k_min_m_q4_k = 32,
                  k_min_m_q5_k = 12;
#else
constexpr int64_t k_min_m_q4_0 = k_gemm_never, k_min_m_q5_0 = 11, k_min_m_q8_0 = 0,
                  k_min_m_q4_k = k_gemm_never, k_min_m_q5_k = k_gemm_never;
#endif

inline void add_x86_packed(KernelTable& t) {
    // The reference's layout functions with this build's runs.
    static const PackedKernel q4_0 = [] {
        PackedKernel p = packed_q4_0_reference();
        p.run = packed_run<PQ4_0>;
        p.decode_panel = PQ4_0::decode_panel;
        p.gemm_min_m = k_min_m_q4_0;
        return p;
    }();
    t.packed[type_index(GgmlType::Q4_0)] = &q4_0;
    static const PackedKernel q4_k = [] {
        PackedKernel p = packed_q4_k_reference();
        p.run = packed_run<PQx_K<false>>;
        p.decode_panel = PQx_K<false>::decode_panel;
        p.gemm_min_m = k_min_m_q4_k;
        return p;
    }();
    t.packed[type_index(GgmlType::Q4_K)] = &q4_k;
    static const PackedKernel q5_k = [] {
        PackedKernel p = packed_q5_k_reference();
        p.run = packed_run<PQx_K<true>>;
        p.decode_panel = PQx_K<true>::decode_panel;
        p.gemm_min_m = k_min_m_q5_k;
        return p;
    }();
    t.packed[type_index(GgmlType::Q5_K)] = &q5_k;
    static const PackedKernel q8_0 = [] {
        PackedKernel p = packed_q8_0_reference();
        p.run = packed_run<PQ8_0>;
        p.decode_panel = PQ8_0::decode_panel;
        p.gemm_min_m = k_min_m_q8_0;
        return p;
    }();
    t.packed[type_index(GgmlType::Q8_0)] = &q8_0;
    static const PackedKernel q5_0 = [] {
        PackedKernel p = packed_q5_0_reference();
        p.run = packed_run<PQ5_0>;
        p.decode_panel = PQ5_0::decode_panel;
        p.gemm_min_m = k_min_m_q5_0;
        return p;
    }();
    t.packed[type_index(GgmlType::Q5_0)] = &q5_0;
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
