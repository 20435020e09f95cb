// Attention of a few query heads over the keys and values of a KV cache, with a fused, tiled
// ("online") softmax: scores are made a tile of positions at a time and never held for the
// whole context, and each tile's keys and values are converted once for every query head that
// shares them (grouped-query attention).
//
//   KvRows k{GgmlType::F16, cache_k, pos_stride, head_stride, head_dim};
//   AttentionScratch scratch(n_group, head_dim_k, head_dim_v);
//   attend(q, n_group, k, v, kv_head, begin, end, scale, softcap, out, scratch);
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "edgeq/core/tensor.h"

namespace edgeq::cpu {

// Rows of a cache: position j, head h is head_dim values of `type` (F32, F16 or Q8_0) at
// data + j * pos_stride + h * head_stride (bytes).
struct KvRows {
    GgmlType type;
    const uint8_t* data;
    size_t pos_stride;
    size_t head_stride;
    int32_t head_dim;
};

// Positions per tile of the online softmax.
constexpr int32_t k_attention_tile = 32;

// Buffers for attend(), made once per thread.
struct AttentionScratch {
    AttentionScratch(int32_t max_group, int32_t head_dim_k, int32_t head_dim_v);
    std::vector<float> k_tile;  // k_attention_tile rows of head_dim_k
    std::vector<float> v_tile;  // k_attention_tile rows of head_dim_v
    std::vector<float> scores;  // max_group x k_attention_tile
    std::vector<float> acc;     // max_group x head_dim_v
    std::vector<float> max;     // max_group running maxima
    std::vector<float> sum;     // max_group running denominators
};

// For each of n_group query heads (q: n_group rows of k.head_dim floats), out (n_group rows of
// v.head_dim floats) = sum over positions j in [begin, end) of softmax_j(s_j) * v_j, where
// s_j = scale * dot(q, k_j), soft-capped (cap * tanh(s / cap)) when softcap > 0. end > begin.
void attend(const float* q, int32_t n_group, const KvRows& k, const KvRows& v, int32_t kv_head,
            int32_t begin, int32_t end, float scale, float softcap, float* out,
            AttentionScratch& scratch);

}  // namespace edgeq::cpu
