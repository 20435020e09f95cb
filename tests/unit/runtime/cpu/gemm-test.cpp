// The prompt-processing GEMM (from 4 to 16 activation rows on, per type; AVX2 and AVX-512) against
// the scalar reference dot product of every (activation row, weight row) pair: the integer parts
// are the same, so they differ only by float rounding, bounded by the number of sub-block terms.
#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <vector>

#include "kernel-test-util.h"
#include "runtime/cpu/gemm.h"

namespace edgeq::cpu {
namespace {

using kernel_test::activation_values;
using kernel_test::random_weights;

class GemmTest : public ::testing::TestWithParam<GgmlType> {
  protected:
    testing::Random random_;
};

struct Shape {
    int64_t m;
    int64_t n_out;
    int64_t n_blocks;
};

std::vector<Shape> shapes() {
    std::vector<Shape> s;
    for (int64_t m : {4, 9, 16, 17, 31, 64, 100}) {
        for (int64_t n_out : {1, 7, 33, 50}) {
            for (int64_t n_blocks : {1, 3}) s.push_back({m, n_out, n_blocks});
        }
    }
    s.push_back({17, 33, 37});
    s.push_back({100, 7, 23});
    s.push_back({40, 16, 64});
    return s;
}

std::vector<GgmlType> gemm_types() {
    return {GgmlType::Q4_0,   GgmlType::Q4_1,   GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0,
            GgmlType::IQ4_NL, GgmlType::Q2_K,   GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K,
            GgmlType::Q6_K,   GgmlType::IQ4_XS, GgmlType::TQ2_0};
}

// The GEMM kernel `isa` has for `type`, or null.
const GemmKernel* gemm_of(Isa isa, GgmlType type) {
    const KernelTable* table = isa == Isa::avx2     ? avx2_kernels()
                               : isa == Isa::avx512 ? avx512_kernels()
                                                    : nullptr;
    return table == nullptr ? nullptr : table->gemm[type_index(type)];
}

TEST_P(GemmTest, MatchesScalarReferenceOnOddShapes) {
    SCOPED_TRACE(random_.trace());
    const GgmlType type = GetParam();
    const VecDotFn reference = vec_dot(type, Isa::scalar);
    const int64_t bs = dtype(type).block_size;
    const GgmlType act = activation_type(type);
    const ActQuantFn quantize =
        act == GgmlType::Q8_0 ? scalar_kernels().quantize_q8 : scalar_kernels().quantize_q8_k;
    ThreadPool one(1);
    ThreadPool three(3);
    MatmulScratch scratch;
    int n_isas = 0;
    for (Isa isa : kernel_test::cpu_isas()) {
        const GemmKernel* kernel = gemm_of(isa, type);
        if (kernel == nullptr) continue;  // this ISA runs the dot products (matmul-test.cpp)
        ++n_isas;
        for (const Shape& shape : shapes()) {
            const int64_t k = shape.n_blocks * bs;
            const int64_t m = shape.m;
            const int64_t n_out = shape.n_out;
            const std::vector<uint8_t> w = random_weights(random_, type, n_out, k);
            std::vector<float> wf(static_cast<size_t>(n_out * k));
            to_float(type, w.data(), wf.data(), n_out * k);
            std::vector<float> x = random_.normal(static_cast<size_t>(m * k), 2.0f);
            x[static_cast<size_t>(random_.uniform_int(0, static_cast<int>(m * k) - 1))] *= 40;
            std::vector<float> y1(static_cast<size_t>(m * n_out), NAN);
            std::vector<float> y3(static_cast<size_t>(m * n_out), NAN);
            matmul(type, w.data(), n_out, k, x.data(), m, y1.data(), one, scratch, isa);
            matmul(type, w.data(), n_out, k, x.data(), m, y3.data(), three, scratch, isa);
            EXPECT_EQ(y1, y3) << "results depend on the thread count";

            std::vector<uint8_t> a(activation_row_size(act, k));
            for (int64_t i = 0; i < m; ++i) {
                // The scalar quantizer: the SIMD ones give the same bits (vec-dot-test.cpp).
                quantize(x.data() + i * k, a.data(), k);
                const std::vector<double> av = activation_values(act, a.data(), k);
                for (int64_t r = 0; r < n_out; ++r) {
                    float want = NAN;
                    reference(k, &want, w.data() + static_cast<size_t>(r) * row_size(type, k),
                              a.data());
                    const std::vector<float> row(wf.begin() + r * k, wf.begin() + (r + 1) * k);
                    const double magnitude = kernel_test::rounding_scale(row, av.data(), bs);
                    const double n_terms = static_cast<double>(k / kernel->sub_block);
                    const double tol = 4 * (n_terms + 16) * FLT_EPSILON * magnitude + 1e-30;
                    EXPECT_NEAR(y1[static_cast<size_t>(i * n_out + r)], want, tol)
                        << dtype(type).name << " " << isa_name(isa) << " m=" << m
                        << " n_out=" << n_out << " k=" << k << " (" << i << ", " << r << ")";
                }
            }
        }
    }
    if (n_isas == 0) GTEST_SKIP() << "no GEMM for " << dtype(type).name << " on this CPU";
}

// Which types each ISA runs as a GEMM: every one of them on AVX-512 VNNI; on AVX2 those whose
// unsigned values stay below 128 (vpmaddubsw's int16 pair sums).
TEST(GemmCoverage, TypesPerIsa) {
    const std::vector<GgmlType> wide = {GgmlType::Q8_0, GgmlType::IQ4_NL, GgmlType::IQ4_XS};
    if (avx512_kernels() != nullptr) {
        for (GgmlType type : gemm_types())
            EXPECT_NE(gemm_of(Isa::avx512, type), nullptr) << dtype(type).name;
    }
    if (avx2_kernels() != nullptr) {
        for (GgmlType type : gemm_types()) {
            const bool expected = std::find(wide.begin(), wide.end(), type) == wide.end();
            EXPECT_EQ(gemm_of(Isa::avx2, type) != nullptr, expected) << dtype(type).name;
        }
    }
}

INSTANTIATE_TEST_SUITE_P(GemmTypes, GemmTest, ::testing::ValuesIn(gemm_types()),
                         kernel_test::type_name);

// Extreme quants: every weight at the top or bottom of its range and activations of one sign,
// where an int16 or offset overflow would show.
TEST(GemmExtremes, SaturatedWeightsAndActivations) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    ThreadPool pool(2);
    MatmulScratch scratch;
    for (Isa isa : kernel_test::cpu_isas()) {
        for (GgmlType type : gemm_types()) {
            if (gemm_of(isa, type) == nullptr) continue;
            const int64_t k = 2 * dtype(type).block_size;
            const int64_t n_out = 19, m = 20;
            std::vector<float> wx(static_cast<size_t>(n_out * k));
            for (size_t j = 0; j < wx.size(); ++j) wx[j] = (j % 3 == 0) ? -1.0f : 1.0f;
            std::vector<uint8_t> w(row_size(type, k) * static_cast<size_t>(n_out));
            quantize_rows(type, wx.data(), w.data(), n_out, k, nullptr, nullptr, "weights");
            std::vector<float> x(static_cast<size_t>(m * k), 3.0f);
            for (size_t j = 0; j < x.size(); j += 7) x[j] = -3.0f;
            std::vector<float> y(static_cast<size_t>(m * n_out), NAN);
            matmul(type, w.data(), n_out, k, x.data(), m, y.data(), pool, scratch, isa);
            const GgmlType act = activation_type(type);
            std::vector<uint8_t> a(activation_row_size(act, k));
            for (int64_t i = 0; i < m; ++i) {
                quantize_activations(act, x.data() + i * k, a.data(), k);
                for (int64_t r = 0; r < n_out; ++r) {
                    float want = NAN;
                    vec_dot(type, Isa::scalar)(
                        k, &want, w.data() + static_cast<size_t>(r) * row_size(type, k), a.data());
                    EXPECT_NEAR(y[static_cast<size_t>(i * n_out + r)], want,
                                1e-4 * static_cast<double>(k) * 9)
                        << dtype(type).name << " " << isa_name(isa) << " (" << i << ", " << r
                        << ")";
                }
            }
        }
    }
}

}  // namespace
}  // namespace edgeq::cpu
