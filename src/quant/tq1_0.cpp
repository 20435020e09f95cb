// TQ1_0: ternary super-blocks of 256 in base 3. Bytes hold five trits t0..t4 (value
// sum t_i 3^(4-i)) scaled to 0..255 as ceil(v * 256 / 243), so that trit i is recovered as
// ((byte * 3^i) mod 256) * 3 >> 8. qs[0..31] hold values 32i + l, qs[32..47] values
// 160 + 16i + l, and qh[0..3] four trits each (values 240 + 4i + l).
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

constexpr int k_pow3[6] = {1, 3, 9, 27, 81, 243};

uint8_t encode(const int* t, int n_trits, int stride) {  // trits t[i * stride], in 0..2
    int v = 0;
    for (int i = 0; i < 5; ++i) v = v * 3 + (i < n_trits ? t[i * stride] : 0);
    return static_cast<uint8_t>((v * 256 + 242) / 243);
}

int decode(uint8_t byte, int i) {
    const uint8_t shifted = static_cast<uint8_t>(byte * k_pow3[i]);
    return (shifted * 3) >> 8;
}

void pack(BlockTQ1_0& out, const int* q) {  // q in 0..2
    for (int l = 0; l < 32; ++l) out.qs[l] = encode(q + l, 5, 32);
    for (int l = 0; l < 16; ++l) out.qs[32 + l] = encode(q + 160 + l, 5, 16);
    for (int l = 0; l < 4; ++l) out.qh[l] = encode(q + 240 + l, 4, 4);
}

}  // namespace

void dequantize_row_tq1_0(const void* src, float* dst, int64_t n) {
    const auto* blocks = static_cast<const BlockTQ1_0*>(src);
    for (int64_t b = 0; b < n / k_qk_k; ++b) {
        const BlockTQ1_0& block = blocks[b];
        const float d = fp16_to_fp32(block.d);
        float* y = dst + b * k_qk_k;
        for (int i = 0; i < 5; ++i) {
            for (int l = 0; l < 32; ++l)
                y[32 * i + l] = d * static_cast<float>(decode(block.qs[l], i) - 1);
        }
        for (int i = 0; i < 5; ++i) {
            for (int l = 0; l < 16; ++l) {
                y[160 + 16 * i + l] = d * static_cast<float>(decode(block.qs[32 + l], i) - 1);
            }
        }
        for (int i = 0; i < 4; ++i) {
            for (int l = 0; l < 4; ++l)
                y[240 + 4 * i + l] = d * static_cast<float>(decode(block.qh[l], i) - 1);
        }
    }
}

void quantize_row_tq1_0_ref(const float* src, void* dst, int64_t n) {
    auto* blocks = static_cast<BlockTQ1_0*>(dst);
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

void quantize_row_tq1_0(const float* src, void* dst, int64_t n, const float* importance) {
    if (importance == nullptr) return quantize_row_tq1_0_ref(src, dst, n);
    auto* blocks = static_cast<BlockTQ1_0*>(dst);
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
