// Tiled online-softmax attention against a naive float64 softmax over the same cache rows
// (decoded by the dtype table): F32, F16 and Q8_0 caches, interleaved heads, ranges shorter
// than, equal to and longer than a tile and starting anywhere, GQA groups, soft-capping.
#include "edgeq/runtime/cpu/attention.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "edgeq/quant/dtype.h"
#include "test-random.h"

namespace edgeq {
namespace {

struct Cache {
    std::vector<uint8_t> bytes;
    cpu::KvRows rows;
};

// n_pos positions of n_heads rows of head_dim random values (sigma) of `type`.
Cache make_cache(testing::Random& random, GgmlType type, int n_pos, int n_heads, int head_dim,
                 float sigma) {
    Cache c;
    const size_t row = row_size(type, head_dim);
    c.bytes.resize(static_cast<size_t>(n_pos) * static_cast<size_t>(n_heads) * row);
    for (int j = 0; j < n_pos * n_heads; ++j) {
        const std::vector<float> x = random.normal(static_cast<size_t>(head_dim), sigma);
        dtype(type).from_float_ref(x.data(), c.bytes.data() + static_cast<size_t>(j) * row,
                                   head_dim);
    }
    c.rows = {type, c.bytes.data(), static_cast<size_t>(n_heads) * row, row, head_dim};
    return c;
}

std::vector<float> row_of(const cpu::KvRows& r, int head, int pos) {
    std::vector<float> v(static_cast<size_t>(r.head_dim));
    dtype(r.type).to_float(r.data + static_cast<size_t>(pos) * r.pos_stride +
                               static_cast<size_t>(head) * r.head_stride,
                           v.data(), r.head_dim);
    return v;
}

std::vector<double> naive(const std::vector<float>& q, int n_group, const cpu::KvRows& k,
                          const cpu::KvRows& v, int head, int begin, int end, float scale,
                          float softcap) {
    std::vector<double> out(static_cast<size_t>(n_group) * static_cast<size_t>(v.head_dim), 0.0);
    for (int g = 0; g < n_group; ++g) {
        std::vector<double> s;
        for (int j = begin; j < end; ++j) {
            const std::vector<float> kj = row_of(k, head, j);
            double dot = 0;
            for (int d = 0; d < k.head_dim; ++d)
                dot += static_cast<double>(q[static_cast<size_t>(g * k.head_dim + d)]) *
                       kj[static_cast<size_t>(d)];
            dot *= scale;
            if (softcap > 0) dot = softcap * std::tanh(dot / softcap);
            s.push_back(dot);
        }
        double max = s[0];
        for (double x : s) max = std::max(max, x);
        double sum = 0;
        for (double& x : s) sum += (x = std::exp(x - max));
        for (int j = begin; j < end; ++j) {
            const std::vector<float> vj = row_of(v, head, j);
            for (int d = 0; d < v.head_dim; ++d)
                out[static_cast<size_t>(g * v.head_dim + d)] +=
                    s[static_cast<size_t>(j - begin)] / sum * vj[static_cast<size_t>(d)];
        }
    }
    return out;
}

TEST(Attention, MatchesNaiveFloat64Softmax) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    struct Case {
        GgmlType type;
        int n_group, n_heads, head_dim_k, head_dim_v;
    };
    for (const Case& c :
         {Case{GgmlType::F32, 1, 1, 3, 5}, Case{GgmlType::F16, 4, 2, 16, 16},
          Case{GgmlType::F16, 3, 3, 64, 48}, Case{GgmlType::Q8_0, 2, 2, 32, 64},
          Case{GgmlType::Q8_0, 8, 1, 256, 256}, Case{GgmlType::F32, 1, 4, 80, 80}}) {
        const int n_pos = 150;
        const Cache k = make_cache(random, c.type, n_pos, c.n_heads, c.head_dim_k, 1.0f);
        const Cache v = make_cache(random, c.type, n_pos, c.n_heads, c.head_dim_v, 2.0f);
        cpu::AttentionScratch scratch(c.n_group, c.head_dim_k, c.head_dim_v);
        for (int trial = 0; trial < 12; ++trial) {
            const int len =
                trial < 6 ? std::vector<int>{1, 2, 31, 32, 33, 150}[static_cast<size_t>(trial)]
                          : random.uniform_int(1, n_pos);
            const int begin = random.uniform_int(0, n_pos - len);
            const int head = random.uniform_int(0, c.n_heads - 1);
            const float softcap = trial % 3 == 0 ? random.uniform(2, 30) : 0.0f;
            // Large scales make peaked softmaxes, where the running maximum matters.
            const float scale = random.uniform_int(0, 1) ? 1.0f / std::sqrt(float(c.head_dim_k))
                                                         : random.uniform(0.5f, 4);
            SCOPED_TRACE(std::string(dtype(c.type).name) + " group " + std::to_string(c.n_group) +
                         " dk " + std::to_string(c.head_dim_k) + " begin " + std::to_string(begin) +
                         " len " + std::to_string(len) + " softcap " + std::to_string(softcap) +
                         " scale " + std::to_string(scale));
            const std::vector<float> q =
                random.normal(static_cast<size_t>(c.n_group * c.head_dim_k));
            std::vector<float> out(static_cast<size_t>(c.n_group * c.head_dim_v), -1.0f);
            cpu::attend(q.data(), c.n_group, k.rows, v.rows, head, begin, begin + len, scale,
                        softcap, out.data(), scratch);
            const std::vector<double> want =
                naive(q, c.n_group, k.rows, v.rows, head, begin, begin + len, scale, softcap);
            // Float accumulation of dot products of length dk and of len weighted rows.
            const double tol = 2e-6 * (c.head_dim_k + len) * scale + 1e-5;
            for (size_t i = 0; i < out.size(); ++i) EXPECT_NEAR(out[i], want[i], tol * 2.0);
        }
    }
}

TEST(Attention, OneKeyReturnsItsValue) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    const Cache k = make_cache(random, GgmlType::F32, 9, 2, 8, 1.0f);
    const Cache v = make_cache(random, GgmlType::F32, 9, 2, 8, 1.0f);
    cpu::AttentionScratch scratch(1, 8, 8);
    const std::vector<float> q = random.normal(8, 100);  // huge scores: still exactly weight 1
    std::vector<float> out(8);
    cpu::attend(q.data(), 1, k.rows, v.rows, 1, 5, 6, 1.0f, 0.0f, out.data(), scratch);
    EXPECT_EQ(out, row_of(v.rows, 1, 5));
}

}  // namespace
}  // namespace edgeq
