// Perplexity and KL divergence as llama-perplexity computes them. Each chunk's first half is
// decoded without logits; its scored half in pieces of n_logits_batch positions, so that only
// n_logits_batch x n_vocab floats are ever held (Gemma 3's vocabulary has 262144 tokens).
#include "edgeq/eval/perplexity.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>

#include "edgeq/core/error.h"
#include "edgeq/core/progress.h"
#include "edgeq/core/thread-pool.h"
#include "edgeq/eval/logits-file.h"

namespace edgeq {
namespace {

size_t as_size(int64_t n) {
    return static_cast<size_t>(n);
}

// llama-perplexity's mean and its standard error (0 for ten values or fewer).
std::pair<double, double> mean_and_uncertainty(double sum, double sum2, int64_t count) {
    if (count < 1) return {0.0, 0.0};
    const double f = sum / static_cast<double>(count);
    double df = sum2 / static_cast<double>(count) - f * f;
    df = df > 0 && count > 10 ? std::sqrt(df / static_cast<double>(count - 1)) : 0.0;
    return {f, df};
}

double covariance(double sum_a, double sum_b, double sum_ab, int64_t count) {
    if (count < 10) return 0.0;
    const double n = static_cast<double>(count);
    return (sum_ab / n - (sum_a / n) * (sum_b / n)) / (n - 1);
}

// Linear interpolation between the sorted values around fraction x (count - 1).
double percentile(const std::vector<double>& sorted, float fraction) {
    if (fraction <= 0) return sorted.front();
    if (fraction >= 1) return sorted.back();
    float p = fraction * static_cast<float>(sorted.size() - 1);
    const size_t ip = static_cast<size_t>(p);
    p -= static_cast<float>(ip);
    return (1 - p) * sorted[ip] + p * sorted[std::min(ip + 1, sorted.size() - 1)];
}

Distribution distribution(std::span<const double> values) {
    Distribution d;
    if (values.empty()) return d;
    std::vector<double> v(values.begin(), values.end());
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    d.max = v.back();
    d.min = v.front();
    d.median = n % 2 == 0 ? 0.5 * (v[n / 2] + v[n / 2 - 1]) : v[n / 2];
    d.p99_9 = percentile(v, 0.999f);
    d.p99 = percentile(v, 0.990f);
    d.p95 = percentile(v, 0.950f);
    d.p90 = percentile(v, 0.900f);
    d.p75 = percentile(v, 0.750f);
    d.p25 = percentile(v, 0.250f);
    d.p10 = percentile(v, 0.100f);
    d.p5 = percentile(v, 0.050f);
    d.p1 = percentile(v, 0.010f);
    d.p0_1 = percentile(v, 0.001f);
    return d;
}

void put_distribution(nlohmann::ordered_json& j, const std::string& prefix, const Distribution& d) {
    j[prefix + "_max"] = d.max;
    j[prefix + "_p99_9"] = d.p99_9;
    j[prefix + "_p99"] = d.p99;
    j[prefix + "_p95"] = d.p95;
    j[prefix + "_p90"] = d.p90;
    j[prefix + "_p75"] = d.p75;
    j[prefix + "_median"] = d.median;
    j[prefix + "_p25"] = d.p25;
    j[prefix + "_p10"] = d.p10;
    j[prefix + "_p5"] = d.p5;
    j[prefix + "_p1"] = d.p1;
    j[prefix + "_p0_1"] = d.p0_1;
    j[prefix + "_min"] = d.min;
}

// Decodes every chunk and hands each piece of scored positions to `on_piece`: the session
// (logits_at(0 .. n-1) are the piece's logits), the index of the piece's first position among
// all scored positions, its length, and the tokens that follow its positions.
using PieceFn = std::function<void(const Session&, int64_t first, int32_t n, const int32_t* next)>;

void run_chunks(const LoadedModel& model, const EvalText& text, const EvalOptions& options,
                const PieceFn& on_piece) {
    SessionOptions so;
    so.n_ctx = text.n_ctx;
    so.n_threads = options.n_threads;
    so.n_batch = std::max(1, options.n_batch);
    Session session(model, so);
    const int32_t n_ctx = text.n_ctx;
    const int32_t first = n_ctx / 2;
    const int32_t n_scored = static_cast<int32_t>(scored_per_chunk(static_cast<uint32_t>(n_ctx)));
    const int32_t piece = std::max(1, options.n_logits_batch);
    std::vector<int32_t> chunk(as_size(n_ctx));
    Progress progress(options.progress_label,
                      static_cast<uint64_t>(text.n_chunks) * static_cast<uint64_t>(n_ctx - 1));
    for (int32_t c = 0; c < text.n_chunks; ++c) {
        progress.set_detail(fmt::format("chunk {}/{}", c + 1, text.n_chunks));
        std::copy_n(text.tokens.begin() + int64_t{c} * n_ctx, n_ctx, chunk.begin());
        if (text.bos >= 0) chunk[0] = text.bos;
        session.reset();
        session.set_all_logits(false);
        session.decode({chunk.data(), as_size(first)});
        progress.advance(static_cast<uint64_t>(first));
        session.set_all_logits(true);
        // The last token is never decoded: nothing follows it to be scored.
        for (int32_t p = first; p < n_ctx - 1; p += piece) {
            const int32_t n = std::min(piece, n_ctx - 1 - p);
            session.decode({chunk.data() + p, as_size(n)});
            on_piece(session, int64_t{c} * n_scored + (p - first), n, chunk.data() + p + 1);
            progress.advance(static_cast<uint64_t>(n));
        }
    }
    progress.finish();
}

// -log p of the next token, rounded to float as the base file stores it (a model compared with
// itself then gives exactly equal values).
double next_token_nll(const LogitStats& st, float logit) {
    return static_cast<float>(-st.log_prob(logit));
}

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

EvalText prepare_eval_text(const LoadedModel& model, std::string_view text,
                           const EvalOptions& options) {
    if (options.n_ctx < 4)
        fail("eval: a context of {} tokens is too short (at least 4)", options.n_ctx);
    if (options.n_ctx > model.n_ctx_train())
        fail("eval: a context of {} tokens is longer than the model's {}", options.n_ctx,
             model.n_ctx_train());
    const Tokenizer& tok = model.tokenizer();
    std::vector<int32_t> ids = tok.encode(text, /*add_special=*/true, /*parse_special=*/false);
    // The vocabulary adds BOS if encoding nothing yields it.
    const std::vector<int32_t> probe = tok.encode("", true, false);
    const bool add_bos = tok.bos() >= 0 && !probe.empty() && probe.front() == tok.bos();
    if (options.n_chunks == 0) fail("eval: --chunks 0 evaluates nothing");
    const int64_t n_tokens = static_cast<int64_t>(ids.size());
    if (n_tokens < 2 * int64_t{options.n_ctx})
        fail("eval: the text has {} tokens; a context of {} needs at least {}", n_tokens,
             options.n_ctx, 2 * int64_t{options.n_ctx});
    const int64_t n_max = n_tokens / options.n_ctx;
    if (options.n_chunks > n_max)
        fail("eval: {} chunks asked for, the text has {} tokens: {} chunks of {}", options.n_chunks,
             n_tokens, n_max, options.n_ctx);
    EvalText t;
    t.n_ctx = options.n_ctx;
    t.n_chunks = static_cast<int32_t>(options.n_chunks < 0 ? n_max : options.n_chunks);
    ids.resize(as_size(int64_t{t.n_chunks} * t.n_ctx));
    t.tokens = std::move(ids);
    t.bos = add_bos ? tok.bos() : -1;
    t.hash = hash_tokens(t.tokens);
    return t;
}

nlohmann::ordered_json PerplexityResult::to_json() const {
    nlohmann::ordered_json j;
    j["n_ctx"] = n_ctx;
    j["n_chunks"] = n_chunks;
    j["count"] = count;
    j["ppl"] = ppl;
    j["ppl_unc"] = ppl_unc;
    j["nll_mean"] = nll_mean;
    j["chunk_ppl"] = chunk_ppl;
    j["seconds"] = seconds;
    return j;
}

nlohmann::ordered_json KldResult::to_json() const {
    nlohmann::ordered_json j;
    j["n_ctx"] = n_ctx;
    j["n_chunks"] = n_chunks;
    j["count"] = count;
    j["ppl"] = ppl;
    j["ppl_unc"] = ppl_unc;
    j["ppl_base"] = ppl_base;
    j["ppl_base_unc"] = ppl_base_unc;
    j["cor_ln_ppl"] = cor_ln_ppl;
    j["ln_ppl_ratio"] = ln_ppl_ratio;
    j["ln_ppl_ratio_unc"] = ln_ppl_ratio_unc;
    j["ppl_ratio"] = ppl_ratio;
    j["ppl_ratio_unc"] = ppl_ratio_unc;
    j["ppl_diff"] = ppl_diff;
    j["ppl_diff_unc"] = ppl_diff_unc;
    j["kld_mean"] = kld_mean;
    j["kld_unc"] = kld_unc;
    put_distribution(j, "kld", kld);
    j["dp_mean"] = dp_mean;
    j["dp_unc"] = dp_unc;
    put_distribution(j, "dp", dp);
    j["rms_dp"] = rms_dp;
    j["rms_dp_unc"] = rms_dp_unc;
    j["same_top"] = same_top;
    j["same_top_unc"] = same_top_unc;
    j["seconds"] = seconds;
    return j;
}

PerplexityResult summarize_perplexity(std::span<const double> nll) {
    PerplexityResult r;
    r.count = static_cast<int64_t>(nll.size());
    if (r.count == 0) return r;
    double sum = 0, sum2 = 0;
    for (const double v : nll) {
        sum += v;
        sum2 += v * v;
    }
    const double n = static_cast<double>(r.count);
    r.nll_mean = sum / n;
    const double var = sum2 / n - r.nll_mean * r.nll_mean;
    r.ppl = std::exp(r.nll_mean);
    r.ppl_unc = var > 0 && r.count > 1 ? r.ppl * std::sqrt(var / (n - 1)) : 0.0;
    return r;
}

KldResult summarize_kld(std::span<const double> nll, std::span<const double> nll_base,
                        std::span<const double> kld, std::span<const double> p_diff,
                        std::span<const uint8_t> same_top) {
    KldResult r;
    const size_t n = nll.size();
    if (nll_base.size() != n || kld.size() != n || p_diff.size() != n || same_top.size() != n)
        fail("summarize_kld: per-position lists of different lengths");
    r.count = static_cast<int64_t>(n);
    if (n == 0) return r;
    double s_nll = 0, s_nll2 = 0, s_base = 0, s_base2 = 0, s_cross = 0, s_kld = 0, s_kld2 = 0,
           s_dp = 0, s_dp2 = 0, s_dp4 = 0;
    int64_t n_same = 0;
    for (size_t i = 0; i < n; ++i) {
        s_nll += nll[i];
        s_nll2 += nll[i] * nll[i];
        s_base += nll_base[i];
        s_base2 += nll_base[i] * nll_base[i];
        s_cross += nll[i] * nll_base[i];
        s_kld += kld[i];
        s_kld2 += kld[i] * kld[i];
        const double d2 = p_diff[i] * p_diff[i];
        s_dp += p_diff[i];
        s_dp2 += d2;
        s_dp4 += d2 * d2;
        n_same += same_top[i] != 0;
    }
    const int64_t count = r.count;
    const auto [ln_ppl, ln_ppl_unc] = mean_and_uncertainty(s_nll, s_nll2, count);
    const auto [ln_base, ln_base_unc] = mean_and_uncertainty(s_base, s_base2, count);
    r.ppl = std::exp(ln_ppl);
    r.ppl_unc = r.ppl * ln_ppl_unc;
    r.ppl_base = std::exp(ln_base);
    r.ppl_base_unc = r.ppl_base * ln_base_unc;
    const double cov = covariance(s_nll, s_base, s_cross, count);
    const double denom = ln_ppl_unc * ln_base_unc;
    r.cor_ln_ppl = denom > 0 ? cov / denom : 0.0;
    r.ln_ppl_ratio = ln_ppl - ln_base;
    r.ln_ppl_ratio_unc =
        std::sqrt(std::max(0.0, ln_ppl_unc * ln_ppl_unc + ln_base_unc * ln_base_unc - 2.0 * cov));
    r.ppl_ratio = std::exp(r.ln_ppl_ratio);
    r.ppl_ratio_unc = r.ppl_ratio * r.ln_ppl_ratio_unc;
    const double ppl_cov = r.ppl * r.ppl_base * cov;
    r.ppl_diff = r.ppl - r.ppl_base;
    r.ppl_diff_unc = std::sqrt(
        std::max(0.0, r.ppl_unc * r.ppl_unc + r.ppl_base_unc * r.ppl_base_unc - 2.0 * ppl_cov));
    std::tie(r.kld_mean, r.kld_unc) = mean_and_uncertainty(s_kld, s_kld2, count);
    r.kld = distribution(kld);
    std::tie(r.dp_mean, r.dp_unc) = mean_and_uncertainty(s_dp, s_dp2, count);
    r.dp = distribution(p_diff);
    const auto [mse, mse_unc] = mean_and_uncertainty(s_dp2, s_dp4, count);
    r.rms_dp = std::sqrt(mse);
    r.rms_dp_unc = r.rms_dp > 0 ? 0.5 / r.rms_dp * mse_unc : 0.0;
    r.same_top = static_cast<double>(n_same) / static_cast<double>(count);
    r.same_top_unc =
        count > 1 ? std::sqrt(r.same_top * (1 - r.same_top) / static_cast<double>(count - 1)) : 0.0;
    return r;
}

PerplexityResult evaluate_perplexity(const LoadedModel& model, const EvalText& text,
                                     const EvalOptions& options, const std::string& save_logits) {
    const auto t0 = std::chrono::steady_clock::now();
    const uint32_t n_vocab = static_cast<uint32_t>(model.n_vocab());
    const int32_t n_scored =
        static_cast<int32_t>(scored_per_chunk(static_cast<uint32_t>(text.n_ctx)));
    std::vector<double> nll(as_size(int64_t{text.n_chunks} * n_scored));
    std::unique_ptr<LogitsFileWriter> writer;
    if (!save_logits.empty()) {
        writer = std::make_unique<LogitsFileWriter>(
            save_logits, LogitsFileHeader{n_vocab, static_cast<uint32_t>(text.n_ctx),
                                          static_cast<uint32_t>(text.n_chunks), text.hash});
    }
    const size_t record_bytes = logits_record_bytes(n_vocab);
    std::vector<uint8_t> records;
    ThreadPool pool(options.n_threads);
    run_chunks(model, text, options,
               [&](const Session& session, int64_t first, int32_t n, const int32_t* next) {
                   if (writer) records.resize(as_size(n) * record_bytes);
                   pool.parallel_for(n, 1, [&](int64_t begin, int64_t end, int) {
                       for (int64_t i = begin; i < end; ++i) {
                           const float* logits = session.logits_at(static_cast<int32_t>(i));
                           const int32_t target = next[i];
                           if (writer) {
                               LogitsFileWriter::encode(logits, n_vocab, target,
                                                        records.data() + as_size(i) * record_bytes);
                           }
                           const LogitStats st = logit_stats(logits, n_vocab);
                           nll[as_size(first + i)] = next_token_nll(st, logits[target]);
                       }
                   });
                   if (writer) writer->append(records.data(), as_size(n));
               });
    if (writer) writer->finish();
    PerplexityResult r = summarize_perplexity(nll);
    r.n_ctx = text.n_ctx;
    r.n_chunks = text.n_chunks;
    double sum = 0;
    for (int32_t c = 0; c < text.n_chunks; ++c) {
        for (int32_t i = 0; i < n_scored; ++i) sum += nll[as_size(int64_t{c} * n_scored + i)];
        r.chunk_ppl.push_back(std::exp(sum / (static_cast<double>(n_scored) * (c + 1))));
    }
    r.seconds = seconds_since(t0);
    return r;
}

namespace {

void check_base(const LogitsFile& base, uint32_t n_vocab, int32_t n_ctx) {
    const LogitsFileHeader& h = base.header();
    if (h.n_vocab != n_vocab)
        fail("{}: made with a vocabulary of {} tokens, this model has {}", base.name(), h.n_vocab,
             n_vocab);
    if (h.n_ctx != static_cast<uint32_t>(n_ctx))
        fail("{}: made with a context of {} tokens (-c {}), this run uses -c {}", base.name(),
             h.n_ctx, h.n_ctx, n_ctx);
}

}  // namespace

int32_t logits_file_chunks(const std::string& path, const LoadedModel& model, int32_t n_ctx) {
    const LogitsFile base = LogitsFile::open(path);
    check_base(base, static_cast<uint32_t>(model.n_vocab()), n_ctx);
    return static_cast<int32_t>(base.header().n_chunks);
}

KldResult evaluate_kld(const LoadedModel& model, const EvalText& text, const std::string& path,
                       const EvalOptions& options, KldPositions* positions) {
    const auto t0 = std::chrono::steady_clock::now();
    const LogitsFile base = LogitsFile::open(path);
    const uint32_t n_vocab = static_cast<uint32_t>(model.n_vocab());
    check_base(base, n_vocab, text.n_ctx);
    const LogitsFileHeader& h = base.header();
    if (h.n_chunks != static_cast<uint32_t>(text.n_chunks))
        fail("{}: made over {} chunks, this run evaluates {} (--chunks)", path, h.n_chunks,
             text.n_chunks);
    if (h.tokens_hash != text.hash)
        fail(
            "{}: made on other tokens than this run's (a different text or tokenizer: token hash "
            "{:016x}, expected {:016x})",
            path, h.tokens_hash, text.hash);
    const size_t n_total = as_size(base.n_records());
    std::vector<double> nll(n_total), nll_base(n_total), kld(n_total), p_diff(n_total);
    std::vector<uint8_t> same(n_total);
    std::vector<BaseRecord> rows;
    ThreadPool pool(options.n_threads);
    run_chunks(model, text, options,
               [&](const Session& session, int64_t first, int32_t n, const int32_t* next) {
                   rows.clear();
                   for (int32_t i = 0; i < n; ++i)
                       rows.push_back(base.record(static_cast<uint64_t>(first + i)));
                   pool.parallel_for(n, 1, [&](int64_t begin, int64_t end, int) {
                       for (int64_t i = begin; i < end; ++i) {
                           const float* q = session.logits_at(static_cast<int32_t>(i));
                           const BaseRecord& b = rows[as_size(i)];
                           const LogitStats st = logit_stats(q, n_vocab);
                           const LogProbGrid grid(b.top_log_prob);
                           double sum = 0;
                           for (uint32_t t = 0; t < n_vocab; ++t) {
                               const int64_t code = b.code(t);
                               if (code == 0) continue;
                               const int64_t kq = grid.index(st.log_prob(q[t]));
                               sum += std::exp(grid.value(code)) *
                                      (static_cast<double>(code - kq) * grid.step);
                           }
                           const size_t k = as_size(first + i);
                           nll[k] = next_token_nll(st, q[next[i]]);
                           nll_base[k] = b.nll;
                           kld[k] = sum;
                           p_diff[k] = std::exp(-nll[k]) - std::exp(-nll_base[k]);
                           same[k] = st.top == b.top;
                       }
                   });
                   base.release(static_cast<uint64_t>(first), static_cast<uint64_t>(n));
               });
    KldResult r = summarize_kld(nll, nll_base, kld, p_diff, same);
    r.n_ctx = text.n_ctx;
    r.n_chunks = text.n_chunks;
    r.seconds = seconds_since(t0);
    if (positions != nullptr)
        *positions =
            KldPositions{std::move(kld), std::move(nll), std::move(nll_base), std::move(same)};
    return r;
}

}  // namespace edgeq
