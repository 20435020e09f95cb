// Shared pieces of `edgeq inspect` (inspect.cpp: GGUF and dispatch; inspect-safetensors.cpp:
// safetensors files and Hugging Face checkpoints).
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace edgeq::cli {

struct InspectArgs {
    std::string path;
    bool json = false;
    int max_items = 8;
};

using json = nlohmann::ordered_json;

inline std::string shape_text(const std::vector<int64_t>& shape) {
    std::string s;
    for (int64_t d : shape) s += (s.empty() ? "" : " x ") + std::to_string(d);
    return s;
}

inline std::string human_bytes(uint64_t n) {
    if (n >= (uint64_t{1} << 30)) return fmt::format("{:.2f} GiB", n / 1073741824.0);
    if (n >= (uint64_t{1} << 20)) return fmt::format("{:.2f} MiB", n / 1048576.0);
    if (n >= 1024) return fmt::format("{:.2f} KiB", n / 1024.0);
    return fmt::format("{} B", n);
}

void inspect_safetensors(const InspectArgs& args);
void inspect_hf(const InspectArgs& args);

}  // namespace edgeq::cli
