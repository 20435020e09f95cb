// Q8_K: the 8-bit activation format of the k-quant dot products (float scale, int8 values,
// sums of each group of 16). The value of largest magnitude maps to -127.
#include <cmath>

#include "blocks.h"
#include "fit.h"
#include "types.h"

namespace edgeq::quant {

void dequantize_row_q8_k(const void* src, float* dst, int64_t n) {
    const auto* blocks = static_cast<const BlockQ8_K*>(src);
    for (int64_t b = 0; b < n / k_qk_k; ++b) {
        for (int j = 0; j < k_qk_k; ++j) dst[b * k_qk_k + j] = blocks[b].d * blocks[b].qs[j];
    }
}

void quantize_row_q8_k_ref(const float* src, void* dst, int64_t n) {
    auto* blocks = static_cast<BlockQ8_K*>(dst);
    for (int64_t b = 0; b < n / k_qk_k; ++b) {
        const float* x = src + b * k_qk_k;
        BlockQ8_K& out = blocks[b];
        float amax = 0;
        float max = 0;
        for (int j = 0; j < k_qk_k; ++j) {
            if (std::fabs(x[j]) > amax) {
                amax = std::fabs(x[j]);
                max = x[j];
            }
        }
        if (amax == 0) {
            out = BlockQ8_K{};
            continue;
        }
        const float iscale = -127.0f / max;
        for (int j = 0; j < k_qk_k; ++j)
            out.qs[j] = static_cast<int8_t>(round_clamp(iscale * x[j], -128, 127));
        for (int g = 0; g < 16; ++g) {
            int sum = 0;
            for (int i = 0; i < 16; ++i) sum += out.qs[16 * g + i];
            out.bsums[g] = static_cast<int16_t>(sum);
        }
        out.d = 1 / iscale;
    }
}

void quantize_row_q8_k(const float* src, void* dst, int64_t n, const float*) {
    quantize_row_q8_k_ref(src, dst, n);
}

}  // namespace edgeq::quant
