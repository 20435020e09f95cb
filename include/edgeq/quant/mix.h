// Quantization mixes (Q4_K_M, Q3_K_S, ...): which type each tensor of a model gets.
//
// The rules follow llama.cpp's quantizer, so that a mix names the same file layout in both
// tools: the output projection and token embedding get more bits, attn_v and ffn_down get
// more bits in some layers, and a tensor whose rows do not divide the block falls back to a
// compatible type. Overrides (--tensor-type, --output-tensor-type, ...) apply on top.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "edgeq/quant/dtype.h"

namespace edgeq {

// llama.cpp's llama_ftype values, stored as general.file_type.
enum class FileType : uint32_t {
    all_f32 = 0,
    mostly_f16 = 1,
    mostly_q4_0 = 2,
    mostly_q4_1 = 3,
    mostly_q8_0 = 7,
    mostly_q5_0 = 8,
    mostly_q5_1 = 9,
    mostly_q2_k = 10,
    mostly_q3_k_s = 11,
    mostly_q3_k_m = 12,
    mostly_q3_k_l = 13,
    mostly_q4_k_s = 14,
    mostly_q4_k_m = 15,
    mostly_q5_k_s = 16,
    mostly_q5_k_m = 17,
    mostly_q6_k = 18,
    mostly_q2_k_s = 21,
    mostly_iq4_nl = 25,
    mostly_iq4_xs = 30,
    mostly_bf16 = 32,
    mostly_tq1_0 = 36,
    mostly_tq2_0 = 37,
};

struct QuantMix {
    std::string_view name;  // as llama-quantize accepts it: "Q4_K_M"
    FileType file_type;
    GgmlType default_type;
    std::string_view description;
};

// The mix named `name` (case-insensitive; Q4_K, Q3_K, Q5_K are aliases of the _M mixes), or null.
const QuantMix* find_mix(std::string_view name);
const std::vector<QuantMix>& all_mixes();
// The name of a general.file_type value ("Q4_K_M"), or "unknown (N)".
std::string file_type_name(uint32_t file_type);

// What the mix rules need to know of the model (from its GGUF metadata).
struct ModelFacts {
    std::string architecture;  // general.architecture
    int64_t n_layer = 0;       // <arch>.block_count
    int64_t n_head = 0;        // <arch>.attention.head_count (the first layer's)
    int64_t n_head_kv = 0;     // <arch>.attention.head_count_kv, or n_head
    int64_t n_expert = 0;      // <arch>.expert_count
};

struct MixOptions {
    std::optional<GgmlType> output_tensor_type;
    std::optional<GgmlType> token_embedding_type;
    // (regex, type): the first regex found in a tensor's name sets its type.
    std::vector<std::pair<std::string, GgmlType>> tensor_types;
    bool pure = false;                 // no per-tensor rules, the mix's type everywhere
    bool leave_output_tensor = false;  // output.weight keeps its type
    bool has_imatrix = false;
};

struct TensorIn {
    std::string name;
    GgmlType type;
    std::vector<int64_t> shape;
};

struct TensorChoice {
    GgmlType type;       // the type to write
    bool quantizable;    // the rules may change this tensor at all (2-D+ weights, not norms...)
    bool fell_back;      // rows did not divide the chosen type's block: a compatible type is used
    bool needs_imatrix;  // the chosen type is unusable without an importance matrix
};

// The type of every tensor, in the order given.
std::vector<TensorChoice> choose_types(const QuantMix& mix, const ModelFacts& model,
                                       const std::vector<TensorIn>& tensors,
                                       const MixOptions& options);

}  // namespace edgeq
