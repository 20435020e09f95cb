// Qwen2ForCausalLM -> "qwen2", Qwen3ForCausalLM -> "qwen3" (Qwen 3 adds per-head Q/K norms).
#include "edgeq/core/error.h"
#include "hf-import.h"

namespace edgeq::hf {
namespace {

const std::vector<std::pair<std::string_view, std::string_view>> k_qwen2_parts = {
    {"input_layernorm", "attn_norm"},    {"self_attn.q_proj", "attn_q"},
    {"self_attn.k_proj", "attn_k"},      {"self_attn.v_proj", "attn_v"},
    {"self_attn.o_proj", "attn_output"}, {"post_attention_layernorm", "ffn_norm"},
    {"mlp.gate_proj", "ffn_gate"},       {"mlp.up_proj", "ffn_up"},
    {"mlp.down_proj", "ffn_down"}};

const std::vector<std::pair<std::string_view, std::string_view>> k_qwen3_parts = [] {
    auto parts = k_qwen2_parts;
    parts.emplace_back("self_attn.q_norm", "attn_q_norm");
    parts.emplace_back("self_attn.k_norm", "attn_k_norm");
    return parts;
}();

void complete_config(Params& p) {
    p.set_default("num_key_value_heads", p.require_integer("num_attention_heads"));
}

void write_qwen2(Import& import) {
    complete_config(import.params);
    write_common_hparams(import, "qwen2");
}

void write_qwen3(Import& import) {
    complete_config(import.params);
    write_common_hparams(import, "qwen3");
}

std::optional<std::string> map(
    Import& import, const std::string& hf_name,
    const std::vector<std::pair<std::string_view, std::string_view>>& parts) {
    std::optional<std::string> gguf = map_with_table(hf_name, parts);
    if (!gguf)
        fail("{}: cannot map tensor '{}' of a {} model", import.checkpoint.dir(), hf_name,
             import.hf_architecture);
    return gguf;
}

std::optional<std::string> map_qwen2(Import& import, const std::string& hf_name, ModelTensor&) {
    return map(import, hf_name, k_qwen2_parts);
}

std::optional<std::string> map_qwen3(Import& import, const std::string& hf_name, ModelTensor&) {
    return map(import, hf_name, k_qwen3_parts);
}

}  // namespace

const Family k_qwen2{"qwen2",
                     {"Qwen2ForCausalLM"},
                     {{"vocab_size", 151936},
                      {"hidden_size", 4096},
                      {"intermediate_size", 22016},
                      {"num_hidden_layers", 32},
                      {"num_attention_heads", 32},
                      {"max_position_embeddings", 32768},
                      {"rms_norm_eps", 1e-6},
                      {"rope_theta", 10000.0}},
                     write_qwen2,
                     map_qwen2,
                     nullptr};

const Family k_qwen3{"qwen3",
                     {"Qwen3ForCausalLM"},
                     {{"vocab_size", 151936},
                      {"hidden_size", 4096},
                      {"intermediate_size", 22016},
                      {"num_hidden_layers", 32},
                      {"num_attention_heads", 32},
                      {"head_dim", 128},
                      {"max_position_embeddings", 32768},
                      {"rms_norm_eps", 1e-6},
                      {"rope_theta", 10000.0}},
                     write_qwen3,
                     map_qwen3,
                     nullptr};

}  // namespace edgeq::hf
