// ImatrixCollector: the sums of squares and row counts of the weights llama-imatrix collects,
// against sums computed here in long double.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "edgeq/core/error.h"
#include "edgeq/eval/imatrix-collector.h"
#include "test-random.h"

namespace edgeq {
namespace {

TEST(ImatrixCollector, SumsSquaresPerColumnOverEveryCall) {
    testing::Random rng;
    SCOPED_TRACE(rng.trace());
    ImatrixCollector collector;
    const int64_t n_in = rng.uniform_int(1, 333);
    std::vector<long double> expected(static_cast<size_t>(n_in), 0.0L);
    int64_t rows = 0;
    for (int call = 0; call < 5; ++call) {
        const int32_t n = rng.uniform_int(1, 40);
        const std::vector<float> x = rng.normal(static_cast<size_t>(n * n_in), 3.0f);
        for (int32_t r = 0; r < n; ++r)
            for (int64_t j = 0; j < n_in; ++j) {
                const long double v = x[static_cast<size_t>(r * n_in + j)];
                expected[static_cast<size_t>(j)] += v * v;
            }
        rows += n;
        collector.observe("blk.3.ffn_down.weight", x.data(), n, n_in);
        // Weights outside the blocks are not collected (llama-imatrix's default).
        collector.observe("output.weight", x.data(), n, n_in);
        collector.observe("token_embd.weight", x.data(), n, n_in);
    }
    const ImatrixStatsMap& stats = collector.stats();
    ASSERT_EQ(stats.size(), 1u);
    const ImatrixStats& s = stats.at("blk.3.ffn_down.weight");
    EXPECT_EQ(s.n_in, n_in);
    EXPECT_EQ(s.counts, std::vector<int64_t>{rows});
    for (int64_t j = 0; j < n_in; ++j) {
        const long double e = expected[static_cast<size_t>(j)];
        EXPECT_NEAR(s.in_sum2[static_cast<size_t>(j)], static_cast<double>(e), 1e-12 * double(e));
    }
}

TEST(ImatrixCollector, ProcessOutputAddsOutputWeightOnly) {
    ImatrixCollector collector(true);
    const std::vector<float> x = {1, 2, 3, 4, 5, 6};
    collector.observe("output.weight", x.data(), 2, 3);
    collector.observe("token_embd.weight", x.data(), 2, 3);  // a tied output is not collected
    ASSERT_EQ(collector.stats().size(), 1u);
    const ImatrixStats& s = collector.stats().at("output.weight");
    EXPECT_EQ(s.in_sum2, (std::vector<double>{1 + 16, 4 + 25, 9 + 36}));
    EXPECT_EQ(s.counts, std::vector<int64_t>{2});
}

TEST(ImatrixCollector, RefusesAWeightSeenWithAnotherWidth) {
    ImatrixCollector collector;
    const std::vector<float> x(64, 1.0f);
    collector.observe("blk.0.attn_q.weight", x.data(), 2, 32);
    EXPECT_THROW(collector.observe("blk.0.attn_q.weight", x.data(), 4, 16), Error);
}

TEST(ImatrixChunks, FollowsLlamaImatrix) {
    ImatrixOptions options;
    options.n_ctx = 100;
    EXPECT_EQ(imatrix_chunks(200, options), 2);
    EXPECT_EQ(imatrix_chunks(399, options), 3);  // the tail is dropped
    options.n_chunks = 2;
    EXPECT_EQ(imatrix_chunks(1000, options), 2);
    EXPECT_THROW(imatrix_chunks(199, options), Error);  // fewer than 2 chunks' tokens
    options.n_ctx = 0;
    EXPECT_THROW(imatrix_chunks(1000, options), Error);
}

TEST(ImatrixChunks, ChunkCountIsTheLargestCountOverTheChunkSize) {
    ImatrixStatsMap stats;
    stats["a"] = {1, {1.0}, {1024}};
    stats["b"] = {1, {1.0, 1.0}, {700, 1600}};
    EXPECT_EQ(imatrix_chunk_count(stats, 512), 3u);
}

}  // namespace
}  // namespace edgeq
