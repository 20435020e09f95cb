// The x86 kernels, written once for 256-bit vectors and compiled twice: vec-dot-avx2.cpp
// (EDGEQ_VNNI 0: u8 x s8 products by vpmaddubsw + vpmaddwd) and vec-dot-avx512.cpp
// (EDGEQ_VNNI 1: vpdpbusd / vpdpwssd, AVX-512 mask moves). On Zen 4, 512-bit operations run as
// two 256-bit halves, so 256-bit kernels with VNNI lose little against 512-bit ones.
//
// Include only from those two files, after defining EDGEQ_VNNI; everything here has internal
// linkage, so the two builds do not collide.
//
// Each kernel is a struct whose run<NA>() dots one weight row with NA activation rows: the
// weight block is decoded once and used NA times. Every activation row's result is computed
// by the same operations in the same order whatever NA is.
#pragma once

#include <immintrin.h>

#include <cstring>
#include <type_traits>

#include "../../quant/blocks.h"
#include "simd-x86.h"
#include "vec-dot.h"

#ifndef EDGEQ_VNNI
#error "define EDGEQ_VNNI before including vec-dot-x86.h"
#endif

namespace edgeq::cpu {
namespace {

using namespace edgeq::quant;

// ---- 32-value formats --------------------------------------------------------------------------

// Q4_0: q in 0..15 unsigned against signed activations; the offset 8 comes off through the
// activation sum (subtracted once from each of the 8 lanes: 8 * sum).
struct KQ4_0 {
    template <int NA>
    static void run(int64_t n, const void* w, const uint8_t* a, size_t as, float* out, int64_t os) {
        const auto* x = static_cast<const BlockQ4_0*>(w);
        __m256 acc[NA];
        for (int c = 0; c < NA; ++c) acc[c] = _mm256_setzero_ps();
        for (int64_t b = 0; b < n / 32; ++b) {
            const __m256i q = unpack_nibbles(x[b].qs);
            const float dw = f16(x[b].d);
            for (int c = 0; c < NA; ++c) {
                const ActBlockQ8& y = act<ActBlockQ8>(a, as, c, b);
                const __m256i p = _mm256_sub_epi32(dot_us(q, load(y.qs)), _mm256_set1_epi32(y.sum));
                acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw * y.d), acc[c]);
            }
        }
        for (int c = 0; c < NA; ++c) out[c * os] = hsum(acc[c]);
    }
};

// Q5_0: the fifth bit from qh, offset 16 (2 * sum per lane).
struct KQ5_0 {
    template <int NA>
    static void run(int64_t n, const void* w, const uint8_t* a, size_t as, float* out, int64_t os) {
        const auto* x = static_cast<const BlockQ5_0*>(w);
        __m256 acc[NA];
        for (int c = 0; c < NA; ++c) acc[c] = _mm256_setzero_ps();
        for (int64_t b = 0; b < n / 32; ++b) {
            uint32_t qh;
            std::memcpy(&qh, x[b].qh, 4);
            const __m256i q =
                _mm256_or_si256(unpack_nibbles(x[b].qs),
                                _mm256_and_si256(bytes_from_bits(qh), _mm256_set1_epi8(16)));
            const float dw = f16(x[b].d);
            for (int c = 0; c < NA; ++c) {
                const ActBlockQ8& y = act<ActBlockQ8>(a, as, c, b);
                const __m256i p =
                    _mm256_sub_epi32(dot_us(q, load(y.qs)), _mm256_set1_epi32(2 * y.sum));
                acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw * y.d), acc[c]);
            }
        }
        for (int c = 0; c < NA; ++c) out[c * os] = hsum(acc[c]);
    }
};

// Q4_1 and Q5_1: unsigned q; the minimum times the activation sum, accumulated apart.
template <bool five_bits>
struct KQx_1 {
    template <int NA>
    static void run(int64_t n, const void* w, const uint8_t* a, size_t as, float* out, int64_t os) {
        using Block = std::conditional_t<five_bits, BlockQ5_1, BlockQ4_1>;
        const auto* x = static_cast<const Block*>(w);
        __m256 acc[NA];
        float min_sum[NA];
        for (int c = 0; c < NA; ++c) {
            acc[c] = _mm256_setzero_ps();
            min_sum[c] = 0;
        }
        for (int64_t b = 0; b < n / 32; ++b) {
            __m256i q = unpack_nibbles(x[b].qs);
            if constexpr (five_bits) {
                uint32_t qh;
                std::memcpy(&qh, x[b].qh, 4);
                q = _mm256_or_si256(q, _mm256_and_si256(bytes_from_bits(qh), _mm256_set1_epi8(16)));
            }
            const float dw = f16(x[b].d);
            const float mw = f16(x[b].m);
            for (int c = 0; c < NA; ++c) {
                const ActBlockQ8& y = act<ActBlockQ8>(a, as, c, b);
                acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_us(q, load(y.qs))),
                                         _mm256_set1_ps(dw * y.d), acc[c]);
                min_sum[c] += mw * y.d * static_cast<float>(y.sum);
            }
        }
        for (int c = 0; c < NA; ++c) out[c * os] = hsum(acc[c]) + min_sum[c];
    }
};

// Q8_0 and IQ4_NL: signed weights; |w| against the activations with w's sign.
template <bool iq4>
struct KSigned32 {
    template <int NA>
    static void run(int64_t n, const void* w, const uint8_t* a, size_t as, float* out, int64_t os) {
        __m256 acc[NA];
        for (int c = 0; c < NA; ++c) acc[c] = _mm256_setzero_ps();
        const __m256i grid = _mm256_broadcastsi128_si256(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(k_iq4_grid)));
        for (int64_t b = 0; b < n / 32; ++b) {
            __m256i q;
            float dw;
            if constexpr (iq4) {
                const auto& blk = static_cast<const BlockIQ4_NL*>(w)[b];
                q = _mm256_shuffle_epi8(grid, unpack_nibbles(blk.qs));
                dw = f16(blk.d);
            } else {
                const auto& blk = static_cast<const BlockQ8_0*>(w)[b];
                q = load(blk.qs);
                dw = f16(blk.d);
            }
            const __m256i aq = _mm256_abs_epi8(q);
            for (int c = 0; c < NA; ++c) {
                const ActBlockQ8& y = act<ActBlockQ8>(a, as, c, b);
                const __m256i p = dot_us(aq, _mm256_sign_epi8(load(y.qs), q));
                acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw * y.d), acc[c]);
            }
        }
        for (int c = 0; c < NA; ++c) out[c * os] = hsum(acc[c]);
    }
};

// ---- 256-value formats with Q8_K activations ---------------------------------------------------

// Q4_K and Q5_K: eight sub-blocks of 32, unsigned q times a six-bit scale, minus six-bit mins
// times the activation sums.
template <bool five_bits>
struct KQx_K {
    template <int NA>
    static void run(int64_t n, const void* w, const uint8_t* a, size_t as, float* out, int64_t os) {
        using Block = std::conditional_t<five_bits, BlockQ5_K, BlockQ4_K>;
        const auto* x = static_cast<const Block*>(w);
        const __m256i m4 = _mm256_set1_epi8(0x0f);
        __m256 acc[NA];
        __m128 acc_m[NA];
        for (int c = 0; c < NA; ++c) {
            acc[c] = _mm256_setzero_ps();
            acc_m[c] = _mm_setzero_ps();
        }
        for (int64_t b = 0; b < n / k_qk_k; ++b) {
            const Block& blk = x[b];
            // The 8 scales and 8 mins as bytes (see src/quant/k-scales.h for the packing).
            uint32_t u[3];
            std::memcpy(u, blk.scales, 12);
            const uint32_t sc_lo = u[0] & 0x3f3f3f3f;
            const uint32_t m_lo = u[1] & 0x3f3f3f3f;
            const uint32_t sc_hi = (u[2] & 0x0f0f0f0f) | (((u[0] >> 6) & 0x03030303) << 4);
            const uint32_t m_hi = ((u[2] >> 4) & 0x0f0f0f0f) | (((u[1] >> 6) & 0x03030303) << 4);
            const __m256i sm16 = _mm256_cvtepu8_epi16(
                _mm_set_epi32(static_cast<int>(m_hi), static_cast<int>(m_lo),
                              static_cast<int>(sc_hi), static_cast<int>(sc_lo)));
            const __m128i mins16 = _mm256_extracti128_si256(sm16, 1);
            const __m256i scales = _mm256_permute2x128_si256(sm16, sm16, 0x00);
            const float d = f16(blk.d);
            const float dmin = f16(blk.dmin);

            __m256i sumi[NA];
            for (int c = 0; c < NA; ++c) sumi[c] = _mm256_setzero_si256();
            __m256i hbits;
            if constexpr (five_bits) hbits = load(blk.qh);
            for (int j = 0; j < 4; ++j) {
                const __m256i bits = load(blk.qs + 32 * j);
                __m256i lo = _mm256_and_si256(bits, m4);
                __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
                if constexpr (five_bits) {
                    // Bit 2j of qh[l] (then 2j + 1) is bit 4 of the value; shift it into place.
                    const __m256i b16 = _mm256_set1_epi8(16);
                    lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16(hbits, 4), b16));
                    hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16(hbits, 3), b16));
                    hbits = _mm256_srli_epi16(hbits, 2);
                }
                const __m256i s_lo = broadcast16(scales, 2 * j);
                const __m256i s_hi = broadcast16(scales, 2 * j + 1);
                for (int c = 0; c < NA; ++c) {
                    const BlockQ8_K& y = act<BlockQ8_K>(a, as, c, b);
                    sumi[c] = dot_us_scaled(sumi[c], lo, load(y.qs + 64 * j), s_lo);
                    sumi[c] = dot_us_scaled(sumi[c], hi, load(y.qs + 64 * j + 32), s_hi);
                }
            }
            for (int c = 0; c < NA; ++c) {
                const BlockQ8_K& y = act<BlockQ8_K>(a, as, c, b);
                const __m256i bs = load(y.bsums);
                const __m128i pairs =
                    _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
                const __m128i mins = _mm_madd_epi16(pairs, mins16);
                acc[c] =
                    _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi[c]), _mm256_set1_ps(d * y.d), acc[c]);
                acc_m[c] = _mm_fmadd_ps(_mm_cvtepi32_ps(mins), _mm_set1_ps(dmin * y.d), acc_m[c]);
            }
        }
        for (int c = 0; c < NA; ++c) out[c * os] = hsum(acc[c]) - hsum128(acc_m[c]);
    }
};

// Q6_K: sixteen sub-blocks of 16, q in 0..63 with offset 32 (taken off through the sums).
struct KQ6_K {
    template <int NA>
    static void run(int64_t n, const void* w, const uint8_t* a, size_t as, float* out, int64_t os) {
        const auto* x = static_cast<const BlockQ6_K*>(w);
        const __m256i m4 = _mm256_set1_epi8(0x0f);
        const __m256i m2 = _mm256_set1_epi8(0x30);
        __m256 acc[NA];
        for (int c = 0; c < NA; ++c) acc[c] = _mm256_setzero_ps();
        for (int64_t b = 0; b < n / k_qk_k; ++b) {
            const BlockQ6_K& blk = x[b];
            const __m256i sc16 =
                _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.scales)));
            const __m256i sc_half[2] = {_mm256_permute2x128_si256(sc16, sc16, 0x00),
                                        _mm256_permute2x128_si256(sc16, sc16, 0x11)};
            __m256i sumi[NA];
            for (int c = 0; c < NA; ++c) sumi[c] = _mm256_setzero_si256();
            for (int h = 0; h < 2; ++h) {
                const __m256i ql0 = load(blk.ql + 64 * h);
                const __m256i ql1 = load(blk.ql + 64 * h + 32);
                const __m256i qh = load(blk.qh + 32 * h);
                const __m256i q[4] = {
                    _mm256_or_si256(_mm256_and_si256(ql0, m4),
                                    _mm256_and_si256(_mm256_slli_epi16(qh, 4), m2)),
                    _mm256_or_si256(_mm256_and_si256(ql1, m4),
                                    _mm256_and_si256(_mm256_slli_epi16(qh, 2), m2)),
                    _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                                    _mm256_and_si256(qh, m2)),
                    _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                                    _mm256_and_si256(_mm256_srli_epi16(qh, 2), m2)),
                };
                for (int k = 0; k < 4; ++k) {
                    const __m256i s = broadcast16_pair(sc_half[h], 2 * k);
                    for (int c = 0; c < NA; ++c) {
                        const BlockQ8_K& y = act<BlockQ8_K>(a, as, c, b);
                        sumi[c] = dot_us_scaled(sumi[c], q[k], load(y.qs + 128 * h + 32 * k), s);
                    }
                }
            }
            const float d = f16(blk.d);
            for (int c = 0; c < NA; ++c) {
                const BlockQ8_K& y = act<BlockQ8_K>(a, as, c, b);
                const __m256i offset = _mm256_slli_epi32(_mm256_madd_epi16(sc16, load(y.bsums)), 5);
                acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(sumi[c], offset)),
                                         _mm256_set1_ps(d * y.d), acc[c]);
            }
        }
        for (int c = 0; c < NA; ++c) out[c * os] = hsum(acc[c]);
    }
};

// Q2_K (scale and min per 16) and Q3_K (signed scale per 16, q - 4 unless the high bit is set):
// the two-bit fields of qs, laid out alike.
template <bool q3>
struct KQ23_K {
    template <int NA>
    static void run(int64_t n, const void* w, const uint8_t* a, size_t as, float* out, int64_t os) {
        using Block = std::conditional_t<q3, BlockQ3_K, BlockQ2_K>;
        const auto* x = static_cast<const Block*>(w);
        const __m256i m3 = _mm256_set1_epi8(3);
        __m256 acc[NA];
        for (int c = 0; c < NA; ++c) acc[c] = _mm256_setzero_ps();
        for (int64_t b = 0; b < n / k_qk_k; ++b) {
            const Block& blk = x[b];
            __m256i sc16;   // 16 sub-block scales
            __m256i off16;  // what multiplies each sub-block's activation sum
            float d, dmin;
            if constexpr (q3) {
                alignas(32) int16_t sc[16];
                for (int j = 0; j < 16; ++j) {
                    const int low = j < 8 ? blk.scales[j] & 0x0f : blk.scales[j - 8] >> 4;
                    const int high = (blk.scales[8 + j % 4] >> (2 * (j / 4))) & 3;
                    sc[j] = static_cast<int16_t>((low | (high << 4)) - 32);
                }
                sc16 = _mm256_load_si256(reinterpret_cast<const __m256i*>(sc));
                off16 = _mm256_slli_epi16(sc16, 2);  // q = u - 4: 4 * scale * sum
                d = f16(blk.d);
                dmin = d;
            } else {
                const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.scales));
                const __m128i lo = _mm_and_si128(raw, _mm_set1_epi8(0x0f));
                sc16 = _mm256_cvtepu8_epi16(lo);
                off16 = _mm256_cvtepu8_epi16(
                    _mm_and_si128(_mm_srli_epi16(raw, 4), _mm_set1_epi8(0x0f)));
                d = f16(blk.d);
                dmin = f16(blk.dmin);
            }
            const __m256i sc_half[2] = {_mm256_permute2x128_si256(sc16, sc16, 0x00),
                                        _mm256_permute2x128_si256(sc16, sc16, 0x11)};
            __m256i sumi[NA];
            for (int c = 0; c < NA; ++c) sumi[c] = _mm256_setzero_si256();
            __m256i hbits;
            if constexpr (q3) hbits = load(reinterpret_cast<const BlockQ3_K&>(blk).hmask);
            for (int h = 0; h < 2; ++h) {
                const __m256i bits = load(blk.qs + 32 * h);
                for (int k = 0; k < 4; ++k) {
                    __m256i q = _mm256_and_si256(_mm256_srli_epi16(bits, 2 * k), m3);
                    if constexpr (q3) {
                        q = _mm256_or_si256(
                            q, _mm256_and_si256(_mm256_slli_epi16(hbits, 2), _mm256_set1_epi8(4)));
                        hbits = _mm256_srli_epi16(hbits, 1);
                    }
                    const __m256i s = broadcast16_pair(sc_half[h], 2 * k);
                    for (int c = 0; c < NA; ++c) {
                        const BlockQ8_K& y = act<BlockQ8_K>(a, as, c, b);
                        sumi[c] = dot_us_scaled(sumi[c], q, load(y.qs + 128 * h + 32 * k), s);
                    }
                }
            }
            for (int c = 0; c < NA; ++c) {
                const BlockQ8_K& y = act<BlockQ8_K>(a, as, c, b);
                const __m256i offs = _mm256_madd_epi16(off16, load(y.bsums));
                if constexpr (q3) {
                    acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(sumi[c], offs)),
                                             _mm256_set1_ps(d * y.d), acc[c]);
                } else {
                    acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi[c]), _mm256_set1_ps(d * y.d),
                                             acc[c]);
                    acc[c] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(offs), _mm256_set1_ps(dmin * y.d),
                                              acc[c]);
                }
            }
        }
        for (int c = 0; c < NA; ++c) out[c * os] = hsum(acc[c]);
    }
};

// IQ4_XS: eight sub-blocks of 32 on the IQ4 grid, signed six-bit scales.
struct KIQ4_XS {
    template <int NA>
    static void run(int64_t n, const void* w, const uint8_t* a, size_t as, float* out, int64_t os) {
        const auto* x = static_cast<const BlockIQ4_XS*>(w);
        const __m256i grid = _mm256_broadcastsi128_si256(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(k_iq4_grid)));
        __m256 acc[NA];
        for (int c = 0; c < NA; ++c) acc[c] = _mm256_setzero_ps();
        for (int64_t b = 0; b < n / k_qk_k; ++b) {
            const BlockIQ4_XS& blk = x[b];
            __m256i sumi[NA];
            for (int c = 0; c < NA; ++c) sumi[c] = _mm256_setzero_si256();
            for (int j = 0; j < 8; ++j) {
                const int low = (blk.scales_l[j / 2] >> (4 * (j % 2))) & 0x0f;
                const int high = (blk.scales_h >> (2 * j)) & 3;
                const __m256i s = _mm256_set1_epi16(static_cast<int16_t>((low | (high << 4)) - 32));
                const __m256i q = _mm256_shuffle_epi8(grid, unpack_nibbles(blk.qs + 16 * j));
                const __m256i aq = _mm256_abs_epi8(q);
                for (int c = 0; c < NA; ++c) {
                    const BlockQ8_K& y = act<BlockQ8_K>(a, as, c, b);
                    sumi[c] =
                        dot_us_scaled(sumi[c], aq, _mm256_sign_epi8(load(y.qs + 32 * j), q), s);
                }
            }
            const float d = f16(blk.d);
            for (int c = 0; c < NA; ++c) {
                const BlockQ8_K& y = act<BlockQ8_K>(a, as, c, b);
                acc[c] =
                    _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi[c]), _mm256_set1_ps(d * y.d), acc[c]);
            }
        }
        for (int c = 0; c < NA; ++c) out[c * os] = hsum(acc[c]);
    }
};

// TQ2_0: q - 1 with q in 0..2, laid out as Q2_K.
struct KTQ2_0 {
    template <int NA>
    static void run(int64_t n, const void* w, const uint8_t* a, size_t as, float* out, int64_t os) {
        const auto* x = static_cast<const BlockTQ2_0*>(w);
        const __m256i m3 = _mm256_set1_epi8(3);
        __m256 acc[NA];
        for (int c = 0; c < NA; ++c) acc[c] = _mm256_setzero_ps();
        for (int64_t b = 0; b < n / k_qk_k; ++b) {
            __m256i sumi[NA];
            for (int c = 0; c < NA; ++c) sumi[c] = _mm256_setzero_si256();
            for (int h = 0; h < 2; ++h) {
                const __m256i bits = load(x[b].qs + 32 * h);
                for (int k = 0; k < 4; ++k) {
                    const __m256i q = _mm256_and_si256(_mm256_srli_epi16(bits, 2 * k), m3);
                    for (int c = 0; c < NA; ++c) {
                        const BlockQ8_K& y = act<BlockQ8_K>(a, as, c, b);
                        sumi[c] = dot_us_add(sumi[c], q, load(y.qs + 128 * h + 32 * k));
                    }
                }
            }
            const float d = f16(x[b].d);
            for (int c = 0; c < NA; ++c) {
                const BlockQ8_K& y = act<BlockQ8_K>(a, as, c, b);
                const __m256i sums = _mm256_madd_epi16(load(y.bsums), _mm256_set1_epi16(1));
                acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(sumi[c], sums)),
                                         _mm256_set1_ps(d * y.d), acc[c]);
            }
        }
        for (int c = 0; c < NA; ++c) out[c * os] = hsum(acc[c]);
    }
};

// ---- float formats -----------------------------------------------------------------------------

enum class FloatKind { f32, f16, bf16 };

template <FloatKind kind>
inline __m256 load8(const void* w, int64_t j) {
    if constexpr (kind == FloatKind::f32) {
        return _mm256_loadu_ps(static_cast<const float*>(w) + j);
    } else {
        const __m128i h =
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(w) + j));
        if constexpr (kind == FloatKind::f16) return _mm256_cvtph_ps(h);
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
}

template <FloatKind kind>
inline float scalar_at(const void* w, int64_t j) {
    if constexpr (kind == FloatKind::f32) return static_cast<const float*>(w)[j];
    const uint16_t h = static_cast<const uint16_t*>(w)[j];
    if constexpr (kind == FloatKind::f16) return _cvtsh_ss(h);
    uint32_t u = static_cast<uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

template <FloatKind kind>
struct KFloat {
    template <int NA>
    static void run(int64_t n, const void* w, const uint8_t* a, size_t as, float* out, int64_t os) {
        __m256 acc0[NA], acc1[NA];
        for (int c = 0; c < NA; ++c) acc0[c] = acc1[c] = _mm256_setzero_ps();
        const auto row = [&](int c) {
            return reinterpret_cast<const float*>(a + static_cast<size_t>(c) * as);
        };
        int64_t j = 0;
        for (; j + 16 <= n; j += 16) {
            const __m256 w0 = load8<kind>(w, j);
            const __m256 w1 = load8<kind>(w, j + 8);
            for (int c = 0; c < NA; ++c) {
                acc0[c] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(row(c) + j), acc0[c]);
                acc1[c] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(row(c) + j + 8), acc1[c]);
            }
        }
        for (int c = 0; c < NA; ++c) {
            float sum = hsum(_mm256_add_ps(acc0[c], acc1[c]));
            for (int64_t t = j; t < n; ++t) sum += scalar_at<kind>(w, t) * row(c)[t];
            out[c * os] = sum;
        }
    }
};

// ---- activation quantizers (the same bits as the scalar ones) -----------------------------------

inline float hmax(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
}

inline __m256 abs_ps(__m256 v) {
    return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v);
}

// 32 floats times `scale`, rounded to nearest even, as 32 int8 in order; sets *sum.
inline __m256i round_pack(const float* x, __m256 scale) {
    const __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x), scale));
    const __m256i i1 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8), scale));
    const __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 16), scale));
    const __m256i i3 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 24), scale));
    const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
    const __m256i q = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    return _mm256_max_epi8(q, _mm256_set1_epi8(-127));
}

// Sums of the two groups of 16 int8 in q.
inline void sums16(__m256i q, int16_t* out) {
    const __m256i s =
        _mm256_sad_epu8(_mm256_xor_si256(q, _mm256_set1_epi8(-128)), _mm256_setzero_si256());
    alignas(32) int64_t v[4];
    _mm256_store_si256(reinterpret_cast<__m256i*>(v), s);
    out[0] = static_cast<int16_t>(v[0] + v[1] - 16 * 128);
    out[1] = static_cast<int16_t>(v[2] + v[3] - 16 * 128);
}

void quantize_q8_x86(const float* x, void* dst, int64_t n) {
    auto* out = static_cast<ActBlockQ8*>(dst);
    for (int64_t b = 0; b < n / 32; ++b, x += 32) {
        __m256 m = abs_ps(_mm256_loadu_ps(x));
        for (int j = 8; j < 32; j += 8) m = _mm256_max_ps(m, abs_ps(_mm256_loadu_ps(x + j)));
        const float amax = hmax(m);
        const float id = amax != 0 ? 127 / amax : 0.0f;
        const __m256i q = round_pack(x, _mm256_set1_ps(id));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[b].qs), q);
        int16_t s[2];
        sums16(q, s);
        out[b].d = amax / 127;
        out[b].sum = s[0] + s[1];
    }
}

void quantize_q8_k_x86(const float* x, void* dst, int64_t n) {
    auto* out = static_cast<BlockQ8_K*>(dst);
    for (int64_t b = 0; b < n / k_qk_k; ++b, x += k_qk_k) {
        __m256 m = _mm256_setzero_ps();
        for (int j = 0; j < k_qk_k; j += 8) m = _mm256_max_ps(m, abs_ps(_mm256_loadu_ps(x + j)));
        const float amax = hmax(m);
        if (amax == 0) {
            std::memset(&out[b], 0, sizeof(BlockQ8_K));
            continue;
        }
        // The first value of largest magnitude gives the sign, as in the scalar quantizer.
        float max = 0;
        for (int j = 0; j < k_qk_k; ++j) {
            if (x[j] == amax || x[j] == -amax) {
                max = x[j];
                break;
            }
        }
        const float iscale = -127 / max;
        for (int j = 0; j < k_qk_k; j += 32) {
            const __m256i q = round_pack(x + j, _mm256_set1_ps(iscale));
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[b].qs + j), q);
            sums16(q, out[b].bsums + j / 16);
        }
        out[b].d = 1 / iscale;
    }
}

// ---- the table
// -----------------------------------------------------------------------------------

template <typename K>
void multi_of(int64_t n, const void* w, const void* a, size_t as, int n_acts, float* out,
              int64_t os) {
    const auto* ab = static_cast<const uint8_t*>(a);
    switch (n_acts) {
        case 1:
            K::template run<1>(n, w, ab, as, out, os);
            return;
        case 2:
            K::template run<2>(n, w, ab, as, out, os);
            return;
        case 3:
            K::template run<3>(n, w, ab, as, out, os);
            return;
        default:
            K::template run<4>(n, w, ab, as, out, os);
            return;
    }
}

template <typename K>
void dot_of(int64_t n, float* out, const void* w, const void* a) {
    K::template run<1>(n, w, static_cast<const uint8_t*>(a), 0, out, 1);
}

template <typename K>
void put(KernelTable& t, GgmlType type) {
    t.dot[type_index(type)] = dot_of<K>;
    t.multi_dot[type_index(type)] = multi_of<K>;
}

static_assert(k_max_acts == 4);

inline KernelTable make_x86_table() {
    KernelTable t;
    put<KFloat<FloatKind::f32>>(t, GgmlType::F32);
    put<KFloat<FloatKind::f16>>(t, GgmlType::F16);
    put<KFloat<FloatKind::bf16>>(t, GgmlType::BF16);
    put<KQ4_0>(t, GgmlType::Q4_0);
    put<KQx_1<false>>(t, GgmlType::Q4_1);
    put<KQ5_0>(t, GgmlType::Q5_0);
    put<KQx_1<true>>(t, GgmlType::Q5_1);
    put<KSigned32<false>>(t, GgmlType::Q8_0);
    put<KSigned32<true>>(t, GgmlType::IQ4_NL);
    put<KQ23_K<false>>(t, GgmlType::Q2_K);
    put<KQ23_K<true>>(t, GgmlType::Q3_K);
    put<KQx_K<false>>(t, GgmlType::Q4_K);
    put<KQx_K<true>>(t, GgmlType::Q5_K);
    put<KQ6_K>(t, GgmlType::Q6_K);
    put<KIQ4_XS>(t, GgmlType::IQ4_XS);
    put<KTQ2_0>(t, GgmlType::TQ2_0);
    t.quantize_q8 = quantize_q8_x86;
    t.quantize_q8_k = quantize_q8_k_x86;
    return t;
}

}  // namespace
}  // namespace edgeq::cpu
