// The quantizers, for every type the table can write, on Gaussian and heavy-tailed rows:
//   (a, b) quantize then dequantize; every value within one quantization step of the original,
//          the step read back from the block's stored scales (path without importance);
//   (c)    error ceilings (RMSE / sigma on Gaussian rows), plain and importance-weighted;
//   (d)    importance weights lower the importance-weighted error;
//   (e)    without importance, quantize_row is the reference quantizer (Q4_0 ... TQ2_0);
//   (h)    zero and constant rows.
// The reference quantizers against ggml's rounding are in reference-quantize-test.cpp,
// quantize_rows in quantize-rows-test.cpp, the sub-block searches in quantize-search-test.cpp.
// Set EDGEQ_TEST_REPORT=1 to print the measured step ratios and errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/half-reference.h"
#include "edgeq/quant/dtype.h"
#include "quant/quantize-test-util.h"
#include "test-random.h"

namespace edgeq::quant_test {
namespace {

using testing::ref_fp16_to_fp32;
using testing::ref_fp32_to_fp16;

// Types whose quantizer ignores importance weights.
bool ignores_importance(GgmlType type) {
    return type == GgmlType::F32 || type == GgmlType::F16 || type == GgmlType::BF16 ||
           type == GgmlType::Q8_K;
}

std::vector<int64_t> row_lengths(const DType& t) {
    if (t.block_size == 1) return {1, 7, 32, 256, 4096};
    if (t.block_size == 32) return {32, 96, 160, 256, 4096, 11008};
    return {256, 512, 4096, 11008};
}

// ---- the quantization step of every value, read back from the stored scales ----

constexpr float k_iq4_largest_gap = 24.0f;  // between 89 and 113 in the IQ4 grid

// The step of a k-quant sub-block: d * sc. A sub-block whose integer scale is 0 gets the
// resolution of the super-block scale, |d| (its values are then all 0, or -dmin * m).
float sub_block_step(float d, int sc) {
    return std::fabs(d * static_cast<float>(std::max(1, std::abs(sc))));
}

// Spacing of the F16 / BF16 values around |x| (one unit in the last place).
float float_format_step(GgmlType type, float x) {
    const float a = std::fabs(x);
    const int mantissa_bits = type == GgmlType::F16 ? 10 : 7;
    const int min_exponent = type == GgmlType::F16 ? -14 : -126;
    if (a == 0) return std::ldexp(1.0f, min_exponent - mantissa_bits);
    const int e = std::max(min_exponent, std::ilogb(a));
    return std::ldexp(1.0f, e - mantissa_bits);
}

// step[i] for every value of a row of n values quantized to `t`.
std::vector<float> quantization_steps(const DType& t, const std::vector<uint8_t>& bytes,
                                      const float* x, int64_t n) {
    std::vector<float> step(static_cast<size_t>(n));
    const int64_t n_blocks = n / t.block_size;
    for (int64_t b = 0; b < n_blocks; ++b) {
        const uint8_t* p = bytes.data() + static_cast<size_t>(b) * t.type_size;
        float* s = step.data() + b * t.block_size;
        switch (t.type) {
            case GgmlType::F32:
                s[0] = 0;
                break;
            case GgmlType::F16:
            case GgmlType::BF16:
                s[0] = float_format_step(t.type, x[b]);
                break;
            case GgmlType::Q4_0:
            case GgmlType::Q4_1:
            case GgmlType::Q5_0:
            case GgmlType::Q5_1:
            case GgmlType::Q8_0:
                std::fill(s, s + 32, std::fabs(f16_at(p, 0)));
                break;
            case GgmlType::IQ4_NL:
                std::fill(s, s + 32, k_iq4_largest_gap * std::fabs(f16_at(p, 0)));
                break;
            case GgmlType::Q2_K:
                for (int v = 0; v < 256; ++v) s[v] = sub_block_step(f16_at(p, 80), p[v / 16] & 15);
                break;
            case GgmlType::Q3_K:
                for (int v = 0; v < 256; ++v) {
                    s[v] = sub_block_step(f16_at(p, 108), q3_k_scale(p + 96, v / 16));
                }
                break;
            case GgmlType::Q4_K:
            case GgmlType::Q5_K:
                for (int v = 0; v < 256; ++v) {
                    s[v] = sub_block_step(f16_at(p, 0), k4_scale(p + 4, v / 32));
                }
                break;
            case GgmlType::Q6_K:
                for (int v = 0; v < 256; ++v) {
                    s[v] = sub_block_step(f16_at(p, 208), static_cast<int8_t>(p[192 + v / 16]));
                }
                break;
            case GgmlType::Q8_K: {
                float d;
                std::memcpy(&d, p, 4);
                std::fill(s, s + 256, std::fabs(d));
                break;
            }
            case GgmlType::TQ1_0:
                std::fill(s, s + 256, std::fabs(f16_at(p, 52)));
                break;
            case GgmlType::TQ2_0:
                std::fill(s, s + 256, std::fabs(f16_at(p, 64)));
                break;
            case GgmlType::IQ4_XS:
                for (int v = 0; v < 256; ++v) {
                    const int j = v / 32;
                    const int scale = (((p[4 + j / 2] >> (4 * (j % 2))) & 15) |
                                       (((p[2] | (p[3] << 8)) >> (2 * j)) & 3) << 4) -
                                      32;
                    s[v] = k_iq4_largest_gap * sub_block_step(f16_at(p, 0), scale);
                }
                break;
            default:
                ADD_FAILURE() << "no step rule for " << t.name;
                return step;
        }
    }
    return step;
}

class Quantize : public ::testing::TestWithParam<const DType*> {
  protected:
    testing::Random random_;
};

// Formats with two levels of scales (an F16 super-block scale times small integer sub-block
// scales, and for Q2_K/Q4_K/Q5_K integer minimums).
bool two_level(GgmlType type) {
    return type == GgmlType::Q2_K || type == GgmlType::Q3_K || type == GgmlType::Q4_K ||
           type == GgmlType::Q5_K || type == GgmlType::Q6_K || type == GgmlType::IQ4_XS;
}

// The largest |x - y| / step allowed without importance, on Gaussian rows and on heavy-tailed
// rows (negative: measured and reported, not checked).
//  - One scale per block: rounding leaves half a step; clipping the far side of an asymmetric
//    range (the largest value maps to -8, its mirror can only reach +7) one step; the F16
//    rounding of the stored scale adds up to 16 * 2^-11 of a step, hence 1 + 1/128.
//  - Float formats: half a unit in the last place.
//  - Two-level formats: the least-squares searches may clip a sub-block's extreme values (by up
//    to 1.72 steps in 4M Gaussian values measured); on heavy-tailed rows the sub-block scale
//    and minimum, searched one at a time, clip outliers by many steps (up to 28 for Q5_K), see
//    DISABLED_SubBlockScalesAreLocallyOptimal in quantize-search-test.cpp.
struct StepBound {
    double gaussian;
    double heavy_tailed;
};

StepBound step_bound(GgmlType type) {
    constexpr double one_step = 1.0 + 1.0 / 128;
    if (type == GgmlType::F32) return {0.0, 0.0};
    if (type == GgmlType::F16 || type == GgmlType::BF16) return {0.5, 0.5};
    if (type == GgmlType::IQ4_XS) return {one_step, -1};
    if (two_level(type)) return {2.0, -1};
    return {one_step, one_step};
}

// (a) + (b): every value within one step of the original, without importance; with
// importance the round trip must at least be finite.
TEST_P(Quantize, EachValueWithinOneStep) {
    const DType& t = *GetParam();
    SCOPED_TRACE(random_.trace());
    const StepBound bound = step_bound(t.type);
    for (Data kind : {Data::gaussian, Data::heavy_tailed}) {
        double worst_ratio = 0;
        std::string worst_where;
        for (int64_t n : row_lengths(t)) {
            const int64_t n_rows = std::max<int64_t>(1, 8192 / n);
            const float sigma = std::pow(10.0f, random_.uniform(-3.0f, 3.0f));
            const std::vector<float> x = make_rows(random_, kind, n_rows, n, sigma);
            const std::vector<float> importance = random_.importance(static_cast<size_t>(n));
            for (int64_t r = 0; r < n_rows; ++r) {
                const float* row = x.data() + r * n;
                const std::vector<uint8_t> bytes = quantize(t, row, n, nullptr);
                const std::vector<float> y = dequantize(t, bytes, n);
                const std::vector<float> step = quantization_steps(t, bytes, row, n);
                for (int64_t i = 0; i < n; ++i) {
                    const auto k = static_cast<size_t>(i);
                    ASSERT_TRUE(std::isfinite(y[k])) << t.name << " value " << i;
                    const double error = std::fabs(static_cast<double>(row[i]) - y[k]);
                    const double ratio = error == 0 ? 0 : error / step[k];
                    if (ratio > worst_ratio) {
                        worst_ratio = ratio;
                        worst_where = "n " + std::to_string(n) + " row " + std::to_string(r) +
                                      " value " + std::to_string(i) + ": x " +
                                      std::to_string(row[i]) + " y " + std::to_string(y[k]) +
                                      " step " + std::to_string(step[k]);
                    }
                }
                const std::vector<float> yw =
                    dequantize(t, quantize(t, row, n, importance.data()), n);
                for (float v : yw) ASSERT_TRUE(std::isfinite(v)) << t.name << " with importance";
            }
        }
        const double limit = kind == Data::gaussian ? bound.gaussian : bound.heavy_tailed;
        if (limit >= 0) {
            EXPECT_LE(worst_ratio, limit)
                << t.name << " on " << data_name(kind) << " rows, worst at " << worst_where;
        }
        RecordProperty(std::string("worst_step_ratio_") + data_name(kind),
                       std::to_string(worst_ratio));
        if (report_enabled()) {
            std::printf("[report] %-7s %-12s worst |x-y|/step %.4f (%s)\n",
                        std::string(t.name).c_str(), data_name(kind), worst_ratio,
                        worst_where.c_str());
        }
    }
}

// ---- (c) + (d): error ceilings and the effect of importance ----

struct Ceiling {
    const char* name;
    double plain;     // RMSE / sigma, no importance
    double weighted;  // importance-weighted RMSE / weighted sigma, with importance
};

// Measured on Gaussian rows (16 x 4096, sigma 1) with a lognormal importance (sigma 1.5) shared
// by the rows, as an imatrix is: the largest of 30 runs, plus 15%. The ranges measured were
// (plain; weighted): Q4_0 0.0852-0.0868; 0.0626-0.0702, Q4_1 0.0777-0.0786; 0.0528-0.0565,
// Q5_0 0.0423-0.0431; 0.0314-0.0348, Q5_1 0.0376-0.0381; 0.0259-0.0275, Q8_0 0.00532-0.00538;
// 0.00381-0.00410, Q2_K 0.261-0.265; 0.189-0.203, Q3_K 0.143-0.144; 0.114-0.119, Q4_K
// 0.0696-0.0705; 0.0537-0.0573, Q5_K 0.0344-0.0348; 0.0274-0.0293, Q6_K 0.0167-0.0170;
// 0.0133-0.0142, Q8_K 0.00690-0.00706, IQ4_NL 0.0733-0.0738; 0.0579-0.0619, IQ4_XS
// 0.0736-0.0744; 0.0582-0.0629, TQ1_0 0.801-0.815; 0.412-0.431, TQ2_0 0.801-0.814;
// 0.414-0.428, F16 0.00021, BF16 0.00167.
constexpr Ceiling k_ceilings[] = {
    {"F32", 0.0, 0.0},        {"F16", 0.000245, 0.000245}, {"BF16", 0.00193, 0.00196},
    {"Q4_0", 0.0998, 0.0807}, {"Q4_1", 0.0905, 0.0650},    {"Q5_0", 0.0496, 0.0401},
    {"Q5_1", 0.0439, 0.0316}, {"Q8_0", 0.00619, 0.00472},  {"Q2_K", 0.305, 0.233},
    {"Q3_K", 0.167, 0.138},   {"Q4_K", 0.0811, 0.0660},    {"Q5_K", 0.0401, 0.0338},
    {"Q6_K", 0.0195, 0.0164}, {"Q8_K", 0.00812, 0.00814},  {"TQ1_0", 0.937, 0.496},
    {"TQ2_0", 0.936, 0.493},  {"IQ4_NL", 0.0850, 0.0713},  {"IQ4_XS", 0.0856, 0.0724},
};

const Ceiling* ceiling_for(std::string_view name) {
    for (const Ceiling& c : k_ceilings) {
        if (name == c.name) return &c;
    }
    return nullptr;
}

struct Errors {
    double plain_rmse;      // RMSE of the path without importance / RMS of x
    double plain_wrmse;     // importance-weighted RMSE of that path / weighted RMS of x
    double weighted_wrmse;  // importance-weighted RMSE of the path with importance / same
};

// Quantizes n_rows rows of n values both ways, with one importance vector for every row (as
// an imatrix gives one per column).
Errors measure(const DType& t, const std::vector<float>& x, const std::vector<float>& w,
               int64_t n_rows, int64_t n) {
    double sxx = 0, swxx = 0, see = 0, swee_plain = 0, swee_weighted = 0;
    for (int64_t r = 0; r < n_rows; ++r) {
        const float* row = x.data() + r * n;
        const std::vector<float> y = dequantize(t, quantize(t, row, n, nullptr), n);
        const std::vector<float> yw = dequantize(t, quantize(t, row, n, w.data()), n);
        for (int64_t i = 0; i < n; ++i) {
            const auto k = static_cast<size_t>(i);
            const double xi = row[i];
            const double e = xi - y[k];
            const double ew = xi - yw[k];
            sxx += xi * xi;
            swxx += w[k] * xi * xi;
            see += e * e;
            swee_plain += w[k] * e * e;
            swee_weighted += w[k] * ew * ew;
        }
    }
    return {std::sqrt(see / sxx), std::sqrt(swee_plain / swxx), std::sqrt(swee_weighted / swxx)};
}

TEST_P(Quantize, ErrorCeilingsOnGaussianRows) {
    const DType& t = *GetParam();
    SCOPED_TRACE(random_.trace());
    const Ceiling* ceiling = ceiling_for(t.name);
    ASSERT_NE(ceiling, nullptr) << "no ceiling for " << t.name;
    constexpr int64_t n_rows = 16;
    constexpr int64_t n = 4096;
    const std::vector<float> x = random_.normal(n_rows * n, 1.0f);
    const std::vector<float> w = random_.importance(n);
    const Errors e = measure(t, x, w, n_rows, n);
    EXPECT_LE(e.plain_rmse, ceiling->plain) << t.name << " without importance";
    EXPECT_LE(e.weighted_wrmse, ceiling->weighted) << t.name << " with importance";
    RecordProperty("rmse_over_sigma", std::to_string(e.plain_rmse));
    RecordProperty("weighted_rmse_over_sigma", std::to_string(e.weighted_wrmse));
    if (report_enabled()) {
        std::printf(
            "[report] %-7s RMSE/sigma plain %.5f | weighted RMSE/sigma: plain path %.5f,"
            " importance path %.5f\n",
            std::string(t.name).c_str(), e.plain_rmse, e.plain_wrmse, e.weighted_wrmse);
    }
}

// (d) With importance, the importance-weighted error is no larger than without it.
TEST_P(Quantize, ImportanceLowersTheWeightedError) {
    const DType& t = *GetParam();
    SCOPED_TRACE(random_.trace());
    constexpr int64_t n_rows = 8;
    constexpr int64_t n = 4096;
    for (Data kind : {Data::gaussian, Data::heavy_tailed}) {
        const std::vector<float> x = make_rows(random_, kind, n_rows, n, 1.0f);
        const std::vector<float> w = random_.importance(n);
        if (ignores_importance(t.type)) {
            // The weights must change nothing.
            for (int64_t r = 0; r < n_rows; ++r) {
                const float* row = x.data() + r * n;
                EXPECT_EQ(quantize(t, row, n, w.data()), quantize(t, row, n, nullptr))
                    << t.name << " row " << r;
            }
            continue;
        }
        const Errors e = measure(t, x, w, n_rows, n);
        EXPECT_LE(e.weighted_wrmse, e.plain_wrmse) << t.name << " on " << data_name(kind);
        if (report_enabled()) {
            std::printf(
                "[report] %-7s %-12s weighted RMSE/sigma: without importance %.5f, "
                "with %.5f (ratio %.3f)\n",
                std::string(t.name).c_str(), data_name(kind), e.plain_wrmse, e.weighted_wrmse,
                e.weighted_wrmse / e.plain_wrmse);
        }
    }
}

// (e) Without importance the best-effort quantizer is the reference quantizer (for the
// formats whose reference is ggml's plain rounding, and those that ignore importance).
TEST_P(Quantize, WithoutImportanceIsTheReference) {
    const DType& t = *GetParam();
    static const std::vector<GgmlType> k_same = {GgmlType::Q4_0,  GgmlType::Q4_1, GgmlType::Q5_0,
                                                 GgmlType::Q5_1,  GgmlType::Q8_0, GgmlType::TQ1_0,
                                                 GgmlType::TQ2_0, GgmlType::Q8_K, GgmlType::F32,
                                                 GgmlType::F16,   GgmlType::BF16};
    if (std::find(k_same.begin(), k_same.end(), t.type) == k_same.end()) {
        GTEST_SKIP() << t.name << " has a searching quantizer";
    }
    SCOPED_TRACE(random_.trace());
    for (int64_t n : row_lengths(t)) {
        for (Data kind : {Data::gaussian, Data::heavy_tailed}) {
            const int64_t n_rows = std::max<int64_t>(1, 4096 / n);
            const std::vector<float> x =
                make_rows(random_, kind, n_rows, n, std::pow(10.0f, random_.uniform(-2, 2)));
            for (int64_t r = 0; r < n_rows; ++r) {
                const float* row = x.data() + r * n;
                std::vector<uint8_t> ref(row_size(t.type, n));
                t.from_float_ref(row, ref.data(), n);
                ASSERT_EQ(quantize(t, row, n, nullptr), ref) << t.name << " n " << n;
            }
        }
    }
}

// ---- (h) zero and constant rows ----

TEST_P(Quantize, ZeroRowsGiveZeros) {
    const DType& t = *GetParam();
    const int64_t n = t.block_size == 1 ? 64 : 2 * t.block_size;
    const std::vector<float> zeros(static_cast<size_t>(n), 0.0f);
    const std::vector<float> ones(static_cast<size_t>(n), 1.0f);
    const std::vector<float> no_weight(static_cast<size_t>(n), 0.0f);
    for (const float* importance :
         {static_cast<const float*>(nullptr), ones.data(), no_weight.data()}) {
        const std::vector<float> y = dequantize(t, quantize(t, zeros.data(), n, importance), n);
        for (float v : y) ASSERT_EQ(v, 0.0f) << t.name;
        std::vector<uint8_t> ref(row_size(t.type, n));
        t.from_float_ref(zeros.data(), ref.data(), n);
        for (float v : dequantize(t, ref, n)) ASSERT_EQ(v, 0.0f) << t.name << " reference";
    }
}

// A constant row comes back as the constant, as precisely as an F16 scale allows: rounding
// the scale c / level to F16 moves it by at most a relative 2^-11 (half a unit in the last
// place), the float product with the level adds rounding of 2^-24. The constants stay within
// [0.5, 1000] so that every format's scale (down to c / 4096 for Q6_K) is a normal F16 number;
// below that the scale's subnormal precision is the limit.
constexpr double k_constant_tolerance = 1.0 / 2048 + 1.0 / (1 << 20);

std::vector<float> test_constants(testing::Random& random) {
    std::vector<float> constants = {1.0f, -1.0f, 0.5f, 0.75f, -2.5f, 7.0f, 1000.0f, -640.3f};
    for (int i = 0; i < 100; ++i) {
        const float c = std::pow(10.0f, random.uniform(-0.3f, 3.0f));
        constants.push_back(random.uniform_int(0, 1) != 0 ? c : -c);
    }
    return constants;
}

double check_constant_rows(const DType& t, testing::Random& random,
                           const std::vector<const float*>& importances, int64_t n,
                           const char* label) {
    double worst = 0;
    for (float c : test_constants(random)) {
        const std::vector<float> x(static_cast<size_t>(n), c);
        for (const float* importance : importances) {
            const std::vector<float> y = dequantize(t, quantize(t, x.data(), n, importance), n);
            for (int64_t i = 0; i < n; ++i) {
                const float v = y[static_cast<size_t>(i)];
                EXPECT_FALSE(std::isnan(v)) << t.name << " constant " << c;
                const double rel = std::fabs(static_cast<double>(v) - c) / std::fabs(c);
                worst = std::max(worst, rel);
                if (t.type == GgmlType::F32) {
                    EXPECT_EQ(v, c);
                } else if (t.type == GgmlType::F16) {
                    EXPECT_EQ(v, ref_fp16_to_fp32(ref_fp32_to_fp16(c)));
                } else if (t.type == GgmlType::BF16) {
                    EXPECT_EQ(v, testing::ref_bf16_to_fp32(testing::ref_fp32_to_bf16(c)));
                } else if (!(rel <= k_constant_tolerance)) {
                    ADD_FAILURE() << t.name << " " << label << ": the constant " << c
                                  << " came back as " << v << " (value " << i << ", relative error "
                                  << rel << ")";
                    return worst;
                }
            }
        }
    }
    if (report_enabled()) {
        std::printf("[report] %-7s constant rows, %s: worst relative error %.3g\n",
                    std::string(t.name).c_str(), label, worst);
    }
    return worst;
}

TEST_P(Quantize, ConstantRowsRoundTrip) {
    const DType& t = *GetParam();
    const int64_t n = t.block_size == 1 ? 64 : 2 * t.block_size;
    testing::Random random;
    SCOPED_TRACE(random.trace());
    const std::vector<float> ones(static_cast<size_t>(n), 1.0f);
    const std::vector<float> no_weight(static_cast<size_t>(n), 0.0f);
    check_constant_rows(t, random, {nullptr, ones.data(), no_weight.data()}, n,
                        "no or uniform importance");
}

// Non-uniform importance does not change the best answer for a constant row: reproducing the
// constant makes every weighted error zero.
TEST_P(Quantize, ConstantRowsRoundTripWithImportance) {
    const DType& t = *GetParam();
    const int64_t n = t.block_size == 1 ? 64 : 2 * t.block_size;
    testing::Random random;
    SCOPED_TRACE(random.trace());
    const std::vector<float> w = random.importance(static_cast<size_t>(n));
    check_constant_rows(t, random, {w.data()}, n, "random importance");
}

INSTANTIATE_TEST_SUITE_P(Types, Quantize, ::testing::ValuesIn(quantizable_types()), type_name);

}  // namespace
}  // namespace edgeq::quant_test
