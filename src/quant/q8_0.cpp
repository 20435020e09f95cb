// Q8_0: blocks of 32 values, an F16 scale and int8 q in [-127, 127], value = d * q.
#include <cmath>

#include "blocks.h"
#include "edgeq/core/half.h"
#include "fit.h"
#include "types.h"

namespace edgeq::quant {

void dequantize_row_q8_0(const void* src, float* dst, int64_t n) {
    const auto* blocks = static_cast<const BlockQ8_0*>(src);
    for (int64_t b = 0; b < n / k_qk_32; ++b) {
        const float d = fp16_to_fp32(blocks[b].d);
        for (int j = 0; j < k_qk_32; ++j) dst[b * k_qk_32 + j] = d * blocks[b].qs[j];
    }
}

// The reference: d = max|x| / 127 and q = round(x / d), ties away from zero.
void quantize_row_q8_0_ref(const float* src, void* dst, int64_t n) {
    auto* blocks = static_cast<BlockQ8_0*>(dst);
    for (int64_t b = 0; b < n / k_qk_32; ++b) {
        const float* x = src + b * k_qk_32;
        float amax = 0;
        for (int j = 0; j < k_qk_32; ++j) amax = std::max(amax, std::fabs(x[j]));
        const float d = amax / 127;
        const float id = d != 0 ? 1.0f / d : 0.0f;
        blocks[b].d = fp32_to_fp16(d);
        for (int j = 0; j < k_qk_32; ++j)
            blocks[b].qs[j] = static_cast<int8_t>(std::roundf(x[j] * id));
    }
}

void quantize_row_q8_0(const float* src, void* dst, int64_t n, const float* importance) {
    if (importance == nullptr) return quantize_row_q8_0_ref(src, dst, n);
    auto* blocks = static_cast<BlockQ8_0*>(dst);
    float w[k_qk_32];
    int8_t q[k_qk_32];
    for (int64_t b = 0; b < n / k_qk_32; ++b) {
        const float* x = src + b * k_qk_32;
        group_weights(importance + b * k_qk_32, k_qk_32, w);
        // -128 is left out: SIMD dot products take |q| with a sign trick that -128 breaks.
        const float scale = fit_symmetric(x, w, k_qk_32, -127, 127, Grid{8, 40, 0.5f}, q);
        blocks[b].d = fp32_to_fp16(scale);
        const float d = fp16_to_fp32(blocks[b].d);
        const float id = d != 0 ? 1.0f / d : 0.0f;
        for (int j = 0; j < k_qk_32; ++j)
            blocks[b].qs[j] = static_cast<int8_t>(round_clamp(x[j] * id, -127, 127));
    }
}

}  // namespace edgeq::quant
