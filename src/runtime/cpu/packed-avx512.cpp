// The AVX-512 VNNI runs of the packed layouts (see packed-x86.h).
#define EDGEQ_VNNI 1
#include "packed-x86.h"

namespace edgeq::cpu {

void add_avx512_packed(KernelTable& t) {
    add_x86_packed(t);
}

}  // namespace edgeq::cpu
