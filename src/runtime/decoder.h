// The forward pass behind Session and BatchSession: n_seq sequences, each with its own KV cache
// of n_ctx positions, and a step that runs tokens of any of them together. The weight products
// of a step are matmuls with one row per token whatever its sequence; attention runs per "run"
// (a stretch of the step's tokens that belong to one sequence) over that sequence's cache only.
// Every buffer is sized at construction, for n_batch tokens; forward() allocates nothing.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <utility>
#include <vector>

#include "edgeq/core/thread-pool.h"
#include "edgeq/model/model-spec.h"
#include "edgeq/runtime/cpu/attention.h"
#include "edgeq/runtime/cpu/matmul.h"
#include "edgeq/runtime/engine.h"
#include "loaded-model.h"

namespace edgeq::runtime {

struct Decoder {
    // n_ctx positions per sequence (options.n_ctx, at most the training context); n_batch is
    // options.n_batch clamped to 1..n_seq * n_ctx; n_out_max bounds forward()'s n_out.
    Decoder(const LoadedModel& model, const SessionOptions& options, int32_t n_seq,
            int32_t n_out_max);

    // Runs n (1..n_batch) tokens: token i is ids[i] (a valid id) of sequence seqs[i], at that
    // sequence's next position (the caller has checked that each sequence has room). Writes
    // the logits of the tokens out_rows[0..n_out) (n_out <= n_out_max) to logits_out,
    // n_out x n_vocab floats, and adds every token's final hidden state to hidden_sum.
    void forward(const int32_t* ids, const int32_t* seqs, int32_t n, const int32_t* out_rows,
                 int32_t n_out, float* logits_out);

    const GgufModel& model;
    const ModelSpec& spec;
    const ModelWeights& w;
    SessionOptions options;
    int32_t n_seq = 1;
    int32_t n_ctx = 0;
    int32_t n_batch = 0;
    int32_t n_out_max = 0;
    std::vector<int32_t> n_past;  // per sequence
    std::vector<int32_t> rows;    // 0, 1, ..., n_batch - 1: out_rows for consecutive tokens
    std::vector<double> hidden_sum;

  private:
    void layer(int32_t il, int32_t n);
    void attention(int32_t il);
    void project(const Matrix& w, const float* x, int32_t n, float* y);
    void project_shared(std::initializer_list<std::pair<const Matrix*, float*>> outs,
                        const float* in, int32_t n);
    void release_embedding_row(int32_t id, size_t embd_row) const;
    cpu::KvRows k_rows(int32_t il, int32_t seq) const;
    cpu::KvRows v_rows(int32_t il, int32_t seq) const;

    ThreadPool pool;
    cpu::MatmulScratch matmul_scratch;

    // KV cache: per layer, n_seq x n_ctx positions of n_head_kv rows of head_dim values.
    GgmlType kv_type = GgmlType::F16;
    size_t k_row_bytes = 0, v_row_bytes = 0;
    size_t k_seq_bytes = 0, v_seq_bytes = 0;
    std::vector<std::vector<uint8_t>> k_cache, v_cache;

    // The current step's tokens: sequence and position of each, and its runs. A run of one
    // token (a sequence's decode step) splits its positions into parts of k_attention_split
    // for the threads to share; up to n_seq runs per step do (slot = their index among them).
    struct Run {
        int32_t seq, i0, n_tok, pos0;
        int32_t slot;     // -1: attention in blocks of query tokens
        int32_t c0;       // split: first part
        int32_t n_parts;  // split: parts; blocks: blocks of attention_block_tokens
    };
    std::vector<int32_t> tok_seq, tok_pos;
    std::vector<Run> runs;
    int32_t n_runs = 0;
    std::vector<int64_t> run_units;  // first attention work unit of each run, then the total

    // Activations for n_batch tokens.
    int64_t n_q = 0, n_k = 0, n_v = 0, n_attn = 0;
    std::vector<float> x, h, q, k, v, qkv, attn, proj, gate, up;
    std::vector<float> h_out;  // rows gathered for the output projection, n_out_max of them
    // The spec's ropes, with LongRoPE's long factors when n_ctx needs them.
    RopeParams rope_global, rope_local;
    std::vector<float> cos_global, sin_global, cos_local, sin_local;  // n_batch x n_rot/2
    std::vector<cpu::AttentionScratch> attention_scratch;             // one per thread
    static constexpr int32_t k_attention_split = 256;
    int32_t attention_block_tokens = 1;  // query tokens per attention block of a prompt
    size_t max_parts = 0;
    std::vector<cpu::AttentionPart> attention_parts;  // n_seq x n_head_kv x max_parts
};

}  // namespace edgeq::runtime
