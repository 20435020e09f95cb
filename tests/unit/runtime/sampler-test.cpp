// Sampler: each filter's allowed set computed directly from random logits (in double, by
// sorting) contains every draw; empirical frequencies follow the softmax of the allowed
// logits at the temperature (chi-square); penalties change exactly the recent tokens' logits
// by llama.cpp's rule; greedy; seeds reproduce.
#include "edgeq/runtime/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <set>
#include <vector>

#include "edgeq/core/error.h"
#include "test-random.h"

namespace edgeq {
namespace {

// The ids the chain may draw from, computed the obvious way: sort everything, cut at k,
// softmax of the k at temperature 1, cut at the mass p, keep those within min_p of the top.
std::set<int32_t> allowed_set(const std::vector<float>& logits, int32_t top_k, float top_p,
                              float min_p) {
    std::vector<int32_t> order(logits.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
    if (top_k > 0 && static_cast<size_t>(top_k) < order.size()) order.resize(top_k);
    std::vector<double> p(order.size());
    double total = 0.0;
    for (size_t i = 0; i < order.size(); ++i) {
        p[i] = std::exp(static_cast<double>(logits[order[i]]) - logits[order[0]]);
        total += p[i];
    }
    for (double& x : p) x /= total;
    size_t n = order.size();
    if (top_p < 1.0f) {
        double cumulative = 0.0;
        for (size_t i = 0; i < order.size(); ++i) {
            cumulative += p[i];
            if (cumulative >= top_p) {
                n = i + 1;
                break;
            }
        }
    }
    std::set<int32_t> allowed;
    for (size_t i = 0; i < n; ++i) {
        if (min_p <= 0.0f || p[i] >= static_cast<double>(min_p) * p[0]) allowed.insert(order[i]);
    }
    return allowed;
}

SamplingParams filters_only(float temperature, int32_t top_k, float top_p, float min_p,
                            uint64_t seed) {
    SamplingParams params;
    params.temperature = temperature;
    params.top_k = top_k;
    params.top_p = top_p;
    params.min_p = min_p;
    params.seed = seed;
    return params;
}

TEST(Sampler, GreedyPicksTheHighestLogitAndTheLowestIdOnTies) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    for (int trial = 0; trial < 50; ++trial) {
        const int n = random.uniform_int(1, 3000);
        std::vector<float> logits = random.normal(static_cast<size_t>(n), 3.0f);
        const auto top = std::max_element(logits.begin(), logits.end()) - logits.begin();
        int32_t expected = static_cast<int32_t>(top);
        if (n > 2 && trial % 2 == 0) {  // a tie with a lower id
            const int other = random.uniform_int(0, n - 1);
            logits[other] = logits[top];
            expected = std::min<int32_t>(expected, other);
        }
        Sampler sampler(filters_only(0.0f, 40, 0.95f, 0.05f, random.engine()()), n);
        EXPECT_EQ(sampler.sample(logits.data()), expected);
        EXPECT_EQ(sampler.sample(logits.data()), expected);  // nothing drawn, nothing changes
    }
}

TEST(Sampler, SameSeedSameTokens) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    const int n = 500;
    const uint64_t seed = random.engine()();
    SamplingParams params = filters_only(1.5f, 0, 1.0f, 0.0f, seed);
    params.repeat_penalty = 1.3f;
    Sampler a(params, n), b(params, n);
    params.seed = seed + 1;
    Sampler c(params, n);
    int differ = 0;
    for (int step = 0; step < 200; ++step) {
        const std::vector<float> logits = random.normal(n, 1.0f);
        const int32_t ta = a.sample(logits.data());
        ASSERT_EQ(ta, b.sample(logits.data())) << "step " << step;
        differ += ta != c.sample(logits.data());
        a.accept(ta);
        b.accept(ta);
        c.accept(ta);
    }
    EXPECT_GT(differ, 100);  // near-uniform over 500 ids: another seed differs almost always
}

TEST(Sampler, DrawsStayInsideEachFiltersAllowedSet) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    struct Case {
        int32_t top_k;
        float top_p;
        float min_p;
    };
    const Case cases[] = {{5, 1.0f, 0.0f}, {1, 1.0f, 0.0f},   {0, 0.5f, 0.0f}, {0, 0.9f, 0.0f},
                          {0, 0.0f, 0.0f}, {0, 1.0f, 0.1f},   {0, 1.0f, 0.5f}, {40, 0.8f, 0.05f},
                          {7, 0.3f, 0.2f}, {100, 0.95f, 0.0f}};
    for (const Case& c : cases) {
        SCOPED_TRACE("top_k " + std::to_string(c.top_k) + " top_p " + std::to_string(c.top_p) +
                     " min_p " + std::to_string(c.min_p));
        for (int trial = 0; trial < 10; ++trial) {
            const int n = random.uniform_int(2, 700);
            const std::vector<float> logits = random.normal(n, random.uniform(0.5f, 4.0f));
            const std::set<int32_t> allowed = allowed_set(logits, c.top_k, c.top_p, c.min_p);
            Sampler sampler(filters_only(random.uniform(0.3f, 3.0f), c.top_k, c.top_p, c.min_p,
                                         random.engine()()),
                            n);
            std::set<int32_t> seen;
            for (int draw = 0; draw < 300; ++draw) {
                const int32_t t = sampler.sample(logits.data());
                ASSERT_TRUE(allowed.count(t)) << "drew " << t << " outside the allowed set of "
                                              << allowed.size() << " (n " << n << ")";
                seen.insert(t);
            }
            if (allowed.size() == 1) {
                EXPECT_EQ(seen.size(), 1u);
            }
        }
    }
}

// Pearson's chi-square of draw counts against the softmax of the allowed logits at the
// temperature; the bound is far beyond the 1e-6 quantile for these degrees of freedom.
TEST(Sampler, FrequenciesFollowTheSoftmaxOfTheAllowedLogits) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    for (int trial = 0; trial < 4; ++trial) {
        const int n = random.uniform_int(8, 30);
        const std::vector<float> logits = random.normal(n, 1.5f);
        const float temperature = random.uniform(0.5f, 2.0f);
        const int32_t top_k = trial == 0 ? 0 : random.uniform_int(3, n);
        const float top_p = trial == 1 ? 1.0f : random.uniform(0.7f, 0.99f);
        const float min_p = trial == 2 ? 0.0f : random.uniform(0.0f, 0.1f);
        const std::set<int32_t> allowed = allowed_set(logits, top_k, top_p, min_p);
        std::map<int32_t, double> expected;
        double total = 0.0;
        for (int32_t t : allowed) total += expected[t] = std::exp(logits[t] / temperature);
        Sampler sampler(filters_only(temperature, top_k, top_p, min_p, random.engine()()), n);
        const int n_draws = 40000;
        std::map<int32_t, int> counts;
        for (int i = 0; i < n_draws; ++i) ++counts[sampler.sample(logits.data())];
        double chi2 = 0.0;
        for (auto& [t, w] : expected) {
            const double e = n_draws * w / total;
            const double o = counts.count(t) ? counts[t] : 0;
            chi2 += (o - e) * (o - e) / e;
        }
        for (auto& [t, count] : counts) ASSERT_TRUE(expected.count(t)) << "drew " << t;
        const double df = std::max<double>(1.0, static_cast<double>(allowed.size()) - 1.0);
        EXPECT_LT(chi2, df + 8.0 * std::sqrt(2.0 * df) + 15.0)
            << "allowed " << allowed.size() << " temperature " << temperature;
    }
}

TEST(Sampler, PenaltiesChangeExactlyTheRecentTokensByLlamaCppsRule) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    for (int trial = 0; trial < 30; ++trial) {
        const int n = random.uniform_int(5, 300);
        SamplingParams params;
        params.repeat_penalty = random.uniform(0.5f, 2.0f);
        params.frequency_penalty = trial % 3 == 0 ? 0.0f : random.uniform(-0.5f, 1.0f);
        params.presence_penalty = trial % 4 == 0 ? 0.0f : random.uniform(-0.5f, 1.0f);
        params.repeat_last_n = random.uniform_int(0, 20);
        Sampler sampler(params, n);
        std::vector<int32_t> history(random.uniform_int(0, 40));
        for (auto& t : history) t = random.uniform_int(0, std::min(n - 1, 12));
        for (int32_t t : history) sampler.accept(t);
        if (trial % 5 == 4) {  // reset forgets them all
            sampler.reset();
            history.clear();
        }

        std::map<int32_t, int> counts;  // the last repeat_last_n of the history
        const size_t window = std::min<size_t>(history.size(), params.repeat_last_n);
        for (size_t i = history.size() - window; i < history.size(); ++i) ++counts[history[i]];

        const std::vector<float> logits = random.normal(n, 2.0f);
        std::vector<float> penalized = logits;
        sampler.penalize(penalized.data());
        for (int32_t t = 0; t < n; ++t) {
            float expected = logits[t];
            if (counts.count(t)) {
                expected = expected <= 0 ? expected * params.repeat_penalty
                                         : expected / params.repeat_penalty;
                expected -= counts[t] * params.frequency_penalty + params.presence_penalty;
                EXPECT_FLOAT_EQ(penalized[t], expected) << "token " << t;
            } else {
                EXPECT_EQ(penalized[t], logits[t]) << "token " << t << " is not recent";
            }
        }
    }
}

TEST(Sampler, GreedyAppliesThePenaltiesFirst) {
    std::vector<float> logits = {1.0f, 3.0f, 2.5f, -1.0f};
    SamplingParams params = filters_only(0.0f, 40, 0.95f, 0.05f, 1);
    params.repeat_penalty = 1.5f;  // 3 / 1.5 = 2 < 2.5
    Sampler sampler(params, 4);
    EXPECT_EQ(sampler.sample(logits.data()), 1);
    sampler.accept(1);
    EXPECT_EQ(sampler.sample(logits.data()), 2);
    EXPECT_EQ(logits[1], 3.0f);  // the caller's logits are left unchanged
    sampler.reset();
    EXPECT_EQ(sampler.sample(logits.data()), 1);
}

TEST(Sampler, RefusesTokensOutsideTheVocabulary) {
    Sampler sampler(SamplingParams{}, 10);
    EXPECT_THROW(sampler.accept(10), Error);
    EXPECT_THROW(sampler.accept(-1), Error);
    EXPECT_THROW(Sampler(SamplingParams{}, 0), Error);
}

TEST(Sampler, NonFiniteLogitsNeverWin) {
    const float inf = std::numeric_limits<float>::infinity();
    std::vector<float> logits = {-inf, std::nanf(""), 0.5f, -inf, 0.25f};
    for (float temperature : {0.0f, 1.0f}) {
        Sampler sampler(filters_only(temperature, 0, 1.0f, 0.0f, 3), 5);
        for (int i = 0; i < 100; ++i) {
            const int32_t t = sampler.sample(logits.data());
            ASSERT_TRUE(t == 2 || t == 4) << t;
        }
    }
}

}  // namespace
}  // namespace edgeq
