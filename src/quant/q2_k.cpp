// Q2_K: super-blocks of 256 = 16 sub-blocks of 16; value = d * sc * q - dmin * m with 2-bit q
// and 4-bit sc, m (scales[j] = sc | m << 4).
#include "blocks.h"
#include "edgeq/core/half.h"
#include "superblock.h"
#include "types.h"

namespace edgeq::quant {

void dequantize_row_q2_k(const void* src, float* dst, int64_t n) {
    const auto* blocks = static_cast<const BlockQ2_K*>(src);
    for (int64_t b = 0; b < n / k_qk_k; ++b) {
        const float d = fp16_to_fp32(blocks[b].d);
        const float dmin = fp16_to_fp32(blocks[b].dmin);
        float* y = dst + b * k_qk_k;
        for (int v = 0; v < k_qk_k; ++v) {
            const int h = v / 128;
            const int k = (v % 128) / 32;
            const int l = v % 32;
            const int q = (blocks[b].qs[32 * h + l] >> (2 * k)) & 3;
            const uint8_t s = blocks[b].scales[v / 16];
            y[v] = d * static_cast<float>(s & 0x0f) * static_cast<float>(q) -
                   dmin * static_cast<float>(s >> 4);
        }
    }
}

void quantize_row_q2_k(const float* src, void* dst, int64_t n, const float* importance) {
    static constexpr AffineLayout k_layout{
        16, 16, 3, 15, Grid{8, 12, 0.1f}, Grid{8, 24, 0.1f}, ScaleTries{4, 4, 0.03f}};
    auto* blocks = static_cast<BlockQ2_K*>(dst);
    float w[k_qk_k];
    AffineBlock fit;
    for (int64_t b = 0; b < n / k_qk_k; ++b) {
        const float* x = src + b * k_qk_k;
        group_weights(importance != nullptr ? importance + b * k_qk_k : nullptr, k_qk_k, w);
        quantize_superblock_affine(x, w, importance != nullptr, k_layout, fit);
        BlockQ2_K& out = blocks[b];
        out.d = fit.d;
        out.dmin = fit.dmin;
        for (int j = 0; j < 16; ++j)
            out.scales[j] = static_cast<uint8_t>(fit.sc[j] | (fit.m[j] << 4));
        for (int h = 0; h < 2; ++h) {
            for (int l = 0; l < 32; ++l) {
                uint8_t byte = 0;
                for (int k = 0; k < 4; ++k) {
                    byte |= static_cast<uint8_t>(fit.q[128 * h + 32 * k + l] << (2 * k));
                }
                out.qs[32 * h + l] = byte;
            }
        }
    }
}

void quantize_row_q2_k_ref(const float* src, void* dst, int64_t n) {
    quantize_row_q2_k(src, dst, n, nullptr);
}

}  // namespace edgeq::quant
