#include "edgeq/model/model.h"

namespace edgeq {

const GgufValue* Model::find(std::string_view key) const {
    for (const auto& [k, v] : metadata) {
        if (k == key) return &v;
    }
    return nullptr;
}

std::string Model::architecture() const {
    const GgufValue* arch = find("general.architecture");
    return arch != nullptr && arch->type() == GgufType::string ? arch->to_string() : std::string();
}

}  // namespace edgeq
