// The byte layout of every ggml block format edgeq reads and writes, defined once.
//
// Each struct is exactly the on-disk block (little-endian, no padding); the static_asserts pin
// the sizes that GGUF files depend on. F16 scales are stored as raw uint16_t bits.
#pragma once

#include <cstdint>

namespace edgeq::quant {

constexpr int k_qk_k = 256;  // values per k-quant super-block
constexpr int k_qk_32 = 32;  // values per block of the legacy formats and IQ4_NL

struct BlockQ4_0 {
    uint16_t d;
    uint8_t qs[16];  // value j in the low nibble of qs[j], value j+16 in the high nibble
};
static_assert(sizeof(BlockQ4_0) == 18);

struct BlockQ4_1 {
    uint16_t d;
    uint16_t m;
    uint8_t qs[16];
};
static_assert(sizeof(BlockQ4_1) == 20);

struct BlockQ5_0 {
    uint16_t d;
    uint8_t qh[4];  // bit j (little-endian uint32) is bit 4 of value j
    uint8_t qs[16];
};
static_assert(sizeof(BlockQ5_0) == 22);

struct BlockQ5_1 {
    uint16_t d;
    uint16_t m;
    uint8_t qh[4];
    uint8_t qs[16];
};
static_assert(sizeof(BlockQ5_1) == 24);

struct BlockQ8_0 {
    uint16_t d;
    int8_t qs[32];
};
static_assert(sizeof(BlockQ8_0) == 34);

// Q2_K: 16 sub-blocks of 16; value = d * (scales & 15) * q - dmin * (scales >> 4), q in 0..3.
struct BlockQ2_K {
    uint8_t scales[16];
    uint8_t qs[64];  // value 128h + 32k + l: bits 2k..2k+1 of qs[32h + l]
    uint16_t d;
    uint16_t dmin;
};
static_assert(sizeof(BlockQ2_K) == 84);

// Q3_K: 16 sub-blocks of 16; value = d * (scale - 32) * (q - 4 * !hbit), q in 0..3.
struct BlockQ3_K {
    uint8_t hmask[32];   // value 32j + l: bit j of hmask[l]
    uint8_t qs[64];      // low two bits, laid out as in Q2_K
    uint8_t scales[12];  // 16 six-bit scales: low nibbles in bytes 0..7, high pairs in 8..11
    uint16_t d;
};
static_assert(sizeof(BlockQ3_K) == 110);

// Q4_K: 8 sub-blocks of 32; value = d * sc * q - dmin * m, six-bit sc and m.
struct BlockQ4_K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[12];
    uint8_t qs[128];  // sub-blocks 2i and 2i+1 in the low and high nibbles of qs[32i..32i+31]
};
static_assert(sizeof(BlockQ4_K) == 144);

struct BlockQ5_K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[12];
    uint8_t qh[32];  // value 32j + l: bit j of qh[l] is bit 4
    uint8_t qs[128];
};
static_assert(sizeof(BlockQ5_K) == 176);

// Q6_K: 16 sub-blocks of 16; value = d * scales[j] * (q - 32), q in 0..63.
struct BlockQ6_K {
    uint8_t ql[128];  // low nibbles; see q6_k.cpp for the order
    uint8_t qh[64];   // high two bits
    int8_t scales[16];
    uint16_t d;
};
static_assert(sizeof(BlockQ6_K) == 210);

// Q8_K: the activation format of the k-quant dot products; d is a float.
struct BlockQ8_K {
    float d;
    int8_t qs[256];
    int16_t bsums[16];  // sums of each group of 16 qs
};
static_assert(sizeof(BlockQ8_K) == 292);

// TQ1_0: ternary, five values per byte in base 3 (qs), four per byte for the last 16 (qh).
struct BlockTQ1_0 {
    uint8_t qs[48];
    uint8_t qh[4];
    uint16_t d;
};
static_assert(sizeof(BlockTQ1_0) == 54);

// TQ2_0: ternary in two bits per value, laid out as Q2_K's qs.
struct BlockTQ2_0 {
    uint8_t qs[64];
    uint16_t d;
};
static_assert(sizeof(BlockTQ2_0) == 66);

// IQ4_NL: 32 values, each an index into the non-linear grid k_iq4_grid, one F16 scale.
struct BlockIQ4_NL {
    uint16_t d;
    uint8_t qs[16];
};
static_assert(sizeof(BlockIQ4_NL) == 18);

// IQ4_XS: 8 sub-blocks of 32 on the IQ4 grid, six-bit signed scales (stored + 32).
struct BlockIQ4_XS {
    uint16_t d;
    uint16_t scales_h;    // bits 2j..2j+1: high bits of scale j
    uint8_t scales_l[4];  // low nibble: scale 2i, high nibble: scale 2i+1
    uint8_t qs[128];      // sub-block j in qs[16j..16j+15], as IQ4_NL's qs
};
static_assert(sizeof(BlockIQ4_XS) == 136);

// The 16 values of the IQ4 grid (ggml's kvalues_iq4nl).
inline constexpr int8_t k_iq4_grid[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                          1,    13,   25,  38,  53,  69,  89,  113};

}  // namespace edgeq::quant
