// IQ4_NL: blocks of 32 values, an F16 scale, and 4-bit indices into the non-linear IQ4 grid.
#include <algorithm>

#include "blocks.h"
#include "edgeq/core/half.h"
#include "fit.h"
#include "types.h"

namespace edgeq::quant {
namespace {

// Assigns grid indices for scale d; returns the weighted error.
double assign(const float* x, const float* w, float d, uint8_t* q) {
    double error = 0;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    for (int i = 0; i < k_qk_32; ++i) {
        q[i] = static_cast<uint8_t>(nearest_iq4(x[i] * id));
        const double diff = x[i] - d * k_iq4_grid[q[i]];
        error += w[i] * diff * diff;
    }
    return error;
}

}  // namespace

void dequantize_row_iq4_nl(const void* src, float* dst, int64_t n) {
    const auto* blocks = static_cast<const BlockIQ4_NL*>(src);
    for (int64_t b = 0; b < n / k_qk_32; ++b) {
        const float d = fp16_to_fp32(blocks[b].d);
        float* y = dst + b * k_qk_32;
        for (int j = 0; j < 16; ++j) {
            y[j] = d * k_iq4_grid[blocks[b].qs[j] & 0x0f];
            y[j + 16] = d * k_iq4_grid[blocks[b].qs[j] >> 4];
        }
    }
}

void quantize_row_iq4_nl(const float* src, void* dst, int64_t n, const float* importance) {
    auto* blocks = static_cast<BlockIQ4_NL*>(dst);
    float w[k_qk_32];
    uint8_t q[k_qk_32];
    uint8_t trial[k_qk_32];
    for (int64_t b = 0; b < n / k_qk_32; ++b) {
        const float* x = src + b * k_qk_32;
        group_weights(importance != nullptr ? importance + b * k_qk_32 : nullptr, k_qk_32, w);
        const float scale = fit_iq4(
            x, w, k_qk_32, importance != nullptr ? Grid{10, 30, 1.0f} : Grid{10, 10, 1.0f}, q);
        uint16_t d16 = fp32_to_fp16(scale);
        double best = assign(x, w, fp16_to_fp32(d16), q);
        // Refit the scale for the rounded assignment; keep it while the error falls.
        for (int it = 0; it < 2; ++it) {
            double sxk = 0;
            double skk = 0;
            for (int i = 0; i < k_qk_32; ++i) {
                const double k = k_iq4_grid[q[i]];
                sxk += w[i] * x[i] * k;
                skk += w[i] * k * k;
            }
            if (skk <= 0) break;
            const uint16_t candidate = fp32_to_fp16(static_cast<float>(sxk / skk));
            if (candidate == d16) break;
            const double error = assign(x, w, fp16_to_fp32(candidate), trial);
            if (!(error < best)) break;
            best = error;
            d16 = candidate;
            std::copy(trial, trial + k_qk_32, q);
        }
        blocks[b].d = d16;
        for (int j = 0; j < 16; ++j)
            blocks[b].qs[j] = static_cast<uint8_t>(q[j] | (q[j + 16] << 4));
    }
}

void quantize_row_iq4_nl_ref(const float* src, void* dst, int64_t n) {
    quantize_row_iq4_nl(src, dst, n, nullptr);
}

}  // namespace edgeq::quant
