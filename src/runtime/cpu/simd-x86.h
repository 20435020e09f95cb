// The SIMD primitives of the x86 kernels (vec-dot-x86.h, packed-x86.h), for 256-bit vectors,
// compiled with EDGEQ_VNNI 0 (AVX2: vpmaddubsw + vpmaddwd) or 1 (AVX-512 VNNI: vpdpbusd,
// vpdpwssd, mask moves). Everything here has internal linkage.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#ifndef EDGEQ_VNNI
#error "define EDGEQ_VNNI before including simd-x86.h"
#endif

namespace edgeq::cpu {
namespace {

// Runs over several activation rows do enough work per weight byte that the hardware
// prefetcher falls behind: they ask for the weights k_prefetch_ahead bytes ahead themselves,
// into L2 (prefetcht1), not L1: weight lines prefetched into L1 evicted the activation rows,
// which runs re-read for every group of 8 weight rows (28 KB for 4 rows of 5632 values). Zen 4,
// one thread streaming 75 MB, TSC cycles per block of 8 rows x 32 values, 4 activation rows:
//   Q4_0 k 5632: L1 2304 ahead 27.4, L2 9216 ahead 20.3 (20.3 at k 2048; 18.5 all in L2)
//   Q8_0 k 2048: 38.0 -> 23.9; Q6_K 35.6 -> 25.9; Q4_K k 5632 27.8 -> 18.5; Q5_0 27.7 -> 24.3
// and 2 activation rows cost little more than one (Q4_K 12.4 against 11.6). The distance was
// the best of 2304..18432 bytes (6912..13824 within noise). One row gains nothing (on 2
// threads it loses: 15.0 -> 16.9 ms a token for TinyLlama's layers): the hardware prefetcher
// keeps up with it alone.
constexpr int k_prefetch_ahead = 9216;

template <int NA>
inline void prefetch_block(const uint8_t* block, int bytes) {
    if constexpr (NA > 1) {
        for (int at = 0; at < bytes; at += 64)
            _mm_prefetch(reinterpret_cast<const char*>(block + k_prefetch_ahead + at), _MM_HINT_T1);
    }
}

inline float f16(uint16_t h) {
    return _cvtsh_ss(h);
}

inline float hsum(__m256 v) {
    const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

inline float hsum128(__m128 s) {
    const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

inline int hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

inline __m256i load(const void* p) {
    return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}

// Four-way sums of u8 * s8 products in eight int32 lanes (u <= 127 on AVX2, where the pairwise
// int16 sums would otherwise saturate).
inline __m256i dot_us(__m256i u, __m256i s) {
#if EDGEQ_VNNI
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
#else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
#endif
}

inline __m256i dot_us_add(__m256i acc, __m256i u, __m256i s) {
#if EDGEQ_VNNI
    return _mm256_dpbusd_epi32(acc, u, s);
#else
    return _mm256_add_epi32(acc, dot_us(u, s));
#endif
}

// acc + sum of scale * u * s, the int16 scale per pair of bytes (u * s pair sums must fit int16).
inline __m256i dot_us_scaled(__m256i acc, __m256i u, __m256i s, __m256i scale16) {
#if EDGEQ_VNNI
    return _mm256_dpwssd_epi32(acc, _mm256_maddubs_epi16(u, s), scale16);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), scale16));
#endif
}

// Byte j is 0xff where bit j of `bits` is set.
inline __m256i bytes_from_bits(uint32_t bits) {
#if EDGEQ_VNNI
    return _mm256_movm_epi8(bits);
#else
    const __m256i spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32(static_cast<int>(bits)),
        _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0));
    const __m256i others = _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe);  // every bit but bit j % 8
    return _mm256_cmpeq_epi8(_mm256_or_si256(spread, others), _mm256_set1_epi64x(-1));
#endif
}

// The 32 nibbles of 16 bytes as 32 bytes: low nibbles first, then high nibbles.
inline __m256i unpack_nibbles(const uint8_t* p) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m256i both =
        _mm256_inserti128_si256(_mm256_castsi128_si256(x), _mm_srli_epi16(x, 4), 1);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0f));
}

// int16 lanes all equal to lane j of the 8 int16 in each half of v.
inline __m256i broadcast16(__m256i v, int j) {
    return _mm256_shuffle_epi8(v, _mm256_set1_epi16(static_cast<int16_t>(0x0100 + 0x0202 * j)));
}

// Lanes 0..7 equal to lane j and lanes 8..15 to lane j + 1 of the 8 int16 in each half of v.
inline __m256i broadcast16_pair(__m256i v, int j) {
    const auto lo = static_cast<int16_t>(0x0100 + 0x0202 * j);
    const auto hi = static_cast<int16_t>(0x0100 + 0x0202 * (j + 1));
    return _mm256_shuffle_epi8(
        v, _mm256_set_epi16(hi, hi, hi, hi, hi, hi, hi, hi, lo, lo, lo, lo, lo, lo, lo, lo));
}

template <typename Block>
inline const Block& act(const uint8_t* a, size_t a_stride, int c, int64_t b) {
    return reinterpret_cast<const Block*>(a + static_cast<size_t>(c) * a_stride)[b];
}

}  // namespace
}  // namespace edgeq::cpu
