// Q4_K packed (see packed.h). One group of 8 rows holds, for each super-block of 256 values
// (8 sub-blocks of 32), 1184 bytes where the 8 rows' blocks held 1152: the six-bit scales and
// minimums are stored decoded, one byte each, so that the kernels load them as vectors.
//   bytes 0..15      the 8 rows' d (FP16), row r at 2r;
//   bytes 16..31     the 8 rows' dmin (FP16), row r at 16 + 2r;
//   bytes 32..95     the scales: sub-block s of row r at 32 + 8s + r;
//   bytes 96..159    the minimums, by pairs of sub-blocks: sub-block s of row r at
//                    96 + 16 (s / 2) + 2r + s % 2 (widened to int16, lane r of a 32-bit
//                    vector holds the pair (m[2t], m[2t + 1]) of row r);
//   bytes 160..1183  four pairs of sub-blocks (2p, 2p + 1), each eight chunks of 32 bytes:
//                    byte 4r + i of chunk v of pair p (at 160 + 256p + 32v) holds value 4v + i
//                    of sub-block 2p of row r in its low nibble and value 4v + i of sub-block
//                    2p + 1 in its high nibble.
// The low nibbles of chunk v are then values 4v..4v+3 of one sub-block of every row, four
// bytes per row, as one vpdpbusd wants them; the file pairs sub-blocks 2p and 2p + 1 the same
// way, so a byte of the file moves whole.
//
// Q5_K packed: the same 1184 bytes, then 256 bytes of fifth bits (1440 for the rows' 1408):
//   bytes 1184..1439 per pair p and half h (chunks 4h..4h+3), 32 bytes at 1184 + 64p + 32h:
//                    byte 4r + i holds in bit v (v < 4) bit 4 of value 4 (4h + v) + i of
//                    sub-block 2p of row r, and in bit 4 + v that of sub-block 2p + 1;
// so that one shift and mask per chunk (by 4 - v left, and by v right) put the bit beside the
// low and the high nibbles.
#include <cstring>
#include <type_traits>

#include "../../quant/blocks.h"
#include "../../quant/k-scales.h"
#include "edgeq/core/half.h"
#include "gemm.h"
#include "packed.h"
#include "vec-dot.h"

namespace edgeq::cpu {
namespace {

using quant::BlockQ4_K;
using quant::BlockQ5_K;
using quant::BlockQ8_K;

constexpr size_t k_q4_bytes = 160 + 4 * 8 * 32;
static_assert(k_q4_bytes == 1184 && k_q4_bytes % 32 == 0);
static_assert(k_q4_bytes <= k_pack_rows * sizeof(BlockQ4_K) + 32);
static_assert(k_q4_bytes + 256 <= k_pack_rows * sizeof(BlockQ5_K) + 32);

constexpr size_t k_scales = 32, k_mins = 96, k_nibbles = 160, k_high = 1184;

template <bool five_bits>
constexpr size_t k_sb_bytes = five_bits ? k_q4_bytes + 256 : k_q4_bytes;

inline size_t min_at(int s, int r) {
    return k_mins + 16 * static_cast<size_t>(s / 2) + 2 * static_cast<size_t>(r) + s % 2;
}

inline size_t nibble_at(int s, int l, int r) {
    return k_nibbles + 256 * static_cast<size_t>(s / 2) + 32 * static_cast<size_t>(l / 4) +
           4 * static_cast<size_t>(r) + l % 4;
}

// Byte and bit of the fifth bit of value l of sub-block s of row r (Q5_K).
inline size_t high_at(int s, int l, int r) {
    return k_high + 64 * static_cast<size_t>(s / 2) + 32 * static_cast<size_t>(l / 16) +
           4 * static_cast<size_t>(r) + l % 4;
}

inline int high_bit(int s, int l) {
    return (l / 4) % 4 + 4 * (s % 2);
}

template <bool five_bits>
size_t group_bytes(int64_t k) {
    return static_cast<size_t>(k / 256) * k_sb_bytes<five_bits>;
}

template <bool five_bits>
void pack(const uint8_t* w, size_t w_row, int n_rows, int64_t k, uint8_t* dst) {
    using Block = std::conditional_t<five_bits, BlockQ5_K, BlockQ4_K>;
    // Every byte of a group of 8 rows is written below; the missing rows of a smaller one are
    // zero weights.
    if (n_rows < k_pack_rows) std::memset(dst, 0, group_bytes<five_bits>(k));
    for (int64_t b = 0; b < k / 256; ++b) {
        uint8_t* out = dst + static_cast<size_t>(b) * k_sb_bytes<five_bits>;
        for (int r = 0; r < n_rows; ++r) {
            const Block& x = reinterpret_cast<const Block*>(w + r * w_row)[b];
            std::memcpy(out + 2 * r, &x.d, 2);
            std::memcpy(out + 16 + 2 * r, &x.dmin, 2);
            for (int s = 0; s < 8; ++s) {
                const auto [sc, m] = quant::unpack_scale_min_k4(x.scales, s);
                out[k_scales + 8 * s + r] = static_cast<uint8_t>(sc);
                out[min_at(s, r)] = static_cast<uint8_t>(m);
            }
            // x.qs[32p + l] holds value l of sub-blocks 2p (low) and 2p + 1 (high): the chunks'
            // pairing, so bytes 32p + 4v.. move whole to chunk v of pair p, row r.
            for (int p = 0; p < 4; ++p)
                for (int v = 0; v < 8; ++v)
                    std::memcpy(out + nibble_at(2 * p, 4 * v, r), x.qs + 32 * p + 4 * v, 4);
            if constexpr (five_bits) {
                // Bit s of x.qh[l] is bit 4 of value l of sub-block s. Four values l = 4c + i
                // (i < 4) at once, as the bytes of a (little-endian) 32-bit word: bit 2p (2p + 1)
                // of every byte of word c = 4h + v goes to bit v (4 + v) of the bytes of pair p,
                // half h, row r.
                uint32_t qh[8];
                std::memcpy(qh, x.qh, sizeof(qh));
                for (int p = 0; p < 4; ++p) {
                    for (int h = 0; h < 2; ++h) {
                        uint32_t bits = 0;
                        for (int v = 0; v < 4; ++v) {
                            const uint32_t word = qh[4 * h + v];
                            bits |= ((word >> (2 * p)) & 0x01010101u) << v;
                            bits |= ((word >> (2 * p + 1)) & 0x01010101u) << (4 + v);
                        }
                        std::memcpy(out + high_at(2 * p, 16 * h, r), &bits, 4);
                    }
                }
            }
        }
    }
}

// The q (0..15, or 0..31 for Q5_K) of value l of sub-block s of row r.
template <bool five_bits>
inline int quant_at(const uint8_t* blk, int s, int l, int r) {
    int q = (blk[nibble_at(s, l, r)] >> (4 * (s % 2))) & 0x0f;
    if constexpr (five_bits) q |= ((blk[high_at(s, l, r)] >> high_bit(s, l)) & 1) << 4;
    return q;
}

// The reference: dot_q4_k's (dot_q5_k's) integer sums and float operations, in its order, for
// each row.
template <bool five_bits>
void run(int64_t k, const uint8_t* group, const uint8_t* a, size_t a_stride, int n_acts, float* out,
         int64_t out_stride, int n_rows) {
    for (int c = 0; c < n_acts; ++c) {
        const auto* y = reinterpret_cast<const BlockQ8_K*>(a + c * a_stride);
        for (int r = 0; r < n_rows; ++r) {
            float sum = 0;
            for (int64_t b = 0; b < k / 256; ++b) {
                const uint8_t* blk = group + static_cast<size_t>(b) * k_sb_bytes<five_bits>;
                uint16_t d, dmin;
                std::memcpy(&d, blk + 2 * r, 2);
                std::memcpy(&dmin, blk + 16 + 2 * r, 2);
                int sumi = 0;
                int summ = 0;
                for (int s = 0; s < 8; ++s) {
                    int dot = 0;
                    for (int l = 0; l < 32; ++l)
                        dot += quant_at<five_bits>(blk, s, l, r) * y[b].qs[32 * s + l];
                    sumi += blk[k_scales + 8 * s + r] * dot;
                    summ += blk[min_at(s, r)] * (y[b].bsums[2 * s] + y[b].bsums[2 * s + 1]);
                }
                sum += y[b].d * (fp16_to_fp32(d) * static_cast<float>(sumi) -
                                 fp16_to_fp32(dmin) * static_cast<float>(summ));
            }
            out[c * out_stride + r] = sum;
        }
    }
}

// Panel (gemm.h), as the GEMM's Q4_K (Q5_K) decoder writes it: values j..j+3 of panel row r at
// qs[j * 16 + 4r]; rows 0..7 come from the first group, 8..15 from the second; per sub-block
// the scale d * sc and the minimum -dmin * m; rows past n_rows all zeros.
template <bool five_bits>
void decode_panel(const uint8_t* groups, int n_rows, int64_t k, uint8_t* panel) {
    const int64_t n_sb = k / 256;
    auto* scale = reinterpret_cast<float*>(panel + k * k_gemm_rows);
    float* min = scale + (k / 32) * k_gemm_rows;
    for (int g = 0; g < 2; ++g) {
        const uint8_t* src = groups + static_cast<size_t>(g) * group_bytes<five_bits>(k);
        const int rows = n_rows - k_pack_rows * g;  // of this group; <= 0 for none
        for (int64_t b = 0; b < n_sb; ++b) {
            const uint8_t* blk = src + static_cast<size_t>(b) * k_sb_bytes<five_bits>;
            for (int s = 0; s < 8; ++s) {
                float* sc = scale + (b * 8 + s) * k_gemm_rows + k_pack_rows * g;
                float* mn = min + (b * 8 + s) * k_gemm_rows + k_pack_rows * g;
                for (int r = 0; r < k_pack_rows; ++r) {
                    sc[r] = 0;
                    mn[r] = 0;
                    if (r >= rows) continue;
                    uint16_t d, dmin;
                    std::memcpy(&d, blk + 2 * r, 2);
                    std::memcpy(&dmin, blk + 16 + 2 * r, 2);
                    sc[r] = fp16_to_fp32(d) * static_cast<float>(blk[k_scales + 8 * s + r]);
                    mn[r] = -fp16_to_fp32(dmin) * static_cast<float>(blk[min_at(s, r)]);
                }
                for (int v = 0; v < 8; ++v) {
                    uint8_t* dst = panel + (b * 256 + 32 * s + 4 * v) * k_gemm_rows + 32 * g;
                    for (int t = 0; t < 32; ++t) {
                        const int r = t / 4, l = 4 * v + t % 4;
                        dst[t] =
                            r < rows ? static_cast<uint8_t>(quant_at<five_bits>(blk, s, l, r)) : 0;
                    }
                }
            }
        }
    }
}

}  // namespace

const PackedKernel& packed_q4_k_reference() {
    static constexpr PackedKernel kernel{group_bytes<false>, pack<false>, run<false>,
                                         decode_panel<false>};
    return kernel;
}

const PackedKernel& packed_q5_k_reference() {
    static constexpr PackedKernel kernel{group_bytes<true>, pack<true>, run<true>,
                                         decode_panel<true>};
    return kernel;
}

}  // namespace edgeq::cpu
