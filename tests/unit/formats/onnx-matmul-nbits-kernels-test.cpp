// The AVX2 exact scoring loop of the MatMulNBits search must give the scalar reference's bits,
// and the reference must give the sums computed here in long double from their definition.
#include "formats/onnx-matmul-nbits-kernels.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "edgeq/core/cpu.h"
#include "test-random.h"

namespace edgeq::nbits {
namespace {

struct Case {
    float iscale, lo, hi;
};

std::vector<Case> cases(testing::Random& random) {
    std::vector<Case> out;
    for (int bits : {4, 8}) {
        const int qmax = (1 << bits) - 1;
        for (int t = 0; t < 6; ++t) {
            const int zp = t == 0 ? 0 : t == 1 ? qmax : random.uniform_int(0, qmax);
            out.push_back({random.uniform(-300.0f, 300.0f), static_cast<float>(-zp),
                           static_cast<float>(qmax - zp)});
        }
    }
    return out;
}

class ExactSumsTest : public ::testing::TestWithParam<int> {
  protected:
    testing::Random random_;
};

TEST_P(ExactSumsTest, ScalarMatchesTheDefinition) {
    SCOPED_TRACE(random_.trace());
    const int n = GetParam();
    for (int trial = 0; trial < 20; ++trial) {
        const std::vector<float> x = random_.normal(static_cast<size_t>(n), 0.05f);
        const std::vector<float> w = random_.importance(static_cast<size_t>(n));
        for (const Case& c : cases(random_)) {
            long double rxq = 0, rqq = 0;
            for (int i = 0; i < n; ++i) {
                const float k = std::nearbyint(std::clamp(x[i] * c.iscale, c.lo, c.hi));
                rxq += static_cast<long double>(w[i]) * k * x[i];
                rqq += static_cast<long double>(w[i]) * k * k;
            }
            double sxq, sqq;
            exact_sums_scalar(x.data(), w.data(), n, c.iscale, c.lo, c.hi, &sxq, &sqq);
            EXPECT_NEAR(sxq, static_cast<double>(rxq), 1e-12 * (1 + std::fabs(rxq)));
            EXPECT_NEAR(sqq, static_cast<double>(rqq), 1e-12 * (1 + std::fabs(rqq)));
        }
    }
}

TEST_P(ExactSumsTest, Avx2MatchesScalarBitForBit) {
    if (!cpu_features().avx2) GTEST_SKIP() << "no AVX2 on this machine";
    SCOPED_TRACE(random_.trace());
    const int n = GetParam();
    const ExactSums avx2 = exact_sums_avx2();
    for (int trial = 0; trial < 50; ++trial) {
        std::vector<float> x =
            random_.normal(static_cast<size_t>(n), random_.uniform(1e-3f, 10.0f));
        x[0] = -0.0f;  // zeros of both signs round alike
        const std::vector<float> w = random_.importance(static_cast<size_t>(n));
        for (const Case& c : cases(random_)) {
            double s1, q1, s2, q2;
            exact_sums_scalar(x.data(), w.data(), n, c.iscale, c.lo, c.hi, &s1, &q1);
            avx2(x.data(), w.data(), n, c.iscale, c.lo, c.hi, &s2, &q2);
            EXPECT_EQ(s1, s2);
            EXPECT_EQ(q1, q2);
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Lengths, ExactSumsTest, ::testing::Values(4, 8, 16, 32, 40, 64, 128));

}  // namespace
}  // namespace edgeq::nbits
