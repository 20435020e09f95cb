// Q8_0 packed (see packed.h). One group of 8 rows holds, for each block of 32 values, 272
// bytes, as the 8 rows' blocks did:
//   bytes 0..15     the 8 rows' scales d (FP16), row r at 2r;
//   bytes 16..271   eight chunks of 32 bytes; byte 4r + i of chunk v holds value 4v + i of
//                   row r as the unsigned byte u = q + 128 (q ^ 0x80).
// Stored unsigned because vpdpbusd multiplies unsigned weights by signed activations: the run
// subtracts 128 * (sum of the activation block) once per block instead of flipping every chunk,
// and each chunk is already the GEMM panel's bytes (gemm-x86.h DQ8_0: u = q ^ 0x80, offset 128).
// Rows past n_rows are zeros (u = 0 with d = 0), as the GEMM panel pads them.
#include <cstring>

#include "../../quant/blocks.h"
#include "edgeq/core/half.h"
#include "gemm.h"
#include "packed-panel.h"
#include "packed.h"
#include "vec-dot.h"

namespace edgeq::cpu {
namespace {

using quant::BlockQ8_0;

constexpr size_t k_block_bytes = 16 + 8 * 32;
static_assert(k_block_bytes == k_pack_rows * sizeof(BlockQ8_0));

size_t group_bytes(int64_t k) {
    return static_cast<size_t>(k / 32) * k_block_bytes;
}

void pack(const uint8_t* w, size_t w_row, int n_rows, int64_t k, uint8_t* dst) {
    if (n_rows < k_pack_rows) std::memset(dst, 0, group_bytes(k));
    for (int64_t b = 0; b < k / 32; ++b) {
        uint8_t* out = dst + static_cast<size_t>(b) * k_block_bytes;
        for (int r = 0; r < n_rows; ++r) {
            const BlockQ8_0& x = reinterpret_cast<const BlockQ8_0*>(w + r * w_row)[b];
            std::memcpy(out + 2 * r, &x.d, 2);
            // Values 4v..4v+3 move as one word to chunk v, row r, each byte's top bit flipped.
            for (int v = 0; v < 8; ++v) {
                uint32_t q;
                std::memcpy(&q, x.qs + 4 * v, 4);
                q ^= 0x80808080u;
                std::memcpy(out + 16 + 32 * v + 4 * r, &q, 4);
            }
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
                    const int q = blk[16 + 32 * (j / 4) + 4 * r + j % 4] - 128;
                    dot += q * y[b].qs[j];
                }
                sum += fp16_to_fp32(d) * y[b].d * static_cast<float>(dot);
            }
            out[c * out_stride + r] = sum;
        }
    }
}

// Panel (gemm.h): values j..j+3 of panel row r at qs[j * 16 + 4r]; rows 0..7 come from the
// first group, 8..15 from the second. Chunk v (values 4v.., rows 0..7 in order) is already the
// 32 panel bytes of its group at qs[4v * 16 + 32g].
void decode_panel(const uint8_t* groups, int n_rows, int64_t k, uint8_t* panel) {
    decode_panel_32<k_block_bytes>(
        groups, n_rows, k, panel, [](const uint8_t* blk, uint8_t* qs, float* sc) {
            scales_f16x8(blk, sc);
            for (int v = 0; v < 8; ++v)
                std::memcpy(qs + 4 * v * k_gemm_rows, blk + 16 + 32 * v, 32);
        });
}

}  // namespace

const PackedKernel& packed_q8_0_reference() {
    static constexpr PackedKernel kernel{group_bytes, pack, run, decode_panel};
    return kernel;
}

}  // namespace edgeq::cpu
