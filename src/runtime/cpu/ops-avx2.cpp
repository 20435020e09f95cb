// The row operations with AVX2 + FMA (8 floats a vector); see ops-x86.h.
#define EDGEQ_SIMD_WIDTH 8
#include "ops-x86.h"

namespace edgeq::cpu {

const OpsKernels* avx2_ops() {
    const CpuFeatures& f = cpu_features();
    if (!(f.avx2 && f.fma)) return nullptr;
    static const OpsKernels table = make_simd_ops();
    return &table;
}

}  // namespace edgeq::cpu
