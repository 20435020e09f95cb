#include "edgeq/core/half.h"

#include <cmath>

#include "edgeq/core/cpu.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace edgeq {

uint16_t fp32_to_fp16(float f) {
    const uint32_t u = float_bits(f);
    const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000);
    const uint32_t magnitude = u & 0x7fffffff;
    if (magnitude > 0x7f800000) {  // NaN: quiet it, keep the top payload bits
        return static_cast<uint16_t>(sign | 0x7e00 | ((magnitude >> 13) & 0x3ff));
    }
    if (magnitude >= 0x477ff000) return sign | 0x7c00;  // rounds to infinity (>= 65520)
    if (magnitude < 0x38800000) {                       // below 2^-14: a half subnormal or zero
        // The half value is m * 2^-24; scaling by 2^24 is exact, nearbyint rounds to even.
        const float m = std::nearbyint(bits_float(magnitude) * 16777216.0f);
        return static_cast<uint16_t>(sign | static_cast<uint16_t>(m));
    }
    // Normal: rebias the exponent (127 -> 15) and round the 13 dropped mantissa bits to even.
    const uint32_t odd = (magnitude >> 13) & 1;
    return static_cast<uint16_t>(sign | ((magnitude + 0xc8000fffu + odd) >> 13));
}

namespace {

bool use_f16c() {
    static const bool ok =
        cpu_features().f16c && cpu_features().avx2 && active_isa() != Isa::scalar;
    return ok;
}

#if defined(__x86_64__)
__attribute__((target("avx2,f16c"))) void fp16_to_fp32_f16c(const uint16_t* src, float* dst,
                                                            int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
    }
    for (; i < n; ++i) dst[i] = fp16_to_fp32(src[i]);
}

__attribute__((target("avx2,f16c"))) void fp32_to_fp16_f16c(const float* src, uint16_t* dst,
                                                            int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), h);
    }
    for (; i < n; ++i) dst[i] = fp32_to_fp16(src[i]);
}

// A bfloat16 is the top half of a float: widen to 32 bits and shift.
__attribute__((target("avx2"))) void bf16_to_fp32_avx2(const uint16_t* src, float* dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256i w =
            _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i)));
        _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
    }
    for (; i < n; ++i) dst[i] = bf16_to_fp32(src[i]);
}
#endif

}  // namespace

void fp16_to_fp32_row(const uint16_t* src, float* dst, int64_t n) {
#if defined(__x86_64__)
    if (use_f16c()) return fp16_to_fp32_f16c(src, dst, n);
#endif
    for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(src[i]);
}

void fp32_to_fp16_row(const float* src, uint16_t* dst, int64_t n) {
#if defined(__x86_64__)
    if (use_f16c()) return fp32_to_fp16_f16c(src, dst, n);
#endif
    for (int64_t i = 0; i < n; ++i) dst[i] = fp32_to_fp16(src[i]);
}

void bf16_to_fp32_row(const uint16_t* src, float* dst, int64_t n) {
#if defined(__x86_64__)
    if (use_f16c()) return bf16_to_fp32_avx2(src, dst, n);
#endif
    for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(src[i]);
}

void fp32_to_bf16_row(const float* src, uint16_t* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = fp32_to_bf16(src[i]);
}

}  // namespace edgeq
