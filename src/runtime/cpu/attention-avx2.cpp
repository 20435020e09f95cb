// The attention tile kernel with AVX2 + FMA (8 floats a vector); see attention-x86.h.
#define EDGEQ_SIMD_WIDTH 8
#include "attention-x86.h"

namespace edgeq::cpu {

TileFn attention_tile_avx2() {
    const CpuFeatures& f = cpu_features();
    return f.avx2 && f.fma ? tile_simd : nullptr;
}

LoadTileFn attention_load_f16_avx2() {
    const CpuFeatures& f = cpu_features();
    return f.avx2 && f.f16c ? load_tile_f16 : nullptr;
}

}  // namespace edgeq::cpu
