// The reference quantizers of Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_K, TQ1_0 and TQ2_0 against
// ggml's reference rounding, written out here from its description (with an F16 encoder of
// our own, core/half-reference.h), byte for byte, on random blocks of many kinds and on
// blocks of exact rounding ties.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "core/half-reference.h"
#include "edgeq/quant/dtype.h"
#include "test-random.h"

namespace edgeq {
namespace {

using testing::ref_fp32_to_fp16;

uint16_t f16(float v) {
    return ref_fp32_to_fp16(v);
}

void put_u16(uint8_t* p, uint16_t v) {
    p[0] = static_cast<uint8_t>(v & 0xff);
    p[1] = static_cast<uint8_t>(v >> 8);
}

// The value of largest magnitude, the first one if several tie.
float signed_max(const float* x, int n) {
    float amax = 0;
    float max = 0;
    for (int i = 0; i < n; ++i) {
        if (amax < std::fabs(x[i])) {
            amax = std::fabs(x[i]);
            max = x[i];
        }
    }
    return max;
}

// Packs 32 values of 4 (or 5) bits: nibbles of values j and j + 16 in byte j of qs; fifth bits
// in the 32 bits of qh, value j at bit j.
void pack_32(const int* q, uint8_t* qs, uint8_t* qh) {
    uint32_t high = 0;
    for (int j = 0; j < 16; ++j) {
        qs[j] = static_cast<uint8_t>((q[j] & 15) + 16 * (q[j + 16] & 15));
    }
    for (int j = 0; j < 32; ++j) high += static_cast<uint32_t>((q[j] >> 4) & 1) << j;
    if (qh != nullptr) {
        for (int k = 0; k < 4; ++k) qh[k] = static_cast<uint8_t>(high >> (8 * k));
    }
}

void ref_q4_0(const float* x, uint8_t* b) {
    const float max = signed_max(x, 32);
    const float d = max / -8;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    int q[32];
    for (int j = 0; j < 32; ++j) q[j] = std::min(15, static_cast<int>(x[j] * id + 8.5f));
    put_u16(b, f16(d));
    pack_32(q, b + 2, nullptr);
}

void ref_q4_1(const float* x, uint8_t* b) {
    const float min = *std::min_element(x, x + 32);
    const float max = *std::max_element(x, x + 32);
    const float d = (max - min) / 15;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    int q[32];
    for (int j = 0; j < 32; ++j) q[j] = std::min(15, static_cast<int>((x[j] - min) * id + 0.5f));
    put_u16(b, f16(d));
    put_u16(b + 2, f16(min));
    pack_32(q, b + 4, nullptr);
}

void ref_q5_0(const float* x, uint8_t* b) {
    const float max = signed_max(x, 32);
    const float d = max / -16;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    int q[32];
    for (int j = 0; j < 32; ++j) q[j] = std::min(31, static_cast<int>(x[j] * id + 16.5f));
    put_u16(b, f16(d));
    pack_32(q, b + 6, b + 2);
}

void ref_q5_1(const float* x, uint8_t* b) {
    const float min = *std::min_element(x, x + 32);
    const float max = *std::max_element(x, x + 32);
    const float d = (max - min) / 31;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    int q[32];
    for (int j = 0; j < 32; ++j) q[j] = std::min(31, static_cast<int>((x[j] - min) * id + 0.5f));
    put_u16(b, f16(d));
    put_u16(b + 2, f16(min));
    pack_32(q, b + 8, b + 4);
}

void ref_q8_0(const float* x, uint8_t* b) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    put_u16(b, f16(d));
    for (int j = 0; j < 32; ++j) {
        b[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(std::roundf(x[j] * id)));
    }
}

// Q8_K: iscale = -127 / (the value of largest magnitude), q = nearest (ties to even) of
// iscale * x, at most 127; bsums; d = 1 / iscale as a float. An all-zero block is all zeros.
void ref_q8_k(const float* x, uint8_t* b) {
    std::memset(b, 0, 292);
    const float max = signed_max(x, 256);
    if (max == 0) return;
    const float iscale = -127.0f / max;
    int q[256];
    for (int j = 0; j < 256; ++j) {
        q[j] = std::min(127, static_cast<int>(std::nearbyint(iscale * x[j])));
        b[4 + j] = static_cast<uint8_t>(static_cast<int8_t>(q[j]));
    }
    for (int g = 0; g < 16; ++g) {
        int sum = 0;
        for (int i = 0; i < 16; ++i) sum += q[16 * g + i];
        put_u16(b + 260 + 2 * g, static_cast<uint16_t>(static_cast<int16_t>(sum)));
    }
    const float d = 1 / iscale;
    std::memcpy(b, &d, 4);
}

// The ternary digit of x: lroundf(x * (1 / amax)) + 1, in 0..2.
void ternary(const float* x, int* t) {
    float amax = 0;
    for (int j = 0; j < 256; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float id = amax != 0 ? 1.0f / amax : 0.0f;
    for (int j = 0; j < 256; ++j) t[j] = static_cast<int>(std::lroundf(x[j] * id)) + 1;
}

float abs_max(const float* x, int n) {
    float amax = 0;
    for (int j = 0; j < n; ++j) amax = std::max(amax, std::fabs(x[j]));
    return amax;
}

void ref_tq2_0(const float* x, uint8_t* b) {
    int t[256];
    ternary(x, t);
    for (int h = 0; h < 2; ++h) {
        for (int l = 0; l < 32; ++l) {
            int byte = 0;
            for (int k = 0; k < 4; ++k) byte += t[128 * h + 32 * k + l] << (2 * k);
            b[32 * h + l] = static_cast<uint8_t>(byte);
        }
    }
    put_u16(b + 64, f16(abs_max(x, 256)));
}

// Five trits, the first most significant, as a byte: ceil(v * 256 / 243).
uint8_t trit_byte(int t0, int t1, int t2, int t3, int t4) {
    const int v = (((t0 * 3 + t1) * 3 + t2) * 3 + t3) * 3 + t4;
    int byte = v * 256 / 243;
    if (byte * 243 < v * 256) ++byte;
    return static_cast<uint8_t>(byte);
}

void ref_tq1_0(const float* x, uint8_t* b) {
    int t[256];
    ternary(x, t);
    for (int l = 0; l < 32; ++l) {
        b[l] = trit_byte(t[l], t[32 + l], t[64 + l], t[96 + l], t[128 + l]);
    }
    for (int l = 0; l < 16; ++l) {
        const int* u = t + 160 + l;
        b[32 + l] = trit_byte(u[0], u[16], u[32], u[48], u[64]);
    }
    for (int l = 0; l < 4; ++l) {  // four trits, shifted up by one place
        const int* u = t + 240 + l;
        b[48 + l] = trit_byte(u[0], u[4], u[8], u[12], 0);
    }
    put_u16(b + 52, f16(abs_max(x, 256)));
}

struct RefFormat {
    GgmlType type;
    void (*reference)(const float* x, uint8_t* block);
    // Blocks of exact ties: `anchor` (the value that sets the scale so that x / scale is x)
    // and multiples of 1/2 in [lo, hi], all times a power of two, so that x / scale lands
    // exactly on the rounding boundaries.
    float anchor;
    float lo;
    float hi;
};

class ReferenceQuantizer : public ::testing::TestWithParam<RefFormat> {};

// Blocks of many kinds: Gaussian at random scales, heavy-tailed, values on a coarse grid
// (ties in the rounding), all equal, all zero but one, all zero, F16-subnormal scales.
std::vector<float> reference_test_rows(testing::Random& random, const RefFormat& f,
                                       int64_t n_blocks, int block) {
    std::vector<float> x;
    x.reserve(static_cast<size_t>(n_blocks * block));
    for (int64_t b = 0; b < n_blocks; ++b) {
        const int kind = random.uniform_int(0, 11);
        const float scale = std::pow(10.0f, random.uniform(-6.0f, 3.0f));
        std::vector<float> v;
        switch (kind) {
            case 0:
            case 1:
            case 2:
                v = random.normal(static_cast<size_t>(block), scale);
                break;
            case 3:
            case 4:
                v = random.heavy_tailed(1, static_cast<size_t>(block), scale);
                break;
            case 5:  // small integers times a power of two: exact ties are frequent
                v.resize(static_cast<size_t>(block));
                for (auto& f : v)
                    f = std::ldexp(static_cast<float>(random.uniform_int(-16, 16)), -3);
                break;
            case 6:
                v.assign(static_cast<size_t>(block), random.uniform(-5.0f, 5.0f));
                break;
            case 7:
                v.assign(static_cast<size_t>(block), 0.0f);
                v[static_cast<size_t>(random.uniform_int(0, block - 1))] = random.uniform(-3, 3);
                break;
            case 8:
                v.assign(static_cast<size_t>(block), 0.0f);
                break;
            case 9:  // the scale falls in the F16 subnormal range
                v = random.normal(static_cast<size_t>(block), 1e-6f);
                break;
            default: {  // exact ties; the anchor first or anywhere
                const float unit = std::ldexp(1.0f, random.uniform_int(-12, 12));
                v.resize(static_cast<size_t>(block));
                for (auto& f2 : v) {
                    f2 = unit * 0.5f *
                         static_cast<float>(random.uniform_int(static_cast<int>(2 * f.lo),
                                                               static_cast<int>(2 * f.hi)));
                }
                v[0] = unit * f.anchor;
                if (f.type == GgmlType::Q4_1 || f.type == GgmlType::Q5_1) {
                    v[1] = unit * f.lo;  // the range is [lo, hi] exactly
                    v[2] = unit * f.hi;
                }
                if (kind == 11) std::shuffle(v.begin(), v.end(), random.engine());
                break;
            }
        }
        x.insert(x.end(), v.begin(), v.end());
    }
    return x;
}

TEST_P(ReferenceQuantizer, MatchesGgmlRoundingByteForByte) {
    const RefFormat& f = GetParam();
    const DType& t = dtype(f.type);
    ASSERT_NE(t.from_float_ref, nullptr);
    testing::Random random;
    SCOPED_TRACE(random.trace());
    const int block = static_cast<int>(t.block_size);
    for (int trial = 0; trial < 60; ++trial) {
        const int64_t n_blocks = random.uniform_int(1, block == 32 ? 64 : 8);
        const int64_t n = n_blocks * block;
        const std::vector<float> x = reference_test_rows(random, f, n_blocks, block);
        std::vector<uint8_t> expected(row_size(f.type, n));
        for (int64_t b = 0; b < n_blocks; ++b) {
            f.reference(x.data() + b * block,
                        expected.data() + static_cast<size_t>(b) * t.type_size);
        }
        std::vector<uint8_t> got(expected.size() + 8, 0x5a);
        t.from_float_ref(x.data(), got.data(), n);
        for (size_t i = expected.size(); i < got.size(); ++i) ASSERT_EQ(got[i], 0x5a);
        got.resize(expected.size());
        for (size_t i = 0; i < expected.size(); ++i) {
            ASSERT_EQ(int(got[i]), int(expected[i]))
                << t.name << " block " << i / t.type_size << " byte " << i % t.type_size
                << " (first value of the block " << x[i / t.type_size * static_cast<size_t>(block)]
                << ")";
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Formats, ReferenceQuantizer,
                         ::testing::Values(RefFormat{GgmlType::Q4_0, ref_q4_0, -8, -8, 8},
                                           RefFormat{GgmlType::Q4_1, ref_q4_1, 0, 0, 15},
                                           RefFormat{GgmlType::Q5_0, ref_q5_0, -16, -16, 16},
                                           RefFormat{GgmlType::Q5_1, ref_q5_1, 0, 0, 31},
                                           RefFormat{GgmlType::Q8_0, ref_q8_0, 127, -127, 127},
                                           RefFormat{GgmlType::Q8_K, ref_q8_k, -127, -127, 127},
                                           RefFormat{GgmlType::TQ1_0, ref_tq1_0, 1, -1, 1},
                                           RefFormat{GgmlType::TQ2_0, ref_tq2_0, -1, -1, 1}),
                         [](const ::testing::TestParamInfo<RefFormat>& info) {
                             return std::string(dtype(info.param.type).name);
                         });

}  // namespace
}  // namespace edgeq
