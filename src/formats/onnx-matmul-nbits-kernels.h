// The exact scoring loop of the MatMulNBits block search (onnx-matmul-nbits.cpp): for a block
// of n values (n a multiple of 4) and one candidate, codes k = round(clamp(x * iscale, lo, hi))
// (ties to even) and the double sums sxq = sum w k x, sqq = sum w k^2.
//
// Four double lanes, added in a fixed order; the scalar version spells them out, the AVX2
// version holds them in one register. Both perform the same IEEE operations in the same order
// (no contraction: the build has -ffp-contract=off), so they give the same bits.
#pragma once

namespace edgeq::nbits {

using ExactSums = void (*)(const float* x, const float* w, int n, float iscale, float lo, float hi,
                           double* sxq, double* sqq);

void exact_sums_scalar(const float* x, const float* w, int n, float iscale, float lo, float hi,
                       double* sxq, double* sqq);
ExactSums exact_sums_avx2();  // always built (x86-64); check cpu_features().avx2 before use
ExactSums exact_sums();       // the variant for the active ISA (edgeq/core/cpu.h)

}  // namespace edgeq::nbits
