// What the CPU can do, read once from CPUID, and the instruction set edgeq's kernels use.
#pragma once

#include <string>

namespace edgeq {

enum class Isa { scalar, avx2, avx512 };

struct CpuFeatures {
    bool f16c = false;
    bool fma = false;
    bool avx2 = false;
    bool avx512f = false;
    bool avx512bw = false;
    bool avx512vl = false;
    bool avx512vnni = false;
    bool avx512bf16 = false;
};

const CpuFeatures& cpu_features();

// The best ISA this CPU supports, or the one EDGEQ_ISA=scalar|avx2|avx512 forces (an ISA the
// CPU lacks is refused with an Error).
Isa active_isa();
const char* isa_name(Isa isa);

}  // namespace edgeq
