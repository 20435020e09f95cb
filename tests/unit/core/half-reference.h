// Reference F16 and BF16 conversions for tests, written from the IEEE bit layouts with double
// arithmetic, so that they share nothing with src/core/half.cpp.
//
// Decoding: a code's value is sign * mantissa * 2^exponent, computed with ldexp.
// Encoding: the two codes that bracket |f| are found by binary search over the codes (whose
// values grow with the code), and |f| is compared with their exact midpoint: nearest wins,
// a tie goes to the even code (the even mantissa). The code just past the largest finite one
// is infinity, and stands for 2^(emax+1) in that comparison, as IEEE rounding prescribes.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

namespace edgeq::testing {

// |value| of an F16 code without its sign; the infinity code 0x7c00 counts as 2^16.
inline double ref_fp16_magnitude(uint16_t code) {
    const int exponent = (code >> 10) & 0x1f;
    const int mantissa = code & 0x3ff;
    if (exponent == 0) return std::ldexp(static_cast<double>(mantissa), -24);
    if (exponent == 0x1f) {
        return mantissa == 0 ? std::ldexp(1.0, 16) : std::numeric_limits<double>::quiet_NaN();
    }
    return std::ldexp(static_cast<double>(1024 + mantissa), exponent - 25);
}

// |value| of a BF16 code without its sign; the infinity code 0x7f80 counts as 2^128.
inline double ref_bf16_magnitude(uint16_t code) {
    const int exponent = (code >> 7) & 0xff;
    const int mantissa = code & 0x7f;
    if (exponent == 0) return std::ldexp(static_cast<double>(mantissa), -133);
    if (exponent == 0xff) {
        return mantissa == 0 ? std::ldexp(1.0, 128) : std::numeric_limits<double>::quiet_NaN();
    }
    return std::ldexp(static_cast<double>(128 + mantissa), exponent - 134);
}

inline float ref_decode(double magnitude, bool negative, bool infinite) {
    if (std::isnan(magnitude)) {
        return negative ? -std::numeric_limits<float>::quiet_NaN()
                        : std::numeric_limits<float>::quiet_NaN();
    }
    const float v =
        infinite ? std::numeric_limits<float>::infinity() : static_cast<float>(magnitude);
    return negative ? -v : v;
}

inline float ref_fp16_to_fp32(uint16_t h) {
    return ref_decode(ref_fp16_magnitude(h & 0x7fff), (h & 0x8000) != 0, (h & 0x7fff) == 0x7c00);
}

inline float ref_bf16_to_fp32(uint16_t b) {
    return ref_decode(ref_bf16_magnitude(b & 0x7fff), (b & 0x8000) != 0, (b & 0x7fff) == 0x7f80);
}

// The code in [0, inf_code] nearest to a >= 0, ties to the even code.
template <typename Magnitude>
uint16_t ref_nearest_code(double a, uint16_t inf_code, Magnitude magnitude) {
    if (a >= magnitude(inf_code)) return inf_code;
    // Largest code whose value is <= a.
    uint32_t lo = 0;
    uint32_t hi = inf_code;  // magnitude(hi) > a
    while (hi - lo > 1) {
        const uint32_t mid = (lo + hi) / 2;
        if (magnitude(static_cast<uint16_t>(mid)) <= a) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    const double below = magnitude(static_cast<uint16_t>(lo));
    if (a == below) return static_cast<uint16_t>(lo);
    const double midpoint = (below + magnitude(static_cast<uint16_t>(hi))) / 2;  // exact
    if (a < midpoint) return static_cast<uint16_t>(lo);
    if (a > midpoint) return static_cast<uint16_t>(hi);
    return static_cast<uint16_t>(lo % 2 == 0 ? lo : hi);
}

// Round to nearest, ties to even; NaN gives a quiet NaN of the same sign (any NaN code is
// acceptable from the code under test; compare NaN-ness, not bits).
inline uint16_t ref_fp32_to_fp16(float f) {
    const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
    if (std::isnan(f)) return static_cast<uint16_t>(sign | 0x7e00);
    return static_cast<uint16_t>(
        sign | ref_nearest_code(std::fabs(static_cast<double>(f)), 0x7c00, ref_fp16_magnitude));
}

inline uint16_t ref_fp32_to_bf16(float f) {
    const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
    if (std::isnan(f)) return static_cast<uint16_t>(sign | 0x7fc0);
    return static_cast<uint16_t>(
        sign | ref_nearest_code(std::fabs(static_cast<double>(f)), 0x7f80, ref_bf16_magnitude));
}

inline bool fp16_is_nan(uint16_t h) {
    return (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0;
}
inline bool bf16_is_nan(uint16_t b) {
    return (b & 0x7f80) == 0x7f80 && (b & 0x7f) != 0;
}

}  // namespace edgeq::testing
