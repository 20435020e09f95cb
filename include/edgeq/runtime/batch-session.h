// Several independent sequences decoded together: the server's continuous batching.
//
//   BatchSession batch(*model, {.n_ctx = 4096, .n_threads = 4}, /*n_seq=*/4);
//   std::vector<BatchItem> step = {{.seq = 0, .token = 12}, {.seq = 2, .token = 7}};
//   batch.decode(step);                       // one forward pass for both sequences
//   const float* l0 = batch.logits(0);        // logits of step[0]
//   batch.reset(2);                           // sequence 2 is free again
//
// Each sequence has its own KV cache of options.n_ctx positions; the weight products of a
// step run once over all of its tokens (one matmul row per token), attention runs per
// sequence over that sequence's cache only. A sequence's result does not depend on which
// other sequences share its steps (up to floating-point rounding of the batched products).
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "edgeq/runtime/engine.h"

namespace edgeq {

struct BatchItem {
    int32_t seq = 0;           // 0 <= seq < n_seq
    int32_t token = 0;         // token id
    bool want_logits = false;  // keep this item's logits for logits()
};

class BatchSession {
  public:
    // n_seq (>= 1) sequences, each with a KV cache of options.n_ctx positions (at most the
    // model's training context). options.n_batch bounds the items of one forward pass; a
    // decode() of more runs in several. Caches and activation buffers are all made here, none
    // in decode(). One thread at a time may use a BatchSession.
    BatchSession(const LoadedModel& model, const SessionOptions& options, int32_t n_seq);
    ~BatchSession();
    BatchSession(const BatchSession&) = delete;
    BatchSession& operator=(const BatchSession&) = delete;

    // Runs one step. A sequence's items, in the order given, take its next positions (a
    // prompt is several items of one sequence). At most n_seq items may want logits
    // (max(n_batch, n_seq) with options.all_logits). Throws an Error if there are no items, a
    // sequence id or token is out of range, a sequence's cache would overflow or too many
    // items want logits; nothing changes then.
    void decode(std::span<const BatchItem> items);
    // Logits (n_vocab floats) of item i of the last decode(), which must have want_logits;
    // valid until the next decode().
    const float* logits(int32_t i) const;

    int32_t n_seq() const;
    int32_t n_ctx() const;                       // positions per sequence
    int32_t n_past(int32_t seq) const;           // tokens in the sequence's cache
    void reset(int32_t seq);                     // empties the sequence's cache
    void truncate(int32_t seq, int32_t n_past);  // keeps its first n_past (<= n_past(seq))

    struct Impl;

  private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace edgeq
