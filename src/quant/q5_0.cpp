// Q5_0: blocks of 32 values, an F16 scale and 5-bit integers q, value = d * (q - 16).
#include <cmath>
#include <cstring>

#include "blocks.h"
#include "edgeq/core/half.h"
#include "fit.h"
#include "types.h"

namespace edgeq::quant {
namespace {

void pack(BlockQ5_0& block, const int* q) {  // q in 0..31
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
        block.qs[j] = static_cast<uint8_t>((q[j] & 0x0f) | ((q[j + 16] & 0x0f) << 4));
        qh |= static_cast<uint32_t>(q[j] >> 4) << j;
        qh |= static_cast<uint32_t>(q[j + 16] >> 4) << (j + 16);
    }
    std::memcpy(block.qh, &qh, sizeof(qh));
}

}  // namespace

void dequantize_row_q5_0(const void* src, float* dst, int64_t n) {
    const auto* blocks = static_cast<const BlockQ5_0*>(src);
    for (int64_t b = 0; b < n / k_qk_32; ++b) {
        const float d = fp16_to_fp32(blocks[b].d);
        uint32_t qh;
        std::memcpy(&qh, blocks[b].qh, sizeof(qh));
        float* y = dst + b * k_qk_32;
        for (int j = 0; j < 16; ++j) {
            const int lo = (blocks[b].qs[j] & 0x0f) | static_cast<int>(((qh >> j) & 1) << 4);
            const int hi = (blocks[b].qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1) << 4);
            y[j] = d * static_cast<float>(lo - 16);
            y[j + 16] = d * static_cast<float>(hi - 16);
        }
    }
}

void quantize_row_q5_0_ref(const float* src, void* dst, int64_t n) {
    auto* blocks = static_cast<BlockQ5_0*>(dst);
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
        const float d = max / -16;
        const float id = d != 0 ? 1.0f / d : 0.0f;
        blocks[b].d = fp32_to_fp16(d);
        int q[k_qk_32];
        for (int j = 0; j < k_qk_32; ++j) {
            q[j] = std::min(31, static_cast<int>(static_cast<int8_t>(x[j] * id + 16.5f)));
        }
        pack(blocks[b], q);
    }
}

void quantize_row_q5_0(const float* src, void* dst, int64_t n, const float* importance) {
    if (importance == nullptr) return quantize_row_q5_0_ref(src, dst, n);
    auto* blocks = static_cast<BlockQ5_0*>(dst);
    float w[k_qk_32];
    int8_t fitted[k_qk_32];
    int q[k_qk_32];
    for (int64_t b = 0; b < n / k_qk_32; ++b) {
        const float* x = src + b * k_qk_32;
        group_weights(importance + b * k_qk_32, k_qk_32, w);
        const float scale = fit_symmetric(x, w, k_qk_32, -16, 15, Grid{8, 40, 0.1f}, fitted);
        blocks[b].d = fp32_to_fp16(scale);
        const float d = fp16_to_fp32(blocks[b].d);
        const float id = d != 0 ? 1.0f / d : 0.0f;
        for (int j = 0; j < k_qk_32; ++j) q[j] = round_clamp(x[j] * id, -16, 15) + 16;
        pack(blocks[b], q);
    }
}

}  // namespace edgeq::quant
