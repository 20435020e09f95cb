// Pieces the family definitions (arch-*.cpp) share.
#include <cmath>

#include "edgeq/core/error.h"
#include "hf-import.h"

namespace edgeq::hf {
namespace {

bool ends_with(const std::string& s, std::string_view suffix) {
    return s.size() >= suffix.size() &&
           s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void write_rope_scaling(Import& import, const std::string& arch) {
    const nlohmann::json& rope = import.params.rope_full();
    const auto type = rope.find("rope_type");
    if (type == rope.end() || !type->is_string()) return;
    const std::string kind = type->get<std::string>();
    MetadataBuilder& out = import.hparams;
    const std::string prefix = arch + ".rope.scaling.";
    auto number = [&](std::initializer_list<const char*> keys) -> std::optional<double> {
        for (const char* key : keys) {
            const auto it = rope.find(key);
            if (it != rope.end() && it->is_number()) return it->get<double>();
        }
        return std::nullopt;
    };
    const std::optional<double> factor = number({"factor"});
    if (kind == "linear" && factor) {
        out.set_string(prefix + "type", "linear");
        out.set_float32(prefix + "factor", *factor);
    } else if (kind == "yarn" && factor) {
        out.set_string(prefix + "type", "yarn");
        out.set_float32(prefix + "factor", *factor);
        const auto original = number({"original_max_position_embeddings"});
        if (!original)
            fail("{}: yarn rope scaling without original_max_position_embeddings",
                 import.config_path());
        out.set_uint32(prefix + "original_context_length", static_cast<int64_t>(*original),
                       import.config_path());
        const std::pair<std::initializer_list<const char*>, const char*> k_optional[] = {
            {{"extrapolation_factor"}, "yarn_ext_factor"},
            {{"attention_factor", "attn_factor"}, "yarn_attn_factor"},
            {{"beta_fast"}, "yarn_beta_fast"},
            {{"beta_slow"}, "yarn_beta_slow"}};
        for (const auto& [fields, key] : k_optional) {
            if (const auto v = number(fields)) out.set_float32(prefix + key, *v);
        }
    } else if (kind == "su" || kind == "longrope") {
        out.set_string(prefix + "type", "longrope");
    }
}

}  // namespace

void write_common_hparams(Import& import, const std::string& arch) {
    const Params& p = import.params;
    MetadataBuilder& out = import.hparams;
    const std::string& source = import.config_path();
    const auto block_count = p.integer({"n_layers", "num_hidden_layers", "n_layer", "num_layers"});
    if (!block_count) fail("{}: no layer count (num_hidden_layers)", source);
    out.set_uint32(arch + ".block_count", *block_count, source);
    if (auto v = p.integer({"max_position_embeddings", "n_ctx", "n_positions", "max_length",
                            "max_sequence_length", "model_max_length"})) {
        out.set_uint32(arch + ".context_length", *v, source);
    }
    if (auto v = p.integer({"hidden_size", "n_embd", "dim"}))
        out.set_uint32(arch + ".embedding_length", *v, source);
    if (auto v = p.integer({"prefix_dense_intermediate_size", "dense_intermediate_size",
                            "intermediate_size", "n_inner", "hidden_dim"})) {
        out.set_uint32(arch + ".feed_forward_length", *v, source);
    }
    if (auto v = p.integer({"num_attention_heads", "n_head", "n_heads"})) {
        out.set_uint32(arch + ".attention.head_count", *v, source);
    }
    if (auto v = p.integer({"num_key_value_heads", "n_kv_heads"})) {
        out.set_uint32(arch + ".attention.head_count_kv", *v, source);
    }
    if (const nlohmann::json* causal = p.find({"is_causal"});
        causal != nullptr && causal->is_boolean() && !causal->get<bool>()) {
        out.set(arch + ".attention.causal", GgufValue::make_bool(false));
    }
    write_rope_scaling(import, arch);
    if (const auto it = p.rope_full().find("rope_theta");
        it != p.rope_full().end() && it->is_number()) {
        out.set_float32(arch + ".rope.freq_base", it->get<double>());
    }
    if (const auto swa = p.rope().find("sliding_attention");
        swa != p.rope().end() && swa->is_object()) {
        if (const auto it = swa->find("rope_theta"); it != swa->end() && it->is_number()) {
            out.set_float32(arch + ".rope.freq_base_swa", it->get<double>());
        }
    }
    if (auto v = p.number({"rms_norm_eps", "norm_eps"}))
        out.set_float32(arch + ".attention.layer_norm_rms_epsilon", *v);
    if (auto v = p.number({"layer_norm_eps", "layer_norm_epsilon", "norm_epsilon"})) {
        out.set_float32(arch + ".attention.layer_norm_epsilon", *v);
    }
    if (auto v = p.integer({"head_dim"})) {
        out.set_uint32(arch + ".attention.key_length", *v, source);
        out.set_uint32(arch + ".attention.value_length", *v, source);
    }
    out.set("general.file_type", GgufValue::make_uint32(import.file_type));
}

std::optional<LayerName> parse_layer_name(const std::string& hf_name) {
    static constexpr std::string_view k_prefix = "model.layers.";
    if (hf_name.rfind(k_prefix, 0) != 0) return std::nullopt;
    size_t i = k_prefix.size();
    int64_t layer = 0;
    const size_t digits_start = i;
    while (i < hf_name.size() && std::isdigit(static_cast<unsigned char>(hf_name[i])) &&
           i - digits_start < 9) {
        layer = layer * 10 + (hf_name[i] - '0');
        ++i;
    }
    if (i == digits_start || i >= hf_name.size() || hf_name[i] != '.') return std::nullopt;
    std::string rest = hf_name.substr(i + 1);
    for (std::string_view suffix : {".weight", ".bias"}) {
        if (ends_with(rest, suffix)) {
            return LayerName{layer, rest.substr(0, rest.size() - suffix.size()),
                             std::string(suffix)};
        }
    }
    return std::nullopt;
}

std::optional<std::string> map_with_table(
    const std::string& hf_name,
    const std::vector<std::pair<std::string_view, std::string_view>>& layer_parts) {
    if (hf_name == "model.embed_tokens.weight") return "token_embd.weight";
    if (hf_name == "model.norm.weight") return "output_norm.weight";
    if (hf_name == "lm_head.weight") return "output.weight";
    if (const auto layer = parse_layer_name(hf_name)) {
        for (const auto& [hf_part, gguf_part] : layer_parts) {
            if (layer->part == hf_part) {
                return "blk." + std::to_string(layer->layer) + "." + std::string(gguf_part) +
                       layer->suffix;
            }
        }
    }
    return std::nullopt;
}

std::vector<int64_t> rope_permutation(int64_t n_rows, int64_t n_heads) {
    if (n_heads <= 0 || n_rows % n_heads != 0 || (n_rows / n_heads) % 2 != 0) {
        fail("cannot permute {} rows for {} rotary heads", n_rows, n_heads);
    }
    const int64_t head_dim = n_rows / n_heads;
    std::vector<int64_t> map(static_cast<size_t>(n_rows));
    for (int64_t h = 0; h < n_heads; ++h) {
        for (int64_t i = 0; i < head_dim / 2; ++i) {
            for (int64_t j = 0; j < 2; ++j) {
                map[static_cast<size_t>(h * head_dim + 2 * i + j)] =
                    h * head_dim + j * (head_dim / 2) + i;
            }
        }
    }
    return map;
}

ModelTensor generated_tensor(std::string name, std::vector<float> values) {
    ModelTensor t;
    t.name = std::move(name);
    t.shape = {static_cast<int64_t>(values.size())};
    t.owned = std::move(values);
    t.source = TensorView{{}, GgmlType::F32, t.shape, nullptr, t.owned.size() * sizeof(float)};
    return t;
}

}  // namespace edgeq::hf
