// Q4_0: blocks of 32 values, an F16 scale and 4-bit integers q, value = d * (q - 8).
#include <cmath>

#include "blocks.h"
#include "edgeq/core/half.h"
#include "fit.h"
#include "types.h"

namespace edgeq::quant {

void dequantize_row_q4_0(const void* src, float* dst, int64_t n) {
    const auto* blocks = static_cast<const BlockQ4_0*>(src);
    for (int64_t b = 0; b < n / k_qk_32; ++b) {
        const float d = fp16_to_fp32(blocks[b].d);
        float* y = dst + b * k_qk_32;
        for (int j = 0; j < 16; ++j) {
            y[j] = d * static_cast<float>((blocks[b].qs[j] & 0x0f) - 8);
            y[j + 16] = d * static_cast<float>((blocks[b].qs[j] >> 4) - 8);
        }
    }
}

// The reference maps the value of largest magnitude to -8 and truncates x/d + 8.5.
void quantize_row_q4_0_ref(const float* src, void* dst, int64_t n) {
    auto* blocks = static_cast<BlockQ4_0*>(dst);
    for (int64_t b = 0; b < n / k_qk_32; ++b) {
        const float* x = src + b * k_qk_32;
        float amax = 0;
        float max = 0;
        for (int j = 0; j < k_qk_32; ++j) {
            if (amax < std::fabs(x[j])) {
                amax = std::fabs(x[j]);
                max = x[j];
            }
        }
        const float d = max / -8;
        const float id = d != 0 ? 1.0f / d : 0.0f;
        blocks[b].d = fp32_to_fp16(d);
        for (int j = 0; j < 16; ++j) {
            const int lo = std::min(15, static_cast<int>(static_cast<int8_t>(x[j] * id + 8.5f)));
            const int hi =
                std::min(15, static_cast<int>(static_cast<int8_t>(x[j + 16] * id + 8.5f)));
            blocks[b].qs[j] = static_cast<uint8_t>(lo | (hi << 4));
        }
    }
}

void quantize_row_q4_0(const float* src, void* dst, int64_t n, const float* importance) {
    if (importance == nullptr) return quantize_row_q4_0_ref(src, dst, n);
    auto* blocks = static_cast<BlockQ4_0*>(dst);
    float w[k_qk_32];
    int8_t q[k_qk_32];
    for (int64_t b = 0; b < n / k_qk_32; ++b) {
        const float* x = src + b * k_qk_32;
        group_weights(importance + b * k_qk_32, k_qk_32, w);
        const float scale = fit_symmetric(x, w, k_qk_32, -8, 7, Grid{8, 40, 0.1f}, q);
        blocks[b].d = fp32_to_fp16(scale);
        const float d = fp16_to_fp32(blocks[b].d);
        const float id = d != 0 ? 1.0f / d : 0.0f;
        for (int j = 0; j < 16; ++j) {
            const int lo = round_clamp(x[j] * id, -8, 7) + 8;
            const int hi = round_clamp(x[j + 16] * id, -8, 7) + 8;
            blocks[b].qs[j] = static_cast<uint8_t>(lo | (hi << 4));
        }
    }
}

}  // namespace edgeq::quant
