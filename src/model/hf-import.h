// Shared parts of importing Hugging Face checkpoints (hf-import.cpp) and the per-family
// definitions (arch-*.cpp): each family says which architectures it covers, the transformers
// defaults of its config, the hyperparameter keys it writes, and how its tensors map to GGUF's.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "edgeq/formats/hf-checkpoint.h"
#include "edgeq/model/model.h"
#include "hf-params.h"

namespace edgeq::hf {

struct Import {
    const HfCheckpoint& checkpoint;
    Params params;
    std::string hf_architecture;
    uint32_t file_type;
    int64_t n_tokens = 0;     // entries of tokenizer.ggml.tokens
    GgufMetadata leading;     // keys the converter writes right after general.architecture
    MetadataBuilder hparams;  // the family's block, general.file_type included
    std::vector<ModelTensor> generated;  // tensors the importer makes; written first

    const std::string& config_path() const { return params.path(); }
};

struct Family {
    std::string_view arch;                           // GGUF architecture
    std::vector<std::string_view> hf_architectures;  // config.json "architectures" values
    Params::Defaults defaults;                       // transformers' config defaults
    void (*write_hparams)(Import& import);           // the family's keys, in the converter's order
    // The GGUF name of a checkpoint tensor (HF name without "language_model."), nullopt to drop it;
    // `tensor` may be adjusted (transforms, a row range). Throws for a name it cannot map.
    std::optional<std::string> (*map_tensor)(Import& import, const std::string& hf_name,
                                             ModelTensor& tensor);
    void (*generate)(Import& import);  // may be null
};

extern const Family k_llama;
extern const Family k_mistral;
extern const Family k_qwen2;
extern const Family k_qwen3;
extern const Family k_gemma2;
extern const Family k_gemma3;
extern const Family k_phi3;

// The keys every family but Gemma 2 and Phi-3 starts with (llama.cpp's TextModel defaults):
// block count, context, embedding, feed-forward, heads, rope, norm epsilon, key/value lengths,
// then general.file_type.
void write_common_hparams(Import& import, const std::string& arch);

// "model.layers.12.self_attn.q_proj.weight" -> {12, "self_attn.q_proj", ".weight"}; nullopt for
// names outside the layers.
struct LayerName {
    int64_t layer;
    std::string part;
    std::string suffix;  // ".weight" or ".bias"
};
std::optional<LayerName> parse_layer_name(const std::string& hf_name);

// Maps a name with a table of (HF part, GGUF part) for layer tensors plus the top-level
// tensors every family shares; nullopt if the table has no entry.
std::optional<std::string> map_with_table(
    const std::string& hf_name,
    const std::vector<std::pair<std::string_view, std::string_view>>& layer_parts);

// The row order that turns Hugging Face's rotate-half Q/K rows into the interleaved pairs of
// llama.cpp's "normal" rope: within each of n_heads heads, row 2i+j takes row j*hd/2+i.
std::vector<int64_t> rope_permutation(int64_t n_rows, int64_t n_heads);

// Llama 3.1+ rope scaling as per-dimension frequency divisors (rope_freqs.weight), bit-exact with
// llama.cpp's converter: theta `base`, head dimension `dim`, and the rope_scaling fields.
std::vector<float> llama3_rope_factors(double base, int64_t dim, double factor, double low,
                                       double high, double old);

// A tensor of floats computed by the importer, written as F32.
ModelTensor generated_tensor(std::string name, std::vector<float> values);

}  // namespace edgeq::hf
