// The AVX2 runs of the packed layouts (see packed-x86.h).
#define EDGEQ_VNNI 0
#include "packed-x86.h"

namespace edgeq::cpu {

void add_avx2_packed(KernelTable& t) {
    add_x86_packed(t);
}

}  // namespace edgeq::cpu
