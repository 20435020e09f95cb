// The scalar reference of the scale-search loops, with the eight lanes written out.
#include "blocks.h"
#include "edgeq/core/cpu.h"
#include "fit-kernels.h"

namespace edgeq::quant {
namespace {

constexpr int k_lanes = 8;

inline float round_even(float t) {
    return (t + 12582912.0f) - 12582912.0f;
}
inline float clampf(float v, float lo, float hi) {
    return v < lo ? lo : (v > hi ? hi : v);
}
inline float lane_sum(const float* a) {
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

// The IQ4 grid value nearest v: the first value plus the step at every midpoint below v.
inline float iq4_value(float v) {
    float value = k_iq4_grid[0];
    for (int k = 0; k < 15; ++k) {
        const float mid = 0.5f * static_cast<float>(k_iq4_grid[k] + k_iq4_grid[k + 1]);
        value += v > mid ? static_cast<float>(k_iq4_grid[k + 1] - k_iq4_grid[k]) : 0.0f;
    }
    return value;
}

void symmetric_sums(const float* x, const float* w, int n, const float* iscale, int n_cand,
                    float qmin, float qmax, float* sxq, float* sqq) {
    for (int c = 0; c < n_cand; ++c) {
        float axq[k_lanes] = {};
        float aqq[k_lanes] = {};
        for (int i = 0; i < n; i += k_lanes) {
            for (int l = 0; l < k_lanes; ++l) {
                const float q = round_even(clampf(x[i + l] * iscale[c], qmin, qmax));
                const float wq = w[i + l] * q;
                axq[l] += wq * x[i + l];
                aqq[l] += wq * q;
            }
        }
        sxq[c] = lane_sum(axq);
        sqq[c] = lane_sum(aqq);
    }
}

void affine_sums(const float* x, const float* w, int n, const float* lo, const float* iscale,
                 int n_cand, float qmax, float* sq, float* sqq, float* sxq) {
    for (int c = 0; c < n_cand; ++c) {
        float aq[k_lanes] = {};
        float aqq[k_lanes] = {};
        float axq[k_lanes] = {};
        for (int i = 0; i < n; i += k_lanes) {
            for (int l = 0; l < k_lanes; ++l) {
                const float q = round_even(clampf((x[i + l] - lo[c]) * iscale[c], 0.0f, qmax));
                const float wq = w[i + l] * q;
                aq[l] += wq;
                aqq[l] += wq * q;
                axq[l] += wq * x[i + l];
            }
        }
        sq[c] = lane_sum(aq);
        sqq[c] = lane_sum(aqq);
        sxq[c] = lane_sum(axq);
    }
}

void iq4_sums(const float* x, const float* w, int n, const float* iscale, int n_cand, float* sxk,
              float* skk) {
    for (int c = 0; c < n_cand; ++c) {
        float axk[k_lanes] = {};
        float akk[k_lanes] = {};
        for (int i = 0; i < n; i += k_lanes) {
            for (int l = 0; l < k_lanes; ++l) {
                const float k = iq4_value(x[i + l] * iscale[c]);
                const float wk = w[i + l] * k;
                axk[l] += wk * x[i + l];
                akk[l] += wk * k;
            }
        }
        sxk[c] = lane_sum(axk);
        skk[c] = lane_sum(akk);
    }
}

void symmetric_errors(const float* x, const float* w, int n, const float* scale, int n_cand,
                      float qmin, float qmax, float* error) {
    for (int c = 0; c < n_cand; ++c) {
        const float s = scale[c];
        const float is = 1.0f / s;
        float acc[k_lanes] = {};
        for (int i = 0; i < n; i += k_lanes) {
            for (int l = 0; l < k_lanes; ++l) {
                const float q = round_even(clampf(x[i + l] * is, qmin, qmax));
                const float diff = x[i + l] - s * q;
                acc[l] += w[i + l] * diff * diff;
            }
        }
        error[c] = lane_sum(acc);
    }
}

void affine_errors(const float* x, const float* w, int n, const float* scale, const float* min,
                   int n_cand, float qmax, float* error) {
    for (int c = 0; c < n_cand; ++c) {
        const float s = scale[c];
        const float m = min[c];
        const float is = 1.0f / s;
        float acc[k_lanes] = {};
        for (int i = 0; i < n; i += k_lanes) {
            for (int l = 0; l < k_lanes; ++l) {
                const float q = round_even(clampf((x[i + l] + m) * is, 0.0f, qmax));
                const float diff = x[i + l] - (s * q - m);
                acc[l] += w[i + l] * diff * diff;
            }
        }
        error[c] = lane_sum(acc);
    }
}

void iq4_errors(const float* x, const float* w, int n, const float* scale, int n_cand,
                float* error) {
    for (int c = 0; c < n_cand; ++c) {
        const float s = scale[c];
        const float is = 1.0f / s;
        float acc[k_lanes] = {};
        for (int i = 0; i < n; i += k_lanes) {
            for (int l = 0; l < k_lanes; ++l) {
                const float diff = x[i + l] - s * iq4_value(x[i + l] * is);
                acc[l] += w[i + l] * diff * diff;
            }
        }
        error[c] = lane_sum(acc);
    }
}

}  // namespace

const FitKernels& fit_kernels_scalar() {
    static const FitKernels kernels{symmetric_sums,   affine_sums,   iq4_sums,
                                    symmetric_errors, affine_errors, iq4_errors};
    return kernels;
}

const FitKernels& fit_kernels() {
    static const FitKernels& kernels = [&]() -> const FitKernels& {
        const FitKernels* avx2 = fit_kernels_avx2();
        if (active_isa() != Isa::scalar && avx2 != nullptr) return *avx2;
        return fit_kernels_scalar();
    }();
    return kernels;
}

}  // namespace edgeq::quant
