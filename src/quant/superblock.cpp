#include "superblock.h"

#include <algorithm>
#include <cmath>

#include "blocks.h"
#include "edgeq/core/half.h"
#include "fit-kernels.h"
#include "fit.h"

namespace edgeq::quant {
namespace {

constexpr float k_f16_subnormal_step = 5.9604645e-08f;  // 2^-24, the spacing of F16 subnormals

float weighted_sum_sq(const float* x, const float* w, int n) {
    float sum = 0;
    for (int i = 0; i < n; ++i) sum += w[i] * x[i] * x[i];
    return sum;
}

// The integer scale the largest sub-block scale maps to: `edge`, halved while the F16
// super-block scale would be so small a subnormal that its own rounding (a step of 2^-24)
// would exceed the rounding of the integer scales (a step of 1 in |edge|).
float usable_edge(float max_scale, int edge) {
    float e = static_cast<float>(edge);
    while (std::fabs(max_scale) < k_f16_subnormal_step * e * e && std::fabs(e) > 8) e /= 2;
    return e;
}

// Errors of one symmetric sub-block for a batch of integer scales (0: every value is 0).
void symmetric_errors(const float* x, const float* w, const SymmetricLayout& layout, float d,
                      float zero_error, const int* cand, int n_cand, float* error) {
    float scale[3];
    int index[3];
    int n = 0;
    for (int c = 0; c < n_cand; ++c) {
        if (cand[c] == 0) {
            error[c] = zero_error;
        } else {
            index[n] = c;
            scale[n++] = d * static_cast<float>(cand[c]);
        }
    }
    float found[3];
    const FitKernels& kernels = fit_kernels();
    if (layout.iq4) {
        kernels.iq4_errors(x, w, layout.sub_size, scale, n, found);
    } else {
        kernels.symmetric_errors(x, w, layout.sub_size, scale, n, static_cast<float>(layout.qmin),
                                 static_cast<float>(layout.qmax), found);
    }
    for (int k = 0; k < n; ++k) error[index[k]] = found[k];
}

// The integer sub-block scales for super-block scale d; returns the total error. Each sub-block
// takes the best of the rounding of its fitted scale and the two neighbours; `thorough` then
// keeps stepping while the error falls, so that the choice is a local optimum.
float choose_symmetric(const float* x, const float* w, const SymmetricLayout& layout,
                       const float* fitted, const float* zero_error, float d, bool thorough,
                       int* sc) {
    const float inv_d = d != 0 ? 1.0f / d : 0.0f;
    float total = 0;
    for (int j = 0; j < layout.n_sub; ++j) {
        const float* xj = x + j * layout.sub_size;
        const float* wj = w + j * layout.sub_size;
        if (d == 0) {
            sc[j] = 0;
            total += zero_error[j];
            continue;
        }
        const int center = round_clamp(fitted[j] * inv_d, layout.sc_min, layout.sc_max);
        int cand[3];
        int n_cand = 0;
        for (int s = std::max(layout.sc_min, center - 1); s <= std::min(layout.sc_max, center + 1);
             ++s) {
            cand[n_cand++] = s;
        }
        float error[3];
        symmetric_errors(xj, wj, layout, d, zero_error[j], cand, n_cand, error);
        int best_c = 0;
        for (int c = 1; c < n_cand; ++c) {
            if (error[c] < error[best_c]) best_c = c;
        }
        int best_s = cand[best_c];
        float best = error[best_c];
        if (thorough && best_s != center) {
            const int step = best_s < center ? -1 : 1;
            for (int next = best_s + step; next >= layout.sc_min && next <= layout.sc_max;
                 next += step) {
                float e;
                symmetric_errors(xj, wj, layout, d, zero_error[j], &next, 1, &e);
                if (!(e < best)) break;
                best = e;
                best_s = next;
            }
        }
        sc[j] = best_s;
        total += best;
    }
    return total;
}

void assign_symmetric(const float* x, const SymmetricLayout& layout, SymmetricBlock& out) {
    const float d = fp16_to_fp32(out.d);
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
    // Try super-block scales around the one that maps the largest sub-block scale to the edge.
    const float base = max_scale / usable_edge(max_scale, layout.sc_min);
    float best = -1;
    int sc[16];
    for (int t = -layout.tries.n_below; t <= layout.tries.n_above; ++t) {
        const uint16_t d16 =
            fp32_to_fp16(base * (1.0f + layout.tries.step * static_cast<float>(t)));
        const float error =
            choose_symmetric(x, w, layout, fitted, zero_error, fp16_to_fp32(d16), false, sc);
        if (best < 0 || error < best) {
            best = error;
            out.d = d16;
        }
    }
    best = choose_symmetric(x, w, layout, fitted, zero_error, fp16_to_fp32(out.d), true, out.sc);
    assign_symmetric(x, layout, out);

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
            choose_symmetric(x, w, layout, fitted, zero_error, fp16_to_fp32(d16), true, sc);
        if (!(error < best)) break;
        best = error;
        out.d = d16;
        std::copy(sc, sc + layout.n_sub, out.sc);
        assign_symmetric(x, layout, out);
    }
}

namespace {

// Errors of one affine sub-block for a batch of (scale, min) integer pairs; scale 0 means
// every q is 0 and the value is -min.
void affine_errors(const float* x, const float* w, const AffineLayout& layout, float d, float dmin,
                   const int* sc, const int* mn, int n_cand, float* error) {
    float scale[9];
    float min[9];
    int index[9];
    int n = 0;
    for (int c = 0; c < n_cand; ++c) {
        const float m = dmin * static_cast<float>(mn[c]);
        if (sc[c] == 0) {
            float e = 0;
            for (int i = 0; i < layout.sub_size; ++i) e += w[i] * (x[i] + m) * (x[i] + m);
            error[c] = e;
        } else {
            index[n] = c;
            scale[n] = d * static_cast<float>(sc[c]);
            min[n++] = m;
        }
    }
    float found[9];
    fit_kernels().affine_errors(x, w, layout.sub_size, scale, min, n,
                                static_cast<float>(layout.qmax), found);
    for (int k = 0; k < n; ++k) error[index[k]] = found[k];
}

// Integer scales and minimums for super-block scales (d, dmin); returns the total error. Each
// sub-block starts from the rounding of its fitted pair; the cheap form tries the scale's
// neighbours, then the minimum's; `thorough` moves to the best of the 3x3 neighbourhood until
// the pair is a local optimum (scale and minimum often need to move together).
float choose_affine(const float* x, const float* w, const AffineLayout& layout, const float* scales,
                    const float* mins, float d, float dmin, bool thorough, int* sc, int* mn) {
    const float inv_d = d > 0 ? 1.0f / d : 0.0f;
    const float inv_dmin = dmin > 0 ? 1.0f / dmin : 0.0f;
    const int m_hi = dmin > 0 ? layout.sc_max : 0;
    float total = 0;
    for (int j = 0; j < layout.n_sub; ++j) {
        const float* xj = x + j * layout.sub_size;
        const float* wj = w + j * layout.sub_size;
        int best_s = d > 0 ? round_clamp(scales[j] * inv_d, 0, layout.sc_max) : 0;
        int best_m = round_clamp(mins[j] * inv_dmin, 0, m_hi);
        const int s_hi = d > 0 ? layout.sc_max : 0;
        float best;
        affine_errors(xj, wj, layout, d, dmin, &best_s, &best_m, 1, &best);
        int cs[9];
        int cm[9];
        float error[9];
        if (!thorough) {
            for (int axis = 0; axis < 2; ++axis) {
                int n = 0;
                for (int delta : {-1, 1}) {
                    const int s = best_s + (axis == 0 ? delta : 0);
                    const int m = best_m + (axis == 1 ? delta : 0);
                    if (s < 0 || s > s_hi || m < 0 || m > m_hi) continue;
                    cs[n] = s;
                    cm[n++] = m;
                }
                affine_errors(xj, wj, layout, d, dmin, cs, cm, n, error);
                for (int c = 0; c < n; ++c) {
                    if (error[c] < best) {
                        best = error[c];
                        best_s = cs[c];
                        best_m = cm[c];
                    }
                }
            }
        } else {
            for (int it = 0; it < 2 * layout.sc_max; ++it) {  // each step lowers the error
                int n = 0;
                for (int ds = -1; ds <= 1; ++ds) {
                    for (int dm = -1; dm <= 1; ++dm) {
                        const int s = best_s + ds;
                        const int m = best_m + dm;
                        if ((ds == 0 && dm == 0) || s < 0 || s > s_hi || m < 0 || m > m_hi)
                            continue;
                        cs[n] = s;
                        cm[n++] = m;
                    }
                }
                affine_errors(xj, wj, layout, d, dmin, cs, cm, n, error);
                int best_c = -1;
                for (int c = 0; c < n; ++c) {
                    if (error[c] < best) {
                        best = error[c];
                        best_c = c;
                    }
                }
                if (best_c < 0) break;
                best_s = cs[best_c];
                best_m = cm[best_c];
            }
        }
        sc[j] = best_s;
        mn[j] = best_m;
        total += best;
    }
    return total;
}

void assign_affine(const float* x, const AffineLayout& layout, AffineBlock& out) {
    const float d = fp16_to_fp32(out.d);
    const float dmin = fp16_to_fp32(out.dmin);
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

// The weighted squared error of the block's values, reconstructed as the format decodes them.
double affine_error(const float* x, const float* w, const AffineLayout& layout,
                    const AffineBlock& b) {
    const float d = fp16_to_fp32(b.d);
    const float dmin = fp16_to_fp32(b.dmin);
    double error = 0;
    for (int j = 0; j < layout.n_sub; ++j) {
        const float scale = d * static_cast<float>(b.sc[j]);
        const float min = dmin * static_cast<float>(b.m[j]);
        for (int i = 0; i < layout.sub_size; ++i) {
            const int k = j * layout.sub_size + i;
            const double e = static_cast<double>(x[k]) -
                             static_cast<double>(scale * static_cast<float>(b.q[k]) - min);
            error += static_cast<double>(w[k]) * e * e;
        }
    }
    return error;
}

void fit_superblock_affine(const float* x, const float* w, const Grid& grid,
                           const AffineLayout& layout, AffineBlock& out) {
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
    const float base = max_scale / usable_edge(max_scale, layout.sc_max);
    out.dmin = fp32_to_fp16(max_min / usable_edge(max_min, layout.sc_max));
    const float dmin = fp16_to_fp32(out.dmin);
    float best = -1;
    int sc[16];
    int mn[16];
    for (int t = -layout.tries.n_below; t <= layout.tries.n_above; ++t) {
        const uint16_t d16 =
            fp32_to_fp16(base * (1.0f + layout.tries.step * static_cast<float>(t)));
        const float error =
            choose_affine(x, w, layout, scales, mins, fp16_to_fp32(d16), dmin, false, sc, mn);
        if (best < 0 || error < best) {
            best = error;
            out.d = d16;
        }
    }
    best =
        choose_affine(x, w, layout, scales, mins, fp16_to_fp32(out.d), dmin, true, out.sc, out.m);
    assign_affine(x, layout, out);

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
        double dm = fp16_to_fp32(out.dmin);
        const double det = saa * sbb - sab * sab;
        if (det > 0) {
            d = (sxa * sbb - sxb * sab) / det;
            dm = (saa * sxb - sab * sxa) / det;
        } else if (saa > 0) {  // no minimums in use: refit d alone
            d = sxa / saa;
        }
        if (!(d > 0) || dm < 0) break;
        const uint16_t d16 = fp32_to_fp16(static_cast<float>(d));
        const uint16_t dmin16 = fp32_to_fp16(static_cast<float>(dm));
        if (d16 == out.d && dmin16 == out.dmin) break;
        const float error = choose_affine(x, w, layout, scales, mins, fp16_to_fp32(d16),
                                          fp16_to_fp32(dmin16), true, sc, mn);
        if (!(error < best)) break;
        best = error;
        out.d = d16;
        out.dmin = dmin16;
        std::copy(sc, sc + layout.n_sub, out.sc);
        std::copy(mn, mn + layout.n_sub, out.m);
        assign_affine(x, layout, out);
    }
}

}  // namespace

void quantize_superblock_affine(const float* x, const float* w, bool weighted,
                                const AffineLayout& layout, AffineBlock& out) {
    if (!weighted) {
        fit_superblock_affine(x, w, layout.grid, layout, out);
        return;
    }
    fit_superblock_affine(x, w, layout.weighted_grid, layout, out);
    // The weighted search is a heuristic: now and then (Q5_K: about one test run in 300) the
    // plain search's block has the lower weighted error. Keep whichever is lower, so that
    // importance never makes a block worse by its own measure.
    float ones[256];
    std::fill(ones, ones + layout.n_sub * layout.sub_size, 1.0f);
    AffineBlock plain;
    fit_superblock_affine(x, ones, layout.grid, layout, plain);
    if (affine_error(x, w, layout, plain) < affine_error(x, w, layout, out)) out = plain;
}

}  // namespace edgeq::quant
