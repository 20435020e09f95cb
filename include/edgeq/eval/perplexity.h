// Perplexity and KL divergence over a text, with llama-perplexity's definitions, so that
// edgeq's numbers and llama.cpp's can be compared:
//
//   - the whole text is tokenized once (with BOS when the vocabulary adds it) and cut into
//     consecutive chunks of n_ctx tokens; each chunk is decoded from an empty cache with its
//     first token replaced by BOS (when the vocabulary adds it);
//   - positions n_ctx/2 .. n_ctx-2 of each chunk are scored, each predicting the next token;
//   - perplexity is exp(mean nll), its uncertainty ppl * sqrt(var(nll) / (count - 1)).
//
// A quantized variant is compared with its base in two steps (the base runs once):
//
//   auto text = prepare_eval_text(*base, read_file("sotu.txt"), options);
//   PerplexityResult b = evaluate_perplexity(*base, text, options, "base.logits");
//   for (variant...) {
//       KldResult r = evaluate_kld(*variant, text, "base.logits", options);
//       r.kld_mean, r.same_top, r.ln_ppl_ratio ... r.to_json()
//   }
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "edgeq/runtime/engine.h"

namespace edgeq {

struct EvalOptions {
    int32_t n_ctx = 512;          // tokens per chunk (llama-perplexity's -c)
    int32_t n_chunks = -1;        // chunks to evaluate; < 0: every whole chunk of the text
    int32_t n_threads = 0;        // 0: all hardware threads
    int32_t n_batch = 512;        // tokens per forward step
    int32_t n_logits_batch = 32;  // scored positions decoded at once (their logits are held)
    std::string progress_label = "eval";  // the progress bar's label (shown on a terminal only)
};

// The evaluated tokens: n_chunks x n_ctx ids of the text, as tokenized (not yet with BOS).
struct EvalText {
    std::vector<int32_t> tokens;
    int32_t n_ctx = 0;
    int32_t n_chunks = 0;
    int32_t bos = -1;   // put at the start of each chunk; -1 when the vocabulary adds none
    uint64_t hash = 0;  // hash_tokens(tokens)
};

// Tokenizes `text` with the model's tokenizer and cuts it into chunks. Throws an Error if
// the text has fewer than 2 x n_ctx tokens (as llama-perplexity refuses it) or if more
// chunks are asked for than it holds.
EvalText prepare_eval_text(const LoadedModel& model, std::string_view text,
                           const EvalOptions& options);

struct PerplexityResult {
    int32_t n_ctx = 0, n_chunks = 0;
    int64_t count = 0;  // scored tokens
    double ppl = 0, ppl_unc = 0;
    double nll_mean = 0;            // ln(ppl)
    std::vector<double> chunk_ppl;  // running perplexity after each chunk (llama's [i]x.xxxx)
    double seconds = 0;
    nlohmann::ordered_json to_json() const;
};

// Percentiles of a sorted list, as llama-perplexity prints them.
struct Distribution {
    double max = 0, p99_9 = 0, p99 = 0, p95 = 0, p90 = 0, p75 = 0, median = 0, p25 = 0, p10 = 0,
           p5 = 0, p1 = 0, p0_1 = 0, min = 0;
};

// Everything llama-perplexity --kl-divergence prints, as fractions (not percent).
struct KldResult {
    int32_t n_ctx = 0, n_chunks = 0;
    int64_t count = 0;
    double ppl = 0, ppl_unc = 0;                    // the model evaluated (Q)
    double ppl_base = 0, ppl_base_unc = 0;          // the base the file was made from
    double cor_ln_ppl = 0;                          // correlation of ln PPL(Q) and ln PPL(base)
    double ln_ppl_ratio = 0, ln_ppl_ratio_unc = 0;  // mean ln(PPL(Q)/PPL(base))
    double ppl_ratio = 0, ppl_ratio_unc = 0;
    double ppl_diff = 0, ppl_diff_unc = 0;
    double kld_mean = 0, kld_unc = 0;
    Distribution kld;
    double dp_mean = 0, dp_unc = 0;  // Δp: p(Q) - p(base) of the next token
    Distribution dp;
    double rms_dp = 0, rms_dp_unc = 0;
    double same_top = 0, same_top_unc = 0;  // fraction of positions with the same top token
    double seconds = 0;
    nlohmann::ordered_json to_json() const;
};

// Statistics from per-position values (exposed for tests): negative log-likelihoods of the
// next token.
PerplexityResult summarize_perplexity(std::span<const double> nll);
// Per position: nll of the model and of the base, KL divergence, p - p_base of the next
// token, and whether their top tokens agree.
KldResult summarize_kld(std::span<const double> nll, std::span<const double> nll_base,
                        std::span<const double> kld, std::span<const double> p_diff,
                        std::span<const uint8_t> same_top);

// Runs `model` over the chunks and returns its perplexity; with `save_logits`, also writes
// the base logits file (edgeq/eval/logits-file.h) that evaluate_kld compares with.
PerplexityResult evaluate_perplexity(const LoadedModel& model, const EvalText& text,
                                     const EvalOptions& options,
                                     const std::string& save_logits = "");

// Per-position values of a comparison, in scoring order (chunk by chunk): for paired
// statistics between two variants evaluated on the same base.
struct KldPositions {
    std::vector<double> kld, nll, nll_base;
    std::vector<uint8_t> same_top;
};

// Runs `model` over the chunks and compares it with the base logits file. The file must have
// been made on the same tokens (same text, n_ctx and chunk count) and vocabulary size;
// otherwise an Error says which differs. The KL divergence sums p_base (log p_base - log q)
// over tokens with log p_base > -16; log q is rounded onto the base's grid (2.4e-4 nats) so
// that a model compared with itself gives exactly 0. `positions` (optional) receives the
// per-position values the statistics were made from.
KldResult evaluate_kld(const LoadedModel& model, const EvalText& text, const std::string& base,
                       const EvalOptions& options, KldPositions* positions = nullptr);

// The chunk count of a base logits file's header, and a check that it fits `model` and
// `n_ctx` (for choosing --chunks before tokenizing); throws an Error naming what differs.
int32_t logits_file_chunks(const std::string& base, const LoadedModel& model, int32_t n_ctx);

}  // namespace edgeq
