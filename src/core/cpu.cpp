#include "edgeq/core/cpu.h"

#include <cstdlib>
#include <cstring>

#include "edgeq/core/error.h"

namespace edgeq {
namespace {

CpuFeatures detect() {
    CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    f.f16c = __builtin_cpu_supports("f16c");
    f.fma = __builtin_cpu_supports("fma");
    f.avx2 = __builtin_cpu_supports("avx2");
    f.avx512f = __builtin_cpu_supports("avx512f");
    f.avx512bw = __builtin_cpu_supports("avx512bw");
    f.avx512vl = __builtin_cpu_supports("avx512vl");
    f.avx512vnni = __builtin_cpu_supports("avx512vnni");
    f.avx512bf16 = __builtin_cpu_supports("avx512bf16");
#endif
    return f;
}

Isa best_isa(const CpuFeatures& f) {
    if (f.avx512f && f.avx512bw && f.avx512vl && f.fma && f.f16c) return Isa::avx512;
    if (f.avx2 && f.fma && f.f16c) return Isa::avx2;
    return Isa::scalar;
}

Isa choose_isa() {
    const Isa best = best_isa(cpu_features());
    const char* env = std::getenv("EDGEQ_ISA");
    if (env == nullptr || *env == '\0') return best;
    Isa wanted;
    if (std::strcmp(env, "scalar") == 0) {
        wanted = Isa::scalar;
    } else if (std::strcmp(env, "avx2") == 0) {
        wanted = Isa::avx2;
    } else if (std::strcmp(env, "avx512") == 0) {
        wanted = Isa::avx512;
    } else {
        fail("EDGEQ_ISA={}: unknown instruction set, expected scalar, avx2 or avx512", env);
    }
    if (static_cast<int>(wanted) > static_cast<int>(best)) {
        fail("EDGEQ_ISA={}: this CPU does not support it (best available: {})", env,
             isa_name(best));
    }
    return wanted;
}

}  // namespace

const CpuFeatures& cpu_features() {
    static const CpuFeatures features = detect();
    return features;
}

Isa active_isa() {
    static const Isa isa = choose_isa();
    return isa;
}

const char* isa_name(Isa isa) {
    switch (isa) {
        case Isa::scalar:
            return "scalar";
        case Isa::avx2:
            return "avx2";
        case Isa::avx512:
            return "avx512";
    }
    return "?";
}

}  // namespace edgeq
