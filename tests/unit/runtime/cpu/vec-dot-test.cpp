// The dot-product kernels: the scalar reference against a float64 dot of the dequantized
// weights and activations, every SIMD variant this CPU runs against the scalar reference, and
// the SIMD activation quantizers against the scalar ones, bit for bit.
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstring>
#include <vector>

#include "edgeq/core/half.h"
#include "kernel-test-util.h"

namespace edgeq::cpu {
namespace {

using kernel_test::activation_values;
using kernel_test::cpu_isas;
using kernel_test::random_weights;

class VecDotTest : public ::testing::TestWithParam<GgmlType> {
  protected:
    // Lengths: one block, a few, and the widths of real matrices.
    std::vector<int64_t> lengths() const {
        const int64_t bs = dtype(GetParam()).block_size;
        if (bs == 1) return {1, 7, 16, 33, 255, 640, 2048, 4099};
        if (bs == 32) return {32, 64, 96, 640, 2048, 4096, 11008};
        return {256, 512, 768, 2560, 4096, 11008};
    }
    testing::Random random_;
};

// One weight row and its activation row, quantized by the scalar quantizers.
struct Case {
    std::vector<uint8_t> w;
    std::vector<uint8_t> a;
    std::vector<float> x;
};

Case make_case(testing::Random& random, GgmlType type, int64_t n) {
    Case c;
    c.w = random_weights(random, type, 1, n);
    c.x = random.normal(static_cast<size_t>(n), random.uniform(0.1f, 10.0f));
    if (random.uniform_int(0, 3) == 0)
        c.x[static_cast<size_t>(random.uniform_int(0, static_cast<int>(n) - 1))] *= 50;
    const GgmlType act = activation_type(type);
    c.a.resize(activation_row_size(act, n));
    const KernelTable& scalar = scalar_kernels();
    if (act == GgmlType::F32) {
        std::memcpy(c.a.data(), c.x.data(), c.a.size());
    } else if (act == GgmlType::Q8_0) {
        scalar.quantize_q8(c.x.data(), c.a.data(), n);
    } else {
        scalar.quantize_q8_k(c.x.data(), c.a.data(), n);
    }
    return c;
}

TEST_P(VecDotTest, ScalarMatchesFloat64DotOfDequantizedValues) {
    SCOPED_TRACE(random_.trace());
    const GgmlType type = GetParam();
    const VecDotFn dot = vec_dot(type, Isa::scalar);
    ASSERT_NE(dot, nullptr);
    for (int64_t n : lengths()) {
        for (int trial = 0; trial < 3; ++trial) {
            const Case c = make_case(random_, type, n);
            std::vector<float> w(static_cast<size_t>(n));
            to_float(type, c.w.data(), w.data(), n);
            const std::vector<double> a = activation_values(activation_type(type), c.a.data(), n);
            double expected = 0;
            for (size_t j = 0; j < w.size(); ++j) expected += w[j] * a[j];
            const double magnitude =
                kernel_test::rounding_scale(w, a.data(), dtype(type).block_size);
            float got = NAN;
            dot(n, &got, c.w.data(), c.a.data());
            // Float rounding of the block products and of their sum: a few ulps per block.
            const double n_terms = static_cast<double>(n / dtype(type).block_size);
            const double tol = 4 * (n_terms + 16) * FLT_EPSILON * magnitude + 1e-30;
            EXPECT_NEAR(got, expected, tol) << dtype(type).name << " n=" << n;
        }
    }
}

TEST_P(VecDotTest, EverySimdVariantMatchesScalar) {
    SCOPED_TRACE(random_.trace());
    const GgmlType type = GetParam();
    const VecDotFn scalar = vec_dot(type, Isa::scalar);
    for (Isa isa : cpu_isas()) {
        if (isa == Isa::scalar) continue;
        const VecDotFn dot = vec_dot(type, isa);
        ASSERT_NE(dot, nullptr) << isa_name(isa);
        for (int64_t n : lengths()) {
            for (int trial = 0; trial < 3; ++trial) {
                const Case c = make_case(random_, type, n);
                std::vector<float> w(static_cast<size_t>(n));
                to_float(type, c.w.data(), w.data(), n);
                const std::vector<double> a =
                    activation_values(activation_type(type), c.a.data(), n);
                const double magnitude =
                    kernel_test::rounding_scale(w, a.data(), dtype(type).block_size);
                float want = NAN;
                float got = NAN;
                scalar(n, &want, c.w.data(), c.a.data());
                dot(n, &got, c.w.data(), c.a.data());
                const double n_terms = static_cast<double>(n / dtype(type).block_size);
                const double tol = 4 * (n_terms + 16) * FLT_EPSILON * magnitude + 1e-30;
                EXPECT_NEAR(got, want, tol)
                    << dtype(type).name << " " << isa_name(isa) << " n=" << n;
            }
        }
    }
}

// The multi-row form gives each activation row exactly the single-row result.
TEST_P(VecDotTest, MultiRowEqualsSingleRow) {
    SCOPED_TRACE(random_.trace());
    const GgmlType type = GetParam();
    const int64_t n = lengths()[2];
    const GgmlType act = activation_type(type);
    const size_t a_row = activation_row_size(act, n);
    for (Isa isa : cpu_isas()) {
        const KernelTable* table = isa == Isa::scalar ? &scalar_kernels()
                                   : isa == Isa::avx2 ? avx2_kernels()
                                                      : avx512_kernels();
        if (table == nullptr || table->multi_dot[type_index(type)] == nullptr) continue;
        const MultiDotFn multi = table->multi_dot[type_index(type)];
        const VecDotFn single = table->dot[type_index(type)];
        const std::vector<uint8_t> w = random_weights(random_, type, 1, n);
        std::vector<uint8_t> a(a_row * k_max_acts);
        for (int c = 0; c < k_max_acts; ++c) {
            const std::vector<float> x = random_.normal(static_cast<size_t>(n));
            quantize_activations(act, x.data(), a.data() + c * a_row, n);
        }
        for (int n_acts = 1; n_acts <= k_max_acts; ++n_acts) {
            std::vector<float> out(static_cast<size_t>(2 * n_acts), NAN);
            multi(n, w.data(), a.data(), a_row, n_acts, out.data(), 2);
            for (int c = 0; c < n_acts; ++c) {
                float want = NAN;
                single(n, &want, w.data(), a.data() + c * a_row);
                EXPECT_EQ(out[static_cast<size_t>(2 * c)], want)
                    << dtype(type).name << " " << isa_name(isa) << " " << c << "/" << n_acts;
            }
        }
    }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, VecDotTest, ::testing::ValuesIn(kernel_test::weight_types()),
                         kernel_test::type_name);

TEST(ActivationQuantizerTest, SimdQuantizersGiveTheScalarBits) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    const KernelTable& scalar = scalar_kernels();
    for (const KernelTable* table : {avx2_kernels(), avx512_kernels()}) {
        if (table == nullptr) continue;
        for (int trial = 0; trial < 20; ++trial) {
            const int64_t n = 256 * random.uniform_int(1, 6);
            std::vector<float> x =
                random.normal(static_cast<size_t>(n), random.uniform(1e-3f, 100));
            if (trial % 4 == 1) std::fill(x.begin(), x.begin() + 300 % n, 0.0f);  // zero blocks
            if (trial % 4 == 2) x[7] = -x[100] * 1000;                            // ties in |max|
            if (trial % 4 == 3) x[5] = 1000, x[9] = -1000;
            std::vector<uint8_t> want(activation_row_size(GgmlType::Q8_K, n));
            std::vector<uint8_t> got(want.size());
            scalar.quantize_q8_k(x.data(), want.data(), n);
            table->quantize_q8_k(x.data(), got.data(), n);
            EXPECT_EQ(got, want) << "Q8_K";
            want.assign(activation_row_size(GgmlType::Q8_0, n), 0);
            got.assign(want.size(), 0);
            scalar.quantize_q8(x.data(), want.data(), n);
            table->quantize_q8(x.data(), got.data(), n);
            EXPECT_EQ(got, want) << "Q8_0 activations";
        }
    }
}

// The Q8_K activations are the GGUF Q8_K blocks edgeq's own quantizer writes.
TEST(ActivationQuantizerTest, Q8KIsEdgeqsQ8K) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    const int64_t n = 1024;
    const std::vector<float> x = random.normal(static_cast<size_t>(n), 3.0f);
    std::vector<uint8_t> want(row_size(GgmlType::Q8_K, n));
    quantize_rows(GgmlType::Q8_K, x.data(), want.data(), 1, n, nullptr, nullptr);
    std::vector<uint8_t> got(activation_row_size(GgmlType::Q8_K, n));
    scalar_kernels().quantize_q8_k(x.data(), got.data(), n);
    EXPECT_EQ(got, want);
}

TEST(ActivationQuantizerTest, Q8BlocksHoldScaleSumAndRoundedValues) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    const int64_t n = 96;
    const std::vector<float> x = random.normal(static_cast<size_t>(n), 2.0f);
    std::vector<ActBlockQ8> a(static_cast<size_t>(n / 32));
    quantize_activations(GgmlType::Q8_0, x.data(), a.data(), n);
    for (int64_t b = 0; b < n / 32; ++b) {
        float amax = 0;
        for (int j = 0; j < 32; ++j)
            amax = std::max(amax, std::fabs(x[static_cast<size_t>(32 * b + j)]));
        EXPECT_FLOAT_EQ(a[static_cast<size_t>(b)].d, amax / 127);
        int sum = 0;
        for (int j = 0; j < 32; ++j) {
            const float v = x[static_cast<size_t>(32 * b + j)];
            EXPECT_LE(std::fabs(a[static_cast<size_t>(b)].qs[j] * a[static_cast<size_t>(b)].d - v),
                      0.5f * amax / 127 * 1.0001f);
            sum += a[static_cast<size_t>(b)].qs[j];
        }
        EXPECT_EQ(a[static_cast<size_t>(b)].sum, sum);
    }
}

}  // namespace
}  // namespace edgeq::cpu
