// Q4_1: blocks of 32 values, F16 scale d and minimum m, 4-bit q, value = d * q + m.
#include <algorithm>
#include <cfloat>

#include "blocks.h"
#include "edgeq/core/half.h"
#include "fit.h"
#include "types.h"

namespace edgeq::quant {

void dequantize_row_q4_1(const void* src, float* dst, int64_t n) {
    const auto* blocks = static_cast<const BlockQ4_1*>(src);
    for (int64_t b = 0; b < n / k_qk_32; ++b) {
        const float d = fp16_to_fp32(blocks[b].d);
        const float m = fp16_to_fp32(blocks[b].m);
        float* y = dst + b * k_qk_32;
        for (int j = 0; j < 16; ++j) {
            y[j] = d * static_cast<float>(blocks[b].qs[j] & 0x0f) + m;
            y[j + 16] = d * static_cast<float>(blocks[b].qs[j] >> 4) + m;
        }
    }
}

void quantize_row_q4_1_ref(const float* src, void* dst, int64_t n) {
    auto* blocks = static_cast<BlockQ4_1*>(dst);
    for (int64_t b = 0; b < n / k_qk_32; ++b) {
        const float* x = src + b * k_qk_32;
        float min = FLT_MAX;
        float max = -FLT_MAX;
        for (int j = 0; j < k_qk_32; ++j) {
            min = std::min(min, x[j]);
            max = std::max(max, x[j]);
        }
        const float d = (max - min) / 15;
        const float id = d != 0 ? 1.0f / d : 0.0f;
        blocks[b].d = fp32_to_fp16(d);
        blocks[b].m = fp32_to_fp16(min);
        for (int j = 0; j < 16; ++j) {
            const int lo =
                std::min(15, static_cast<int>(static_cast<int8_t>((x[j] - min) * id + 0.5f)));
            const int hi =
                std::min(15, static_cast<int>(static_cast<int8_t>((x[j + 16] - min) * id + 0.5f)));
            blocks[b].qs[j] = static_cast<uint8_t>(lo | (hi << 4));
        }
    }
}

void quantize_row_q4_1(const float* src, void* dst, int64_t n, const float* importance) {
    if (importance == nullptr) return quantize_row_q4_1_ref(src, dst, n);
    auto* blocks = static_cast<BlockQ4_1*>(dst);
    float w[k_qk_32];
    uint8_t fitted[k_qk_32];
    for (int64_t b = 0; b < n / k_qk_32; ++b) {
        const float* x = src + b * k_qk_32;
        group_weights(importance + b * k_qk_32, k_qk_32, w);
        const AffineFit fit = fit_affine(x, w, k_qk_32, 15, false, Grid{10, 40, 0.1f}, fitted);
        blocks[b].d = fp32_to_fp16(fit.scale);
        blocks[b].m = fp32_to_fp16(fit.offset);
        const float d = fp16_to_fp32(blocks[b].d);
        const float m = fp16_to_fp32(blocks[b].m);
        const float id = d != 0 ? 1.0f / d : 0.0f;
        for (int j = 0; j < 16; ++j) {
            const int lo = round_clamp((x[j] - m) * id, 0, 15);
            const int hi = round_clamp((x[j + 16] - m) * id, 0, 15);
            blocks[b].qs[j] = static_cast<uint8_t>(lo | (hi << 4));
        }
    }
}

}  // namespace edgeq::quant
