#include "edgeq/eval/imatrix-collector.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "edgeq/core/error.h"
#include "edgeq/tokenizer/tokenizer.h"

namespace edgeq {

void ImatrixCollector::observe(std::string_view weight, const float* x, int32_t n_rows,
                               int64_t n_in) {
    // llama-imatrix's choice: the blocks' weights, the output only on request.
    if (!weight.starts_with("blk.") && !(process_output_ && weight == "output.weight")) return;
    auto it = stats_.find(weight);
    if (it == stats_.end()) {
        ImatrixStats s;
        s.n_in = n_in;
        s.in_sum2.assign(static_cast<size_t>(n_in), 0.0);
        s.counts.assign(1, 0);
        it = stats_.emplace(std::string(weight), std::move(s)).first;
    } else if (it->second.n_in != n_in) {
        fail("imatrix: weight {} was seen with {} and then {} input columns", weight,
             it->second.n_in, n_in);
    }
    double* sums = it->second.in_sum2.data();
    for (int32_t r = 0; r < n_rows; ++r) {
        const float* row = x + static_cast<size_t>(r) * static_cast<size_t>(n_in);
        for (int64_t j = 0; j < n_in; ++j) {
            const double v = row[j];
            sums[j] += v * v;
        }
    }
    it->second.counts[0] += n_rows;
}

int32_t imatrix_chunks(size_t n_tokens, const ImatrixOptions& options) {
    if (options.n_ctx <= 0)
        fail("imatrix: the chunk size (-c) must be positive, not {}", options.n_ctx);
    const size_t n_ctx = static_cast<size_t>(options.n_ctx);
    if (n_tokens < 2 * n_ctx)
        fail("imatrix: the text has {} tokens; chunks of {} need at least {}", n_tokens, n_ctx,
             2 * n_ctx);
    const auto n_max = static_cast<int32_t>(n_tokens / n_ctx);
    return options.n_chunks < 0 ? n_max : std::min(options.n_chunks, n_max);
}

ImatrixStatsMap compute_imatrix(const LoadedModel& model, std::span<const int32_t> tokens,
                                const ImatrixOptions& options,
                                const std::function<void(int32_t, int32_t)>& on_chunk) {
    const int32_t n_chunks = imatrix_chunks(tokens.size(), options);
    if (n_chunks == 0) fail("imatrix: no chunks to process (--chunks 0)");
    if (options.n_ctx > model.n_ctx_train())
        fail("imatrix: chunks of {} tokens exceed the model's training context of {}",
             options.n_ctx, model.n_ctx_train());
    // The tokenizer adds BOS to a text when its first id for an empty text is BOS.
    const Tokenizer& tok = model.tokenizer();
    const std::vector<int32_t> specials = tok.encode("", true, false);
    const bool add_bos = tok.bos() >= 0 && !specials.empty() && specials.front() == tok.bos();

    ImatrixCollector collector(options.process_output);
    SessionOptions session_options;
    session_options.n_ctx = options.n_ctx;
    session_options.n_threads = options.n_threads;
    // output.weight sees every position only when every position's logits are computed.
    session_options.all_logits = options.process_output;
    session_options.kv_f32 = options.kv_f32;
    session_options.observer = &collector;
    Session session(model, session_options);

    const auto n_ctx = static_cast<size_t>(options.n_ctx);
    std::vector<int32_t> chunk(n_ctx);
    for (int32_t c = 0; c < n_chunks; ++c) {
        const auto first = tokens.begin() + static_cast<std::ptrdiff_t>(c * n_ctx);
        std::copy(first, first + static_cast<std::ptrdiff_t>(n_ctx), chunk.begin());
        if (add_bos) chunk[0] = tok.bos();
        session.reset();
        session.decode(chunk);
        if (on_chunk) on_chunk(c + 1, n_chunks);
    }
    ImatrixStatsMap stats = collector.take();
    for (const auto& [name, s] : stats) {
        for (const double v : s.in_sum2) {
            if (!std::isfinite(v)) fail("imatrix: weight {} has non-finite activations", name);
        }
    }
    return stats;
}

uint32_t imatrix_chunk_count(const ImatrixStatsMap& stats, int32_t chunk_size) {
    int64_t max_count = 0;
    for (const auto& [name, s] : stats) {
        for (const int64_t c : s.counts) max_count = std::max(max_count, c);
    }
    return chunk_size > 0 ? static_cast<uint32_t>(max_count / chunk_size) : 0;
}

}  // namespace edgeq
