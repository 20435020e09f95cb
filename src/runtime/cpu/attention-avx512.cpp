// The attention tile kernel with AVX-512F (16 floats a vector); see attention-x86.h.
#define EDGEQ_SIMD_WIDTH 16
#include "attention-x86.h"

namespace edgeq::cpu {

TileFn attention_tile_avx512() {
    const CpuFeatures& f = cpu_features();
    return f.avx2 && f.fma && f.avx512f && f.avx512bw && f.avx512vl ? tile_simd : nullptr;
}

}  // namespace edgeq::cpu
