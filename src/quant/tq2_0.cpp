// TQ2_0: ternary super-blocks of 256; value = d * (q - 1), q in 0..2 in two bits, laid out
// as Q2_K's qs.
#include <cmath>

#include "blocks.h"
#include "edgeq/core/half.h"
#include "fit.h"
#include "types.h"

namespace edgeq::quant {
namespace {

// lroundf for |v| <= 1 (ties away from zero), as the reference quantizer rounds.
int round_half_away_ternary(float v) {
    return v >= 0.5f ? 1 : (v <= -0.5f ? -1 : 0);
}

void pack(BlockTQ2_0& out, const int* q) {  // q in 0..2
    for (int h = 0; h < 2; ++h) {
        for (int l = 0; l < 32; ++l) {
            uint8_t byte = 0;
            for (int k = 0; k < 4; ++k)
                byte |= static_cast<uint8_t>(q[128 * h + 32 * k + l] << (2 * k));
            out.qs[32 * h + l] = byte;
        }
    }
}

}  // namespace

void dequantize_row_tq2_0(const void* src, float* dst, int64_t n) {
    const auto* blocks = static_cast<const BlockTQ2_0*>(src);
    for (int64_t b = 0; b < n / k_qk_k; ++b) {
        const float d = fp16_to_fp32(blocks[b].d);
        for (int v = 0; v < k_qk_k; ++v) {
            const int q = (blocks[b].qs[32 * (v / 128) + v % 32] >> (2 * ((v % 128) / 32))) & 3;
            dst[b * k_qk_k + v] = d * static_cast<float>(q - 1);
        }
    }
}

// The reference: d = max|x|, q = round(x / d) (ties away from zero).
void quantize_row_tq2_0_ref(const float* src, void* dst, int64_t n) {
    auto* blocks = static_cast<BlockTQ2_0*>(dst);
    int q[k_qk_k];
    for (int64_t b = 0; b < n / k_qk_k; ++b) {
        const float* x = src + b * k_qk_k;
        float amax = 0;
        for (int j = 0; j < k_qk_k; ++j) amax = std::max(amax, std::fabs(x[j]));
        const float id = amax != 0 ? 1.0f / amax : 0.0f;
        for (int j = 0; j < k_qk_k; ++j) q[j] = round_half_away_ternary(x[j] * id) + 1;
        pack(blocks[b], q);
        blocks[b].d = fp32_to_fp16(amax);
    }
}

void quantize_row_tq2_0(const float* src, void* dst, int64_t n, const float* importance) {
    if (importance == nullptr) return quantize_row_tq2_0_ref(src, dst, n);
    auto* blocks = static_cast<BlockTQ2_0*>(dst);
    float w[k_qk_k];
    int8_t fitted[k_qk_k];
    int q[k_qk_k];
    for (int64_t b = 0; b < n / k_qk_k; ++b) {
        const float* x = src + b * k_qk_k;
        group_weights(importance + b * k_qk_k, k_qk_k, w);
        blocks[b].d = fp32_to_fp16(fit_ternary(x, w, k_qk_k, fitted));
        const float d = fp16_to_fp32(blocks[b].d);
        const float id = d != 0 ? 1.0f / d : 0.0f;
        for (int j = 0; j < k_qk_k; ++j) q[j] = round_clamp(x[j] * id, -1, 1) + 1;
        pack(blocks[b], q);
    }
}

}  // namespace edgeq::quant
