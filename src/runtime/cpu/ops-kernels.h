// The kernel tables behind edgeq/runtime/cpu/ops.h: ops.cpp holds the scalar reference of each
// row operation; ops-avx2.cpp and ops-avx512.cpp (one source, ops-x86.h) the vector ones.
#pragma once

#include <cstdint>

#include "edgeq/core/cpu.h"
#include "edgeq/model/model-spec.h"

namespace edgeq::cpu {

struct OpsKernels {
    void (*exp_row)(const float* x, float* y, int64_t n) = nullptr;
    void (*rms_norm)(const float* x, const float* w, float* y, int64_t n, float eps) = nullptr;
    void (*gated_activation)(Activation act, const float* gate, const float* up, float* out,
                             int64_t n) = nullptr;
    void (*soft_cap)(float* x, int64_t n, float cap) = nullptr;
};

// Null when this CPU lacks the ISA.
const OpsKernels* avx2_ops();
const OpsKernels* avx512_ops();

// The table for isa (scalar when isa is scalar or the CPU lacks it).
const OpsKernels& ops_for(Isa isa);

}  // namespace edgeq::cpu
