// The spec of each supported family, from GGUF metadata (keys as llama.cpp's converter writes
// them) and from which tensors the file holds.
#include "edgeq/model/model-spec.h"

#include <cmath>
#include <string_view>

#include "edgeq/core/error.h"
#include "edgeq/quant/dtype.h"

namespace edgeq {
namespace {

constexpr std::string_view k_supported = "llama, qwen2, qwen3, gemma2, gemma3, phi3";

class Keys {
  public:
    Keys(const GgufFile& file, std::string arch) : file_(file), arch_(std::move(arch)) {}

    const GgufValue* find(std::string_view suffix) const {
        return file_.find(arch_ + "." + std::string(suffix));
    }
    int32_t get_int(std::string_view suffix) const {
        const std::string key = arch_ + "." + std::string(suffix);
        const GgufValue& v = file_.get(key);
        const int64_t n = v.to_int();
        if (n <= 0 || n > (int64_t{1} << 30))
            fail("{}: {} is {}, expected a positive count", file_.path(), key, n);
        return static_cast<int32_t>(n);
    }
    int32_t get_int(std::string_view suffix, int32_t fallback) const {
        return find(suffix) != nullptr ? get_int(suffix) : fallback;
    }
    float get_float(std::string_view suffix, float fallback) const {
        const GgufValue* v = find(suffix);
        if (v == nullptr) return fallback;
        const double x = v->to_double();
        if (!std::isfinite(x)) fail("{}: {}.{} is not finite", file_.path(), arch_, suffix);
        return static_cast<float>(x);
    }

  private:
    const GgufFile& file_;
    std::string arch_;
};

// A small F32 (or F16...) vector tensor as floats; empty if absent.
std::vector<float> read_vector(const GgufFile& file, std::string_view name, int64_t n) {
    const GgufTensorInfo* t = file.find_tensor(name);
    if (t == nullptr) return {};
    if (t->n_elements() != n || t->shape.size() != 1)
        fail("{}: tensor {} has {} values, expected {}", file.path(), name, t->n_elements(), n);
    const DType& d = dtype(t->type);
    if (d.to_float == nullptr || n % d.block_size != 0)
        fail("{}: tensor {} has type {}, which edgeq cannot read", file.path(), name, d.name);
    std::vector<float> v(static_cast<size_t>(n));
    d.to_float(file.tensor_data(*t), v.data(), n);
    return v;
}

}  // namespace

ModelSpec model_spec_from_gguf(const GgufFile& file) {
    ModelSpec s;
    const std::optional<std::string> arch = file.get_string("general.architecture");
    if (!arch) fail("{}: no general.architecture string", file.path());
    s.arch = *arch;
    const bool llama = s.arch == "llama", qwen2 = s.arch == "qwen2", qwen3 = s.arch == "qwen3",
               gemma2 = s.arch == "gemma2", gemma3 = s.arch == "gemma3", phi3 = s.arch == "phi3";
    if (!(llama || qwen2 || qwen3 || gemma2 || gemma3 || phi3))
        fail("{}: architecture '{}' is not supported (edgeq runs {})", file.path(), s.arch,
             k_supported);
    const Keys keys(file, s.arch);

    s.n_layer = keys.get_int("block_count");
    s.n_embd = keys.get_int("embedding_length");
    s.n_head = keys.get_int("attention.head_count");
    s.n_head_kv = keys.get_int("attention.head_count_kv", s.n_head);
    s.n_ff = keys.get_int("feed_forward_length");
    s.n_ctx_train = keys.get_int("context_length");
    if (s.n_embd % s.n_head != 0 && keys.find("attention.key_length") == nullptr)
        fail("{}: embedding_length {} is not a multiple of head_count {}", file.path(), s.n_embd,
             s.n_head);
    s.head_dim_k = keys.get_int("attention.key_length", s.n_embd / s.n_head);
    s.head_dim_v = keys.get_int("attention.value_length", s.head_dim_k);
    s.n_rot = keys.get_int("rope.dimension_count", s.head_dim_k);
    if (s.n_head % s.n_head_kv != 0)
        fail("{}: head_count {} is not a multiple of head_count_kv {}", file.path(), s.n_head,
             s.n_head_kv);
    if (s.n_rot % 2 != 0 || s.n_rot > s.head_dim_k)
        fail("{}: rope.dimension_count {} must be even and at most key_length {}", file.path(),
             s.n_rot, s.head_dim_k);
    s.norm_eps = keys.get_float("attention.layer_norm_rms_epsilon", 1e-5f);

    const GgufTensorInfo* embd = file.find_tensor("token_embd.weight");
    if (embd == nullptr || embd->shape.size() != 2 || embd->shape[0] != s.n_embd)
        fail("{}: token_embd.weight missing or not {} x n_vocab", file.path(), s.n_embd);
    s.n_vocab = static_cast<int32_t>(embd->shape[1]);

    s.activation = gemma2 || gemma3 ? Activation::gelu_tanh : Activation::silu;
    s.rope_style = llama ? RopeStyle::normal : RopeStyle::neox;
    s.qkv_bias = file.find_tensor("blk.0.attn_q.bias") != nullptr;
    s.qk_norm = file.find_tensor("blk.0.attn_q_norm.weight") != nullptr;
    s.post_norms = file.find_tensor("blk.0.post_attention_norm.weight") != nullptr;
    s.fused_qkv = file.find_tensor("blk.0.attn_qkv.weight") != nullptr;
    s.fused_gate_up = file.find_tensor("blk.0.ffn_gate.weight") == nullptr;
    s.tied_output = file.find_tensor("output.weight") == nullptr;
    if (gemma2 || gemma3) s.embedding_scale = std::sqrt(static_cast<float>(s.n_embd));

    // Gemma's 27B models scale queries by 1/sqrt(n_embd / n_head) rather than by the head
    // width (query_pre_attn_scalar, which GGUF does not carry); they are told apart by depth.
    const bool gemma_27b = (gemma2 && s.n_layer == 46) || (gemma3 && s.n_layer == 62);
    s.attn_scale =
        1.0f / std::sqrt(static_cast<float>(gemma_27b ? s.n_embd / s.n_head : s.head_dim_k));
    if (gemma2) {
        s.attn_softcap = keys.get_float("attn_logit_softcapping", 0.0f);
        s.final_softcap = keys.get_float("final_logit_softcapping", 0.0f);
    }

    // RoPE: the global rope with its linear scaling and frequency factors; local layers have
    // their own base and no scaling.
    s.rope_global.freq_base = keys.get_float("rope.freq_base", 10000.0f);
    if (const GgufValue* type = keys.find("rope.scaling.type")) {
        const std::string& t = type->to_string();
        if (t == "linear") {
            const float factor = keys.get_float("rope.scaling.factor", 1.0f);
            if (factor <= 0)
                fail("{}: rope.scaling.factor {} must be positive", file.path(), factor);
            s.rope_global.freq_scale = 1.0f / factor;
        } else if (t != "none" && !(phi3 && (t == "longrope" || t == "su"))) {
            fail("{}: rope scaling '{}' is not supported (edgeq runs none and linear)", file.path(),
                 t);
        }
    } else if (const GgufValue* scale = keys.find("rope.scale_linear")) {
        s.rope_global.freq_scale = 1.0f / static_cast<float>(scale->to_double());
    }
    s.rope_global.factors = read_vector(file, "rope_freqs.weight", s.n_rot / 2);
    if (phi3) {
        std::vector<float> short_factors =
            read_vector(file, "rope_factors_short.weight", s.n_rot / 2);
        if (!short_factors.empty()) s.rope_global.factors = std::move(short_factors);
        s.rope_long_factors = read_vector(file, "rope_factors_long.weight", s.n_rot / 2);
        s.rope_original_ctx = keys.get_int("rope.scaling.original_context_length", s.n_ctx_train);
        if (!s.rope_long_factors.empty() && s.n_ctx_train > s.rope_original_ctx) {
            // LongRoPE keeps attention entropy steady as the context grows past its training.
            const double ratio = static_cast<double>(s.n_ctx_train) / s.rope_original_ctx;
            s.rope_global.attn_factor = static_cast<float>(std::sqrt(
                1.0 + std::log(ratio) / std::log(static_cast<double>(s.rope_original_ctx))));
            s.rope_global.attn_factor =
                keys.get_float("rope.scaling.attn_factor", s.rope_global.attn_factor);
        }
    }
    s.rope_local.freq_base =
        keys.get_float("rope.freq_base_swa", gemma3 ? 10000.0f : s.rope_global.freq_base);
    if (!gemma3) s.rope_local = s.rope_global;

    // Sliding windows: Gemma 2 alternates (even layers local), Gemma 3 has five local layers to
    // one global (unless the file says otherwise), Phi-3 slides in every layer.
    s.layer_local.assign(static_cast<size_t>(s.n_layer), 0);
    if (gemma2 || gemma3 || phi3) {
        s.sliding_window = keys.get_int("attention.sliding_window", 0);
        const GgufValue* pattern_value = keys.find("attention.sliding_window_pattern");
        if (pattern_value != nullptr && pattern_value->type() == GgufType::array) {
            // One flag per layer, true where the layer slides.
            if (pattern_value->array_size() != static_cast<uint64_t>(s.n_layer))
                fail("{}: {}.attention.sliding_window_pattern has {} flags for {} layers",
                     file.path(), s.arch, pattern_value->array_size(), s.n_layer);
            for (int32_t il = 0; il < s.n_layer; ++il)
                s.layer_local[static_cast<size_t>(il)] =
                    pattern_value->element_at(static_cast<uint64_t>(il)).to_bool() ? 1 : 0;
        } else {
            const int32_t pattern = keys.get_int("attention.sliding_window_pattern", gemma2   ? 2
                                                                                     : gemma3 ? 6
                                                                                              : 1);
            for (int32_t il = 0; il < s.n_layer; ++il) {
                const bool local = phi3     ? true
                                   : gemma2 ? il % pattern == 0
                                            : (il + 1) % pattern != 0;
                s.layer_local[static_cast<size_t>(il)] = local ? 1 : 0;
            }
        }
    }
    return s;
}

}  // namespace edgeq
