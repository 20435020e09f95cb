// The row operations with AVX-512F (16 floats a vector, mask moves for tails); see ops-x86.h.
#define EDGEQ_SIMD_WIDTH 16
#include "ops-x86.h"

namespace edgeq::cpu {

const OpsKernels* avx512_ops() {
    const CpuFeatures& f = cpu_features();
    if (!(f.avx2 && f.fma && f.avx512f && f.avx512bw && f.avx512vl)) return nullptr;
    static const OpsKernels table = make_simd_ops();
    return &table;
}

}  // namespace edgeq::cpu
