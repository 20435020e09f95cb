// edgeq inspect FILE [--json]: what a model file holds, for GGUF files, safetensors files and
// Hugging Face checkpoint directories.
#include <fmt/format.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "edgeq/core/error.h"
#include "edgeq/core/mapped-file.h"
#include "edgeq/formats/gguf.h"
#include "edgeq/quant/mix.h"
#include "inspect.h"

namespace edgeq::cli {
namespace {

json value_json(const GgufValue& v, size_t max_items) {
    switch (v.type()) {
        case GgufType::string:
            return v.to_string();
        case GgufType::boolean:
            return v.to_bool();
        case GgufType::float32:
        case GgufType::float64:
            return v.to_double();
        case GgufType::uint64:
            return v.to_uint();
        case GgufType::array: {
            json items = json::array();
            const uint64_t n = std::min<uint64_t>(v.array_size(), max_items);
            for (uint64_t i = 0; i < n; ++i)
                items.push_back(value_json(v.element_at(i), max_items));
            if (n == v.array_size()) return items;
            return json{{"type", std::string("ARRAY of ") + gguf_type_name(v.element_type())},
                        {"length", v.array_size()},
                        {"first", items}};
        }
        default:
            return v.to_int();
    }
}

// "llama · 22 layers · embd 2048 · 32 heads (4 kv) · ctx 2048 · vocab 32000 · Q4_K_M"
std::string gguf_summary_line(const GgufFile& f) {
    const std::string arch = f.get_string("general.architecture").value_or("unknown architecture");
    std::vector<std::string> parts{arch};
    auto get = [&](const std::string& key) -> std::optional<int64_t> {
        const GgufValue* v = f.find(arch + "." + key);
        if (v == nullptr) return std::nullopt;
        if (v->type() == GgufType::array)
            return v->array_size() > 0 ? std::optional(v->element_at(0).to_int()) : std::nullopt;
        if (!v->is_integer()) return std::nullopt;
        return v->to_int();
    };
    if (auto n = get("block_count")) parts.push_back(fmt::format("{} layers", *n));
    if (auto n = get("embedding_length")) parts.push_back(fmt::format("embd {}", *n));
    if (auto n = get("attention.head_count")) {
        const auto kv = get("attention.head_count_kv");
        parts.push_back(kv && *kv != *n ? fmt::format("{} heads ({} kv)", *n, *kv)
                                        : fmt::format("{} heads", *n));
    }
    if (auto n = get("feed_forward_length")) parts.push_back(fmt::format("ffn {}", *n));
    if (auto n = get("context_length")) parts.push_back(fmt::format("ctx {}", *n));
    if (const GgufValue* tokens = f.find("tokenizer.ggml.tokens");
        tokens != nullptr && tokens->type() == GgufType::array) {
        parts.push_back(fmt::format("vocab {}", tokens->array_size()));
    }
    if (auto ft = f.get_uint("general.file_type"))
        parts.push_back(file_type_name(static_cast<uint32_t>(*ft)));
    std::string line;
    for (const std::string& p : parts) line += (line.empty() ? "" : " · ") + p;
    return line;
}

void inspect_gguf(const InspectArgs& args) {
    const GgufFile f = GgufFile::open(args.path);
    int64_t n_params = 0;
    uint64_t n_bytes = 0;
    std::map<std::string_view, std::pair<int, uint64_t>> by_type;
    for (const GgufTensorInfo& t : f.tensors()) {
        n_params += t.n_elements();
        n_bytes += t.n_bytes;
        auto& [count, bytes] = by_type[dtype(t.type).name];
        ++count;
        bytes += t.n_bytes;
    }
    const double bpw =
        n_params > 0 ? 8.0 * static_cast<double>(n_bytes) / static_cast<double>(n_params) : 0.0;
    if (args.json) {
        json out;
        out["file"] = args.path;
        out["format"] = "gguf";
        out["version"] = f.version();
        out["file_size"] = f.file_size();
        out["alignment"] = f.alignment();
        out["summary"] = gguf_summary_line(f);
        out["parameters"] = n_params;
        out["tensor_bytes"] = n_bytes;
        out["bits_per_weight"] = bpw;
        json metadata = json::object();
        for (const auto& [key, value] : f.metadata()) {
            metadata[key] = {{"type", gguf_type_name(value.type())},
                             {"value", value_json(value, static_cast<size_t>(args.max_items))}};
        }
        out["metadata"] = metadata;
        json tensors = json::array();
        for (const GgufTensorInfo& t : f.tensors()) {
            tensors.push_back({{"name", t.name},
                               {"type", dtype(t.type).name},
                               {"shape", t.shape},
                               {"bytes", t.n_bytes},
                               {"offset", f.data_offset() + t.offset}});
        }
        out["tensors"] = tensors;
        fmt::print("{}\n", out.dump(2));
        return;
    }
    fmt::print("{}: GGUF v{}, {}, {} tensors, {} metadata keys\n", args.path, f.version(),
               human_bytes(f.file_size()), f.tensors().size(), f.metadata().size());
    fmt::print("{}\n", gguf_summary_line(f));
    fmt::print("{:.3f} B parameters · {} of tensors · {:.3f} bits per weight\n\n", n_params / 1e9,
               human_bytes(n_bytes), bpw);
    fmt::print("metadata:\n");
    for (const auto& [key, value] : f.metadata()) {
        fmt::print("  {:<44} {:<8} {}\n", key, gguf_type_name(value.type()),
                   value.summary(static_cast<size_t>(args.max_items)));
    }
    fmt::print("\ntypes:\n");
    for (const auto& [name, stats] : by_type)
        fmt::print("  {:<8} {:>6} tensors {:>12}\n", name, stats.first, human_bytes(stats.second));
    fmt::print("\ntensors:\n");
    for (const GgufTensorInfo& t : f.tensors()) {
        fmt::print("  {:<48} {:<7} {:>24} {:>12}\n", t.name, dtype(t.type).name,
                   shape_text(t.shape), human_bytes(t.n_bytes));
    }
}

}  // namespace

void add_inspect(CLI::App& app) {
    auto args = std::make_shared<InspectArgs>();
    CLI::App* cmd = app.add_subcommand(
        "inspect", "Show what a GGUF file, safetensors file or Hugging Face directory holds");
    cmd->add_option("file", args->path,
                    "GGUF file, .safetensors file or Hugging Face checkpoint directory")
        ->required();
    cmd->add_flag("--json", args->json, "Print JSON");
    cmd->add_option("--max-items", args->max_items,
                    "Array items shown before summarising (default 8)");
    cmd->callback([args] {
        if (std::filesystem::is_directory(args->path)) return inspect_hf(*args);
        const MappedFile probe(args->path);
        if (probe.size() >= 4 && std::memcmp(probe.data(), "GGUF", 4) == 0)
            return inspect_gguf(*args);
        // safetensors starts with the header's length, then '{'; anything else is neither format.
        const bool safetensors_name = args->path.ends_with(".safetensors");
        if (safetensors_name || (probe.size() >= 9 && probe.data()[8] == '{'))
            return inspect_safetensors(*args);
        fail("{}: neither a GGUF nor a safetensors file", args->path);
    });
}

}  // namespace edgeq::cli
