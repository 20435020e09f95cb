// Gemma2ForCausalLM -> "gemma2"; Gemma3ForCausalLM and the text part of
// Gemma3ForConditionalGeneration -> "gemma3". Gemma's RMSNorm scales by (1 + weight): the GGUF
// convention stores the scale itself, so every norm weight gets +1.
#include "edgeq/core/error.h"
#include "hf-import.h"

namespace edgeq::hf {
namespace {

const std::vector<std::pair<std::string_view, std::string_view>> k_gemma2_parts = {
    {"input_layernorm", "attn_norm"},
    {"post_attention_layernorm", "post_attention_norm"},
    {"pre_feedforward_layernorm", "ffn_norm"},
    {"post_feedforward_layernorm", "post_ffw_norm"},
    {"self_attn.q_proj", "attn_q"},
    {"self_attn.k_proj", "attn_k"},
    {"self_attn.v_proj", "attn_v"},
    {"self_attn.o_proj", "attn_output"},
    {"mlp.gate_proj", "ffn_gate"},
    {"mlp.up_proj", "ffn_up"},
    {"mlp.down_proj", "ffn_down"}};

const std::vector<std::pair<std::string_view, std::string_view>> k_gemma3_parts = [] {
    auto parts = k_gemma2_parts;
    parts.emplace_back("self_attn.q_norm", "attn_q_norm");
    parts.emplace_back("self_attn.k_norm", "attn_k_norm");
    return parts;
}();

bool ends_with(const std::string& s, std::string_view suffix) {
    return s.size() >= suffix.size() &&
           s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void write_gemma2(Import& import) {
    Params& p = import.params;
    p.set_default("num_key_value_heads", p.require_integer("num_attention_heads"));
    MetadataBuilder& out = import.hparams;
    const std::string& source = p.path();
    out.set_uint32("gemma2.context_length", p.require_integer("max_position_embeddings"), source);
    out.set_uint32("gemma2.embedding_length", p.require_integer("hidden_size"), source);
    out.set_uint32("gemma2.block_count", p.require_integer("num_hidden_layers"), source);
    out.set_uint32("gemma2.feed_forward_length", p.require_integer("intermediate_size"), source);
    out.set_uint32("gemma2.attention.head_count", p.require_integer("num_attention_heads"), source);
    out.set_uint32("gemma2.attention.head_count_kv", p.require_integer("num_key_value_heads"),
                   source);
    out.set_float32("gemma2.attention.layer_norm_rms_epsilon", p.require_number("rms_norm_eps"));
    out.set_uint32("gemma2.attention.key_length", p.require_integer("head_dim"), source);
    out.set_uint32("gemma2.attention.value_length", p.require_integer("head_dim"), source);
    out.set("general.file_type", GgufValue::make_uint32(import.file_type));
    out.set_float32("gemma2.attn_logit_softcapping", p.require_number("attn_logit_softcapping"));
    out.set_float32("gemma2.final_logit_softcapping", p.require_number("final_logit_softcapping"));
    out.set_uint32("gemma2.attention.sliding_window", p.require_integer("sliding_window"), source);
}

void write_gemma3(Import& import) {
    Params& p = import.params;
    if (p.has("attn_logit_softcapping")) {
        fail("{}: attn_logit_softcapping is set, which Gemma 3 does not use", p.path());
    }
    write_common_hparams(import, "gemma3");
    if (const auto cap = p.number({"final_logit_softcapping"}); cap && *cap != 0) {
        import.hparams.set_float32("gemma3.final_logit_softcapping", *cap);
    }
    if (p.integer({"sliding_window_pattern"}).value_or(0) != 1) {
        import.hparams.set_uint32("gemma3.attention.sliding_window",
                                  p.require_integer("sliding_window"), p.path());
    }
}

std::optional<std::string> map_gemma(
    Import& import, const std::string& hf_name, ModelTensor& tensor,
    const std::vector<std::pair<std::string_view, std::string_view>>& parts) {
    std::optional<std::string> gguf = map_with_table(hf_name, parts);
    if (!gguf)
        fail("{}: cannot map tensor '{}' of a {} model", import.checkpoint.dir(), hf_name,
             import.hf_architecture);
    if (ends_with(hf_name, "norm.weight")) tensor.add = 1.0f;
    return gguf;
}

std::optional<std::string> map_gemma2(Import& import, const std::string& hf_name,
                                      ModelTensor& tensor) {
    if (hf_name == "lm_head.weight") return std::nullopt;  // Gemma 2 always ties the output
    return map_gemma(import, hf_name, tensor, k_gemma2_parts);
}

std::optional<std::string> map_gemma3(Import& import, const std::string& hf_name,
                                      ModelTensor& tensor) {
    std::optional<std::string> gguf = map_gemma(import, hf_name, tensor, k_gemma3_parts);
    // The embedding may have more rows than the vocabulary has tokens: keep the first ones.
    if (*gguf == "token_embd.weight" && import.n_tokens > 0 &&
        tensor.shape.back() > import.n_tokens) {
        tensor.shape.back() = import.n_tokens;
    }
    return gguf;
}

}  // namespace

const Family k_gemma2{"gemma2",
                      {"Gemma2ForCausalLM"},
                      {{"vocab_size", 256000},
                       {"hidden_size", 2304},
                       {"intermediate_size", 9216},
                       {"num_hidden_layers", 26},
                       {"num_attention_heads", 8},
                       {"num_key_value_heads", 4},
                       {"head_dim", 256},
                       {"max_position_embeddings", 8192},
                       {"rms_norm_eps", 1e-6},
                       {"attn_logit_softcapping", 50.0},
                       {"final_logit_softcapping", 30.0},
                       {"sliding_window", 4096}},
                      write_gemma2,
                      map_gemma2,
                      nullptr};

const Family k_gemma3{"gemma3",
                      {"Gemma3ForCausalLM", "Gemma3ForConditionalGeneration"},
                      {{"vocab_size", 262208},
                       {"hidden_size", 2304},
                       {"intermediate_size", 9216},
                       {"num_hidden_layers", 26},
                       {"num_attention_heads", 8},
                       {"num_key_value_heads", 4},
                       {"head_dim", 256},
                       {"max_position_embeddings", 131072},
                       {"rms_norm_eps", 1e-6},
                       {"rope_theta", 1000000.0},
                       {"rope_local_base_freq", 10000.0},
                       {"sliding_window", 4096}},
                      write_gemma3,
                      map_gemma3,
                      nullptr};

}  // namespace edgeq::hf
