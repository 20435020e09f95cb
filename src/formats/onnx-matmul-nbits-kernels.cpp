// The scalar reference of the exact scoring loop, and the choice of variant.
#include "onnx-matmul-nbits-kernels.h"

#include <algorithm>

#include "edgeq/core/cpu.h"

namespace edgeq::nbits {

void exact_sums_scalar(const float* x, const float* w, int n, float iscale, float lo, float hi,
                       double* sxq, double* sqq) {
    double axq[4] = {};
    double aqq[4] = {};
    for (int i = 0; i < n; i += 4) {
        for (int l = 0; l < 4; ++l) {
            // Rounds as quant::round_clamp does (ties to even; the bounds are integers, so
            // clamping first gives the same integer).
            const float t = std::clamp(x[i + l] * iscale, lo, hi);
            const float k = (t + 12582912.0f) - 12582912.0f;
            const double wk = static_cast<double>(w[i + l]) * k;
            axq[l] += wk * x[i + l];
            aqq[l] += wk * k;
        }
    }
    *sxq = (axq[0] + axq[1]) + (axq[2] + axq[3]);
    *sqq = (aqq[0] + aqq[1]) + (aqq[2] + aqq[3]);
}

ExactSums exact_sums() {
    static const ExactSums f = active_isa() != Isa::scalar ? exact_sums_avx2() : exact_sums_scalar;
    return f;
}

}  // namespace edgeq::nbits
