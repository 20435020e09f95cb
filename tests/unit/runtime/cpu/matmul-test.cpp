// matmul against a naive float64 loop over the dequantized weights and the unquantized
// activations, for odd shapes, every ISA this CPU runs and one or several threads; the
// tolerance is what quantizing the activations to 8 bits may cost, bounded per block.
#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <vector>

#include "edgeq/core/error.h"
#include "kernel-test-util.h"

namespace edgeq::cpu {
namespace {

using kernel_test::cpu_isas;
using kernel_test::random_weights;

class MatmulTest : public ::testing::TestWithParam<GgmlType> {
  protected:
    testing::Random random_;
};

// Bound on |sum_j w_j (x_j - a_j)| when x is quantized in blocks of `block` to 8 bits:
// each a_j is within half a step (max |x| / 127 / 2) of x_j.
double activation_error_bound(const std::vector<float>& w, const float* x, int64_t k,
                              GgmlType act) {
    if (act == GgmlType::F32) return 0;
    const int64_t block = act == GgmlType::Q8_0 ? 32 : 256;
    double bound = 0;
    for (int64_t b = 0; b < k; b += block) {
        double amax = 0;
        for (int64_t j = b; j < b + block; ++j) amax = std::max(amax, std::fabs(double{x[j]}));
        double wsum = 0;
        for (int64_t j = b; j < b + block; ++j) wsum += std::fabs(w[static_cast<size_t>(j)]);
        bound += wsum * amax / 127 * 0.5;
    }
    return bound;
}

TEST_P(MatmulTest, MatchesNaiveLoopOnOddShapes) {
    SCOPED_TRACE(random_.trace());
    const GgmlType type = GetParam();
    const int64_t bs = dtype(type).block_size;
    const std::vector<int64_t> ks =
        bs == 1 ? std::vector<int64_t>{1, 33, 300} : std::vector<int64_t>{bs, 3 * bs, 5 * bs};
    const GgmlType act = activation_type(type);
    ThreadPool one(1);
    ThreadPool three(3);
    MatmulScratch scratch;
    for (int64_t k : ks) {
        for (int64_t n_out : {1, 7, 33}) {
            const std::vector<uint8_t> w = random_weights(random_, type, n_out, k);
            std::vector<float> wf(static_cast<size_t>(n_out * k));
            to_float(type, w.data(), wf.data(), n_out * k);
            for (int64_t m : {1, 2, 3, 5, 17}) {
                const std::vector<float> x = random_.normal(static_cast<size_t>(m * k));
                for (Isa isa : cpu_isas()) {
                    std::vector<float> y1(static_cast<size_t>(m * n_out), NAN);
                    std::vector<float> y3(static_cast<size_t>(m * n_out), NAN);
                    matmul(type, w.data(), n_out, k, x.data(), m, y1.data(), one, scratch, isa);
                    matmul(type, w.data(), n_out, k, x.data(), m, y3.data(), three, scratch, isa);
                    // Results do not depend on the thread count.
                    EXPECT_EQ(y1, y3) << dtype(type).name << " " << isa_name(isa);
                    for (int64_t i = 0; i < m; ++i) {
                        for (int64_t r = 0; r < n_out; ++r) {
                            const std::vector<float> row(wf.begin() + r * k,
                                                         wf.begin() + (r + 1) * k);
                            double want = 0;
                            std::vector<double> xi(static_cast<size_t>(k));
                            for (int64_t j = 0; j < k; ++j) {
                                xi[static_cast<size_t>(j)] = x[static_cast<size_t>(i * k + j)];
                                want += double{row[static_cast<size_t>(j)]} *
                                        xi[static_cast<size_t>(j)];
                            }
                            const double magnitude =
                                kernel_test::rounding_scale(row, xi.data(), bs);
                            const double tol =
                                activation_error_bound(row, x.data() + i * k, k, act) +
                                4 * (static_cast<double>(k / bs) + 16) * FLT_EPSILON * magnitude *
                                    2;
                            EXPECT_NEAR(y1[static_cast<size_t>(i * n_out + r)], want, tol)
                                << dtype(type).name << " " << isa_name(isa) << " k=" << k
                                << " n_out=" << n_out << " m=" << m << " (" << i << ", " << r
                                << ")";
                        }
                    }
                }
            }
        }
    }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, MatmulTest, ::testing::ValuesIn(kernel_test::weight_types()),
                         kernel_test::type_name);

TEST(MatmulErrors, RefusesPartialBlocksAndTypesWithoutKernels) {
    ThreadPool pool(1);
    MatmulScratch scratch;
    std::vector<float> x(64), y(2);
    std::vector<uint8_t> w(1024);
    EXPECT_THROW(matmul(GgmlType::Q4_K, w.data(), 1, 64, x.data(), 1, y.data(), pool, scratch),
                 Error);
    EXPECT_THROW(matmul(GgmlType::IQ2_XXS, w.data(), 1, 256, x.data(), 1, y.data(), pool, scratch),
                 Error);
}

// Once the scratch is large enough, a matmul does not grow it.
TEST(MatmulScratchTest, ReusedWithoutGrowing) {
    testing::Random random;
    ThreadPool pool(2);
    MatmulScratch scratch;
    const int64_t k = 512;
    const std::vector<uint8_t> w = random_weights(random, GgmlType::Q4_K, 8, k);
    const std::vector<float> x = random.normal(4 * k);
    std::vector<float> y(32);
    matmul(GgmlType::Q4_K, w.data(), 8, k, x.data(), 4, y.data(), pool, scratch);
    const uint8_t* data = scratch.activations.data();
    const size_t capacity = scratch.activations.capacity();
    matmul(GgmlType::Q4_K, w.data(), 8, k, x.data(), 1, y.data(), pool, scratch);
    matmul(GgmlType::Q4_K, w.data(), 8, k, x.data(), 4, y.data(), pool, scratch);
    EXPECT_EQ(scratch.activations.data(), data);
    EXPECT_EQ(scratch.activations.capacity(), capacity);

    // The prompt-processing buffers (decoded panels, regrouped activations) likewise.
    const std::vector<float> x64 = random.normal(64 * k);
    std::vector<float> y64(64 * 8);
    matmul(GgmlType::Q4_K, w.data(), 8, k, x64.data(), 64, y64.data(), pool, scratch);
    const uint8_t* acts = scratch.gemm_activations.data();
    std::vector<const uint8_t*> panels;
    for (const auto& p : scratch.gemm_panels) panels.push_back(p.data());
    matmul(GgmlType::Q4_K, w.data(), 8, k, x64.data(), 20, y64.data(), pool, scratch);
    matmul(GgmlType::Q4_K, w.data(), 8, k, x64.data(), 64, y64.data(), pool, scratch);
    EXPECT_EQ(scratch.gemm_activations.data(), acts);
    for (size_t t = 0; t < panels.size(); ++t) EXPECT_EQ(scratch.gemm_panels[t].data(), panels[t]);
}

}  // namespace
}  // namespace edgeq::cpu
