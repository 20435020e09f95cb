// Every format's to_float against a dequantizer written here from the ggml block layouts,
// reading the block bit by bit from its byte offsets, on random bytes (random block contents
// with the F16 scale fields forced to finite values). This pins the byte layout: a swapped
// nibble, field or bit order anywhere shows up as a wrong value.
//
// The products are formed in ggml's order (the sub-block scale d * sc first, then times q),
// so that the results are equal to the last bit.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "core/half-reference.h"
#include "edgeq/core/error.h"
#include "edgeq/quant/dtype.h"
#include "edgeq/quant/quantize.h"
#include "test-random.h"

namespace edgeq {
namespace {

using testing::ref_bf16_to_fp32;
using testing::ref_fp16_to_fp32;

// Bit `i` of a little-endian byte string (bit 0 is the low bit of byte 0).
int bit(const uint8_t* p, int i) {
    return (p[i / 8] >> (i % 8)) & 1;
}

// `count` bits starting at bit `first`, low bit first.
int bits(const uint8_t* p, int first, int count) {
    int v = 0;
    for (int k = 0; k < count; ++k) v |= bit(p, first + k) << k;
    return v;
}

float f16_at(const uint8_t* p, int offset) {
    return ref_fp16_to_fp32(static_cast<uint16_t>(bits(p + offset, 0, 16)));
}

int i8_at(const uint8_t* p, int offset) {
    const int u = bits(p + offset, 0, 8);
    return u >= 128 ? u - 256 : u;
}

constexpr int k_iq4_grid[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                1,    13,   25,  38,  53,  69,  89,  113};

// ---- 32-value blocks ----

// Q4_0 {f16 d; u8 qs[16]}: value j < 16 in the low nibble of qs[j], value j + 16 in the high
// nibble; value = d * (q - 8).
void ref_q4_0(const uint8_t* b, float* y) {
    const float d = f16_at(b, 0);
    for (int v = 0; v < 32; ++v) {
        const int q = bits(b + 2, 8 * (v % 16) + 4 * (v / 16), 4);
        y[v] = d * static_cast<float>(q - 8);
    }
}

// Q4_1 {f16 d; f16 m; u8 qs[16]}: value = d * q + m.
void ref_q4_1(const uint8_t* b, float* y) {
    const float d = f16_at(b, 0);
    const float m = f16_at(b, 2);
    for (int v = 0; v < 32; ++v) {
        const int q = bits(b + 4, 8 * (v % 16) + 4 * (v / 16), 4);
        y[v] = d * static_cast<float>(q) + m;
    }
}

// Q5_0 {f16 d; u8 qh[4]; u8 qs[16]}: bit 4 of value j is bit j of qh; value = d * (q - 16).
void ref_q5_0(const uint8_t* b, float* y) {
    const float d = f16_at(b, 0);
    for (int v = 0; v < 32; ++v) {
        const int q = bits(b + 6, 8 * (v % 16) + 4 * (v / 16), 4) | (bit(b + 2, v) << 4);
        y[v] = d * static_cast<float>(q - 16);
    }
}

// Q5_1 {f16 d; f16 m; u8 qh[4]; u8 qs[16]}: value = d * q + m.
void ref_q5_1(const uint8_t* b, float* y) {
    const float d = f16_at(b, 0);
    const float m = f16_at(b, 2);
    for (int v = 0; v < 32; ++v) {
        const int q = bits(b + 8, 8 * (v % 16) + 4 * (v / 16), 4) | (bit(b + 4, v) << 4);
        y[v] = d * static_cast<float>(q) + m;
    }
}

// Q8_0 {f16 d; i8 qs[32]}: value = d * q.
void ref_q8_0(const uint8_t* b, float* y) {
    const float d = f16_at(b, 0);
    for (int v = 0; v < 32; ++v) y[v] = d * static_cast<float>(i8_at(b, 2 + v));
}

// IQ4_NL {f16 d; u8 qs[16]}: indices into the grid, nibbles as Q4_0.
void ref_iq4_nl(const uint8_t* b, float* y) {
    const float d = f16_at(b, 0);
    for (int v = 0; v < 32; ++v) {
        const int q = bits(b + 2, 8 * (v % 16) + 4 * (v / 16), 4);
        y[v] = d * static_cast<float>(k_iq4_grid[q]);
    }
}

// ---- 256-value super-blocks ----

// The 2-bit field of value v = 128h + 32k + l in a Q2_K-style qs: bits 2k..2k+1 of qs[32h+l].
int two_bits(const uint8_t* qs, int v) {
    const int h = v / 128;
    const int k = (v % 128) / 32;
    const int l = v % 32;
    return bits(qs, 8 * (32 * h + l) + 2 * k, 2);
}

// Q2_K {u8 scales[16]; u8 qs[64]; f16 d; f16 dmin}: sub-block j = v / 16 has scale
// scales[j] & 15 and min scales[j] >> 4; value = d * sc * q - dmin * m.
void ref_q2_k(const uint8_t* b, float* y) {
    const float d = f16_at(b, 80);
    const float dmin = f16_at(b, 82);
    for (int v = 0; v < 256; ++v) {
        const int j = v / 16;
        const int sc = bits(b + j, 0, 4);
        const int m = bits(b + j, 4, 4);
        const int q = two_bits(b + 16, v);
        const float dl = d * static_cast<float>(sc);
        const float ml = dmin * static_cast<float>(m);
        y[v] = dl * static_cast<float>(q) - ml;
    }
}

// Q3_K {u8 hmask[32]; u8 qs[64]; u8 scales[12]; f16 d}: low two bits as Q2_K; the high bit
// is bit v / 32 of hmask[v % 32]; q = low - (high ? 0 : 4). Six-bit scale j: its low nibble
// is the low nibble of scales[j] (j < 8) or the high nibble of scales[j - 8]; its top two
// bits are bits 2 (j / 4) of scales[8 + j % 4]. value = d * (s - 32) * q.
void ref_q3_k(const uint8_t* b, float* y) {
    const uint8_t* hmask = b;
    const uint8_t* qs = b + 32;
    const uint8_t* scales = b + 96;
    const float d = f16_at(b, 108);
    for (int v = 0; v < 256; ++v) {
        const int j = v / 16;
        const int low_nibble = j < 8 ? bits(scales + j, 0, 4) : bits(scales + j - 8, 4, 4);
        const int top = bits(scales + 8 + j % 4, 2 * (j / 4), 2);
        const int s = low_nibble + 16 * top - 32;
        const int high = bit(hmask + v % 32, v / 32);
        const int q = two_bits(qs, v) - (high != 0 ? 0 : 4);
        const float dl = d * static_cast<float>(s);
        y[v] = dl * static_cast<float>(q);
    }
}

// The six-bit scale and min of sub-block j (of 8) in the 12 scale bytes of Q4_K and Q5_K.
void k4_scale_min(const uint8_t* s, int j, int& sc, int& m) {
    if (j < 4) {
        sc = bits(s + j, 0, 6);
        m = bits(s + j + 4, 0, 6);
    } else {
        sc = bits(s + j + 4, 0, 4) | (bits(s + j - 4, 6, 2) << 4);
        m = bits(s + j + 4, 4, 4) | (bits(s + j, 6, 2) << 4);
    }
}

// Q4_K {f16 d; f16 dmin; u8 scales[12]; u8 qs[128]}: sub-block j (32 values) in the low
// (j even) or high (j odd) nibbles of qs[32 (j / 2) ..]; value = d * sc * q - dmin * m.
void ref_q4_k(const uint8_t* b, float* y) {
    const float d = f16_at(b, 0);
    const float dmin = f16_at(b, 2);
    for (int v = 0; v < 256; ++v) {
        const int j = v / 32;
        const int l = v % 32;
        int sc = 0;
        int m = 0;
        k4_scale_min(b + 4, j, sc, m);
        const int q = bits(b + 16 + 32 * (j / 2) + l, 4 * (j % 2), 4);
        const float dl = d * static_cast<float>(sc);
        const float ml = dmin * static_cast<float>(m);
        y[v] = dl * static_cast<float>(q) - ml;
    }
}

// Q5_K {f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]}: Q4_K plus bit 4 of value
// 32j + l = bit j of qh[l].
void ref_q5_k(const uint8_t* b, float* y) {
    const float d = f16_at(b, 0);
    const float dmin = f16_at(b, 2);
    for (int v = 0; v < 256; ++v) {
        const int j = v / 32;
        const int l = v % 32;
        int sc = 0;
        int m = 0;
        k4_scale_min(b + 4, j, sc, m);
        const int q = bits(b + 48 + 32 * (j / 2) + l, 4 * (j % 2), 4) | (bit(b + 16 + l, j) << 4);
        const float dl = d * static_cast<float>(sc);
        const float ml = dmin * static_cast<float>(m);
        y[v] = dl * static_cast<float>(q) - ml;
    }
}

// Q6_K {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}: value v = 128h + 32k + l has its low
// nibble in ql[64h + 32 (k % 2) + l] (the high nibble when k >= 2) and its top two bits at
// bit 2k of qh[32h + l]; value = d * scales[v / 16] * (q - 32).
void ref_q6_k(const uint8_t* b, float* y) {
    const float d = f16_at(b, 208);
    for (int v = 0; v < 256; ++v) {
        const int h = v / 128;
        const int k = (v % 128) / 32;
        const int l = v % 32;
        const int low = bits(b + 64 * h + 32 * (k % 2) + l, 4 * (k / 2), 4);
        const int high = bits(b + 128 + 32 * h + l, 2 * k, 2);
        const int q = low + 16 * high - 32;
        const float dl = d * static_cast<float>(i8_at(b, 192 + v / 16));
        y[v] = dl * static_cast<float>(q);
    }
}

// Q8_K {f32 d; i8 qs[256]; i16 bsums[16]}: value = d * q (bsums do not enter).
void ref_q8_k(const uint8_t* b, float* y) {
    const auto d_bits =
        static_cast<uint32_t>(bits(b, 0, 16)) | (static_cast<uint32_t>(bits(b + 2, 0, 16)) << 16);
    float d;
    std::memcpy(&d, &d_bits, sizeof(d));
    for (int v = 0; v < 256; ++v) y[v] = d * static_cast<float>(i8_at(b, 4 + v));
}

// TQ2_0 {u8 qs[64]; f16 d}: q as Q2_K's qs, value = d * (q - 1).
void ref_tq2_0(const uint8_t* b, float* y) {
    const float d = f16_at(b, 64);
    for (int v = 0; v < 256; ++v) y[v] = d * static_cast<float>(two_bits(b, v) - 1);
}

// Trit i (0..4) of a TQ1_0 byte: the byte is a base-3 fraction scaled to 256, so multiplying
// by 3^i (mod 256) shifts trit i to the top, and * 3 >> 8 reads it.
int trit(int byte, int i) {
    int shifted = byte;
    for (int k = 0; k < i; ++k) shifted = (shifted * 3) % 256;
    return (shifted * 3) / 256;
}

// TQ1_0 {u8 qs[48]; u8 qh[4]; f16 d}: qs[l] (l < 32) gives values 32i + l, i = 0..4;
// qs[32 + l] (l < 16) gives values 160 + 16i + l; qh[l] (l < 4) gives values 240 + 4i + l,
// i = 0..3; value = d * (trit - 1).
void ref_tq1_0(const uint8_t* b, float* y) {
    const float d = f16_at(b, 52);
    for (int l = 0; l < 32; ++l) {
        for (int i = 0; i < 5; ++i) y[32 * i + l] = d * static_cast<float>(trit(b[l], i) - 1);
    }
    for (int l = 0; l < 16; ++l) {
        for (int i = 0; i < 5; ++i) {
            y[160 + 16 * i + l] = d * static_cast<float>(trit(b[32 + l], i) - 1);
        }
    }
    for (int l = 0; l < 4; ++l) {
        for (int i = 0; i < 4; ++i) {
            y[240 + 4 * i + l] = d * static_cast<float>(trit(b[48 + l], i) - 1);
        }
    }
}

// IQ4_XS {f16 d; u16 scales_h; u8 scales_l[4]; u8 qs[128]}: sub-block j's scale is
// (nibble j % 2 of scales_l[j / 2]) | (bits 2j..2j+1 of scales_h) << 4, minus 32; its values
// are qs[16j .. 16j + 15] read as IQ4_NL reads its qs.
void ref_iq4_xs(const uint8_t* b, float* y) {
    const float d = f16_at(b, 0);
    for (int v = 0; v < 256; ++v) {
        const int j = v / 32;
        const int l = v % 32;
        const int scale = (bits(b + 4 + j / 2, 4 * (j % 2), 4) | (bits(b + 2, 2 * j, 2) << 4)) - 32;
        const int q = bits(b + 8 + 16 * j, 8 * (l % 16) + 4 * (l / 16), 4);
        const float dl = d * static_cast<float>(scale);
        y[v] = dl * static_cast<float>(k_iq4_grid[q]);
    }
}

// ---- plain floats ----

void ref_f32(const uint8_t* b, float* y) {
    std::memcpy(y, b, 4);
}
void ref_f16(const uint8_t* b, float* y) {
    *y = f16_at(b, 0);
}
void ref_bf16(const uint8_t* b, float* y) {
    *y = ref_bf16_to_fp32(static_cast<uint16_t>(bits(b, 0, 16)));
}

struct Format {
    GgmlType type;
    int block_size;
    int block_bytes;
    std::vector<int> f16_fields;  // byte offsets of F16 scales, forced finite
    std::vector<int> f32_fields;  // byte offsets of F32 scales, forced finite
    void (*reference)(const uint8_t* block, float* values);
};

const std::vector<Format>& formats() {
    static const std::vector<Format> list = {
        {GgmlType::Q4_0, 32, 18, {0}, {}, ref_q4_0},
        {GgmlType::Q4_1, 32, 20, {0, 2}, {}, ref_q4_1},
        {GgmlType::Q5_0, 32, 22, {0}, {}, ref_q5_0},
        {GgmlType::Q5_1, 32, 24, {0, 2}, {}, ref_q5_1},
        {GgmlType::Q8_0, 32, 34, {0}, {}, ref_q8_0},
        {GgmlType::Q2_K, 256, 84, {80, 82}, {}, ref_q2_k},
        {GgmlType::Q3_K, 256, 110, {108}, {}, ref_q3_k},
        {GgmlType::Q4_K, 256, 144, {0, 2}, {}, ref_q4_k},
        {GgmlType::Q5_K, 256, 176, {0, 2}, {}, ref_q5_k},
        {GgmlType::Q6_K, 256, 210, {208}, {}, ref_q6_k},
        {GgmlType::Q8_K, 256, 292, {}, {0}, ref_q8_k},
        {GgmlType::TQ1_0, 256, 54, {52}, {}, ref_tq1_0},
        {GgmlType::TQ2_0, 256, 66, {64}, {}, ref_tq2_0},
        {GgmlType::IQ4_NL, 32, 18, {0}, {}, ref_iq4_nl},
        {GgmlType::IQ4_XS, 256, 136, {0}, {}, ref_iq4_xs},
        {GgmlType::F32, 1, 4, {}, {0}, ref_f32},
        {GgmlType::F16, 1, 2, {0}, {}, ref_f16},
        {GgmlType::BF16, 1, 2, {}, {}, ref_bf16},
    };
    return list;
}

// Random bytes for n_blocks blocks; F16 fields get a random finite code (any sign, zero,
// subnormal or normal), F32 fields a random finite float.
std::vector<uint8_t> random_blocks(testing::Random& random, const Format& f, int n_blocks) {
    std::uniform_int_distribution<int> byte(0, 255);
    std::uniform_int_distribution<uint32_t> word;
    std::vector<uint8_t> bytes(static_cast<size_t>(n_blocks * f.block_bytes));
    for (auto& b : bytes) b = static_cast<uint8_t>(byte(random.engine()));
    for (int i = 0; i < n_blocks; ++i) {
        uint8_t* block = bytes.data() + static_cast<size_t>(i * f.block_bytes);
        for (int offset : f.f16_fields) {
            uint16_t h;
            do {
                h = static_cast<uint16_t>(word(random.engine()));
            } while ((h & 0x7c00) == 0x7c00);
            std::memcpy(block + offset, &h, 2);
        }
        for (int offset : f.f32_fields) {
            uint32_t u;
            do {
                u = word(random.engine());
            } while ((u & 0x7f800000) == 0x7f800000);
            std::memcpy(block + offset, &u, 4);
        }
    }
    return bytes;
}

uint32_t bits_of(float f) {
    uint32_t u;
    std::memcpy(&u, &f, sizeof(u));
    return u;
}

class ReferenceDequant : public ::testing::TestWithParam<Format> {};

TEST_P(ReferenceDequant, RandomBlocksMatchTheIndependentDecoder) {
    const Format& f = GetParam();
    const DType& t = dtype(f.type);
    ASSERT_EQ(t.block_size, f.block_size);
    ASSERT_EQ(static_cast<int>(t.type_size), f.block_bytes);
    ASSERT_NE(t.to_float, nullptr);
    testing::Random random;
    SCOPED_TRACE(random.trace());
    // Enough blocks that every value position sees thousands of random bytes.
    const int n_rows = f.block_size == 1 ? 40 : (f.block_size == 32 ? 300 : 120);
    for (int row = 0; row < n_rows; ++row) {
        const int n_blocks =
            f.block_size == 1 ? random.uniform_int(1, 300) : random.uniform_int(1, 6);
        const std::vector<uint8_t> bytes = random_blocks(random, f, n_blocks);
        const int64_t n = static_cast<int64_t>(n_blocks) * f.block_size;
        std::vector<float> expected(static_cast<size_t>(n));
        for (int i = 0; i < n_blocks; ++i) {
            f.reference(bytes.data() + static_cast<size_t>(i * f.block_bytes),
                        expected.data() + static_cast<size_t>(i * f.block_size));
        }
        // Through the table and through the public entry point; nothing past n is written.
        std::vector<float> got(static_cast<size_t>(n) + 8, 1234.5f);
        t.to_float(bytes.data(), got.data(), n);
        std::vector<float> got_public(static_cast<size_t>(n) + 8, 1234.5f);
        to_float(f.type, bytes.data(), got_public.data(), n);
        for (int64_t i = 0; i < n; ++i) {
            const auto k = static_cast<size_t>(i);
            const bool both_nan = std::isnan(got[k]) && std::isnan(expected[k]);
            ASSERT_TRUE(both_nan || bits_of(got[k]) == bits_of(expected[k]))
                << t.name << " block " << i / f.block_size << " value " << i % f.block_size
                << ": got " << got[k] << ", expected " << expected[k];
            ASSERT_EQ(bits_of(got_public[k]), bits_of(got[k])) << t.name << " value " << i;
        }
        for (size_t k = static_cast<size_t>(n); k < got.size(); ++k) {
            ASSERT_EQ(got[k], 1234.5f);
            ASSERT_EQ(got_public[k], 1234.5f);
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Formats, ReferenceDequant, ::testing::ValuesIn(formats()),
                         [](const ::testing::TestParamInfo<Format>& info) {
                             return std::string(dtype(info.param.type).name);
                         });

// Every implemented format is covered above.
TEST(ReferenceDequantCoverage, EveryConvertibleTypeHasAReference) {
    for (const DType& t : all_dtypes()) {
        if (t.to_float == nullptr) continue;
        bool found = false;
        for (const Format& f : formats()) found = found || f.type == t.type;
        EXPECT_TRUE(found) << t.name << " has to_float but no reference decoder in this test";
    }
}

TEST(ReferenceDequantCoverage, PublicToFloatRefusesWhatItCannotRead) {
    std::vector<uint8_t> bytes(4096);
    std::vector<float> out(4096);
    try {
        to_float(GgmlType::Q4_K, bytes.data(), out.data(), 100);
        ADD_FAILURE() << "a partial block was read";
    } catch (const Error& e) {
        const std::string message = e.what();
        EXPECT_NE(message.find("Q4_K"), std::string::npos) << message;
        EXPECT_NE(message.find("256"), std::string::npos) << message;
    }
    EXPECT_THROW(to_float(GgmlType::IQ2_XXS, bytes.data(), out.data(), 256), Error);
    EXPECT_FALSE(can_dequantize(GgmlType::IQ2_XXS));
    EXPECT_TRUE(can_dequantize(GgmlType::IQ4_XS));
}

}  // namespace
}  // namespace edgeq
