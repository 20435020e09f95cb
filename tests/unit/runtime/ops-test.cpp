// The decoder's row operations against float64 evaluations of their definitions, on random
// inputs of odd lengths: RMS norm, RoPE (both layouts, partial rotation, frequency factors,
// linear scaling, magnitude factor) and its relative-position property, SiLU / GELU-tanh
// gating, soft-capping, softmax.
#include "edgeq/runtime/cpu/ops.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <vector>

#include "test-random.h"

namespace edgeq {
namespace {

TEST(RmsNorm, MatchesFloat64Definition) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    for (int64_t n : {1, 3, 17, 64, 255, 1031}) {
        const std::vector<float> x =
            random.normal(static_cast<size_t>(n), random.uniform(0.01f, 50));
        const std::vector<float> w = random.normal(static_cast<size_t>(n));
        const float eps = n % 2 == 0 ? 1e-6f : 1e-5f;
        double ss = 0;
        for (float v : x) ss += static_cast<double>(v) * v;
        const double r = 1.0 / std::sqrt(ss / static_cast<double>(n) + eps);
        std::vector<float> y(static_cast<size_t>(n)), plain(static_cast<size_t>(n));
        cpu::rms_norm(x.data(), w.data(), y.data(), n, eps);
        cpu::rms_norm(x.data(), nullptr, plain.data(), n, eps);
        for (int64_t i = 0; i < n; ++i) {
            const double want = x[static_cast<size_t>(i)] * r;
            EXPECT_NEAR(plain[static_cast<size_t>(i)], want, 1e-6 * std::abs(want) + 1e-30);
            EXPECT_NEAR(y[static_cast<size_t>(i)], want * w[static_cast<size_t>(i)],
                        2e-6 * std::abs(want * w[static_cast<size_t>(i)]) + 1e-30);
        }
        std::vector<float> in_place = x;  // y may be x
        cpu::rms_norm(in_place.data(), w.data(), in_place.data(), n, eps);
        EXPECT_EQ(in_place, y);
    }
}

TEST(RmsNorm, EpsilonKeepsZeroRowsFinite) {
    std::vector<float> x(7, 0.0f), y(7, 1.0f);
    cpu::rms_norm(x.data(), nullptr, y.data(), 7, 1e-6f);
    for (float v : y) EXPECT_EQ(v, 0.0f);
}

// Rotates pair (a, b) of each head by theta_i = pos * scale * base^(-2i/n_rot) / factor_i,
// in float64, and scales by attn_factor.
std::vector<double> rope_reference(const std::vector<float>& x, int n_heads, int head_dim,
                                   int n_rot, RopeStyle style, const RopeParams& p, int pos) {
    std::vector<double> y(x.begin(), x.end());
    for (int h = 0; h < n_heads; ++h) {
        for (int i = 0; i < n_rot / 2; ++i) {
            double theta =
                pos * static_cast<double>(p.freq_scale) * std::pow(p.freq_base, -2.0 * i / n_rot);
            if (!p.factors.empty()) theta /= p.factors[static_cast<size_t>(i)];
            const int a = h * head_dim + (style == RopeStyle::normal ? 2 * i : i);
            const int b = h * head_dim + (style == RopeStyle::normal ? 2 * i + 1 : i + n_rot / 2);
            const double x0 = x[static_cast<size_t>(a)], x1 = x[static_cast<size_t>(b)];
            y[static_cast<size_t>(a)] =
                p.attn_factor * (x0 * std::cos(theta) - x1 * std::sin(theta));
            y[static_cast<size_t>(b)] =
                p.attn_factor * (x0 * std::sin(theta) + x1 * std::cos(theta));
        }
    }
    return y;
}

std::vector<float> rope(std::vector<float> x, int n_heads, int head_dim, int n_rot, RopeStyle style,
                        const RopeParams& p, int pos) {
    std::vector<float> cos(static_cast<size_t>(n_rot / 2)), sin(static_cast<size_t>(n_rot / 2));
    cpu::rope_cos_sin(p, n_rot, pos, cos.data(), sin.data());
    cpu::rope_apply(x.data(), n_heads, head_dim, n_rot, style, cos.data(), sin.data());
    return x;
}

TEST(Rope, BothStylesMatchFloat64Rotation) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    struct Shape {
        int n_heads, head_dim, n_rot;
    };
    for (const Shape& shape : {Shape{1, 2, 2}, Shape{3, 16, 16}, Shape{2, 64, 32}, Shape{5, 96, 96},
                               Shape{1, 256, 256}}) {
        for (RopeStyle style : {RopeStyle::normal, RopeStyle::neox}) {
            RopeParams p;
            p.freq_base = random.uniform_int(0, 1) ? 10000.0f : 1e6f;
            if (random.uniform_int(0, 1)) p.freq_scale = 1.0f / random.uniform(1, 8);
            if (random.uniform_int(0, 1)) p.attn_factor = random.uniform(1, 1.3f);
            if (random.uniform_int(0, 1)) {
                for (int i = 0; i < shape.n_rot / 2; ++i)
                    p.factors.push_back(random.uniform(1, 32));
            }
            for (int pos : {0, 1, 7, 100, 4095, 131071}) {
                SCOPED_TRACE("heads " + std::to_string(shape.n_heads) + " dim " +
                             std::to_string(shape.head_dim) + " rot " +
                             std::to_string(shape.n_rot) + " pos " + std::to_string(pos) +
                             (style == RopeStyle::neox ? " neox" : " normal"));
                const std::vector<float> x =
                    random.normal(static_cast<size_t>(shape.n_heads * shape.head_dim));
                const std::vector<float> got =
                    rope(x, shape.n_heads, shape.head_dim, shape.n_rot, style, p, pos);
                const std::vector<double> want =
                    rope_reference(x, shape.n_heads, shape.head_dim, shape.n_rot, style, p, pos);
                // Angles up to 1e5 radians lose ~1e-11 relative in float64; the float cos/sin
                // round to 6e-8.
                for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(got[i], want[i], 2e-6);
            }
        }
    }
}

TEST(Rope, ScoresDependOnlyOnRelativePosition) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    const int head_dim = 64;
    for (RopeStyle style : {RopeStyle::normal, RopeStyle::neox}) {
        RopeParams p;
        p.freq_base = 500000.0f;
        const std::vector<float> q = random.normal(head_dim), k = random.normal(head_dim);
        auto score = [&](int m, int n) {
            const std::vector<float> a = rope(q, 1, head_dim, head_dim, style, p, m);
            const std::vector<float> b = rope(k, 1, head_dim, head_dim, style, p, n);
            double s = 0;
            for (int i = 0; i < head_dim; ++i) s += static_cast<double>(a[i]) * b[i];
            return s;
        };
        const int d = random.uniform_int(0, 50);
        const double base = score(d, 0);
        for (int offset : {1, 13, 200, 1999}) EXPECT_NEAR(score(d + offset, offset), base, 1e-4);
    }
}

TEST(Rope, PositionZeroIsIdentityAndPassThroughDimsStay) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    RopeParams p;
    const std::vector<float> x = random.normal(3 * 40);
    EXPECT_EQ(rope(x, 3, 40, 40, RopeStyle::neox, p, 0), x);
    const std::vector<float> y = rope(x, 3, 40, 24, RopeStyle::normal, p, 9);
    for (int h = 0; h < 3; ++h) {
        for (int i = 24; i < 40; ++i)
            EXPECT_EQ(y[static_cast<size_t>(h * 40 + i)], x[static_cast<size_t>(h * 40 + i)]);
    }
}

double gelu_tanh_ref(double x) {
    return 0.5 * x * (1 + std::tanh(std::sqrt(2 / std::numbers::pi) * (x + 0.044715 * x * x * x)));
}

TEST(Activation, GeluTanhAndSiluMatchFloat64) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    std::vector<float> xs = random.normal(1001, 4);
    for (float v : {0.0f, -0.0f, 1.0f, -1.0f, 10.0f, -10.0f, 30.0f, -30.0f, 88.0f, -88.0f})
        xs.push_back(v);
    for (float x : xs) {
        const double g = gelu_tanh_ref(x);
        // 1 + tanh(..) cancels for negative x: an absolute error of ~6e-8 |x|.
        EXPECT_NEAR(cpu::gelu_tanh(x), g, 2e-7 * std::abs(g) + 1e-7 * std::abs(x) + 1e-30) << x;
        // The tanh form approximates x * Phi(x) to within 5e-4 everywhere.
        EXPECT_NEAR(g, 0.5 * x * std::erfc(-x / std::numbers::sqrt2), 5e-4) << x;
        const double s = x / (1 + std::exp(-static_cast<double>(x)));
        EXPECT_NEAR(cpu::silu(x), s, 2e-7 * std::abs(s) + 1e-30) << x;
    }
}

TEST(Activation, GatedMultipliesByUp) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    const std::vector<float> gate = random.normal(77, 3), up = random.normal(77, 3);
    for (Activation act : {Activation::silu, Activation::gelu_tanh}) {
        std::vector<float> out(77);
        cpu::gated_activation(act, gate.data(), up.data(), out.data(), 77);
        for (size_t i = 0; i < 77; ++i) {
            const double a = act == Activation::silu ? gate[i] / (1 + std::exp(-double{gate[i]}))
                                                     : gelu_tanh_ref(gate[i]);
            // 1 + tanh(..) cancels for negative gates: an absolute error of ~6e-8 |gate|.
            EXPECT_NEAR(out[i], a * up[i],
                        1e-6 * std::abs(a * up[i]) + 1e-7 * std::abs(gate[i] * up[i]) + 1e-30);
        }
        std::vector<float> in_place = gate;
        cpu::gated_activation(act, in_place.data(), up.data(), in_place.data(), 77);
        EXPECT_EQ(in_place, out);
    }
}

TEST(SoftCap, MatchesTanhFormAndBounds) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    for (float cap : {1.0f, 15.0f, 30.0f, 50.0f}) {
        std::vector<float> x = random.normal(129, 3 * cap);
        x.push_back(1e30f);
        x.push_back(-1e30f);
        std::vector<float> y = x;
        cpu::soft_cap(y.data(), static_cast<int64_t>(y.size()), cap);
        for (size_t i = 0; i < x.size(); ++i) {
            const double want = cap * std::tanh(static_cast<double>(x[i]) / cap);
            EXPECT_NEAR(y[i], want, 1e-6 * cap);
            EXPECT_LE(std::abs(y[i]), cap);
            if (std::abs(x[i]) < 0.01f * cap) {
                EXPECT_NEAR(y[i], x[i], 1e-4 * std::abs(x[i]) + 1e-6);
            }
        }
    }
}

TEST(Softmax, MatchesFloat64AndSurvivesLargeInputs) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    for (int64_t n : {1, 2, 5, 33, 257, 50001}) {
        for (float shift : {0.0f, 1000.0f, -1000.0f}) {
            std::vector<float> x = random.normal(static_cast<size_t>(n), 5);
            for (float& v : x) v += shift;
            double max = x[0];
            for (float v : x) max = std::max(max, double{v});
            double sum = 0;
            for (float v : x) sum += std::exp(v - max);
            std::vector<float> y = x;
            cpu::softmax(y.data(), n);
            double total = 0;
            for (size_t i = 0; i < y.size(); ++i) {
                const double want = std::exp(x[i] - max) / sum;
                EXPECT_NEAR(y[i], want, 1e-6 * want + 1e-12);
                total += y[i];
            }
            EXPECT_NEAR(total, 1.0, 1e-5);
        }
    }
}

}  // namespace
}  // namespace edgeq
