#include <string>

#include "commands.h"
#include "edgeq/core/error.h"
#include "edgeq/quant/quantize.h"

namespace edgeq::cli {

GgmlType parse_type(const std::string& name) {
    const DType* t = find_dtype(std::string_view(name));
    if (t == nullptr || !can_quantize(t->type) || t->type == GgmlType::Q8_K) {
        std::string known;
        for (const DType& d : all_dtypes()) {
            if (can_quantize(d.type) && d.type != GgmlType::Q8_K)
                known += (known.empty() ? "" : ", ") + std::string(d.name);
        }
        fail("unknown tensor type '{}' (expected one of: {})", name, known);
    }
    return t->type;
}

}  // namespace edgeq::cli
