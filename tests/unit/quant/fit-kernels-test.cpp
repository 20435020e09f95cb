// The SIMD scale-search loops must give exactly the scalar reference's bits (see
// src/quant/fit-kernels.h), on random groups, scales and weights.
#include "quant/fit-kernels.h"

#include "edgeq/core/cpu.h"

#include <gtest/gtest.h>

#include <vector>

#include "test-random.h"

namespace edgeq::quant {
namespace {

class FitKernelsTest : public ::testing::TestWithParam<int> {
  protected:
    void SetUp() override {
        if (fit_kernels_avx2() == nullptr || !cpu_features().avx2) {
            GTEST_SKIP() << "no AVX2 on this machine";
        }
    }
    testing::Random random_;
};

TEST_P(FitKernelsTest, Avx2MatchesScalarBitForBit) {
    SCOPED_TRACE(random_.trace());
    const int n = GetParam();
    const FitKernels& scalar = fit_kernels_scalar();
    const FitKernels& avx2 = *fit_kernels_avx2();
    for (int trial = 0; trial < 50; ++trial) {
        const std::vector<float> x =
            random_.normal(static_cast<size_t>(n), random_.uniform(1e-3f, 10.0f));
        const std::vector<float> w = random_.importance(static_cast<size_t>(n));
        constexpr int k_cand = 7;
        std::vector<float> iscale(k_cand), scale(k_cand), lo(k_cand), min(k_cand);
        for (int c = 0; c < k_cand; ++c) {
            iscale[c] = random_.uniform(-40.0f, 40.0f);
            scale[c] = random_.uniform(0.01f, 2.0f) * (c % 2 == 0 ? 1.0f : -1.0f);
            lo[c] = random_.uniform(-3.0f, 0.0f);
            min[c] = random_.uniform(0.0f, 3.0f);
        }
        std::vector<float> a1(k_cand), a2(k_cand), a3(k_cand), b1(k_cand), b2(k_cand), b3(k_cand);

        scalar.symmetric_sums(x.data(), w.data(), n, iscale.data(), k_cand, -8, 7, a1.data(),
                              a2.data());
        avx2.symmetric_sums(x.data(), w.data(), n, iscale.data(), k_cand, -8, 7, b1.data(),
                            b2.data());
        EXPECT_EQ(a1, b1);
        EXPECT_EQ(a2, b2);

        scalar.affine_sums(x.data(), w.data(), n, lo.data(), iscale.data(), k_cand, 15, a1.data(),
                           a2.data(), a3.data());
        avx2.affine_sums(x.data(), w.data(), n, lo.data(), iscale.data(), k_cand, 15, b1.data(),
                         b2.data(), b3.data());
        EXPECT_EQ(a1, b1);
        EXPECT_EQ(a2, b2);
        EXPECT_EQ(a3, b3);

        scalar.iq4_sums(x.data(), w.data(), n, iscale.data(), k_cand, a1.data(), a2.data());
        avx2.iq4_sums(x.data(), w.data(), n, iscale.data(), k_cand, b1.data(), b2.data());
        EXPECT_EQ(a1, b1);
        EXPECT_EQ(a2, b2);

        scalar.symmetric_errors(x.data(), w.data(), n, scale.data(), k_cand, -32, 31, a1.data());
        avx2.symmetric_errors(x.data(), w.data(), n, scale.data(), k_cand, -32, 31, b1.data());
        EXPECT_EQ(a1, b1);

        std::vector<float> positive(scale);
        for (auto& s : positive) s = std::abs(s);
        scalar.affine_errors(x.data(), w.data(), n, positive.data(), min.data(), k_cand, 31,
                             a1.data());
        avx2.affine_errors(x.data(), w.data(), n, positive.data(), min.data(), k_cand, 31,
                           b1.data());
        EXPECT_EQ(a1, b1);

        scalar.iq4_errors(x.data(), w.data(), n, scale.data(), k_cand, a1.data());
        avx2.iq4_errors(x.data(), w.data(), n, scale.data(), k_cand, b1.data());
        EXPECT_EQ(a1, b1);
    }
}

// Groups are 16, 32 or 256 values in the formats; 8 and 40 cover the loop bounds.
INSTANTIATE_TEST_SUITE_P(GroupSizes, FitKernelsTest, ::testing::Values(8, 16, 32, 40, 256));

}  // namespace
}  // namespace edgeq::quant
