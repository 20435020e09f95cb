// Q5_K: as Q4_K with 5-bit q; the fifth bits live in qh.
#include "blocks.h"
#include "edgeq/core/half.h"
#include "k-scales.h"
#include "superblock.h"
#include "types.h"

namespace edgeq::quant {

void dequantize_row_q5_k(const void* src, float* dst, int64_t n) {
    const auto* blocks = static_cast<const BlockQ5_K*>(src);
    for (int64_t b = 0; b < n / k_qk_k; ++b) {
        const float d = fp16_to_fp32(blocks[b].d);
        const float dmin = fp16_to_fp32(blocks[b].dmin);
        float* y = dst + b * k_qk_k;
        for (int j = 0; j < 8; ++j) {
            const auto [sc, m] = unpack_scale_min_k4(blocks[b].scales, j);
            const float scale = d * static_cast<float>(sc);
            const float offset = dmin * static_cast<float>(m);
            const uint8_t* qs = blocks[b].qs + 32 * (j / 2);
            const int shift = 4 * (j % 2);
            for (int l = 0; l < 32; ++l) {
                const int q = ((qs[l] >> shift) & 0x0f) | (((blocks[b].qh[l] >> j) & 1) << 4);
                y[32 * j + l] = scale * static_cast<float>(q) - offset;
            }
        }
    }
}

void quantize_row_q5_k(const float* src, void* dst, int64_t n, const float* importance) {
    static constexpr AffineLayout k_layout{
        8, 32, 31, 63, Grid{10, 10, 0.1f}, Grid{10, 40, 0.1f}, ScaleTries{2, 2, 0.02f}};
    auto* blocks = static_cast<BlockQ5_K*>(dst);
    float w[k_qk_k];
    AffineBlock fit;
    for (int64_t b = 0; b < n / k_qk_k; ++b) {
        const float* x = src + b * k_qk_k;
        group_weights(importance != nullptr ? importance + b * k_qk_k : nullptr, k_qk_k, w);
        quantize_superblock_affine(x, w, importance != nullptr, k_layout, fit);
        BlockQ5_K& out = blocks[b];
        out.d = fit.d;
        out.dmin = fit.dmin;
        pack_scale_min_k4(fit.sc, fit.m, out.scales);
        for (int l = 0; l < 32; ++l) {
            uint8_t qh = 0;
            for (int j = 0; j < 8; ++j) qh |= static_cast<uint8_t>((fit.q[32 * j + l] >> 4) << j);
            out.qh[l] = qh;
        }
        for (int i = 0; i < 4; ++i) {
            for (int l = 0; l < 32; ++l) {
                out.qs[32 * i + l] = static_cast<uint8_t>((fit.q[64 * i + l] & 0x0f) |
                                                          ((fit.q[64 * i + 32 + l] & 0x0f) << 4));
            }
        }
    }
}

void quantize_row_q5_k_ref(const float* src, void* dst, int64_t n) {
    quantize_row_q5_k(src, dst, n, nullptr);
}

}  // namespace edgeq::quant
