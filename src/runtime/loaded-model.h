// The LoadedModel behind LoadedModel::load: a mapped GGUF file, its spec, and its weights
// bound by role (matrices stay in the mapping, or are packed for the kernels at load; norm
// weights and biases are copied as floats).
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <vector>

#include "edgeq/model/model-spec.h"
#include "edgeq/runtime/cpu/matmul.h"
#include "edgeq/runtime/engine.h"

namespace edgeq::runtime {

// A weight matrix as the file holds it: n_out rows of n_in values of `type`, and its packed
// copy for the kernels when the active ISA has a packed layout for the type (then the rows'
// pages are given back after packing; the matmul reads the packed copy).
struct Matrix {
    GgmlType type = GgmlType::F32;
    const void* data = nullptr;
    int64_t n_in = 0;
    int64_t n_out = 0;
    std::string_view name;  // the GGUF tensor's name (held by the model's GgufFile)
    std::shared_ptr<const cpu::PackedWeights> packed;
};

struct LayerWeights {
    std::vector<float> attn_norm, ffn_norm;
    std::vector<float> post_attn_norm, post_ffw_norm;  // post_norms
    std::vector<float> q_bias, k_bias, v_bias;         // qkv_bias
    std::vector<float> q_norm, k_norm;                 // qk_norm: head_dim_k each
    Matrix wq, wk, wv;                                 // separate projections
    Matrix wqkv;                                       // fused_qkv: q rows, then k, then v
    Matrix wo;
    Matrix gate, up;  // fused_gate_up: `up` holds gate rows then up rows, `gate` is empty
    Matrix down;
};

struct ModelWeights {
    Matrix token_embd;  // n_vocab rows of n_embd
    std::vector<float> output_norm;
    Matrix output;  // token_embd when tied
    // The output is tied to the token embedding and packed, so the file's rows are only read
    // by the lookup, which gives their pages back after each batch (see Decoder).
    bool embd_rows_released = false;
    std::vector<LayerWeights> layers;
};

class GgufModel final : public LoadedModel {
  public:
    explicit GgufModel(GgufFile file);

    const ModelSpec& spec() const override { return spec_; }
    const Tokenizer& tokenizer() const override;
    const GgufFile& file() const override { return file_; }
    int32_t n_vocab() const override { return spec_.n_vocab; }
    int32_t n_ctx_train() const override { return spec_.n_ctx_train; }

    const ModelWeights& weights() const { return weights_; }

  private:
    GgufFile file_;
    ModelSpec spec_;
    ModelWeights weights_;
    // Built on first use, so that running a model does not need its tokenizer.
    mutable std::once_flag tokenizer_once_;
    mutable std::optional<Tokenizer> tokenizer_;
};

}  // namespace edgeq::runtime
