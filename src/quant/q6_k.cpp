// Q6_K: super-blocks of 256 = 16 sub-blocks of 16; value = d * scales[j] * (q - 32), 6-bit q.
// Value 128h + 32k + l: low nibble in ql[64h + 32(k % 2) + l] (high nibble when k >= 2), top
// two bits at bit 2k of qh[32h + l].
#include "blocks.h"
#include "edgeq/core/half.h"
#include "superblock.h"
#include "types.h"

namespace edgeq::quant {

void dequantize_row_q6_k(const void* src, float* dst, int64_t n) {
    const auto* blocks = static_cast<const BlockQ6_K*>(src);
    for (int64_t b = 0; b < n / k_qk_k; ++b) {
        const float d = fp16_to_fp32(blocks[b].d);
        float* y = dst + b * k_qk_k;
        for (int v = 0; v < k_qk_k; ++v) {
            const int h = v / 128;
            const int k = (v % 128) / 32;
            const int l = v % 32;
            const int low = (blocks[b].ql[64 * h + 32 * (k % 2) + l] >> (4 * (k / 2))) & 0x0f;
            const int high = (blocks[b].qh[32 * h + l] >> (2 * k)) & 3;
            const int q = (low | (high << 4)) - 32;
            y[v] = d * static_cast<float>(blocks[b].scales[v / 16]) * static_cast<float>(q);
        }
    }
}

void quantize_row_q6_k(const float* src, void* dst, int64_t n, const float* importance) {
    static constexpr SymmetricLayout k_layout{16,
                                              16,
                                              -32,
                                              31,
                                              -128,
                                              127,
                                              false,
                                              Grid{6, 2, 0.15f},
                                              Grid{6, 30, 0.15f},
                                              ScaleTries{0, 0, 0}};
    auto* blocks = static_cast<BlockQ6_K*>(dst);
    float w[k_qk_k];
    SymmetricBlock fit;
    for (int64_t b = 0; b < n / k_qk_k; ++b) {
        const float* x = src + b * k_qk_k;
        group_weights(importance != nullptr ? importance + b * k_qk_k : nullptr, k_qk_k, w);
        quantize_superblock_symmetric(x, w, importance != nullptr, k_layout, fit);
        BlockQ6_K& out = blocks[b];
        out.d = fit.d;
        for (int j = 0; j < 16; ++j) out.scales[j] = static_cast<int8_t>(fit.sc[j]);
        for (int i = 0; i < 128; ++i) out.ql[i] = 0;
        for (int i = 0; i < 64; ++i) out.qh[i] = 0;
        for (int v = 0; v < k_qk_k; ++v) {
            const int q = fit.q[v] + 32;  // 0..63
            const int h = v / 128;
            const int k = (v % 128) / 32;
            const int l = v % 32;
            out.ql[64 * h + 32 * (k % 2) + l] |= static_cast<uint8_t>((q & 0x0f) << (4 * (k / 2)));
            out.qh[32 * h + l] |= static_cast<uint8_t>((q >> 4) << (2 * k));
        }
    }
}

void quantize_row_q6_k_ref(const float* src, void* dst, int64_t n) {
    quantize_row_q6_k(src, dst, n, nullptr);
}

}  // namespace edgeq::quant
