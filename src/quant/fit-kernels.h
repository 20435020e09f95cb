// The inner loops of the scale searches: for a group of n values (n a multiple of 8) and a
// batch of candidate scales, the sums or errors each candidate gives.
//
// Each loop accumulates in eight float lanes and adds the lanes in a fixed order; the scalar
// version spells the lanes out, the AVX2 version holds them in one register. Both perform the
// same IEEE operations in the same order, so they give the same bits and a quantized file does
// not depend on the machine that made it. Rounding uses the 1.5 * 2^23 trick (ties to even,
// exact for |t| < 2^22).
#pragma once

namespace edgeq::quant {

struct FitKernels {
    // q = clamp(round(x * iscale[c]), qmin, qmax); sxq[c] = sum w x q, sqq[c] = sum w q^2.
    void (*symmetric_sums)(const float* x, const float* w, int n, const float* iscale, int n_cand,
                           float qmin, float qmax, float* sxq, float* sqq);
    // q = clamp(round((x - lo[c]) * iscale[c]), 0, qmax); sq, sqq, sxq as above.
    void (*affine_sums)(const float* x, const float* w, int n, const float* lo, const float* iscale,
                        int n_cand, float qmax, float* sq, float* sqq, float* sxq);
    // k = IQ4 grid value nearest x * iscale[c]; sxk[c] = sum w x k, skk[c] = sum w k^2.
    void (*iq4_sums)(const float* x, const float* w, int n, const float* iscale, int n_cand,
                     float* sxk, float* skk);
    // error[c] = sum w (x - s q)^2 with s = scale[c] != 0, q = clamp(round(x / s), qmin, qmax).
    void (*symmetric_errors)(const float* x, const float* w, int n, const float* scale, int n_cand,
                             float qmin, float qmax, float* error);
    // error[c] = sum w (x - (s q - m))^2, s = scale[c] > 0, m = min[c],
    // q = clamp(round((x + m) / s), 0, qmax).
    void (*affine_errors)(const float* x, const float* w, int n, const float* scale,
                          const float* min, int n_cand, float qmax, float* error);
    // error[c] = sum w (x - s k)^2, s = scale[c] != 0, k the IQ4 grid value nearest x / s.
    void (*iq4_errors)(const float* x, const float* w, int n, const float* scale, int n_cand,
                       float* error);
};

// The kernels for the active ISA (see edgeq/core/cpu.h).
const FitKernels& fit_kernels();
const FitKernels& fit_kernels_scalar();
const FitKernels* fit_kernels_avx2();  // null where the build has no AVX2 variant

}  // namespace edgeq::quant
