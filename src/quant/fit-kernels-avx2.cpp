// AVX2 versions of the scale-search loops: the eight scalar lanes in one register, the same
// operations in the same order (see fit-kernels.h). Built with -mavx2; chosen at run time.
#include <immintrin.h>

#include "blocks.h"
#include "fit-kernels.h"

namespace edgeq::quant {
namespace {

inline float lane_sum(__m256 v) {
    alignas(32) float a[8];
    _mm256_store_ps(a, v);
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

inline __m256 round_even(__m256 t) {
    const __m256 magic = _mm256_set1_ps(12582912.0f);
    return _mm256_sub_ps(_mm256_add_ps(t, magic), magic);
}

inline __m256 clamp(__m256 v, __m256 lo, __m256 hi) {
    return _mm256_max_ps(_mm256_min_ps(v, hi), lo);
}

struct Iq4Steps {
    __m256 mid[15];
    __m256 step[15];
    __m256 first;
    Iq4Steps() {
        for (int k = 0; k < 15; ++k) {
            mid[k] = _mm256_set1_ps(0.5f * static_cast<float>(k_iq4_grid[k] + k_iq4_grid[k + 1]));
            step[k] = _mm256_set1_ps(static_cast<float>(k_iq4_grid[k + 1] - k_iq4_grid[k]));
        }
        first = _mm256_set1_ps(static_cast<float>(k_iq4_grid[0]));
    }
    __m256 value(__m256 v) const {
        __m256 value = first;
        for (int k = 0; k < 15; ++k) {
            const __m256 above = _mm256_cmp_ps(v, mid[k], _CMP_GT_OQ);
            value = _mm256_add_ps(value, _mm256_and_ps(above, step[k]));
        }
        return value;
    }
};

void symmetric_sums(const float* x, const float* w, int n, const float* iscale, int n_cand,
                    float qmin, float qmax, float* sxq, float* sqq) {
    const __m256 lo = _mm256_set1_ps(qmin);
    const __m256 hi = _mm256_set1_ps(qmax);
    for (int c = 0; c < n_cand; ++c) {
        const __m256 is = _mm256_set1_ps(iscale[c]);
        __m256 axq = _mm256_setzero_ps();
        __m256 aqq = _mm256_setzero_ps();
        for (int i = 0; i < n; i += 8) {
            const __m256 xv = _mm256_loadu_ps(x + i);
            const __m256 q = round_even(clamp(_mm256_mul_ps(xv, is), lo, hi));
            const __m256 wq = _mm256_mul_ps(_mm256_loadu_ps(w + i), q);
            axq = _mm256_add_ps(axq, _mm256_mul_ps(wq, xv));
            aqq = _mm256_add_ps(aqq, _mm256_mul_ps(wq, q));
        }
        sxq[c] = lane_sum(axq);
        sqq[c] = lane_sum(aqq);
    }
}

void affine_sums(const float* x, const float* w, int n, const float* lo, const float* iscale,
                 int n_cand, float qmax, float* sq, float* sqq, float* sxq) {
    const __m256 zero = _mm256_setzero_ps();
    const __m256 hi = _mm256_set1_ps(qmax);
    for (int c = 0; c < n_cand; ++c) {
        const __m256 start = _mm256_set1_ps(lo[c]);
        const __m256 is = _mm256_set1_ps(iscale[c]);
        __m256 aq = zero;
        __m256 aqq = zero;
        __m256 axq = zero;
        for (int i = 0; i < n; i += 8) {
            const __m256 xv = _mm256_loadu_ps(x + i);
            const __m256 q =
                round_even(clamp(_mm256_mul_ps(_mm256_sub_ps(xv, start), is), zero, hi));
            const __m256 wq = _mm256_mul_ps(_mm256_loadu_ps(w + i), q);
            aq = _mm256_add_ps(aq, wq);
            aqq = _mm256_add_ps(aqq, _mm256_mul_ps(wq, q));
            axq = _mm256_add_ps(axq, _mm256_mul_ps(wq, xv));
        }
        sq[c] = lane_sum(aq);
        sqq[c] = lane_sum(aqq);
        sxq[c] = lane_sum(axq);
    }
}

void iq4_sums(const float* x, const float* w, int n, const float* iscale, int n_cand, float* sxk,
              float* skk) {
    static const Iq4Steps grid;
    for (int c = 0; c < n_cand; ++c) {
        const __m256 is = _mm256_set1_ps(iscale[c]);
        __m256 axk = _mm256_setzero_ps();
        __m256 akk = _mm256_setzero_ps();
        for (int i = 0; i < n; i += 8) {
            const __m256 xv = _mm256_loadu_ps(x + i);
            const __m256 k = grid.value(_mm256_mul_ps(xv, is));
            const __m256 wk = _mm256_mul_ps(_mm256_loadu_ps(w + i), k);
            axk = _mm256_add_ps(axk, _mm256_mul_ps(wk, xv));
            akk = _mm256_add_ps(akk, _mm256_mul_ps(wk, k));
        }
        sxk[c] = lane_sum(axk);
        skk[c] = lane_sum(akk);
    }
}

void symmetric_errors(const float* x, const float* w, int n, const float* scale, int n_cand,
                      float qmin, float qmax, float* error) {
    const __m256 lo = _mm256_set1_ps(qmin);
    const __m256 hi = _mm256_set1_ps(qmax);
    for (int c = 0; c < n_cand; ++c) {
        const __m256 s = _mm256_set1_ps(scale[c]);
        const __m256 is = _mm256_set1_ps(1.0f / scale[c]);
        __m256 acc = _mm256_setzero_ps();
        for (int i = 0; i < n; i += 8) {
            const __m256 xv = _mm256_loadu_ps(x + i);
            const __m256 q = round_even(clamp(_mm256_mul_ps(xv, is), lo, hi));
            const __m256 diff = _mm256_sub_ps(xv, _mm256_mul_ps(s, q));
            acc = _mm256_add_ps(acc,
                                _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(w + i), diff), diff));
        }
        error[c] = lane_sum(acc);
    }
}

void affine_errors(const float* x, const float* w, int n, const float* scale, const float* min,
                   int n_cand, float qmax, float* error) {
    const __m256 zero = _mm256_setzero_ps();
    const __m256 hi = _mm256_set1_ps(qmax);
    for (int c = 0; c < n_cand; ++c) {
        const __m256 s = _mm256_set1_ps(scale[c]);
        const __m256 m = _mm256_set1_ps(min[c]);
        const __m256 is = _mm256_set1_ps(1.0f / scale[c]);
        __m256 acc = zero;
        for (int i = 0; i < n; i += 8) {
            const __m256 xv = _mm256_loadu_ps(x + i);
            const __m256 q = round_even(clamp(_mm256_mul_ps(_mm256_add_ps(xv, m), is), zero, hi));
            const __m256 diff = _mm256_sub_ps(xv, _mm256_sub_ps(_mm256_mul_ps(s, q), m));
            acc = _mm256_add_ps(acc,
                                _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(w + i), diff), diff));
        }
        error[c] = lane_sum(acc);
    }
}

void iq4_errors(const float* x, const float* w, int n, const float* scale, int n_cand,
                float* error) {
    static const Iq4Steps grid;
    for (int c = 0; c < n_cand; ++c) {
        const __m256 s = _mm256_set1_ps(scale[c]);
        const __m256 is = _mm256_set1_ps(1.0f / scale[c]);
        __m256 acc = _mm256_setzero_ps();
        for (int i = 0; i < n; i += 8) {
            const __m256 xv = _mm256_loadu_ps(x + i);
            const __m256 diff =
                _mm256_sub_ps(xv, _mm256_mul_ps(s, grid.value(_mm256_mul_ps(xv, is))));
            acc = _mm256_add_ps(acc,
                                _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(w + i), diff), diff));
        }
        error[c] = lane_sum(acc);
    }
}

}  // namespace

const FitKernels* fit_kernels_avx2() {
    static const FitKernels kernels{symmetric_sums,   affine_sums,   iq4_sums,
                                    symmetric_errors, affine_errors, iq4_errors};
    return &kernels;
}

}  // namespace edgeq::quant
