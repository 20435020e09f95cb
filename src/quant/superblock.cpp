#include "superblock.h"

#include <algorithm>
#include <cmath>

#include "blocks.h"
#include "edgeq/core/half.h"
#include "fit-kernels.h"
#include "fit.h"

namespace edgeq::quant {
namespace {

float weighted_sum_sq(const float* x, const float* w, int n) {
    float sum = 0;
    for (int i = 0; i < n; ++i) sum += w[i] * x[i] * x[i];
    return sum;
}

// The integer sub-block scales (`sc`) for super-block scale d: each sub-block takes the best
// of the rounding of its fitted scale and the two neighbours (or 0). Returns the total error.
float choose_symmetric(const float* x, const float* w, const SymmetricLayout& layout,
                       const float* fitted, const float* zero_error, float d, int* sc) {
    const FitKernels& kernels = fit_kernels();
    const float qmin = static_cast<float>(layout.qmin);
    const float qmax = static_cast<float>(layout.qmax);
    const float inv_d = d != 0 ? 1.0f / d : 0.0f;
    float total = 0;
    for (int j = 0; j < layout.n_sub; ++j) {
        const float* xj = x + j * layout.sub_size;
        const float* wj = w + j * layout.sub_size;
        const int center =
            d != 0 ? round_clamp(fitted[j] * inv_d, layout.sc_min, layout.sc_max) : 0;
        int cand[3];
        float scale[3];
        float error[3];
        int n_cand = 0;
        for (int s = std::max(layout.sc_min, center - 1); s <= std::min(layout.sc_max, center + 1);
             ++s) {
            if (s == 0 || d == 0) continue;
            cand[n_cand] = s;
            scale[n_cand++] = d * static_cast<float>(s);
        }
        if (layout.iq4) {
            kernels.iq4_errors(xj, wj, layout.sub_size, scale, n_cand, error);
        } else {
            kernels.symmetric_errors(xj, wj, layout.sub_size, scale, n_cand, qmin, qmax, error);
        }
        float best = zero_error[j];
        sc[j] = 0;
        for (int c = 0; c < n_cand; ++c) {
            if (error[c] < best) {
                best = error[c];
                sc[j] = cand[c];
            }
        }
        total += best;
    }
    return total;
}

void assign_symmetric(const float* x, const SymmetricLayout& layout, float d, SymmetricBlock& out) {
    for (int j = 0; j < layout.n_sub; ++j) {
        const float scale = d * static_cast<float>(out.sc[j]);
        const float is = scale != 0 ? 1.0f / scale : 0.0f;
        for (int i = 0; i < layout.sub_size; ++i) {
            const int k = j * layout.sub_size + i;
            out.q[k] = layout.iq4 ? nearest_iq4(x[k] * is)
                                  : round_clamp(x[k] * is, layout.qmin, layout.qmax);
        }
    }
}

}  // namespace

void quantize_superblock_symmetric(const float* x, const float* w, bool weighted,
                                   const SymmetricLayout& layout, SymmetricBlock& out) {
    const Grid& grid = weighted ? layout.weighted_grid : layout.grid;
    float fitted[16];
    float zero_error[16];
    int8_t q8[256];
    uint8_t qu[256];
    float max_scale = 0;
    for (int j = 0; j < layout.n_sub; ++j) {
        const float* xj = x + j * layout.sub_size;
        const float* wj = w + j * layout.sub_size;
        fitted[j] =
            layout.iq4 ? fit_iq4(xj, wj, layout.sub_size, grid, qu)
                       : fit_symmetric(xj, wj, layout.sub_size, layout.qmin, layout.qmax, grid, q8);
        zero_error[j] = weighted_sum_sq(xj, wj, layout.sub_size);
        if (std::fabs(fitted[j]) > std::fabs(max_scale)) max_scale = fitted[j];
    }
    const float base = max_scale / static_cast<float>(layout.sc_min);
    float best = -1;
    int sc[16];
    for (int t = -layout.tries.n_below; t <= layout.tries.n_above; ++t) {
        const uint16_t d16 =
            fp32_to_fp16(base * (1.0f + layout.tries.step * static_cast<float>(t)));
        const float error =
            choose_symmetric(x, w, layout, fitted, zero_error, fp16_to_fp32(d16), sc);
        if (best < 0 || error < best) {
            best = error;
            out.d = d16;
            std::copy(sc, sc + layout.n_sub, out.sc);
        }
    }
    assign_symmetric(x, layout, fp16_to_fp32(out.d), out);

    // Refit d by least squares for the chosen integers; keep it while the total error falls.
    for (int it = 0; it < 2; ++it) {
        double sxa = 0;
        double saa = 0;
        for (int k = 0; k < layout.n_sub * layout.sub_size; ++k) {
            const double v = layout.iq4 ? k_iq4_grid[out.q[k]] : out.q[k];
            const double a = out.sc[k / layout.sub_size] * v;
            sxa += w[k] * x[k] * a;
            saa += w[k] * a * a;
        }
        if (saa <= 0) break;
        const uint16_t d16 = fp32_to_fp16(static_cast<float>(sxa / saa));
        if (d16 == out.d) break;
        const float error =
            choose_symmetric(x, w, layout, fitted, zero_error, fp16_to_fp32(d16), sc);
        if (!(error < best)) break;
        best = error;
        out.d = d16;
        std::copy(sc, sc + layout.n_sub, out.sc);
        assign_symmetric(x, layout, fp16_to_fp32(out.d), out);
    }
}

namespace {

// Integer scales and minimums for super-block scales (d, dmin): each sub-block starts from the
// rounding of its fitted pair, tries the scale's neighbours, then the minimum's.
float choose_affine(const float* x, const float* w, const AffineLayout& layout, const float* scales,
                    const float* mins, float d, float dmin, int* sc, int* mn) {
    const FitKernels& kernels = fit_kernels();
    const float qmax = static_cast<float>(layout.qmax);
    float total = 0;
    for (int j = 0; j < layout.n_sub; ++j) {
        const float* xj = x + j * layout.sub_size;
        const float* wj = w + j * layout.sub_size;
        const int s0 = d > 0 ? round_clamp(scales[j] / d, 0, layout.sc_max) : 0;
        const int m0 = dmin > 0 ? round_clamp(mins[j] / dmin, 0, layout.sc_max) : 0;
        // Scale 0 (every q = 0) is left out: the value would be -m alone, which a sub-block
        // only wants when it is constant, and the neighbour search covers that case poorly anyway.
        int cand[3];
        float scale[3];
        float min[3];
        float error[3];
        int n_cand = 0;
        for (int s = std::max(1, s0 - 1); s <= std::min(layout.sc_max, s0 + 1); ++s) {
            if (d <= 0) break;
            cand[n_cand] = s;
            scale[n_cand] = d * static_cast<float>(s);
            min[n_cand++] = dmin * static_cast<float>(m0);
        }
        int best_s = 0;
        float best = 0;
        {
            const float m = dmin * static_cast<float>(m0);
            for (int i = 0; i < layout.sub_size; ++i) best += wj[i] * (xj[i] + m) * (xj[i] + m);
        }
        kernels.affine_errors(xj, wj, layout.sub_size, scale, min, n_cand, qmax, error);
        for (int c = 0; c < n_cand; ++c) {
            if (error[c] < best) {
                best = error[c];
                best_s = cand[c];
            }
        }
        int best_m = m0;
        if (dmin > 0 && best_s > 0) {
            n_cand = 0;
            for (int m : {m0 - 1, m0 + 1}) {
                if (m < 0 || m > layout.sc_max) continue;
                cand[n_cand] = m;
                scale[n_cand] = d * static_cast<float>(best_s);
                min[n_cand++] = dmin * static_cast<float>(m);
            }
            kernels.affine_errors(xj, wj, layout.sub_size, scale, min, n_cand, qmax, error);
            for (int c = 0; c < n_cand; ++c) {
                if (error[c] < best) {
                    best = error[c];
                    best_m = cand[c];
                }
            }
        }
        sc[j] = best_s;
        mn[j] = best_m;
        total += best;
    }
    return total;
}

void assign_affine(const float* x, const AffineLayout& layout, float d, float dmin,
                   AffineBlock& out) {
    for (int j = 0; j < layout.n_sub; ++j) {
        const float scale = d * static_cast<float>(out.sc[j]);
        const float min = dmin * static_cast<float>(out.m[j]);
        const float is = scale > 0 ? 1.0f / scale : 0.0f;
        for (int i = 0; i < layout.sub_size; ++i) {
            const int k = j * layout.sub_size + i;
            out.q[k] = scale > 0 ? round_clamp((x[k] + min) * is, 0, layout.qmax) : 0;
        }
    }
}

}  // namespace

void quantize_superblock_affine(const float* x, const float* w, bool weighted,
                                const AffineLayout& layout, AffineBlock& out) {
    const Grid& grid = weighted ? layout.weighted_grid : layout.grid;
    float scales[16];
    float mins[16];
    uint8_t q[256];
    float max_scale = 0;
    float max_min = 0;
    for (int j = 0; j < layout.n_sub; ++j) {
        const AffineFit fit = fit_affine(x + j * layout.sub_size, w + j * layout.sub_size,
                                         layout.sub_size, layout.qmax, true, grid, q);
        scales[j] = std::max(fit.scale, 0.0f);
        mins[j] = -fit.offset;
        max_scale = std::max(max_scale, scales[j]);
        max_min = std::max(max_min, mins[j]);
    }
    const float sc_max = static_cast<float>(layout.sc_max);
    const float base = max_scale / sc_max;
    out.dmin = fp32_to_fp16(max_min / sc_max);
    const float dmin = fp16_to_fp32(out.dmin);
    float best = -1;
    int sc[16];
    int mn[16];
    for (int t = -layout.tries.n_below; t <= layout.tries.n_above; ++t) {
        const uint16_t d16 =
            fp32_to_fp16(base * (1.0f + layout.tries.step * static_cast<float>(t)));
        const float error =
            choose_affine(x, w, layout, scales, mins, fp16_to_fp32(d16), dmin, sc, mn);
        if (best < 0 || error < best) {
            best = error;
            out.d = d16;
            std::copy(sc, sc + layout.n_sub, out.sc);
            std::copy(mn, mn + layout.n_sub, out.m);
        }
    }
    assign_affine(x, layout, fp16_to_fp32(out.d), dmin, out);

    // Refit (d, dmin) by least squares for the chosen integers: x ~= d * (sc q) - dmin * m.
    for (int it = 0; it < 2; ++it) {
        double saa = 0, sab = 0, sbb = 0, sxa = 0, sxb = 0;
        for (int k = 0; k < layout.n_sub * layout.sub_size; ++k) {
            const int j = k / layout.sub_size;
            const double a = static_cast<double>(out.sc[j]) * out.q[k];
            const double b = -static_cast<double>(out.m[j]);
            saa += w[k] * a * a;
            sab += w[k] * a * b;
            sbb += w[k] * b * b;
            sxa += w[k] * x[k] * a;
            sxb += w[k] * x[k] * b;
        }
        double d = 0;
        double dm = 0;
        const double det = saa * sbb - sab * sab;
        if (det > 0) {
            d = (sxa * sbb - sxb * sab) / det;
            dm = (saa * sxb - sab * sxa) / det;
        } else if (saa > 0) {  // no minimums in use: refit d alone
            d = sxa / saa;
            dm = fp16_to_fp32(out.dmin);
        }
        if (!(d > 0) || dm < 0) break;
        const uint16_t d16 = fp32_to_fp16(static_cast<float>(d));
        const uint16_t dmin16 = fp32_to_fp16(static_cast<float>(dm));
        if (d16 == out.d && dmin16 == out.dmin) break;
        const float error = choose_affine(x, w, layout, scales, mins, fp16_to_fp32(d16),
                                          fp16_to_fp32(dmin16), sc, mn);
        if (!(error < best)) break;
        best = error;
        out.d = d16;
        out.dmin = dmin16;
        std::copy(sc, sc + layout.n_sub, out.sc);
        std::copy(mn, mn + layout.n_sub, out.m);
        assign_affine(x, layout, fp16_to_fp32(out.d), fp16_to_fp32(out.dmin), out);
    }
}

}  // namespace edgeq::quant
