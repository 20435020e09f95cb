#include "edgeq/core/cpu.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "edgeq/core/error.h"

namespace edgeq {
namespace {

#if defined(__x86_64__) || defined(__i386__)
uint64_t read_xcr0() {
    uint32_t eax = 0;
    uint32_t edx = 0;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return (static_cast<uint64_t>(edx) << 32) | eax;
}
#endif

// Reads CPUID directly (rather than compiler builtins, whose feature names vary) and checks
// that the OS saves the AVX and AVX-512 registers (XCR0) before trusting those bits.
CpuFeatures detect() {
    CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid(0, &eax, &ebx, &ecx, &edx) == 0) return f;
    const unsigned max_leaf = eax;
    __get_cpuid(1, &eax, &ebx, &ecx, &edx);
    const bool osxsave = (ecx >> 27) & 1;
    const uint64_t xcr0 = osxsave ? read_xcr0() : 0;
    const bool avx_state = (xcr0 & 0x6) == 0x6;
    const bool avx512_state = avx_state && (xcr0 & 0xe0) == 0xe0;
    const bool avx = avx_state && ((ecx >> 28) & 1);
    f.fma = avx && ((ecx >> 12) & 1);
    f.f16c = avx && ((ecx >> 29) & 1);
    if (max_leaf >= 7) {
        __cpuid_count(7, 0, eax, ebx, ecx, edx);
        f.avx2 = avx && ((ebx >> 5) & 1);
        f.avx512f = avx512_state && ((ebx >> 16) & 1);
        f.avx512bw = avx512_state && ((ebx >> 30) & 1);
        f.avx512vl = avx512_state && ((ebx >> 31) & 1);
        f.avx512vnni = avx512_state && ((ecx >> 11) & 1);
        __cpuid_count(7, 1, eax, ebx, ecx, edx);
        f.avx512bf16 = avx512_state && ((eax >> 5) & 1);
    }
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
