// IEEE half precision (F16) and bfloat16 (BF16) conversions, bit-exact with ggml and numpy:
// float to F16 and to BF16 round to nearest, ties to even.
#pragma once

#include <cstdint>
#include <cstring>

namespace edgeq {

inline uint32_t float_bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, sizeof(u));
    return u;
}

inline float bits_float(uint32_t u) {
    float f;
    std::memcpy(&f, &u, sizeof(f));
    return f;
}

inline float fp16_to_fp32(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
    const uint32_t exponent = (h >> 10) & 0x1f;
    const uint32_t mantissa = h & 0x3ff;
    if (exponent == 0x1f) {  // infinity, or NaN (quieted, as F16C conversion does)
        return bits_float(sign | 0x7f800000 | (mantissa != 0 ? 0x400000 : 0) | (mantissa << 13));
    }
    if (exponent != 0) return bits_float(sign | ((exponent + 112) << 23) | (mantissa << 13));
    // Zero or subnormal: mantissa * 2^-24, exact in float.
    const float magnitude = static_cast<float>(mantissa) * bits_float(0x33800000);  // 2^-24
    return sign != 0 ? -magnitude : magnitude;
}

uint16_t fp32_to_fp16(float f);

inline float bf16_to_fp32(uint16_t b) {
    return bits_float(static_cast<uint32_t>(b) << 16);
}

inline uint16_t fp32_to_bf16(float f) {
    const uint32_t u = float_bits(f);
    if ((u & 0x7fffffff) > 0x7f800000) return static_cast<uint16_t>((u >> 16) | 64);  // quiet NaN
    return static_cast<uint16_t>((u + (0x7fff + ((u >> 16) & 1))) >> 16);
}

// Row conversions; they use F16C/AVX-512 instructions when the CPU has them, with results
// identical to the scalar functions above.
void fp16_to_fp32_row(const uint16_t* src, float* dst, int64_t n);
void fp32_to_fp16_row(const float* src, uint16_t* dst, int64_t n);
void bf16_to_fp32_row(const uint16_t* src, float* dst, int64_t n);
void fp32_to_bf16_row(const float* src, uint16_t* dst, int64_t n);

}  // namespace edgeq
