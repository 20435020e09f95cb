// AVX2 version of the exact scoring loop: the four double lanes of the scalar reference in one
// register, the same operations in the same order (see onnx-matmul-nbits-kernels.h).
#include <immintrin.h>

#include "onnx-matmul-nbits-kernels.h"

namespace edgeq::nbits {
namespace {

inline double lane_sum(__m256d v) {
    alignas(32) double a[4];
    _mm256_store_pd(a, v);
    return (a[0] + a[1]) + (a[2] + a[3]);
}

void exact_sums(const float* x, const float* w, int n, float iscale, float lo, float hi,
                double* sxq, double* sqq) {
    const __m128 is = _mm_set1_ps(iscale);
    const __m128 vlo = _mm_set1_ps(lo);
    const __m128 vhi = _mm_set1_ps(hi);
    const __m128 magic = _mm_set1_ps(12582912.0f);
    __m256d axq = _mm256_setzero_pd();
    __m256d aqq = _mm256_setzero_pd();
    for (int i = 0; i < n; i += 4) {
        const __m128 xv = _mm_loadu_ps(x + i);
        // std::clamp(v, lo, hi) for finite v; a zero's sign is lost in the rounding below.
        const __m128 t = _mm_max_ps(_mm_min_ps(_mm_mul_ps(xv, is), vhi), vlo);
        const __m256d k = _mm256_cvtps_pd(_mm_sub_ps(_mm_add_ps(t, magic), magic));
        const __m256d wk = _mm256_mul_pd(_mm256_cvtps_pd(_mm_loadu_ps(w + i)), k);
        axq = _mm256_add_pd(axq, _mm256_mul_pd(wk, _mm256_cvtps_pd(xv)));
        aqq = _mm256_add_pd(aqq, _mm256_mul_pd(wk, k));
    }
    *sxq = lane_sum(axq);
    *sqq = lane_sum(aqq);
}

}  // namespace

ExactSums exact_sums_avx2() {
    return exact_sums;
}

}  // namespace edgeq::nbits
