// The vector variants of the row operations (AVX2, AVX-512) on every ISA this CPU runs: the
// polynomial exp against std::exp in ulps over the whole float range and at its edges; RMS
// norm, SiLU / GELU-tanh gating and soft-capping against float64 evaluations of their
// definitions and against the scalar reference, on lengths around the vector widths.
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <limits>
#include <numbers>
#include <string>
#include <vector>

#include "edgeq/core/cpu.h"
#include "edgeq/runtime/cpu/ops.h"
#include "test-random.h"

namespace edgeq {
namespace {

std::vector<Isa> cpu_isas() {
    std::vector<Isa> isas = {Isa::scalar};
    const CpuFeatures& f = cpu_features();
    if (f.avx2 && f.fma) isas.push_back(Isa::avx2);
    if (f.avx2 && f.fma && f.avx512f && f.avx512bw && f.avx512vl) isas.push_back(Isa::avx512);
    return isas;
}

const std::vector<int64_t> k_lengths = {1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 64, 255, 1031, 2048};

// |y - want| in units of the float spacing at want.
double ulps(float y, double want) {
    const float w = static_cast<float>(want);
    const double ulp =
        std::nextafter(std::abs(w), std::numeric_limits<float>::infinity()) - std::abs(w);
    return std::abs(static_cast<double>(y) - want) / ulp;
}

TEST(ExpRow, WithinTwoUlpOverTheFloatRange) {
    for (Isa isa : cpu_isas()) {
        SCOPED_TRACE(isa_name(isa));
        // Every 1/4096 from -87.3 (just above FLT_MIN's log) to 88.72 (FLT_MAX's).
        std::vector<float> x;
        for (double v = -87.3; v < 88.72; v += 1.0 / 4096) x.push_back(static_cast<float>(v));
        for (float v : {0.0f, -0.0f, 1e-30f, -1e-30f, 1e-7f, -1e-7f, 0.34657359f, -0.34657359f})
            x.push_back(v);
        std::vector<float> y(x.size());
        cpu::exp_row(x.data(), y.data(), static_cast<int64_t>(x.size()), isa);
        double worst = 0;
        for (size_t i = 0; i < x.size(); ++i) {
            const double u = ulps(y[i], std::exp(static_cast<double>(x[i])));
            worst = std::max(worst, u);
            ASSERT_LE(u, 2.0) << "x = " << x[i];
        }
        RecordProperty(std::string("worst_ulp_") + isa_name(isa), std::to_string(worst));
    }
}

TEST(ExpRow, EdgesSubnormalsInfinitiesAndNaN) {
    const float inf = std::numeric_limits<float>::infinity();
    const float nan = std::numeric_limits<float>::quiet_NaN();
    for (Isa isa : cpu_isas()) {
        SCOPED_TRACE(isa_name(isa));
        std::vector<float> x = {-inf,  -1e30f, -104.5f, -100.0f, -95.0f, -88.0f,
                                88.7f, 88.8f,  100.0f,  1e30f,   inf,    nan};
        std::vector<float> y(x.size());
        cpu::exp_row(x.data(), y.data(), static_cast<int64_t>(x.size()), isa);
        EXPECT_EQ(y[0], 0.0f);
        EXPECT_EQ(y[1], 0.0f);
        EXPECT_EQ(y[2], 0.0f);
        for (size_t i = 3; i < 6; ++i) {  // subnormal results: within a few of the least step
            EXPECT_NEAR(y[i], std::exp(double{x[i]}), 4 * std::numeric_limits<float>::denorm_min());
        }
        EXPECT_LE(ulps(y[6], std::exp(double{x[6]})), 2.0);
        for (size_t i = 7; i < 11; ++i) EXPECT_EQ(y[i], inf);
        EXPECT_TRUE(std::isnan(y[11]));
        // In place, with every tail length.
        for (int64_t n : k_lengths) {
            testing::Random random;
            std::vector<float> v = random.normal(static_cast<size_t>(n), 10);
            std::vector<float> want(v.size());
            cpu::exp_row(v.data(), want.data(), n, isa);
            cpu::exp_row(v.data(), v.data(), n, isa);
            EXPECT_EQ(v, want);
        }
    }
}

TEST(RmsNorm, EveryIsaMatchesFloat64) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    for (Isa isa : cpu_isas()) {
        for (int64_t n : k_lengths) {
            SCOPED_TRACE(std::string(isa_name(isa)) + " n " + std::to_string(n));
            const std::vector<float> x =
                random.normal(static_cast<size_t>(n), random.uniform(0.01f, 50));
            const std::vector<float> w = random.normal(static_cast<size_t>(n));
            double ss = 0;
            for (float v : x) ss += static_cast<double>(v) * v;
            const double r = 1.0 / std::sqrt(ss / static_cast<double>(n) + 1e-6);
            std::vector<float> y(x.size()), plain(x.size());
            cpu::rms_norm(x.data(), w.data(), y.data(), n, 1e-6f, isa);
            cpu::rms_norm(x.data(), nullptr, plain.data(), n, 1e-6f, isa);
            // Float sums of n/32 terms per lane, then across lanes: relative error below
            // (n/32 + 8) eps in the sum, half of it in 1/sqrt; 1e-5 covers n = 2048.
            for (size_t i = 0; i < x.size(); ++i) {
                const double want = x[i] * r;
                EXPECT_NEAR(plain[i], want, 1e-5 * std::abs(want) + 1e-30);
                EXPECT_NEAR(y[i], want * w[i], 1e-5 * std::abs(want * w[i]) + 1e-30);
            }
            std::vector<float> in_place = x;
            cpu::rms_norm(in_place.data(), w.data(), in_place.data(), n, 1e-6f, isa);
            EXPECT_EQ(in_place, y);
        }
    }
}

TEST(Activation, GatedEveryIsaMatchesFloat64) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    for (Isa isa : cpu_isas()) {
        for (int64_t n : k_lengths) {
            std::vector<float> gate = random.normal(static_cast<size_t>(n), 4);
            if (n > 20) {  // the extremes, where exp saturates
                gate[0] = 80.0f;
                gate[1] = -80.0f;
                gate[2] = 0.0f;
                gate[3] = -0.0f;
                gate[4] = 20.0f;
                gate[5] = -20.0f;
            }
            const std::vector<float> up = random.normal(static_cast<size_t>(n), 2);
            for (Activation act : {Activation::silu, Activation::gelu_tanh}) {
                SCOPED_TRACE(std::string(isa_name(isa)) + " n " + std::to_string(n) +
                             (act == Activation::silu ? " silu" : " gelu"));
                std::vector<float> out(gate.size());
                cpu::gated_activation(act, gate.data(), up.data(), out.data(), n, isa);
                for (size_t i = 0; i < gate.size(); ++i) {
                    const double x = gate[i];
                    double a, tol;
                    if (act == Activation::silu) {
                        a = x / (1 + std::exp(-x));
                        tol = 1e-6 * std::abs(a * up[i]);  // exp's 2 ulp, +, /, *
                    } else {
                        const double two_u =
                            2 * std::sqrt(2 / std::numbers::pi) * (x + 0.044715 * x * x * x);
                        a = x / (1 + std::exp(-two_u));  // = 0.5 x (1 + tanh(u)), no cancelling
                        // The scalar form cancels in 1 + tanh (6e-8 |x| absolutely). The vector
                        // form x / (1 + e^(-2u)) evaluates 2u in float (4 roundings, constants
                        // rounded to float: about 1e-6 relatively), which e^(-2u) multiplies by
                        // |2u|.
                        tol = (1e-6 + 1.5e-6 * std::abs(two_u)) * std::abs(a * up[i]) +
                              (isa == Isa::scalar ? 1e-7 * std::abs(x * up[i]) : 0.0);
                    }
                    // Near gate -10, GELU's e^(-2u) passes e^87, where the vector exp
                    // saturates: the exact value (below 2e-37 |up|) comes out as 0.
                    EXPECT_NEAR(out[i], a * up[i], tol + 2e-37 * (1 + std::abs(up[i])))
                        << "gate " << x;
                }
                std::vector<float> in_place = gate;
                cpu::gated_activation(act, in_place.data(), up.data(), in_place.data(), n, isa);
                EXPECT_EQ(in_place, out);
            }
        }
    }
}

TEST(SoftCap, EveryIsaMatchesFloat64) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    for (Isa isa : cpu_isas()) {
        for (int64_t n : k_lengths) {
            for (float cap : {1.0f, 30.0f, 50.0f}) {
                SCOPED_TRACE(std::string(isa_name(isa)) + " n " + std::to_string(n) + " cap " +
                             std::to_string(cap));
                std::vector<float> x = random.normal(static_cast<size_t>(n), 2 * cap);
                if (n > 4) {
                    x[0] = 1e30f;
                    x[1] = -1e30f;
                    x[2] = 0.0f;
                    x[3] = 1e-20f;
                }
                std::vector<float> y = x;
                cpu::soft_cap(y.data(), n, cap, isa);
                for (size_t i = 0; i < x.size(); ++i) {
                    const double want = cap * std::tanh(static_cast<double>(x[i]) / cap);
                    // tanh via e^(-2|x|): 1 - t loses up to 2 ulp of 1 absolutely.
                    EXPECT_NEAR(y[i], want, 3e-7 * cap + 2e-7 * std::abs(want));
                    EXPECT_LE(std::abs(y[i]), cap);
                }
            }
        }
    }
}

}  // namespace
}  // namespace edgeq
