// Collecting an importance matrix over a calibration text, with llama-imatrix's definitions so
// that the two tools' files are interchangeable:
//
//   auto model = LoadedModel::load("gemma-3-270m.gguf");
//   std::vector<int32_t> ids = model->tokenizer().encode(text, true, false);
//   ImatrixStatsMap stats = compute_imatrix(*model, ids, {.n_ctx = 512});
//   save_imatrix("imatrix.gguf", stats, {{"sotu.txt"}, imatrix_chunk_count(stats, 512), 512});
//
// The text's tokens are cut into consecutive chunks of n_ctx tokens (a tail shorter than a
// chunk is dropped); each chunk is decoded from an empty KV cache with its first token replaced
// by BOS when the tokenizer adds one. For every weight product of a blk.* weight (and of
// output.weight with process_output) every input row is summed: per column the sum of squared
// activations, and the number of rows.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string_view>

#include "edgeq/formats/imatrix.h"
#include "edgeq/runtime/engine.h"

namespace edgeq {

// Adds up the inputs of the weight products of the Sessions it observes.
class ImatrixCollector final : public ProjectionObserver {
  public:
    // process_output: also collect output.weight (llama-imatrix --process-output).
    explicit ImatrixCollector(bool process_output = false) : process_output_(process_output) {}

    void observe(std::string_view weight, const float* x, int32_t n_rows, int64_t n_in) override;

    const ImatrixStatsMap& stats() const { return stats_; }
    ImatrixStatsMap take() { return std::move(stats_); }

  private:
    bool process_output_;
    ImatrixStatsMap stats_;
};

struct ImatrixOptions {
    int32_t n_ctx = 512;          // tokens per chunk (-c)
    int32_t n_chunks = -1;        // at most this many chunks; < 0: every whole chunk
    int32_t n_threads = 0;        // 0: all hardware threads
    bool process_output = false;  // also collect output.weight
    bool kv_f32 = false;          // F32 KV cache instead of F16 (exact, for checks)
};

// The chunks compute_imatrix will decode for n_tokens tokens. Throws an Error, as llama-imatrix
// refuses, when there are fewer than 2 x n_ctx tokens or n_ctx is not positive.
int32_t imatrix_chunks(size_t n_tokens, const ImatrixOptions& options);

// Decodes the chunks of `tokens` and returns the statistics of every collected weight.
// on_chunk(done, total) is called after each chunk. Throws an Error if n_ctx exceeds the
// model's training context or a sum is not finite.
ImatrixStatsMap compute_imatrix(const LoadedModel& model, std::span<const int32_t> tokens,
                                const ImatrixOptions& options,
                                const std::function<void(int32_t, int32_t)>& on_chunk = {});

// imatrix.chunk_count as llama-imatrix writes it: the largest row count over chunk_size.
uint32_t imatrix_chunk_count(const ImatrixStatsMap& stats, int32_t chunk_size);

}  // namespace edgeq
