// The AVX-512 kernels (see vec-dot-x86.h): 256-bit vectors with VNNI (vpdpbusd, vpdpwssd) and
// AVX-512BW mask moves. Without VNNI the AVX-512 level uses the AVX2 kernels.
#define EDGEQ_VNNI 1
#include "vec-dot-x86.h"

#include "edgeq/core/cpu.h"
#include "packed.h"

namespace edgeq::cpu {

const KernelTable* avx512_kernels() {
    const CpuFeatures& f = cpu_features();
    if (!(f.avx2 && f.fma && f.f16c && f.avx512f && f.avx512bw && f.avx512vl && f.avx512vnni))
        return nullptr;
    static const KernelTable table = [] {
        KernelTable t = make_x86_table();
        add_avx512_gemm(t);
        add_avx512_packed(t);
        return t;
    }();
    return &table;
}

}  // namespace edgeq::cpu
