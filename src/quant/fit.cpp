#include "fit.h"

#include <algorithm>
#include <cmath>

#include "blocks.h"
#include "fit-kernels.h"

namespace edgeq::quant {
namespace {

constexpr int k_max_refinements = 8;
constexpr int k_max_candidates = 64;
// A candidate must beat the best so far by this factor: near-ties go to the first candidate, so
// equal groups (a constant row) get the same scale whatever the float rounding noise.
constexpr float k_better = 1 + 1e-6f;

double weighted_sum_sq(const float* x, const float* w, int n) {
    double sum = 0;
    for (int i = 0; i < n; ++i) sum += static_cast<double>(w[i]) * x[i] * x[i];
    return sum;
}

// The value of largest magnitude (0 if all are 0).
float max_magnitude_value(const float* x, int n) {
    float m = 0;
    for (int i = 0; i < n; ++i) {
        if (std::fabs(x[i]) > std::fabs(m)) m = x[i];
    }
    return m;
}

// Writes q = clamp(round(x * iscale)) and returns the least-squares scale and error for it.
float finish_symmetric(const float* x, const float* w, int n, int qmin, int qmax, float iscale,
                       int8_t* q, float* error) {
    double sxq = 0;
    double sqq = 0;
    for (int i = 0; i < n; ++i) {
        q[i] = static_cast<int8_t>(round_clamp(x[i] * iscale, qmin, qmax));
        sxq += static_cast<double>(w[i]) * x[i] * q[i];
        sqq += static_cast<double>(w[i]) * q[i] * q[i];
    }
    const double sxx = weighted_sum_sq(x, w, n);
    if (sqq <= 0) {
        if (error != nullptr) *error = static_cast<float>(sxx);
        return 0;
    }
    if (error != nullptr) *error = static_cast<float>(std::max(0.0, sxx - sxq * sxq / sqq));
    return static_cast<float>(sxq / sqq);
}

}  // namespace

void group_weights(const float* importance, int n, float* w) {
    double total = 0;
    if (importance != nullptr) {
        for (int i = 0; i < n; ++i) {
            w[i] = importance[i] > 0 ? importance[i] : 0.0f;
            total += w[i];
        }
    }
    if (total <= 0) std::fill(w, w + n, 1.0f);
}

float fit_symmetric(const float* x, const float* w, int n, int qmin, int qmax, const Grid& grid,
                    int8_t* q, float* error) {
    const float m = max_magnitude_value(x, n);
    if (m == 0) return finish_symmetric(x, w, n, qmin, qmax, 0.0f, q, error);
    const float fmin = static_cast<float>(qmin);
    const float fmax = static_cast<float>(qmax);
    const float inv_m = 1.0f / m;
    // Map m to the negative edge (qmin) and, if the range is lopsided, to the positive edge.
    float iscale[k_max_candidates];
    int n_cand = 0;
    for (int side = 0; side < 2; ++side) {
        if (side == 1 && qmax == -qmin) break;
        const float edge = side == 0 ? -fmin : fmax;
        const float sign = side == 0 ? -1.0f : 1.0f;
        for (int k = -grid.n_below; k <= grid.n_above && n_cand < k_max_candidates; ++k) {
            const float level = edge + static_cast<float>(k) * grid.step;
            if (level > 0.5f) iscale[n_cand++] = sign * level * inv_m;
        }
    }
    const FitKernels& kernels = fit_kernels();
    float sxq[k_max_candidates];
    float sqq[k_max_candidates];
    kernels.symmetric_sums(x, w, n, iscale, n_cand, fmin, fmax, sxq, sqq);
    float best_score = -1;
    float best_iscale = 0;
    float best_sxq = 0;
    float best_sqq = 0;
    for (int c = 0; c < n_cand; ++c) {
        if (sqq[c] > 0 && sxq[c] * sxq[c] / sqq[c] > best_score * k_better) {
            best_score = sxq[c] * sxq[c] / sqq[c];
            best_iscale = iscale[c];
            best_sxq = sxq[c];
            best_sqq = sqq[c];
        }
    }
    // Alternate: least-squares scale for the assignment, then rounding for that scale.
    for (int it = 0; it < k_max_refinements && best_sqq > 0; ++it) {
        const float next = best_sqq / best_sxq;
        if (next == best_iscale) break;
        float s_xq;
        float s_qq;
        kernels.symmetric_sums(x, w, n, &next, 1, fmin, fmax, &s_xq, &s_qq);
        if (!(s_qq > 0 && s_xq * s_xq / s_qq > best_score)) break;
        best_score = s_xq * s_xq / s_qq;
        best_iscale = next;
        best_sxq = s_xq;
        best_sqq = s_qq;
    }
    return finish_symmetric(x, w, n, qmin, qmax, best_iscale, q, error);
}

namespace {

// Least-squares (scale, offset) for fixed-assignment sums, the offset optionally held <= 0.
AffineFit solve_affine(double sw, double sq, double sqq, double sx, double sxq, double sxx,
                       bool offset_nonpositive) {
    double scale = 0;
    double offset = 0;
    const double det = sw * sqq - sq * sq;
    if (det > 0) {
        scale = (sw * sxq - sq * sx) / det;
        offset = (sqq * sx - sq * sxq) / det;
    } else if (sw > 0) {  // all q equal: only the offset is determined
        offset = sx / sw;
    }
    if (offset_nonpositive && offset > 0) {
        offset = 0;
        scale = sqq > 0 ? sxq / sqq : 0;
    }
    const double error = sxx - 2 * scale * sxq - 2 * offset * sx + scale * scale * sqq +
                         2 * scale * offset * sq + offset * offset * sw;
    return {static_cast<float>(scale), static_cast<float>(offset),
            static_cast<float>(std::max(0.0, error))};
}

}  // namespace

AffineFit fit_affine(const float* x, const float* w, int n, int qmax, bool offset_nonpositive,
                     const Grid& grid, uint8_t* q) {
    float lo = x[0];
    float hi = x[0];
    double sw = 0;
    double sx = 0;
    double sxx = 0;
    for (int i = 0; i < n; ++i) {
        lo = std::min(lo, x[i]);
        hi = std::max(hi, x[i]);
        sw += w[i];
        sx += static_cast<double>(w[i]) * x[i];
        sxx += static_cast<double>(w[i]) * x[i] * x[i];
    }
    if (offset_nonpositive) lo = std::min(lo, 0.0f);
    if (!(hi > lo)) {  // a constant group: q = 0 and the offset carries the value
        std::fill(q, q + n, 0);
        return solve_affine(sw, 0, 0, sx, 0, sxx, offset_nonpositive);
    }
    const float fmax = static_cast<float>(qmax);
    // Errors this close to zero are ties (an exactly representable group): keep the first.
    const float tie_floor = static_cast<float>(2e-6 * sxx);
    float start[k_max_candidates];
    float iscale[k_max_candidates];
    int n_cand = 0;
    const float inv_range = 1.0f / (hi - lo);
    for (int k = -grid.n_below; k <= grid.n_above && n_cand < k_max_candidates; ++k) {
        const float levels = fmax + static_cast<float>(k) * grid.step;
        if (levels > 0.5f) {
            start[n_cand] = lo;
            iscale[n_cand++] = levels * inv_range;
        }
    }
    const FitKernels& kernels = fit_kernels();
    float sq[k_max_candidates];
    float sqq[k_max_candidates];
    float sxq[k_max_candidates];
    kernels.affine_sums(x, w, n, start, iscale, n_cand, fmax, sq, sqq, sxq);
    AffineFit best{0, 0, 0};
    float best_start = lo;
    float best_iscale = 0;
    for (int c = 0; c < n_cand; ++c) {
        const AffineFit fit = solve_affine(sw, sq[c], sqq[c], sx, sxq[c], sxx, offset_nonpositive);
        if (c == 0 || fit.error < best.error * (2 - k_better) - tie_floor) {
            best = fit;
            best_start = start[c];
            best_iscale = iscale[c];
        }
    }
    for (int it = 0; it < k_max_refinements && best.scale > 0; ++it) {
        const float next_start = best.offset;
        const float next_iscale = 1.0f / best.scale;
        float s_q;
        float s_qq;
        float s_xq;
        kernels.affine_sums(x, w, n, &next_start, &next_iscale, 1, fmax, &s_q, &s_qq, &s_xq);
        const AffineFit fit = solve_affine(sw, s_q, s_qq, sx, s_xq, sxx, offset_nonpositive);
        if (!(fit.error < best.error * (1 - 1e-6f))) break;
        best = fit;
        best_start = next_start;
        best_iscale = next_iscale;
    }
    // Recompute the assignment and its exact least-squares fit in double precision.
    double s_q = 0;
    double s_qq = 0;
    double s_xq = 0;
    for (int i = 0; i < n; ++i) {
        q[i] = static_cast<uint8_t>(round_clamp((x[i] - best_start) * best_iscale, 0, qmax));
        s_q += static_cast<double>(w[i]) * q[i];
        s_qq += static_cast<double>(w[i]) * q[i] * q[i];
        s_xq += static_cast<double>(w[i]) * x[i] * q[i];
    }
    return solve_affine(sw, s_q, s_qq, sx, s_xq, sxx, offset_nonpositive);
}

int nearest_iq4(float v) {
    int index = 0;
    for (int k = 0; k < 15; ++k) {
        if (v > 0.5f * static_cast<float>(k_iq4_grid[k] + k_iq4_grid[k + 1])) index = k + 1;
    }
    return index;
}

float fit_iq4(const float* x, const float* w, int n, const Grid& grid, uint8_t* q, float* error) {
    const float m = max_magnitude_value(x, n);
    float best_iscale = 0;
    if (m != 0) {
        const float inv_m = 1.0f / m;
        float iscale[k_max_candidates];
        int n_cand = 0;
        for (int side = 0; side < 2; ++side) {
            const float edge = side == 0 ? 127.0f : 113.0f;
            const float sign = side == 0 ? -1.0f : 1.0f;
            for (int k = -grid.n_below; k <= grid.n_above && n_cand < k_max_candidates; ++k) {
                const float level = edge + static_cast<float>(k) * grid.step;
                if (level > 1.0f) iscale[n_cand++] = sign * level * inv_m;
            }
        }
        const FitKernels& kernels = fit_kernels();
        float sxk[k_max_candidates];
        float skk[k_max_candidates];
        kernels.iq4_sums(x, w, n, iscale, n_cand, sxk, skk);
        float best_score = -1;
        float best_sxk = 0;
        float best_skk = 0;
        for (int c = 0; c < n_cand; ++c) {
            if (skk[c] > 0 && sxk[c] * sxk[c] / skk[c] > best_score * k_better) {
                best_score = sxk[c] * sxk[c] / skk[c];
                best_iscale = iscale[c];
                best_sxk = sxk[c];
                best_skk = skk[c];
            }
        }
        for (int it = 0; it < k_max_refinements && best_sxk != 0; ++it) {
            const float next = best_skk / best_sxk;
            if (next == best_iscale) break;
            float s_xk;
            float s_kk;
            kernels.iq4_sums(x, w, n, &next, 1, &s_xk, &s_kk);
            if (!(s_kk > 0 && s_xk * s_xk / s_kk > best_score)) break;
            best_score = s_xk * s_xk / s_kk;
            best_iscale = next;
            best_sxk = s_xk;
            best_skk = s_kk;
        }
    }
    double sxk = 0;
    double skk = 0;
    for (int i = 0; i < n; ++i) {
        q[i] = static_cast<uint8_t>(nearest_iq4(x[i] * best_iscale));
        const double k = k_iq4_grid[q[i]];
        sxk += static_cast<double>(w[i]) * x[i] * k;
        skk += static_cast<double>(w[i]) * k * k;
    }
    const double sxx = weighted_sum_sq(x, w, n);
    if (error != nullptr) {
        *error = static_cast<float>(skk > 0 ? std::max(0.0, sxx - sxk * sxk / skk) : sxx);
    }
    return skk > 0 && m != 0 ? static_cast<float>(sxk / skk) : 0.0f;
}

float fit_ternary(const float* x, const float* w, int n, int8_t* q) {
    // With q in {-1, 0, 1} the assignment for a scale s > 0 is sign(x) where |x| > s/2, so the
    // candidates are the k largest |x|; score_k = (sum w|x|)^2 / sum w over them.
    int order[256];
    for (int i = 0; i < n; ++i) order[i] = i;
    std::sort(order, order + n, [&](int a, int b) { return std::fabs(x[a]) > std::fabs(x[b]); });
    double sxq = 0;
    double sqq = 0;
    double best_score = 0;
    int best_k = 0;
    double best_sxq = 0;
    double best_sqq = 0;
    for (int k = 0; k < n; ++k) {
        const int i = order[k];
        sxq += static_cast<double>(w[i]) * std::fabs(x[i]);
        sqq += w[i];
        if (sqq > 0 && sxq * sxq / sqq > best_score) {
            best_score = sxq * sxq / sqq;
            best_k = k + 1;
            best_sxq = sxq;
            best_sqq = sqq;
        }
    }
    std::fill(q, q + n, 0);
    for (int k = 0; k < best_k; ++k) {
        const int i = order[k];
        q[i] = x[i] > 0 ? 1 : x[i] < 0 ? -1 : 0;
    }
    return best_k > 0 ? static_cast<float>(best_sxq / best_sqq) : 0.0f;
}

}  // namespace edgeq::quant
