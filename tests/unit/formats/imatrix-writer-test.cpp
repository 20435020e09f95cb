// The imatrix writer: what save_imatrix writes, the GgufFile reader sees with llama.cpp's names,
// shapes and keys, and load_imatrix turns back into the means; bad entries write nothing.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "edgeq/core/error.h"
#include "edgeq/formats/gguf.h"
#include "edgeq/formats/imatrix.h"
#include "test-random.h"

namespace edgeq {
namespace {

namespace fs = std::filesystem;

std::string temp_path(const std::string& name) {
    return (fs::path(::testing::TempDir()) / (std::to_string(::getpid()) + "-" + name)).string();
}

ImatrixStats random_stats(testing::Random& rng, int64_t n_in, int n_mat) {
    ImatrixStats s;
    s.n_in = n_in;
    for (int e = 0; e < n_mat; ++e) {
        const int count = rng.uniform_int(0, 5000);
        s.counts.push_back(count);
        for (int64_t j = 0; j < n_in; ++j)
            s.in_sum2.push_back(count == 0 ? 0.0 : count * double(rng.uniform(0.0f, 4.0f)));
    }
    return s;
}

TEST(ImatrixWriter, WritesLlamaCppLayoutAndLoadsBack) {
    testing::Random rng;
    SCOPED_TRACE(rng.trace());
    ImatrixStatsMap stats;
    stats["blk.1.ffn_down.weight"] = random_stats(rng, rng.uniform_int(1, 300), 1);
    stats["blk.0.attn_q.weight"] = random_stats(rng, rng.uniform_int(1, 300), 1);
    stats["blk.0.ffn_up_exps.weight"] = random_stats(rng, rng.uniform_int(1, 64), 4);
    stats["blk.0.ffn_up_exps.weight"].counts[2] = 0;  // an expert no token reached
    for (int64_t j = 0; j < stats["blk.0.ffn_up_exps.weight"].n_in; ++j)
        stats["blk.0.ffn_up_exps.weight"].in_sum2[2 * stats["blk.0.ffn_up_exps.weight"].n_in + j] =
            0;
    const std::string path = temp_path("imatrix.gguf");
    save_imatrix(path, stats, {{"a.txt", "b.txt"}, 7, 512});

    const GgufFile file = GgufFile::open(path);
    EXPECT_EQ(file.get_string("general.type").value_or(""), "imatrix");
    EXPECT_EQ(file.get_uint("imatrix.chunk_count").value_or(0), 7u);
    EXPECT_EQ(file.get_uint("imatrix.chunk_size").value_or(0), 512u);
    std::vector<std::string> names;
    for (const GgufTensorInfo& t : file.tensors()) names.push_back(t.name);
    // Sorted by weight name, sums before counts.
    const std::vector<std::string> expected = {
        "blk.0.attn_q.weight.in_sum2",      "blk.0.attn_q.weight.counts",
        "blk.0.ffn_up_exps.weight.in_sum2", "blk.0.ffn_up_exps.weight.counts",
        "blk.1.ffn_down.weight.in_sum2",    "blk.1.ffn_down.weight.counts"};
    EXPECT_EQ(names, expected);
    for (const auto& [name, s] : stats) {
        const auto n_mat = static_cast<int64_t>(s.counts.size());
        const GgufTensorInfo* sums = file.find_tensor(name + ".in_sum2");
        const GgufTensorInfo* counts = file.find_tensor(name + ".counts");
        ASSERT_TRUE(sums && counts);
        EXPECT_EQ(sums->type, GgmlType::F32);
        // llama.cpp's layout: a dense weight's entries are 1-D, an expert weight's 2-D.
        if (n_mat == 1) {
            EXPECT_EQ(sums->shape, (std::vector<int64_t>{s.n_in}));
            EXPECT_EQ(counts->shape, (std::vector<int64_t>{1}));
        } else {
            EXPECT_EQ(sums->shape, (std::vector<int64_t>{s.n_in, n_mat}));
            EXPECT_EQ(counts->shape, (std::vector<int64_t>{1, n_mat}));
        }
        std::vector<float> got(s.in_sum2.size());
        std::memcpy(got.data(), file.tensor_data(*sums), got.size() * sizeof(float));
        for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], float(s.in_sum2[i]));
        std::vector<float> got_counts(s.counts.size());
        std::memcpy(got_counts.data(), file.tensor_data(*counts),
                    got_counts.size() * sizeof(float));
        for (size_t i = 0; i < got_counts.size(); ++i) EXPECT_EQ(got_counts[i], float(s.counts[i]));
    }

    // The quantizer's loader reads back the means (and 1 for an expert with no tokens).
    const Imatrix loaded = load_imatrix(path);
    EXPECT_EQ(loaded.datasets, (std::vector<std::string>{"a.txt", "b.txt"}));
    EXPECT_EQ(loaded.chunk_count, 7);
    for (const auto& [name, s] : stats) {
        const std::vector<float>* values = loaded.find(name);
        ASSERT_NE(values, nullptr) << name;
        ASSERT_EQ(values->size(), s.in_sum2.size());
        for (size_t i = 0; i < values->size(); ++i) {
            const int64_t count = s.counts[i / static_cast<size_t>(s.n_in)];
            const double mean = count == 0 ? 1.0 : float(s.in_sum2[i]) / float(count);
            EXPECT_NEAR((*values)[i], mean, 1e-6 * mean) << name << " " << i;
        }
    }
    fs::remove(path);
}

TEST(ImatrixWriter, RefusesInconsistentEntriesAndWritesNothing) {
    const std::string path = temp_path("bad-imatrix.gguf");
    ImatrixStatsMap stats;
    EXPECT_THROW(save_imatrix(path, stats, {}), Error);  // nothing to write
    stats["blk.0.attn_q.weight"] = {4, {1, 2, 3}, {1}};  // 3 sums for 4 columns
    EXPECT_THROW(save_imatrix(path, stats, {}), Error);
    stats["blk.0.attn_q.weight"] = {2, {1, 2, 3, 4}, {}};  // no counts
    EXPECT_THROW(save_imatrix(path, stats, {}), Error);
    stats["blk.0.attn_q.weight"] = {2, {1, -2}, {1}};  // a negative sum of squares
    EXPECT_THROW(save_imatrix(path, stats, {}), Error);
    EXPECT_FALSE(fs::exists(path));
}

}  // namespace
}  // namespace edgeq
