// What the decoder needs to know about a model, read from a GGUF file's metadata and tensor
// table. Every supported architecture is one ModelSpec: the forward pass is the same code, its
// differences are these fields.
//
//   GgufFile file = GgufFile::open("qwen3.gguf");
//   ModelSpec spec = model_spec_from_gguf(file);
//   spec.qk_norm == true, spec.rope.style == RopeStyle::neox
//
// Norms are RMS norms throughout: Gemma's (1 + w) is already folded into the weights by the
// GGUF converters.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "edgeq/formats/gguf.h"

namespace edgeq {

enum class Activation {
    silu,       // Llama, Qwen, Phi-3: silu(gate) * up
    gelu_tanh,  // Gemma: gelu with the tanh approximation, gelu(gate) * up
};

enum class RopeStyle {
    normal,  // rotates adjacent pairs (x[2i], x[2i+1]): GGUF's Llama, whose Q/K rows are permuted
    neox,    // rotates the halves (x[i], x[i + n_rot/2]): Qwen, Gemma, Phi-3
};

// One rotary embedding: theta_i(pos) = pos * freq_scale * base^(-2i/n_rot) / factors[i].
struct RopeParams {
    float freq_base = 10000.0f;
    float freq_scale = 1.0f;     // 1 / linear scaling factor
    float attn_factor = 1.0f;    // multiplies cos and sin (LongRoPE's magnitude correction)
    std::vector<float> factors;  // n_rot/2 divisors of the frequencies (rope_freqs), or empty
};

struct ModelSpec {
    std::string arch;  // general.architecture
    int32_t n_layer = 0;
    int32_t n_embd = 0;
    int32_t n_head = 0;
    int32_t n_head_kv = 0;
    int32_t head_dim_k = 0;  // per-head width of queries and keys
    int32_t head_dim_v = 0;  // per-head width of values
    int32_t n_rot = 0;       // leading dimensions of each head that RoPE rotates
    int32_t n_ff = 0;
    int32_t n_vocab = 0;
    int32_t n_ctx_train = 0;
    float norm_eps = 1e-5f;

    Activation activation = Activation::silu;
    RopeStyle rope_style = RopeStyle::normal;
    RopeParams rope_global;  // full-attention layers
    RopeParams rope_local;   // sliding-window layers
    // LongRoPE (Phi-3 128k): factors for contexts beyond rope_original_ctx; a Session whose
    // n_ctx exceeds it uses these in place of the factors of both ropes.
    std::vector<float> rope_long_factors;
    int32_t rope_original_ctx = 0;

    // Sliding-window attention: a query at position p sees keys at p - sliding_window + 1 .. p
    // in layers marked local. 0: every layer attends to everything.
    int32_t sliding_window = 0;
    std::vector<uint8_t> layer_local;  // n_layer flags

    bool qkv_bias = false;         // attn_q/k/v.bias (Qwen2)
    bool qk_norm = false;          // attn_q_norm/attn_k_norm, an RMS norm per head (Qwen3, Gemma3)
    bool post_norms = false;       // post_attention_norm, post_ffw_norm (Gemma 2/3)
    bool fused_qkv = false;        // attn_qkv (Phi-3)
    bool fused_gate_up = false;    // ffn_up holds gate then up (Phi-3)
    bool tied_output = false;      // no output.weight: logits from token_embd
    float embedding_scale = 1.0f;  // sqrt(n_embd) for Gemma
    float attn_scale = 1.0f;       // multiplies q.k (1/sqrt(head_dim_k) unless the family differs)
    float attn_softcap = 0.0f;     // scores = cap * tanh(scores / cap); 0: off (Gemma 2)
    float final_softcap = 0.0f;    // the same on the logits (Gemma 2)

    bool is_local(int32_t layer) const {
        return sliding_window > 0 && layer_local[static_cast<size_t>(layer)] != 0;
    }
};

// The spec of `file`; throws an Error naming the key or tensor that is missing or malformed,
// or the architecture if edgeq does not run it (listing those it does).
ModelSpec model_spec_from_gguf(const GgufFile& file);

}  // namespace edgeq
