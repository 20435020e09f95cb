// Attention of blocks of query rows over the keys and values of a KV cache, with a fused, tiled
// ("online") softmax: scores are made a tile of k_attention_tile positions at a time and never
// held for the whole context. A tile's keys and values are converted to floats once for every
// query row of the block: the n_group heads that share a KV head (grouped-query attention),
// times the block's tokens. Tiles sit at multiples of k_attention_tile, so a row's result does
// not depend on the block it was computed in; masking is applied only on tiles that a row's
// range cuts, and tiles outside every row's range are skipped.
//
//   KvRows k{GgmlType::F16, cache_k, pos_stride, head_stride, head_dim};
//   AttentionScratch scratch(n_tok * n_group, head_dim_k, head_dim_v);
//   QueryBlock b{q, q_tok_stride, n_tok, n_group, pos0, window};
//   attend(b, k, v, kv_head, scale, softcap, out, out_tok_stride, scratch);
//
// The AVX2 and AVX-512 variants (attention-x86.h) use a polynomial exp and float sums in vector
// lanes; Isa::scalar runs the reference (libm exp, sums in position order).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "edgeq/core/cpu.h"
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

// Query tokens of one KV head: token t (0 <= t < n_tok) has n_group rows of head_dim_k floats
// at q + t * q_stride, sits at position pos0 + t and attends to the positions from
// max(0, pos0 + t - window + 1) (0 when window is 0) to pos0 + t.
struct QueryBlock {
    const float* q;
    size_t q_stride;
    int32_t n_tok;
    int32_t n_group;
    int32_t pos0;
    int32_t window;
};

// Buffers for attend(), made once per thread, for blocks of up to max_rows = n_tok * n_group.
struct AttentionScratch {
    AttentionScratch(int32_t max_rows, int32_t head_dim_k, int32_t head_dim_v);
    int32_t max_rows, dk, dv, dv_pad;  // dv_pad: dv rounded up to 32
    std::vector<float> k_tile;         // head_dim_k x k_attention_tile (transposed)
    std::vector<float> v_tile;         // k_attention_tile x dv_pad
    std::vector<float> row;            // one converted cache row
    std::vector<float> scores;         // max_rows x k_attention_tile
    std::vector<float> acc;            // max_rows x dv_pad
    std::vector<float> max;            // max_rows running maxima
    std::vector<float> sum;            // max_rows running denominators
    std::vector<float> corr;           // max_rows rescaling factors of the current tile
    std::vector<int32_t> lo, hi;       // max_rows: each row's positions in the current tile
    std::vector<const float*> q_rows;  // max_rows
};

// Out: token t's n_group rows of v.head_dim floats at out + t * out_stride, row g =
// sum over its positions j of softmax_j(s_j) * v_j, s_j = scale * dot(q_g, k_j), soft-capped
// (cap * tanh(s / cap)) when softcap > 0.
void attend(const QueryBlock& b, const KvRows& k, const KvRows& v, int32_t kv_head, float scale,
            float softcap, float* out, size_t out_stride, AttentionScratch& scratch,
            Isa isa = active_isa());

// The unnormalised online-softmax state of rows over part of their positions: max[r], sum[r]
// and acc (dv floats per row, dv apart). A row with none of the part's positions has
// max = -inf, sum = 0, acc = 0.
struct AttentionPart {
    AttentionPart(int32_t max_rows, int32_t head_dim_v);
    std::vector<float> max, sum, acc;
};

// attend() limited to the positions [kv_begin, kv_end) (each row's own range cut to it),
// leaving the state in part. Splitting one row's positions over parts lets threads share a
// single query; attention_merge() joins them.
void attend_part(const QueryBlock& b, const KvRows& k, const KvRows& v, int32_t kv_head,
                 float scale, float softcap, int32_t kv_begin, int32_t kv_end, AttentionPart& part,
                 AttentionScratch& scratch, Isa isa = active_isa());

// Joins n_parts parts (in order, so the result does not depend on who computed them) of
// b.n_tok * b.n_group rows and writes the output as attend() does.
void attention_merge(const AttentionPart* parts, int32_t n_parts, int32_t n_tok, int32_t n_group,
                     int32_t head_dim_v, float* out, size_t out_stride);

// One token's n_group rows over the positions [begin, end) (end > begin), out n_group rows of
// v.head_dim floats.
void attend(const float* q, int32_t n_group, const KvRows& k, const KvRows& v, int32_t kv_head,
            int32_t begin, int32_t end, float scale, float softcap, float* out,
            AttentionScratch& scratch, Isa isa = active_isa());

}  // namespace edgeq::cpu
