// Tiled online-softmax attention against a naive float64 softmax over the same cache rows
// (decoded by the dtype table): F32, F16 and Q8_0 caches, interleaved heads, ranges shorter
// than, equal to and longer than a tile and starting anywhere, GQA groups, soft-capping; blocks
// of causal query tokens with sliding windows on every ISA; parts merged.
#include "edgeq/runtime/cpu/attention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "edgeq/core/cpu.h"
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

// ---- blocks of query tokens, every ISA ------------------------------------------------------

std::vector<Isa> cpu_isas() {
    std::vector<Isa> isas = {Isa::scalar};
    const CpuFeatures& f = cpu_features();
    if (f.avx2 && f.fma) isas.push_back(Isa::avx2);
    if (f.avx2 && f.fma && f.avx512f && f.avx512bw && f.avx512vl) isas.push_back(Isa::avx512);
    return isas;
}

struct BlockCase {
    GgmlType type;
    int head_dim, n_group, n_kv_heads, n_ctx, n_tok, window;
    float softcap;
};

std::string describe(const BlockCase& c, Isa isa) {
    return std::string(isa_name(isa)) + " " + std::string(dtype(c.type).name) + " dk " +
           std::to_string(c.head_dim) + " group " + std::to_string(c.n_group) + " ctx " +
           std::to_string(c.n_ctx) + " n_tok " + std::to_string(c.n_tok) + " window " +
           std::to_string(c.window) + " softcap " + std::to_string(c.softcap);
}

// The last n_tok of n_ctx cached positions query causally (within the window), as a prompt
// does: against float64 per row, and bit for bit against the same rows queried one token at a
// time (tiles sit at fixed positions, so blocking must not change a row's operations).
TEST(Attention, CausalBlocksMatchFloat64OnEveryIsa) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    std::vector<BlockCase> cases = {
        {GgmlType::F16, 64, 8, 4, 300, 13, 0, 0},
        {GgmlType::F16, 64, 8, 2, 33, 33, 0, 0},
        {GgmlType::F16, 256, 4, 1, 300, 17, 40, 0},
        {GgmlType::F16, 256, 4, 1, 7, 7, 512, 0},
        {GgmlType::F16, 128, 2, 2, 33, 5, 0, 0},
        {GgmlType::F16, 80, 1, 3, 300, 3, 0, 0},
        {GgmlType::Q8_0, 128, 4, 2, 300, 9, 0, 50.0f},
        {GgmlType::F32, 256, 2, 1, 300, 11, 33, 30.0f},
        {GgmlType::F32, 40, 1, 1, 1, 1, 0, 0},
        {GgmlType::F16, 64, 1, 1, 300, 1, 0, 0},
        {GgmlType::F32, 24, 3, 2, 77, 40, 5, 0},
    };
    for (Isa isa : cpu_isas()) {
        for (const BlockCase& c : cases) {
            SCOPED_TRACE(describe(c, isa));
            const Cache k = make_cache(random, c.type, c.n_ctx, c.n_kv_heads, c.head_dim, 1.0f);
            const Cache v = make_cache(random, c.type, c.n_ctx, c.n_kv_heads, c.head_dim, 2.0f);
            const int head = random.uniform_int(0, c.n_kv_heads - 1);
            const float scale = c.softcap > 0 ? random.uniform(0.5f, 4)  // hits the cap
                                              : 1.0f / std::sqrt(float(c.head_dim));
            // Token rows c.n_group * head_dim apart plus some padding, as in the engine's q.
            const size_t row = static_cast<size_t>(c.n_group * c.head_dim);
            const size_t q_stride = row + 8;
            const std::vector<float> q = random.normal(q_stride * static_cast<size_t>(c.n_tok));
            const size_t out_stride = row + 3;
            std::vector<float> out(out_stride * static_cast<size_t>(c.n_tok), -7.0f);
            const int pos0 = c.n_ctx - c.n_tok;
            cpu::AttentionScratch scratch(c.n_tok * c.n_group, c.head_dim, c.head_dim);
            const cpu::QueryBlock b{q.data(), q_stride, c.n_tok, c.n_group, pos0, c.window};
            cpu::attend(b, k.rows, v.rows, head, scale, c.softcap, out.data(), out_stride, scratch,
                        isa);
            for (int t = 0; t < c.n_tok; ++t) {
                const int pos = pos0 + t;
                const int begin = c.window > 0 ? std::max(0, pos - c.window + 1) : 0;
                const std::vector<float> qt(q.begin() + static_cast<ptrdiff_t>(t * q_stride),
                                            q.begin() + static_cast<ptrdiff_t>(t * q_stride + row));
                const std::vector<double> want =
                    naive(qt, c.n_group, k.rows, v.rows, head, begin, pos + 1, scale, c.softcap);
                // Score errors grow with dk (float dot products), output errors with the number
                // of weighted rows; the same form as above, with a floor for exp's 2 ulp.
                const double tol = 4e-6 * (c.head_dim + pos + 1 - begin) * scale + 2e-5;
                const float* o = out.data() + static_cast<size_t>(t) * out_stride;
                for (size_t i = 0; i < row; ++i) ASSERT_NEAR(o[i], want[i], tol) << "token " << t;
                for (size_t i = row; i < out_stride; ++i) ASSERT_EQ(o[i], -7.0f);  // untouched
                // The same token alone.
                std::vector<float> single(row);
                cpu::attend(qt.data(), c.n_group, k.rows, v.rows, head, begin, pos + 1, scale,
                            c.softcap, single.data(), scratch, isa);
                for (size_t i = 0; i < row; ++i) ASSERT_EQ(o[i], single[i]) << "token " << t;
            }
        }
    }
}

// One query's positions split into parts and merged equal attending over all of them (to float
// rounding: the merge reweights each part's sum once more); parts without positions are
// ignored.
TEST(Attention, PartsMergeToTheWhole) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    for (Isa isa : cpu_isas()) {
        for (int n_ctx : {1, 7, 33, 300, 700}) {
            SCOPED_TRACE(std::string(isa_name(isa)) + " ctx " + std::to_string(n_ctx));
            const int dk = 64, group = 4, window = n_ctx % 2 == 0 ? 100 : 0;
            const Cache k = make_cache(random, GgmlType::F16, n_ctx, 1, dk, 1.0f);
            const Cache v = make_cache(random, GgmlType::F16, n_ctx, 1, dk, 2.0f);
            const std::vector<float> q = random.normal(static_cast<size_t>(group * dk));
            const cpu::QueryBlock b{q.data(), 0, 1, group, n_ctx - 1, window};
            cpu::AttentionScratch scratch(group, dk, dk);
            std::vector<float> whole(static_cast<size_t>(group * dk));
            cpu::attend(b, k.rows, v.rows, 0, 0.125f, 0.0f, whole.data(), 0, scratch, isa);
            const int split = 96;  // parts of 96 positions from 0; some lie outside the window
            const int n_parts = (n_ctx + split - 1) / split;
            std::vector<cpu::AttentionPart> parts(static_cast<size_t>(n_parts),
                                                  cpu::AttentionPart(group, dk));
            for (int i = 0; i < n_parts; ++i)
                cpu::attend_part(b, k.rows, v.rows, 0, 0.125f, 0.0f, i * split, (i + 1) * split,
                                 parts[static_cast<size_t>(i)], scratch, isa);
            std::vector<float> merged(whole.size());
            cpu::attention_merge(parts.data(), n_parts, 1, group, dk, merged.data(), 0);
            for (size_t i = 0; i < whole.size(); ++i)
                EXPECT_NEAR(merged[i], whole[i], 1e-5 * (1 + std::abs(whole[i])));
        }
    }
}

// The vector kernels against the scalar one on the same block: close, not equal (FMA,
// polynomial exp, lane-wise maxima).
TEST(Attention, VectorKernelsMatchScalarReference) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    for (int dk : {64, 80, 128, 256}) {
        for (int group : {1, 2, 4, 8}) {
            const int n_ctx = random.uniform_int(1, 300), n_tok = std::min(n_ctx, 9);
            const Cache k = make_cache(random, GgmlType::F16, n_ctx, 1, dk, 1.0f);
            const Cache v = make_cache(random, GgmlType::F16, n_ctx, 1, dk, 1.0f);
            const size_t row = static_cast<size_t>(group * dk);
            const std::vector<float> q = random.normal(row * static_cast<size_t>(n_tok));
            const cpu::QueryBlock b{q.data(), row, n_tok, group, n_ctx - n_tok, 0};
            cpu::AttentionScratch scratch(n_tok * group, dk, dk);
            std::vector<float> ref(row * static_cast<size_t>(n_tok));
            const float scale = 1.0f / std::sqrt(float(dk));
            cpu::attend(b, k.rows, v.rows, 0, scale, 0.0f, ref.data(), row, scratch, Isa::scalar);
            for (Isa isa : cpu_isas()) {
                SCOPED_TRACE(std::string(isa_name(isa)) + " dk " + std::to_string(dk) + " group " +
                             std::to_string(group) + " ctx " + std::to_string(n_ctx));
                std::vector<float> out(ref.size());
                cpu::attend(b, k.rows, v.rows, 0, scale, 0.0f, out.data(), row, scratch, isa);
                for (size_t i = 0; i < ref.size(); ++i) EXPECT_NEAR(out[i], ref[i], 2e-5);
            }
        }
    }
}

}  // namespace
}  // namespace edgeq
