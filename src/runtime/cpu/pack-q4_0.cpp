// Q4_0 packed (see packed.h). One group of 8 rows holds, for each block of 32 values, 144
// bytes, as the 8 rows' blocks did:
//   bytes 0..15     the 8 rows' scales d (FP16), row r at 2r;
//   bytes 16..143   four chunks of 32 bytes; byte 4r + i of chunk v holds value 4v + i of
//                   row r in its low nibble and value 16 + 4v + i in its high nibble.
// The low nibbles of chunk v are then values 4v..4v+3 of every row, four bytes per row, and
// the high nibbles values 16+4v..16+4v+3.
#include <cstring>

#include "../../quant/blocks.h"
#include "edgeq/core/half.h"
#include "gemm.h"
#include "packed-panel.h"
#include "packed.h"
#include "vec-dot.h"

namespace edgeq::cpu {
namespace {

using quant::BlockQ4_0;

constexpr size_t k_block_bytes = 16 + 4 * 32;
static_assert(k_block_bytes == k_pack_rows * sizeof(BlockQ4_0));

size_t group_bytes(int64_t k) {
    return static_cast<size_t>(k / 32) * k_block_bytes;
}

void pack(const uint8_t* w, size_t w_row, int n_rows, int64_t k, uint8_t* dst) {
    if (n_rows < k_pack_rows) std::memset(dst, 0, group_bytes(k));
    for (int64_t b = 0; b < k / 32; ++b) {
        uint8_t* out = dst + static_cast<size_t>(b) * k_block_bytes;
        for (int r = 0; r < n_rows; ++r) {
            const BlockQ4_0& x = reinterpret_cast<const BlockQ4_0*>(w + r * w_row)[b];
            std::memcpy(out + 2 * r, &x.d, 2);
            // x.qs[j] holds value j (low) and value 16 + j (high): the same pairing as the
            // chunks, so bytes 4v..4v+3 move whole to chunk v, row r.
            for (int v = 0; v < 4; ++v) std::memcpy(out + 16 + 32 * v + 4 * r, x.qs + 4 * v, 4);
        }
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
                    const int v = j % 16;
                    const uint8_t byte = blk[16 + 32 * (v / 4) + 4 * r + v % 4];
                    const int q = j < 16 ? byte & 0x0f : byte >> 4;
                    dot += (q - 8) * y[b].qs[j];
                }
                sum += fp16_to_fp32(d) * y[b].d * static_cast<float>(dot);
            }
            out[c * out_stride + r] = sum;
        }
    }
}

// Panel (gemm.h): values j..j+3 of panel row r at qs[j * 16 + 4r]; rows 0..7 come from the
// first group, 8..15 from the second. Chunk v's low nibbles are values 4v.. of the block, its
// high nibbles values 16 + 4v..; each is 32 bytes, rows 0..7 in order.
void decode_panel(const uint8_t* groups, int n_rows, int64_t k, uint8_t* panel) {
    decode_panel_32<k_block_bytes>(groups, n_rows, k, panel,
                                   [](const uint8_t* blk, uint8_t* qs, float* sc) {
                                       scales_f16x8(blk, sc);
                                       for (int v = 0; v < 4; ++v) {
                                           const uint8_t* chunk = blk + 16 + 32 * v;
                                           uint8_t* lo = qs + 4 * v * k_gemm_rows;
                                           uint8_t* hi = qs + (16 + 4 * v) * k_gemm_rows;
                                           for (int t = 0; t < 32; ++t) {
                                               lo[t] = chunk[t] & 0x0f;
                                               hi[t] = chunk[t] >> 4;
                                           }
                                       }
                                   });
}

}  // namespace

const PackedKernel& packed_q4_0_reference() {
    static constexpr PackedKernel kernel{group_bytes, pack, run, decode_panel};
    return kernel;
}

}  // namespace edgeq::cpu
