// The statistics of edgeq eval against llama-perplexity's formulas, written out again here
// over fresh random per-position values (counts small and large: llama-perplexity reports no
// uncertainty for ten values or fewer).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "edgeq/core/error.h"
#include "edgeq/eval/perplexity.h"
#include "test-random.h"

namespace edgeq {
namespace {

double mean(const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return s / static_cast<double>(v.size());
}

// Standard error of the mean, (population variance / (n - 1)) ^ 0.5.
double sem(const std::vector<double>& v) {
    const double m = mean(v);
    double s = 0;
    for (double x : v) s += (x - m) * (x - m);
    return std::sqrt(s / static_cast<double>(v.size()) / static_cast<double>(v.size() - 1));
}

double quantile(std::vector<double> v, double q) {
    std::sort(v.begin(), v.end());
    const double p = q * static_cast<double>(v.size() - 1);
    const size_t i = static_cast<size_t>(p);
    const size_t j = std::min(i + 1, v.size() - 1);
    return v[i] + (p - static_cast<double>(i)) * (v[j] - v[i]);
}

TEST(EvalStats, PerplexityIsExpOfTheMeanNll) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    for (const int n : {2, 7, 255, 1021}) {
        std::vector<double> nll(static_cast<size_t>(n));
        for (double& x : nll) x = random.uniform(0.0f, 9.0f);
        const PerplexityResult r = summarize_perplexity(nll);
        EXPECT_EQ(r.count, n);
        EXPECT_NEAR(r.ppl, std::exp(mean(nll)), 1e-12 * r.ppl);
        EXPECT_NEAR(r.ppl_unc, r.ppl * sem(nll), 1e-9 * r.ppl);
    }
    EXPECT_EQ(summarize_perplexity(std::vector<double>{}).count, 0);
}

TEST(EvalStats, KldStatisticsFollowLlamaPerplexity) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    for (const int n : {5, 11, 100, 2047}) {
        SCOPED_TRACE(n);
        const size_t un = static_cast<size_t>(n);
        std::vector<double> nll(un), base(un), kld(un), dp(un);
        std::vector<uint8_t> same(un);
        for (size_t i = 0; i < un; ++i) {
            base[i] = random.uniform(0.0f, 8.0f);
            nll[i] = base[i] + random.uniform(-0.5f, 1.0f);
            kld[i] = std::pow(random.uniform(0.0f, 1.0f), 4.0f);
            dp[i] = std::exp(-nll[i]) - std::exp(-base[i]);
            same[i] = random.uniform_int(0, 9) < 8;
        }
        const KldResult r = summarize_kld(nll, base, kld, dp, same);
        const bool unc = n > 10;
        EXPECT_EQ(r.count, n);
        EXPECT_NEAR(r.ppl, std::exp(mean(nll)), 1e-9 * r.ppl);
        EXPECT_NEAR(r.ppl_base, std::exp(mean(base)), 1e-9 * r.ppl_base);
        EXPECT_NEAR(r.ln_ppl_ratio, mean(nll) - mean(base), 1e-12);
        EXPECT_NEAR(r.ppl_ratio, std::exp(mean(nll) - mean(base)), 1e-12);
        EXPECT_NEAR(r.ppl_diff, r.ppl - r.ppl_base, 1e-9);
        EXPECT_NEAR(r.kld_mean, mean(kld), 1e-12);
        EXPECT_NEAR(r.kld_unc, unc ? sem(kld) : 0.0, 1e-9);
        EXPECT_NEAR(r.ppl_unc, unc ? r.ppl * sem(nll) : 0.0, 1e-9 * r.ppl);
        // ln(PPL(Q)/PPL(base)): the standard error of the mean of the differences.
        std::vector<double> diff(un);
        for (size_t i = 0; i < un; ++i) diff[i] = nll[i] - base[i];
        EXPECT_NEAR(r.ln_ppl_ratio_unc, unc ? sem(diff) : 0.0, 1e-9);
        if (unc) {
            double cov = 0;
            for (size_t i = 0; i < un; ++i) cov += (nll[i] - mean(nll)) * (base[i] - mean(base));
            EXPECT_NEAR(r.cor_ln_ppl, cov / n / (sem(nll) * sem(base)) / (n - 1), 1e-9);
        }
        EXPECT_EQ(r.kld.max, *std::max_element(kld.begin(), kld.end()));
        EXPECT_EQ(r.kld.min, *std::min_element(kld.begin(), kld.end()));
        EXPECT_NEAR(r.kld.median, quantile(kld, 0.5), 1e-12);
        // llama-perplexity interpolates with a float fraction: within ~1e-7 of the position.
        for (const auto& [got, q] : {std::pair{r.kld.p99, 0.99},
                                     {r.kld.p90, 0.9},
                                     {r.kld.p5, 0.05},
                                     {r.kld.p99_9, 0.999},
                                     {r.kld.p0_1, 0.001}})
            EXPECT_NEAR(got, quantile(kld, q), 1e-5) << q;
        EXPECT_NEAR(r.dp.p25, quantile(dp, 0.25), 1e-5);
        EXPECT_NEAR(r.dp_mean, mean(dp), 1e-12);
        double ms = 0;
        for (double d : dp) ms += d * d;
        EXPECT_NEAR(r.rms_dp, std::sqrt(ms / n), 1e-12);
        const double top = static_cast<double>(std::count(same.begin(), same.end(), 1)) / n;
        EXPECT_NEAR(r.same_top, top, 1e-15);
        EXPECT_NEAR(r.same_top_unc, std::sqrt(top * (1 - top) / (n - 1)), 1e-12);
    }
    const std::vector<double> two(2, 1.0), three(3, 1.0);
    const std::vector<uint8_t> s2(2, 1);
    EXPECT_THROW(summarize_kld(two, three, two, two, s2), Error);
}

}  // namespace
}  // namespace edgeq
