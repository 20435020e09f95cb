// Which weight types have a packed layout (packed.h).
#include "packed.h"

namespace edgeq::cpu {

const PackedKernel* packed_reference(GgmlType type) {
    switch (type) {
        case GgmlType::Q4_0:
            return &packed_q4_0_reference();
        case GgmlType::Q4_K:
            return &packed_q4_k_reference();
        case GgmlType::Q5_K:
            return &packed_q5_k_reference();
        case GgmlType::Q8_0:
            return &packed_q8_0_reference();
        case GgmlType::Q5_0:
            return &packed_q5_0_reference();
        case GgmlType::Q6_K:
            return &packed_q6_k_reference();
        default:
            return nullptr;
    }
}

}  // namespace edgeq::cpu
