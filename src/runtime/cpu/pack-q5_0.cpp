// Q5_0 packed (see packed.h). One group of 8 rows holds, for each block of 32 values, 176
// bytes, as the 8 rows' blocks did:
//   bytes 0..15     the 8 rows' scales d (FP16), row r at 2r;
//   bytes 16..47    eight 32-bit little-endian words of fifth bits: bit 4r + i of word v
//                   (v < 4) is bit 4 of value 4v + i of row r, of word 4 + v bit 4 of value
//                   16 + 4v + i;
//   bytes 48..175   four chunks of 32 bytes; byte 4r + i of chunk v holds the low four bits of
//                   value 4v + i of row r in its low nibble and of value 16 + 4v + i in its
//                   high nibble (Q4_0's chunks).
// Bit t of a word belongs to byte t of its chunk's nibbles, so AVX-512 loads the word as a
// byte mask and adds 16 under it (one masked vpaddb per 32 values of 8 rows); AVX2 spreads it
// with a shuffle and a compare. The value is u = nibble + 16 * bit, offset 16, as the GEMM's
// DQ5_0 decodes it.
#include <cstring>

#include "../../quant/blocks.h"
#include "edgeq/core/half.h"
#include "gemm.h"
#include "packed-panel.h"
#include "packed.h"
#include "vec-dot.h"

namespace edgeq::cpu {
namespace {

using quant::BlockQ5_0;

constexpr size_t k_bits_offset = 16;
constexpr size_t k_chunks_offset = 16 + 8 * 4;
constexpr size_t k_block_bytes = k_chunks_offset + 4 * 32;
static_assert(k_block_bytes == k_pack_rows * sizeof(BlockQ5_0));

size_t group_bytes(int64_t k) {
    return static_cast<size_t>(k / 32) * k_block_bytes;
}

uint32_t load_u32(const uint8_t* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

void pack(const uint8_t* w, size_t w_row, int n_rows, int64_t k, uint8_t* dst) {
    if (n_rows < k_pack_rows) std::memset(dst, 0, group_bytes(k));
    for (int64_t b = 0; b < k / 32; ++b) {
        uint8_t* out = dst + static_cast<size_t>(b) * k_block_bytes;
        uint32_t words[8] = {};
        for (int r = 0; r < n_rows; ++r) {
            const BlockQ5_0& x = reinterpret_cast<const BlockQ5_0*>(w + r * w_row)[b];
            std::memcpy(out + 2 * r, &x.d, 2);
            const uint32_t qh = load_u32(x.qh);
            // Byte j holds values j and 16 + j: bytes 4v..4v+3 move whole to chunk v, row r, and
            // their fifth bits (bits 4v.. and 16 + 4v.. of qh) to bits 4r.. of words v and 4 + v.
            for (int v = 0; v < 4; ++v) {
                std::memcpy(out + k_chunks_offset + 32 * v + 4 * r, x.qs + 4 * v, 4);
                words[v] |= ((qh >> (4 * v)) & 15u) << (4 * r);
                words[4 + v] |= ((qh >> (16 + 4 * v)) & 15u) << (4 * r);
            }
        }
        for (int v = 0; v < 8; ++v) std::memcpy(out + k_bits_offset + 4 * v, &words[v], 4);
    }
}

void run(int64_t k, const uint8_t* group, const uint8_t* a, size_t a_stride, int n_acts, float* out,
         int64_t out_stride, int n_rows) {
    for (int c = 0; c < n_acts; ++c) {
        const auto* y = reinterpret_cast<const ActBlockQ8*>(a + c * a_stride);
        for (int r = 0; r < n_rows; ++r) {
            float sum = 0;
            for (int64_t b = 0; b < k / 32; ++b) {
                const uint8_t* blk = group + static_cast<size_t>(b) * k_block_bytes;
                uint16_t d;
                std::memcpy(&d, blk + 2 * r, 2);
                int dot = 0;
                for (int j = 0; j < 32; ++j) {
                    const int v = j % 16 / 4;
                    const int t = 4 * r + j % 4;
                    const uint8_t byte = blk[k_chunks_offset + 32 * v + t];
                    const uint32_t bits = load_u32(blk + k_bits_offset + 4 * (j < 16 ? v : 4 + v));
                    const int q = (j < 16 ? byte & 0x0f : byte >> 4) |
                                  static_cast<int>(((bits >> t) & 1u) << 4);
                    dot += (q - 16) * y[b].qs[j];
                }
                sum += fp16_to_fp32(d) * y[b].d * static_cast<float>(dot);
            }
            out[c * out_stride + r] = sum;
        }
    }
}

// Panel (gemm.h): values j..j+3 of panel row r at qs[j * 16 + 4r]; rows 0..7 come from the
// first group, 8..15 from the second. Chunk v with its words v and 4 + v gives values 4v.. and
// 16 + 4v.. of the group's 8 rows, 32 bytes each.
void decode_panel(const uint8_t* groups, int n_rows, int64_t k, uint8_t* panel) {
    decode_panel_32<k_block_bytes>(
        groups, n_rows, k, panel, [](const uint8_t* blk, uint8_t* qs, float* sc) {
            scales_f16x8(blk, sc);
            for (int v = 0; v < 4; ++v) {
                const uint8_t* chunk = blk + k_chunks_offset + 32 * v;
                const uint32_t lo_bits = load_u32(blk + k_bits_offset + 4 * v);
                const uint32_t hi_bits = load_u32(blk + k_bits_offset + 4 * (4 + v));
                uint8_t* lo = qs + 4 * v * k_gemm_rows;
                uint8_t* hi = qs + (16 + 4 * v) * k_gemm_rows;
                for (int t = 0; t < 32; ++t) {
                    lo[t] = static_cast<uint8_t>((chunk[t] & 0x0f) | (((lo_bits >> t) & 1u) << 4));
                    hi[t] = static_cast<uint8_t>((chunk[t] >> 4) | (((hi_bits >> t) & 1u) << 4));
                }
            }
        });
}

}  // namespace

const PackedKernel& packed_q5_0_reference() {
    static constexpr PackedKernel kernel{group_bytes, pack, run, decode_panel};
    return kernel;
}

}  // namespace edgeq::cpu
