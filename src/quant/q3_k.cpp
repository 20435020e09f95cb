// Q3_K: super-blocks of 256 = 16 sub-blocks of 16; value = d * sc * q, q in [-4, 3] (two low
// bits in qs, the third in hmask), sc in [-32, 31] stored + 32 in six bits.
#include <cstring>

#include "blocks.h"
#include "edgeq/core/half.h"
#include "superblock.h"
#include "types.h"

namespace edgeq::quant {
namespace {

int unpack_scale(const uint8_t* scales, int j) {
    const int low = j < 8 ? scales[j] & 0x0f : scales[j - 8] >> 4;
    const int high = (scales[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (low | (high << 4)) - 32;
}

void pack_scales(const int* sc, uint8_t* scales) {
    std::memset(scales, 0, 12);
    for (int j = 0; j < 16; ++j) {
        const int l = sc[j] + 32;
        if (j < 8) {
            scales[j] |= static_cast<uint8_t>(l & 0x0f);
        } else {
            scales[j - 8] |= static_cast<uint8_t>((l & 0x0f) << 4);
        }
        scales[8 + j % 4] |= static_cast<uint8_t>((l >> 4) << (2 * (j / 4)));
    }
}

}  // namespace

void dequantize_row_q3_k(const void* src, float* dst, int64_t n) {
    const auto* blocks = static_cast<const BlockQ3_K*>(src);
    for (int64_t b = 0; b < n / k_qk_k; ++b) {
        const float d = fp16_to_fp32(blocks[b].d);
        float* y = dst + b * k_qk_k;
        for (int v = 0; v < k_qk_k; ++v) {
            const int h = v / 128;
            const int k = (v % 128) / 32;
            const int l = v % 32;
            const int low = (blocks[b].qs[32 * h + l] >> (2 * k)) & 3;
            const int high = (blocks[b].hmask[l] >> (v / 32)) & 1;
            const int q = low - (high ? 0 : 4);
            y[v] = d * static_cast<float>(unpack_scale(blocks[b].scales, v / 16)) *
                   static_cast<float>(q);
        }
    }
}

void quantize_row_q3_k(const float* src, void* dst, int64_t n, const float* importance) {
    static constexpr SymmetricLayout k_layout{16,
                                              16,
                                              -4,
                                              3,
                                              -32,
                                              31,
                                              false,
                                              Grid{6, 3, 0.25f},
                                              Grid{6, 8, 0.25f},
                                              ScaleTries{4, 1, 0.03f}};
    auto* blocks = static_cast<BlockQ3_K*>(dst);
    float w[k_qk_k];
    SymmetricBlock fit;
    for (int64_t b = 0; b < n / k_qk_k; ++b) {
        const float* x = src + b * k_qk_k;
        group_weights(importance != nullptr ? importance + b * k_qk_k : nullptr, k_qk_k, w);
        quantize_superblock_symmetric(x, w, importance != nullptr, k_layout, fit);
        BlockQ3_K& out = blocks[b];
        out.d = fit.d;
        pack_scales(fit.sc, out.scales);
        std::memset(out.hmask, 0, sizeof(out.hmask));
        std::memset(out.qs, 0, sizeof(out.qs));
        for (int v = 0; v < k_qk_k; ++v) {
            const int q = fit.q[v] + 4;  // 0..7
            const int h = v / 128;
            const int k = (v % 128) / 32;
            const int l = v % 32;
            out.qs[32 * h + l] |= static_cast<uint8_t>((q & 3) << (2 * k));
            if (q > 3) out.hmask[l] |= static_cast<uint8_t>(1 << (v / 32));
        }
    }
}

void quantize_row_q3_k_ref(const float* src, void* dst, int64_t n) {
    quantize_row_q3_k(src, dst, n, nullptr);
}

}  // namespace edgeq::quant
