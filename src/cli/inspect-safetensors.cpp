// edgeq inspect for safetensors files and Hugging Face checkpoint directories.
#include <filesystem>
#include <map>
#include <optional>

#include "edgeq/formats/hf-checkpoint.h"
#include "edgeq/formats/safetensors.h"
#include "inspect.h"

namespace edgeq::cli {
namespace {

// Totals of safetensors tensors (one file, or a checkpoint's shards).
struct Totals {
    int64_t n_params = 0;
    uint64_t n_bytes = 0;
    std::map<std::string_view, std::pair<int, uint64_t>> by_dtype;

    void add(const SafetensorsTensor& t) {
        n_params += t.n_elements;
        n_bytes += t.n_bytes;
        auto& [count, bytes] = by_dtype[safetensors_dtype_name(t.dtype)];
        ++count;
        bytes += t.n_bytes;
    }
    double bits_per_weight() const {
        return n_params > 0 ? 8.0 * static_cast<double>(n_bytes) / static_cast<double>(n_params)
                            : 0.0;
    }
    void add_json(json& out) const {
        out["parameters"] = n_params;
        out["tensor_bytes"] = n_bytes;
        out["bits_per_weight"] = bits_per_weight();
    }
    void print_line() const {
        fmt::print("{:.3f} B parameters · {} of tensors · {:.3f} bits per weight\n", n_params / 1e9,
                   human_bytes(n_bytes), bits_per_weight());
    }
};

// A tensor and the shard that holds it ("" for a single file).
using Listed = std::vector<std::pair<const SafetensorsTensor*, std::string>>;

json tensors_json(const Listed& tensors) {
    json list = json::array();
    for (const auto& [t, file] : tensors) {
        json j = {{"name", t->name},
                  {"dtype", safetensors_dtype_name(t->dtype)},
                  {"shape", t->shape},
                  {"bytes", t->n_bytes},
                  {"offset", t->offset}};
        if (!file.empty()) j["file"] = file;
        list.push_back(j);
    }
    return list;
}

void print_tensors(const Listed& tensors, const Totals& totals) {
    fmt::print("\ndtypes:\n");
    for (const auto& [name, stats] : totals.by_dtype) {
        fmt::print("  {:<8} {:>6} tensors {:>12}\n", name, stats.first, human_bytes(stats.second));
    }
    fmt::print("\ntensors (shapes row-major, as stored):\n");
    for (const auto& [t, file] : tensors) {
        fmt::print("  {:<56} {:<7} {:>24} {:>12}{}\n", t->name, safetensors_dtype_name(t->dtype),
                   shape_text(t->shape), human_bytes(t->n_bytes), file.empty() ? "" : "  " + file);
    }
}

// "LlamaForCausalLM · 22 layers · hidden 2048 · 32 heads (4 kv) · ffn 5632 · ctx 2048 · vocab 32000
// · bfloat16"
std::string summary_line(const HfCheckpoint& checkpoint) {
    const nlohmann::json& c = checkpoint.config();
    // Multimodal configs (Gemma 3) keep the language model's settings under text_config.
    const nlohmann::json& text =
        c.contains("text_config") && c["text_config"].is_object() ? c["text_config"] : c;
    std::vector<std::string> parts{checkpoint.architecture().empty()
                                       ? std::string("unknown architecture")
                                       : checkpoint.architecture()};
    auto number = [&](const char* key) -> std::optional<int64_t> {
        if (text.contains(key) && text[key].is_number_integer()) return text[key].get<int64_t>();
        return std::nullopt;
    };
    if (auto n = number("num_hidden_layers")) parts.push_back(fmt::format("{} layers", *n));
    if (auto n = number("hidden_size")) parts.push_back(fmt::format("hidden {}", *n));
    if (auto n = number("num_attention_heads")) {
        const auto kv = number("num_key_value_heads");
        parts.push_back(kv && *kv != *n ? fmt::format("{} heads ({} kv)", *n, *kv)
                                        : fmt::format("{} heads", *n));
    }
    if (auto n = number("intermediate_size")) parts.push_back(fmt::format("ffn {}", *n));
    if (auto n = number("max_position_embeddings")) parts.push_back(fmt::format("ctx {}", *n));
    if (auto n = number("vocab_size")) parts.push_back(fmt::format("vocab {}", *n));
    for (const char* key : {"torch_dtype", "dtype"}) {
        if (c.contains(key) && c[key].is_string()) {
            parts.push_back(c[key].get<std::string>());
            break;
        }
    }
    std::string line;
    for (const std::string& p : parts) line += (line.empty() ? "" : " · ") + p;
    return line;
}

}  // namespace

void inspect_safetensors(const InspectArgs& args) {
    const SafetensorsFile file = SafetensorsFile::open(args.path);
    Totals totals;
    Listed tensors;
    for (const SafetensorsTensor& t : file.tensors()) {
        totals.add(t);
        tensors.emplace_back(&t, "");
    }
    if (args.json) {
        json out = {
            {"file", args.path}, {"format", "safetensors"}, {"file_size", file.file_size()}};
        totals.add_json(out);
        json metadata = json::object();
        for (const auto& [k, v] : file.metadata()) metadata[k] = v;
        out["metadata"] = metadata;
        out["tensors"] = tensors_json(tensors);
        fmt::print("{}\n", out.dump(2));
        return;
    }
    fmt::print("{}: safetensors, {}, {} tensors\n", args.path, human_bytes(file.file_size()),
               file.tensors().size());
    totals.print_line();
    if (!file.metadata().empty()) {
        fmt::print("\nmetadata:\n");
        for (const auto& [k, v] : file.metadata()) fmt::print("  {:<44} {}\n", k, v);
    }
    print_tensors(tensors, totals);
}

void inspect_hf(const InspectArgs& args) {
    const HfCheckpoint checkpoint = HfCheckpoint::open(args.path);
    Totals totals;
    Listed tensors;
    for (const HfTensor& t : checkpoint.tensors()) {
        totals.add(*t.tensor);
        tensors.emplace_back(t.tensor, std::filesystem::path(t.shard->path()).filename().string());
    }
    if (args.json) {
        json out = {{"file", args.path},
                    {"format", "huggingface"},
                    {"summary", summary_line(checkpoint)},
                    {"architecture", checkpoint.architecture()},
                    {"shards", checkpoint.shards().size()}};
        totals.add_json(out);
        out["config"] = checkpoint.config();
        out["tensors"] = tensors_json(tensors);
        fmt::print("{}\n", out.dump(2));
        return;
    }
    fmt::print("{}: Hugging Face checkpoint, {} safetensors file{}, {} tensors\n", args.path,
               checkpoint.shards().size(), checkpoint.shards().size() == 1 ? "" : "s",
               checkpoint.tensors().size());
    fmt::print("{}\n", summary_line(checkpoint));
    totals.print_line();
    print_tensors(tensors, totals);
}

}  // namespace edgeq::cli
