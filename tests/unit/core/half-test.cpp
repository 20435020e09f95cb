// F16 and BF16 conversions against references written from the IEEE bit layouts
// (core/half-reference.h): every F16 and BF16 code decoded; float to F16/BF16 rounding to
// nearest, ties to even, on random floats over the whole exponent range, every halfway point,
// subnormals, overflow, infinities and NaN; the row functions equal the scalar ones.
#include "edgeq/core/half.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "core/half-reference.h"
#include "test-random.h"

namespace edgeq {
namespace {

using testing::bf16_is_nan;
using testing::fp16_is_nan;
using testing::ref_bf16_magnitude;
using testing::ref_bf16_to_fp32;
using testing::ref_fp16_magnitude;
using testing::ref_fp16_to_fp32;
using testing::ref_fp32_to_bf16;
using testing::ref_fp32_to_fp16;

constexpr float k_inf = std::numeric_limits<float>::infinity();

// Floats of every kind: raw bit patterns (any exponent, NaN and infinity included), values in
// and around the F16 range, F16 subnormals, and the usual special values.
std::vector<float> assorted_floats(testing::Random& random, size_t n) {
    std::vector<float> v;
    v.reserve(n + 32);
    for (float f : {0.0f,
                    -0.0f,
                    1.0f,
                    -1.0f,
                    65504.0f,
                    65519.996f,
                    65520.0f,
                    -65520.0f,
                    65536.0f,
                    1e10f,
                    FLT_MAX,
                    -FLT_MAX,
                    k_inf,
                    -k_inf,
                    FLT_MIN,
                    FLT_TRUE_MIN,
                    5.9604645e-8f,
                    2.9802322e-8f,
                    2.98023259e-8f,
                    6.1035156e-5f,
                    1e-30f,
                    std::numeric_limits<float>::quiet_NaN(),
                    -std::numeric_limits<float>::quiet_NaN(),
                    std::numeric_limits<float>::signaling_NaN()}) {
        v.push_back(f);
    }
    std::uniform_int_distribution<uint32_t> bits;
    while (v.size() < n) {
        switch (v.size() % 3) {
            case 0:  // any bit pattern
                v.push_back(bits_float(bits(random.engine())));
                break;
            case 1: {  // the F16 range and a little beyond, subnormals included
                const float mantissa = random.uniform(1.0f, 2.0f);
                const float f = std::ldexp(mantissa, random.uniform_int(-27, 17));
                v.push_back(random.uniform_int(0, 1) != 0 ? -f : f);
                break;
            }
            default:  // F16 subnormal range: multiples of 2^-25 plus a random fraction
                v.push_back(std::ldexp(
                    static_cast<float>(random.uniform_int(0, 2048)) + random.uniform(-0.5f, 0.5f),
                    -25));
                break;
        }
    }
    return v;
}

bool same_bits(float a, float b) {
    return float_bits(a) == float_bits(b);
}

// Equal bits, or both NaN of the same sign: a NaN's payload is not part of the contract
// (F16C quiets a signalling NaN, the scalar code keeps its bits).
bool same_converted_value(float a, float b) {
    if (std::isnan(a) || std::isnan(b)) {
        return std::isnan(a) && std::isnan(b) && std::signbit(a) == std::signbit(b);
    }
    return same_bits(a, b);
}

TEST(Half, Fp16ToFp32EveryCode) {
    for (uint32_t c = 0; c <= 0xffff; ++c) {
        const auto h = static_cast<uint16_t>(c);
        const float ref = ref_fp16_to_fp32(h);
        const float got = fp16_to_fp32(h);
        if (std::isnan(ref)) {
            EXPECT_TRUE(std::isnan(got)) << std::hex << "code 0x" << c;
            EXPECT_EQ(std::signbit(got), std::signbit(ref)) << std::hex << "code 0x" << c;
        } else {
            EXPECT_TRUE(same_bits(got, ref))
                << std::hex << "code 0x" << c << ": got " << got << ", expected " << ref;
        }
    }
}

TEST(Half, Fp16ToFp32KnownValues) {
    EXPECT_EQ(fp16_to_fp32(0x3c00), 1.0f);
    EXPECT_EQ(fp16_to_fp32(0xc000), -2.0f);
    EXPECT_EQ(fp16_to_fp32(0x7bff), 65504.0f);
    EXPECT_EQ(fp16_to_fp32(0x0001), std::ldexp(1.0f, -24));
    EXPECT_EQ(fp16_to_fp32(0x03ff), std::ldexp(1023.0f, -24));
    EXPECT_EQ(fp16_to_fp32(0x0400), std::ldexp(1.0f, -14));
    EXPECT_EQ(fp16_to_fp32(0x7c00), k_inf);
    EXPECT_EQ(fp16_to_fp32(0xfc00), -k_inf);
    EXPECT_TRUE(std::signbit(fp16_to_fp32(0x8000)));
}

void expect_fp16_encoding(float f) {
    const uint16_t got = fp32_to_fp16(f);
    const uint16_t ref = ref_fp32_to_fp16(f);
    if (std::isnan(f)) {
        EXPECT_TRUE(fp16_is_nan(got)) << "input " << f << " gave 0x" << std::hex << got;
    } else {
        EXPECT_EQ(got, ref) << std::hex << "input " << f << " (bits 0x" << float_bits(f)
                            << "): got 0x" << got << ", expected 0x" << ref;
    }
}

TEST(Half, Fp32ToFp16RandomFloats) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    for (float f : assorted_floats(random, 300000)) expect_fp16_encoding(f);
}

// Every midpoint between two adjacent F16 values (subnormal and normal, both signs), and the
// floats just beside it: ties go to the even mantissa, the neighbours to the nearer side.
TEST(Half, Fp32ToFp16Halfway) {
    for (uint32_t c = 0; c < 0x7c00; ++c) {
        const double mid = (ref_fp16_magnitude(static_cast<uint16_t>(c)) +
                            ref_fp16_magnitude(static_cast<uint16_t>(c + 1))) /
                           2;
        const auto f = static_cast<float>(mid);
        ASSERT_EQ(static_cast<double>(f), mid);  // midpoints are exact in float
        for (float x : {f, std::nextafter(f, 0.0f), std::nextafter(f, k_inf)}) {
            expect_fp16_encoding(x);
            expect_fp16_encoding(-x);
        }
        // The tie itself: the even one of the two codes.
        const uint16_t even = static_cast<uint16_t>(c % 2 == 0 ? c : c + 1);
        EXPECT_EQ(fp32_to_fp16(f), even) << "midpoint above code " << c;
    }
}

TEST(Half, Fp32ToFp16OverflowInfinityNaN) {
    EXPECT_EQ(fp32_to_fp16(65504.0f), 0x7bff);
    EXPECT_EQ(fp32_to_fp16(std::nextafter(65520.0f, 0.0f)), 0x7bff);
    EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7c00);
    EXPECT_EQ(fp32_to_fp16(-65520.0f), 0xfc00);
    EXPECT_EQ(fp32_to_fp16(1e20f), 0x7c00);
    EXPECT_EQ(fp32_to_fp16(FLT_MAX), 0x7c00);
    EXPECT_EQ(fp32_to_fp16(k_inf), 0x7c00);
    EXPECT_EQ(fp32_to_fp16(-k_inf), 0xfc00);
    EXPECT_EQ(fp32_to_fp16(0.0f), 0x0000);
    EXPECT_EQ(fp32_to_fp16(-0.0f), 0x8000);
    EXPECT_EQ(fp32_to_fp16(FLT_TRUE_MIN), 0x0000);
    EXPECT_EQ(fp32_to_fp16(-FLT_TRUE_MIN), 0x8000);
    EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -25)), 0x0000);  // tie between 0 and 2^-24
    EXPECT_EQ(fp32_to_fp16(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);
    EXPECT_EQ(fp32_to_fp16(std::ldexp(3.0f, -25)), 0x0002);  // tie between 1 and 2: even
}

// A NaN stays a NaN, of the same sign, whatever its payload; quiet and signalling alike.
TEST(Half, Fp32ToFp16NaNStaysNaNWithItsSign) {
    for (uint32_t payload :
         {0x400000u, 0x000001u, 0x001fffu, 0x002000u, 0x3fffffu, 0x7fffffu, 0x155555u, 0x200000u}) {
        for (uint32_t sign : {0u, 0x80000000u}) {
            const float f = bits_float(sign | 0x7f800000u | payload);
            ASSERT_TRUE(std::isnan(f));
            const uint16_t h = fp32_to_fp16(f);
            EXPECT_TRUE(fp16_is_nan(h))
                << std::hex << "input bits 0x" << float_bits(f) << " gave 0x" << h;
            EXPECT_EQ((h & 0x8000) != 0, sign != 0)
                << std::hex << "input bits 0x" << float_bits(f) << " gave 0x" << h;
            // The row function, through its vector body and its tail.
            std::vector<float> row(19, f);
            std::vector<uint16_t> out(row.size());
            fp32_to_fp16_row(row.data(), out.data(), static_cast<int64_t>(row.size()));
            for (uint16_t r : out) {
                EXPECT_TRUE(fp16_is_nan(r) && (r & 0x8000) == (sign != 0 ? 0x8000 : 0))
                    << std::hex << "row: input bits 0x" << float_bits(f) << " gave 0x" << r;
            }
        }
    }
}

// Lengths around every vector width and tail, and long rows; the converted values must be
// the scalar function's, bit for bit, and nothing past n may be written.
std::vector<int64_t> row_lengths() {
    std::vector<int64_t> lengths;
    for (int64_t n = 0; n <= 67; ++n) lengths.push_back(n);
    for (int64_t n : {127, 128, 129, 255, 256, 1000, 4099, 65536}) lengths.push_back(n);
    return lengths;
}

TEST(Half, Fp16ToFp32RowMatchesScalar) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    std::uniform_int_distribution<uint32_t> code(0, 0xffff);
    for (int64_t n : row_lengths()) {
        std::vector<uint16_t> src(static_cast<size_t>(n));
        for (auto& h : src) h = static_cast<uint16_t>(code(random.engine()));
        if (n > 3) src[1] = 0x7c00, src[2] = 0x0001, src[3] = 0x8000;
        std::vector<float> dst(static_cast<size_t>(n) + 9, 1234.5f);
        fp16_to_fp32_row(src.data(), dst.data(), n);
        for (int64_t i = 0; i < n; ++i) {
            const float expected = fp16_to_fp32(src[static_cast<size_t>(i)]);
            ASSERT_TRUE(same_converted_value(dst[static_cast<size_t>(i)], expected))
                << std::hex << "n " << std::dec << n << " i " << i << " code 0x" << std::hex
                << src[static_cast<size_t>(i)] << ": row gave bits 0x"
                << float_bits(dst[static_cast<size_t>(i)]) << ", scalar 0x" << float_bits(expected);
        }
        for (size_t i = static_cast<size_t>(n); i < dst.size(); ++i) ASSERT_EQ(dst[i], 1234.5f);
    }
    // Every code once, through the row function.
    std::vector<uint16_t> all(65536);
    for (uint32_t c = 0; c <= 0xffff; ++c) all[c] = static_cast<uint16_t>(c);
    std::vector<float> out(all.size());
    fp16_to_fp32_row(all.data(), out.data(), static_cast<int64_t>(all.size()));
    for (uint32_t c = 0; c <= 0xffff; ++c) {
        EXPECT_TRUE(same_converted_value(out[c], fp16_to_fp32(static_cast<uint16_t>(c))))
            << std::hex << "code 0x" << c << ": row gave bits 0x" << float_bits(out[c])
            << ", scalar 0x" << float_bits(fp16_to_fp32(static_cast<uint16_t>(c)));
    }
}

TEST(Half, Fp32ToFp16RowMatchesScalar) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    for (int64_t n : row_lengths()) {
        std::vector<float> src = assorted_floats(random, static_cast<size_t>(n) + 24);
        std::shuffle(src.begin(), src.end(), random.engine());
        src.resize(static_cast<size_t>(n));
        std::vector<uint16_t> dst(static_cast<size_t>(n) + 9, 0x5555);
        fp32_to_fp16_row(src.data(), dst.data(), n);
        for (int64_t i = 0; i < n; ++i) {
            const float f = src[static_cast<size_t>(i)];
            if (std::isnan(f)) {  // NaN-ness here; the sign has its own test
                ASSERT_TRUE(fp16_is_nan(dst[static_cast<size_t>(i)])) << "n " << n << " i " << i;
                continue;
            }
            ASSERT_EQ(dst[static_cast<size_t>(i)], fp32_to_fp16(f))
                << "n " << n << " i " << i << " input " << f << " (bits 0x" << std::hex
                << float_bits(f) << ")";
        }
        for (size_t i = static_cast<size_t>(n); i < dst.size(); ++i) ASSERT_EQ(dst[i], 0x5555);
    }
}

TEST(BFloat16, ToFp32RowMatchesScalarBitForBit) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    std::uniform_int_distribution<uint32_t> code(0, 0xffff);
    for (int64_t n : row_lengths()) {
        std::vector<uint16_t> src(static_cast<size_t>(n));
        for (auto& b : src) b = static_cast<uint16_t>(code(random.engine()));
        std::vector<float> dst(static_cast<size_t>(n) + 9, 1234.5f);
        bf16_to_fp32_row(src.data(), dst.data(), n);
        for (int64_t i = 0; i < n; ++i) {
            ASSERT_EQ(float_bits(dst[static_cast<size_t>(i)]),
                      float_bits(bf16_to_fp32(src[static_cast<size_t>(i)])))
                << "n " << n << " i " << i << " code 0x" << std::hex << src[static_cast<size_t>(i)];
        }
        for (size_t i = static_cast<size_t>(n); i < dst.size(); ++i) ASSERT_EQ(dst[i], 1234.5f);
    }
    std::vector<uint16_t> all(65536);
    for (uint32_t c = 0; c <= 0xffff; ++c) all[c] = static_cast<uint16_t>(c);
    std::vector<float> out(all.size());
    bf16_to_fp32_row(all.data(), out.data(), static_cast<int64_t>(all.size()));
    for (uint32_t c = 0; c <= 0xffff; ++c) {
        ASSERT_EQ(float_bits(out[c]), float_bits(bf16_to_fp32(static_cast<uint16_t>(c))))
            << "code " << c;
    }
}

TEST(BFloat16, ToFp32EveryCode) {
    for (uint32_t c = 0; c <= 0xffff; ++c) {
        const auto b = static_cast<uint16_t>(c);
        const float ref = ref_bf16_to_fp32(b);
        const float got = bf16_to_fp32(b);
        if (std::isnan(ref)) {
            EXPECT_TRUE(std::isnan(got)) << std::hex << "code 0x" << c;
            EXPECT_EQ(std::signbit(got), std::signbit(ref)) << std::hex << "code 0x" << c;
        } else {
            EXPECT_TRUE(same_bits(got, ref))
                << std::hex << "code 0x" << c << ": got " << got << ", expected " << ref;
        }
    }
}

void expect_bf16_encoding(float f) {
    const uint16_t got = fp32_to_bf16(f);
    if (std::isnan(f)) {
        EXPECT_TRUE(bf16_is_nan(got)) << "input bits 0x" << std::hex << float_bits(f);
        EXPECT_EQ((got & 0x8000) != 0, std::signbit(f))
            << "input bits 0x" << std::hex << float_bits(f);
    } else {
        const uint16_t ref = ref_fp32_to_bf16(f);
        EXPECT_EQ(got, ref) << std::hex << "input " << f << " (bits 0x" << float_bits(f)
                            << "): got 0x" << got << ", expected 0x" << ref;
    }
}

TEST(BFloat16, FromFp32RandomFloats) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    for (float f : assorted_floats(random, 200000)) expect_bf16_encoding(f);
}

TEST(BFloat16, FromFp32HalfwayAndSpecials) {
    for (uint32_t c = 0; c < 0x7f80; ++c) {
        const double mid = (ref_bf16_magnitude(static_cast<uint16_t>(c)) +
                            ref_bf16_magnitude(static_cast<uint16_t>(c + 1))) /
                           2;
        const auto f = static_cast<float>(mid);
        if (c + 1 < 0x7f80) {
            ASSERT_EQ(static_cast<double>(f), mid);
            const uint16_t even = static_cast<uint16_t>(c % 2 == 0 ? c : c + 1);
            EXPECT_EQ(fp32_to_bf16(f), even) << "midpoint above code " << c;
        }
        for (float x : {f, std::nextafter(f, 0.0f), std::nextafter(f, k_inf)}) {
            expect_bf16_encoding(x);
            expect_bf16_encoding(-x);
        }
    }
    EXPECT_EQ(fp32_to_bf16(FLT_MAX), 0x7f80);  // above the last midpoint: overflows
    EXPECT_EQ(fp32_to_bf16(k_inf), 0x7f80);
    EXPECT_EQ(fp32_to_bf16(-k_inf), 0xff80);
    EXPECT_EQ(fp32_to_bf16(-0.0f), 0x8000);
    EXPECT_EQ(fp32_to_bf16(1.0f), 0x3f80);
    for (uint32_t payload : {0x400000u, 0x000001u, 0x00ffffu, 0x010000u, 0x7fffffu}) {
        for (uint32_t sign : {0u, 0x80000000u}) {
            expect_bf16_encoding(bits_float(sign | 0x7f800000u | payload));
        }
    }
}

TEST(BFloat16, RowsMatchScalar) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    std::uniform_int_distribution<uint32_t> code(0, 0xffff);
    for (int64_t n : row_lengths()) {
        std::vector<float> src = assorted_floats(random, static_cast<size_t>(n) + 24);
        std::shuffle(src.begin(), src.end(), random.engine());
        src.resize(static_cast<size_t>(n));
        std::vector<uint16_t> packed(static_cast<size_t>(n) + 9, 0x5555);
        fp32_to_bf16_row(src.data(), packed.data(), n);
        for (int64_t i = 0; i < n; ++i) {
            ASSERT_EQ(packed[static_cast<size_t>(i)], fp32_to_bf16(src[static_cast<size_t>(i)]))
                << "n " << n << " i " << i;
        }
        for (size_t i = static_cast<size_t>(n); i < packed.size(); ++i) {
            ASSERT_EQ(packed[i], 0x5555);
        }

        for (auto& h : packed) h = static_cast<uint16_t>(code(random.engine()));
        std::vector<float> out(static_cast<size_t>(n) + 9, 1234.5f);
        bf16_to_fp32_row(packed.data(), out.data(), n);
        for (int64_t i = 0; i < n; ++i) {
            ASSERT_TRUE(same_bits(out[static_cast<size_t>(i)],
                                  bf16_to_fp32(packed[static_cast<size_t>(i)])))
                << "n " << n << " i " << i;
        }
        for (size_t i = static_cast<size_t>(n); i < out.size(); ++i) ASSERT_EQ(out[i], 1234.5f);
    }
}

}  // namespace
}  // namespace edgeq
