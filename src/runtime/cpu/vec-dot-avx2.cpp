// The AVX2 kernels (see vec-dot-x86.h): u8 x s8 products by vpmaddubsw + vpmaddwd.
#define EDGEQ_VNNI 0
#include "vec-dot-x86.h"

#include "edgeq/core/cpu.h"
#include "packed.h"

namespace edgeq::cpu {

const KernelTable* avx2_kernels() {
    const CpuFeatures& f = cpu_features();
    if (!(f.avx2 && f.fma && f.f16c)) return nullptr;
    static const KernelTable table = [] {
        KernelTable t = make_x86_table();
        add_avx2_gemm(t);
        add_avx2_packed(t);
        return t;
    }();
    return &table;
}

}  // namespace edgeq::cpu
