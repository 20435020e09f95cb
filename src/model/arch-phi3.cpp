// Phi3ForCausalLM -> "phi3". The fused qkv_proj and gate_up_proj stay fused: llama.cpp's phi3
// graph reads ffn_up as [gate; up] (it refuses split gate/up tensors) and attn_qkv as [q; k; v].
#include <cmath>

#include "edgeq/core/error.h"
#include "hf-import.h"

namespace edgeq::hf {
namespace {

const std::vector<std::pair<std::string_view, std::string_view>> k_parts = {
    {"input_layernorm", "attn_norm"},    {"self_attn.qkv_proj", "attn_qkv"},
    {"self_attn.o_proj", "attn_output"}, {"post_attention_layernorm", "ffn_norm"},
    {"mlp.gate_up_proj", "ffn_up"},      {"mlp.down_proj", "ffn_down"}};

int64_t rope_dims(const Params& p) {
    const double partial = p.number({"partial_rotary_factor"}).value_or(1.0);
    const int64_t hidden = p.require_integer("hidden_size");
    return static_cast<int64_t>(partial * static_cast<double>(hidden)) /
           p.require_integer("num_attention_heads");
}

void write_hparams(Import& import) {
    Params& p = import.params;
    p.set_default("num_key_value_heads", p.require_integer("num_attention_heads"));
    MetadataBuilder& out = import.hparams;
    const std::string& source = p.path();
    const auto context = p.integer({"n_positions", "max_position_embeddings"});
    if (!context) fail("{}: max_position_embeddings is missing", source);
    out.set_uint32("phi3.context_length", *context, source);
    const auto original = p.rope().find("original_max_position_embeddings");
    if (original == p.rope().end() || !original->is_number_integer()) {
        fail("{}: original_max_position_embeddings is missing", source);
    }
    out.set_uint32("phi3.rope.scaling.original_context_length", original->get<int64_t>(), source);
    out.set_uint32("phi3.embedding_length", p.require_integer("hidden_size"), source);
    out.set_uint32("phi3.feed_forward_length", p.require_integer("intermediate_size"), source);
    out.set_uint32("phi3.block_count", p.require_integer("num_hidden_layers"), source);
    out.set_uint32("phi3.attention.head_count", p.require_integer("num_attention_heads"), source);
    out.set_uint32("phi3.attention.head_count_kv", p.require_integer("num_key_value_heads"),
                   source);
    out.set_float32("phi3.attention.layer_norm_rms_epsilon", p.require_number("rms_norm_eps"));
    out.set_uint32("phi3.rope.dimension_count", rope_dims(p), source);
    const auto theta = p.rope_full().find("rope_theta");
    if (theta != p.rope_full().end() && theta->is_number())
        out.set_float32("phi3.rope.freq_base", theta->get<double>());
    out.set("general.file_type", GgufValue::make_uint32(import.file_type));
    out.set_uint32("phi3.attention.sliding_window", p.integer({"sliding_window"}).value_or(0),
                   source);
}

std::optional<std::string> map_tensor(Import& import, const std::string& hf_name, ModelTensor&) {
    std::optional<std::string> gguf = map_with_table(hf_name, k_parts);
    if (!gguf)
        fail("{}: cannot map tensor '{}' of a {} model", import.checkpoint.dir(), hf_name,
             import.hf_architecture);
    return gguf;
}

// LongRoPE (Phi-3 128k, Phi-3.5): per-dimension factors for long and short contexts, and the
// attention scale that goes with the context extension.
void generate(Import& import) {
    const Params& p = import.params;
    const nlohmann::json& rope = p.rope();
    const auto long_factor = rope.find("long_factor");
    if (long_factor == rope.end() || !long_factor->is_array()) return;
    const auto short_factor = rope.find("short_factor");
    if (short_factor == rope.end() || !short_factor->is_array()) {
        fail("{}: rope scaling has long_factor but no short_factor", p.path());
    }
    const double context =
        static_cast<double>(p.integer({"n_positions", "max_position_embeddings"}).value_or(0));
    const double original =
        static_cast<double>(rope.value("original_max_position_embeddings", int64_t{0}));
    const double scale = original > 0 ? context / original : 1.0;
    double attn_factor = 1.0;
    const std::string type = rope.value("rope_type", rope.value("type", std::string("longrope")));
    if (type == "yarn") {
        attn_factor = 0.1 * std::log(scale) + 1.0;
    } else if (type == "su" || type == "longrope") {
        if (scale > 1.0) attn_factor = std::sqrt(1.0 + std::log(scale) / std::log(original));
    } else {
        fail("{}: rope scaling type '{}' is not supported for Phi-3", p.path(), type);
    }
    import.leading.emplace_back("phi3.rope.scaling.attn_factor",
                                GgufValue::make_float32(static_cast<float>(attn_factor)));
    const int64_t half = rope_dims(p) / 2;
    for (const auto& [name, factors] : {std::pair{"rope_factors_long.weight", &*long_factor},
                                        std::pair{"rope_factors_short.weight", &*short_factor}}) {
        if (static_cast<int64_t>(factors->size()) != half) {
            fail("{}: {} has {} entries, the rope needs {}", p.path(), name, factors->size(), half);
        }
        std::vector<float> values;
        for (const nlohmann::json& f : *factors) {
            if (!f.is_number()) fail("{}: a rope factor is {}", p.path(), f.dump());
            values.push_back(static_cast<float>(f.get<double>()));
        }
        import.generated.push_back(generated_tensor(name, std::move(values)));
    }
}

}  // namespace

const Family k_phi3{"phi3",
                    {"Phi3ForCausalLM"},
                    {{"vocab_size", 32064},
                     {"hidden_size", 3072},
                     {"intermediate_size", 8192},
                     {"num_hidden_layers", 32},
                     {"num_attention_heads", 32},
                     {"max_position_embeddings", 4096},
                     {"original_max_position_embeddings", 4096},
                     {"rms_norm_eps", 1e-5},
                     {"rope_theta", 10000.0},
                     {"partial_rotary_factor", 1.0}},
                    write_hparams,
                    map_tensor,
                    generate};

}  // namespace edgeq::hf
