// IQ4_XS: super-blocks of 256 = 8 sub-blocks of 32 on the IQ4 grid; value =
// d * sc * grid[q] with sc in [-32, 31] stored + 32 in six bits (scales_l, scales_h).
#include "blocks.h"
#include "edgeq/core/half.h"
#include "superblock.h"
#include "types.h"

namespace edgeq::quant {

void dequantize_row_iq4_xs(const void* src, float* dst, int64_t n) {
    const auto* blocks = static_cast<const BlockIQ4_XS*>(src);
    for (int64_t b = 0; b < n / k_qk_k; ++b) {
        const float d = fp16_to_fp32(blocks[b].d);
        float* y = dst + b * k_qk_k;
        for (int j = 0; j < 8; ++j) {
            const int low = (blocks[b].scales_l[j / 2] >> (4 * (j % 2))) & 0x0f;
            const int high = (blocks[b].scales_h >> (2 * j)) & 3;
            const float scale = d * static_cast<float>((low | (high << 4)) - 32);
            const uint8_t* qs = blocks[b].qs + 16 * j;
            for (int l = 0; l < 16; ++l) {
                y[32 * j + l] = scale * k_iq4_grid[qs[l] & 0x0f];
                y[32 * j + l + 16] = scale * k_iq4_grid[qs[l] >> 4];
            }
        }
    }
}

void quantize_row_iq4_xs(const float* src, void* dst, int64_t n, const float* importance) {
    static constexpr SymmetricLayout k_layout{8,
                                              32,
                                              0,
                                              0,
                                              -32,
                                              31,
                                              true,
                                              Grid{10, 10, 1.0f},
                                              Grid{10, 30, 1.0f},
                                              ScaleTries{4, 2, 0.03f}};
    auto* blocks = static_cast<BlockIQ4_XS*>(dst);
    float w[k_qk_k];
    SymmetricBlock fit;
    for (int64_t b = 0; b < n / k_qk_k; ++b) {
        const float* x = src + b * k_qk_k;
        group_weights(importance != nullptr ? importance + b * k_qk_k : nullptr, k_qk_k, w);
        quantize_superblock_symmetric(x, w, importance != nullptr, k_layout, fit);
        BlockIQ4_XS& out = blocks[b];
        out.d = fit.d;
        out.scales_h = 0;
        for (int i = 0; i < 4; ++i) out.scales_l[i] = 0;
        for (int j = 0; j < 8; ++j) {
            const int l = fit.sc[j] + 32;
            out.scales_l[j / 2] |= static_cast<uint8_t>((l & 0x0f) << (4 * (j % 2)));
            out.scales_h |= static_cast<uint16_t>((l >> 4) << (2 * j));
            for (int i = 0; i < 16; ++i) {
                out.qs[16 * j + i] =
                    static_cast<uint8_t>(fit.q[32 * j + i] | (fit.q[32 * j + 16 + i] << 4));
            }
        }
    }
}

void quantize_row_iq4_xs_ref(const float* src, void* dst, int64_t n) {
    quantize_row_iq4_xs(src, dst, n, nullptr);
}

}  // namespace edgeq::quant
