// The general.* keys that describe where a model comes from (name, basename, size label,
// finetune, version, organization), derived as llama.cpp's converter derives them: from
// config.json's _name_or_path when it looks like a model id, else from the directory name,
// with the size label computed from the parameter count when the name does not carry one.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "edgeq/formats/gguf-value.h"

namespace edgeq::hf {

GgufMetadata provenance_metadata(const std::string& dir, const nlohmann::json& config,
                                 int64_t n_parameters);

// "1.1B", "135M", "370K": the parameter count as the converter labels it.
std::string size_label(int64_t n_parameters);

}  // namespace edgeq::hf
