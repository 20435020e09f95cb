// The weight decoders of the x86 GEMMs (see gemm.h), compiled into gemm-avx2.cpp
// (EDGEQ_GEMM_AVX512 0) and gemm-avx512.cpp (1): each turns one block of one row into
// unsigned bytes (32 per __m256i), per-sub-block float scales and minimums; decode_panel
// writes 16 rows of them in the panel layout. Everything here has internal linkage.
#pragma once

#include <immintrin.h>

#include <cstring>
#include <type_traits>

#include "../../quant/blocks.h"
#include "gemm.h"
#include "vec-dot.h"

#ifndef EDGEQ_GEMM_AVX512
#error "define EDGEQ_GEMM_AVX512 before including gemm-x86.h"
#endif

namespace edgeq::cpu {
namespace {

using namespace edgeq::quant;

static_assert(k_gemm_rows == 16);

inline float f16(uint16_t h) {
    return _cvtsh_ss(h);
}

inline __m256i load256(const void* p) {
    return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}

// The 32 nibbles of 16 bytes as 32 bytes: low nibbles first, then high nibbles.
inline __m256i unpack_nibbles(const uint8_t* p) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m256i both =
        _mm256_inserti128_si256(_mm256_castsi128_si256(x), _mm_srli_epi16(x, 4), 1);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0f));
}

inline __m256i grid_u8(__m256i nibbles) {
    const __m256i grid =
        _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(k_iq4_grid)));
    return _mm256_xor_si256(_mm256_shuffle_epi8(grid, nibbles), _mm256_set1_epi8(-128));
}

// Bit j of the 32 bits at qh as 16 in byte j.
inline __m256i bit4_from_bits(const uint8_t* qh) {
    uint32_t bits;
    std::memcpy(&bits, qh, 4);
#if EDGEQ_GEMM_AVX512
    const __m256i set = _mm256_movm_epi8(bits);
#else
    const __m256i spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32(static_cast<int>(bits)),
        _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0));
    const __m256i others = _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe);  // every bit but bit j % 8
    const __m256i set = _mm256_cmpeq_epi8(_mm256_or_si256(spread, others), _mm256_set1_epi64x(-1));
#endif
    return _mm256_and_si256(set, _mm256_set1_epi8(16));
}

// ---- decoders: one block of one row to unsigned bytes (32 per __m256i), scales and minimums --

struct DQ4_0 {
    using Block = BlockQ4_0;
    static constexpr int block_size = 32;
    static constexpr int sub_block = 32, offset = 8;
    static constexpr bool has_min = false;
    static void decode(const Block& x, __m256i* q, float* sc, float*) {
        q[0] = unpack_nibbles(x.qs);
        sc[0] = f16(x.d);
    }
};

struct DQ4_1 {
    using Block = BlockQ4_1;
    static constexpr int block_size = 32;
    static constexpr int sub_block = 32, offset = 0;
    static constexpr bool has_min = true;
    static void decode(const Block& x, __m256i* q, float* sc, float* mn) {
        q[0] = unpack_nibbles(x.qs);
        sc[0] = f16(x.d);
        mn[0] = f16(x.m);
    }
};

struct DQ5_0 {
    using Block = BlockQ5_0;
    static constexpr int block_size = 32;
    static constexpr int sub_block = 32, offset = 16;
    static constexpr bool has_min = false;
    static void decode(const Block& x, __m256i* q, float* sc, float*) {
        q[0] = _mm256_or_si256(unpack_nibbles(x.qs), bit4_from_bits(x.qh));
        sc[0] = f16(x.d);
    }
};

struct DQ5_1 {
    using Block = BlockQ5_1;
    static constexpr int block_size = 32;
    static constexpr int sub_block = 32, offset = 0;
    static constexpr bool has_min = true;
    static void decode(const Block& x, __m256i* q, float* sc, float* mn) {
        q[0] = _mm256_or_si256(unpack_nibbles(x.qs), bit4_from_bits(x.qh));
        sc[0] = f16(x.d);
        mn[0] = f16(x.m);
    }
};

struct DQ8_0 {
    using Block = BlockQ8_0;
    static constexpr int block_size = 32;
    static constexpr int sub_block = 32, offset = 128;
    static constexpr bool has_min = false;
    static void decode(const Block& x, __m256i* q, float* sc, float*) {
        q[0] = _mm256_xor_si256(load256(x.qs), _mm256_set1_epi8(-128));
        sc[0] = f16(x.d);
    }
};

struct DIQ4_NL {
    using Block = BlockIQ4_NL;
    static constexpr int block_size = 32;
    static constexpr int sub_block = 32, offset = 128;
    static constexpr bool has_min = false;
    static void decode(const Block& x, __m256i* q, float* sc, float*) {
        q[0] = grid_u8(unpack_nibbles(x.qs));
        sc[0] = f16(x.d);
    }
};

// Q4_K / Q5_K: sub-block j's six-bit scale and minimum (see src/quant/k-scales.h).
inline void k4_scale_min(const uint8_t* s, int j, int& sc, int& m) {
    if (j < 4) {
        sc = s[j] & 63;
        m = s[j + 4] & 63;
    } else {
        sc = (s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4);
        m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

template <bool five_bits>
struct DQx_K {
    using Block = std::conditional_t<five_bits, BlockQ5_K, BlockQ4_K>;
    static constexpr int block_size = 256;
    static constexpr int sub_block = 32, offset = 0;
    static constexpr bool has_min = true;
    static void decode(const Block& x, __m256i* q, float* sc, float* mn) {
        const float d = f16(x.d);
        const float dmin = f16(x.dmin);
        for (int j = 0; j < 8; ++j) {
            int s = 0, m = 0;
            k4_scale_min(x.scales, j, s, m);
            sc[j] = d * static_cast<float>(s);
            mn[j] = -dmin * static_cast<float>(m);
        }
        const __m256i m4 = _mm256_set1_epi8(0x0f);
        __m256i hbits;
        if constexpr (five_bits) hbits = load256(x.qh);
        for (int i = 0; i < 4; ++i) {
            const __m256i bits = load256(x.qs + 32 * i);
            q[2 * i] = _mm256_and_si256(bits, m4);
            q[2 * i + 1] = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
            if constexpr (five_bits) {
                const __m256i b16 = _mm256_set1_epi8(16);
                q[2 * i] =
                    _mm256_or_si256(q[2 * i], _mm256_and_si256(_mm256_slli_epi16(hbits, 4), b16));
                q[2 * i + 1] = _mm256_or_si256(q[2 * i + 1],
                                               _mm256_and_si256(_mm256_slli_epi16(hbits, 3), b16));
                hbits = _mm256_srli_epi16(hbits, 2);
            }
        }
    }
};

struct DQ6_K {
    using Block = BlockQ6_K;
    static constexpr int block_size = 256;
    static constexpr int sub_block = 16, offset = 32;
    static constexpr bool has_min = false;
    static void decode(const Block& x, __m256i* q, float* sc, float*) {
        const float d = f16(x.d);
        for (int j = 0; j < 16; ++j) sc[j] = d * static_cast<float>(x.scales[j]);
        const __m256i m4 = _mm256_set1_epi8(0x0f);
        const __m256i m2 = _mm256_set1_epi8(0x30);
        for (int h = 0; h < 2; ++h) {
            const __m256i ql0 = load256(x.ql + 64 * h);
            const __m256i ql1 = load256(x.ql + 64 * h + 32);
            const __m256i qh = load256(x.qh + 32 * h);
            q[4 * h + 0] = _mm256_or_si256(_mm256_and_si256(ql0, m4),
                                           _mm256_and_si256(_mm256_slli_epi16(qh, 4), m2));
            q[4 * h + 1] = _mm256_or_si256(_mm256_and_si256(ql1, m4),
                                           _mm256_and_si256(_mm256_slli_epi16(qh, 2), m2));
            q[4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                                           _mm256_and_si256(qh, m2));
            q[4 * h + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                                           _mm256_and_si256(_mm256_srli_epi16(qh, 2), m2));
        }
    }
};

// The two-bit fields of Q2_K, Q3_K and TQ2_0: value 128h + 32k + l in bits 2k of qs[32h + l].
inline void two_bit_fields(const uint8_t* qs, __m256i* q) {
    const __m256i m3 = _mm256_set1_epi8(3);
    for (int h = 0; h < 2; ++h) {
        const __m256i bits = load256(qs + 32 * h);
        for (int k = 0; k < 4; ++k)
            q[4 * h + k] = _mm256_and_si256(_mm256_srli_epi16(bits, 2 * k), m3);
    }
}

struct DQ2_K {
    using Block = BlockQ2_K;
    static constexpr int block_size = 256;
    static constexpr int sub_block = 16, offset = 0;
    static constexpr bool has_min = true;
    static void decode(const Block& x, __m256i* q, float* sc, float* mn) {
        const float d = f16(x.d);
        const float dmin = f16(x.dmin);
        for (int j = 0; j < 16; ++j) {
            sc[j] = d * static_cast<float>(x.scales[j] & 0x0f);
            mn[j] = -dmin * static_cast<float>(x.scales[j] >> 4);
        }
        two_bit_fields(x.qs, q);
    }
};

struct DQ3_K {
    using Block = BlockQ3_K;
    static constexpr int block_size = 256;
    static constexpr int sub_block = 16, offset = 4;
    static constexpr bool has_min = false;
    static void decode(const Block& x, __m256i* q, float* sc, float*) {
        const float d = f16(x.d);
        for (int j = 0; j < 16; ++j) {
            const int low = j < 8 ? x.scales[j] & 0x0f : x.scales[j - 8] >> 4;
            const int high = (x.scales[8 + j % 4] >> (2 * (j / 4))) & 3;
            sc[j] = d * static_cast<float>((low | (high << 4)) - 32);
        }
        two_bit_fields(x.qs, q);
        // Bit c of hmask[l] is the high bit of value 32c + l: u = low + 4 * high, value u - 4.
        const __m256i hm = load256(x.hmask);
        for (int c = 0; c < 8; ++c) {
            const __m256i hb = _mm256_and_si256(_mm256_srli_epi16(hm, c), _mm256_set1_epi8(1));
            q[c] = _mm256_or_si256(q[c], _mm256_slli_epi16(hb, 2));
        }
    }
};

struct DIQ4_XS {
    using Block = BlockIQ4_XS;
    static constexpr int block_size = 256;
    static constexpr int sub_block = 32, offset = 128;
    static constexpr bool has_min = false;
    static void decode(const Block& x, __m256i* q, float* sc, float*) {
        const float d = f16(x.d);
        for (int j = 0; j < 8; ++j) {
            const int low = (x.scales_l[j / 2] >> (4 * (j % 2))) & 0x0f;
            const int high = (x.scales_h >> (2 * j)) & 3;
            sc[j] = d * static_cast<float>((low | (high << 4)) - 32);
            q[j] = grid_u8(unpack_nibbles(x.qs + 16 * j));
        }
    }
};

struct DTQ2_0 {
    using Block = BlockTQ2_0;
    static constexpr int block_size = 256;
    static constexpr int sub_block = 32, offset = 1;
    static constexpr bool has_min = false;
    static void decode(const Block& x, __m256i* q, float* sc, float*) {
        const float d = f16(x.d);
        for (int j = 0; j < 8; ++j) sc[j] = d;
        two_bit_fields(x.qs, q);
    }
};

// Rows r0..r0+3 of 32 values each (a, b, c, d) into the panel: values 4t..4t+3 of the four
// rows are 16 consecutive bytes at dst + 64 t.
inline void store_4x32(__m256i a, __m256i b, __m256i c, __m256i d, uint8_t* dst) {
    const __m256i t0 = _mm256_unpacklo_epi32(a, b);
    const __m256i t1 = _mm256_unpacklo_epi32(c, d);
    const __m256i t2 = _mm256_unpackhi_epi32(a, b);
    const __m256i t3 = _mm256_unpackhi_epi32(c, d);
    const __m256i u[4] = {_mm256_unpacklo_epi64(t0, t1), _mm256_unpackhi_epi64(t0, t1),
                          _mm256_unpacklo_epi64(t2, t3), _mm256_unpackhi_epi64(t2, t3)};
    for (int t = 0; t < 4; ++t) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 64 * t), _mm256_castsi256_si128(u[t]));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 64 * (t + 4)),
                         _mm256_extracti128_si256(u[t], 1));
    }
}

template <typename D>
void decode_panel(const uint8_t* w, size_t w_row, int n_rows, int64_t k, uint8_t* panel) {
    using Block = typename D::Block;
    constexpr int block_size = D::block_size;
    constexpr int n_chunks = block_size / 32;
    constexpr int n_sub = block_size / D::sub_block;
    const int64_t k_sub = k / D::sub_block;
    uint8_t* qs = panel;
    auto* scale = reinterpret_cast<float*>(panel + k * k_gemm_rows);
    float* min = scale + k_sub * k_gemm_rows;
    for (int64_t b = 0; b < k / block_size; ++b) {
        for (int r0 = 0; r0 < k_gemm_rows; r0 += 4) {
            __m256i q[4][n_chunks];
            for (int i = 0; i < 4; ++i) {
                const int r = r0 + i;
                float sc[n_sub] = {};
                float mn[n_sub] = {};
                if (r < n_rows) {
                    D::decode(reinterpret_cast<const Block*>(w + static_cast<size_t>(r) * w_row)[b],
                              q[i], sc, mn);
                } else {
                    for (int c = 0; c < n_chunks; ++c) q[i][c] = _mm256_setzero_si256();
                }
                for (int s = 0; s < n_sub; ++s) {
                    scale[(b * n_sub + s) * k_gemm_rows + r] = sc[s];
                    if constexpr (D::has_min) min[(b * n_sub + s) * k_gemm_rows + r] = mn[s];
                }
            }
            for (int c = 0; c < n_chunks; ++c) {
                store_4x32(q[0][c], q[1][c], q[2][c], q[3][c],
                           qs + (b * block_size + 32 * c) * k_gemm_rows + 4 * r0);
            }
        }
    }
}

inline int32_t load_i32(const int8_t* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

// The min_m of a decoder's kernel, measured on Zen 4 against the dot products: 32-value types
// win from 4 rows on; the k-quants' costlier decoding pays from 8 rows (sub-blocks of 32) or 16
// (sub-blocks of 16) with VNNI, from twice as many with AVX2.
template <typename D>
constexpr int64_t gemm_min_m() {
    const int64_t factor = EDGEQ_GEMM_AVX512 ? 1 : 2;
    return D::block_size == 32 ? 4 : D::sub_block == 32 ? 8 * factor : 16 * factor;
}

}  // namespace
}  // namespace edgeq::cpu
