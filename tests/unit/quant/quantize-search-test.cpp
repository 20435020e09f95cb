// The scale searches of the quantizers, judged from their output alone: given the scales a
// block stores, every value must be the nearest representable one; and (disabled until the
// search is fixed) no neighbouring integer sub-block scale or minimum may lower a sub-block's
// error in the two-level formats (Q2_K..Q6_K, IQ4_XS).
#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "edgeq/quant/dtype.h"
#include "quant/quantize-test-util.h"
#include "test-random.h"

namespace edgeq::quant_test {
namespace {

class QuantizeSearch : public ::testing::TestWithParam<const DType*> {
  protected:
    testing::Random random_;
};

// A sub-block of a two-level format as stored: value = scale * level - offset, where the
// levels are the integers qmin..qmax or the IQ4 grid.
struct SubBlock {
    float d;     // super-block scale
    float dmin;  // super-block minimum scale (affine formats), else 0
    int sc;      // integer sub-block scale
    int m;       // integer sub-block minimum (affine formats), else 0
};

struct TwoLevelLayout {
    int n_sub;
    int sub_size;
    bool affine;
    bool iq4;
    int qmin, qmax;    // levels (not for IQ4)
    int sc_lo, sc_hi;  // stored range of sc (and of m for affine formats)
};

TwoLevelLayout two_level_layout(GgmlType type) {
    switch (type) {
        case GgmlType::Q2_K:
            return {16, 16, true, false, 0, 3, 0, 15};
        case GgmlType::Q3_K:
            return {16, 16, false, false, -4, 3, -32, 31};
        case GgmlType::Q4_K:
            return {8, 32, true, false, 0, 15, 0, 63};
        case GgmlType::Q5_K:
            return {8, 32, true, false, 0, 31, 0, 63};
        case GgmlType::Q6_K:
            return {16, 16, false, false, -32, 31, -128, 127};
        default:
            return {8, 32, false, true, 0, 0, -32, 31};  // IQ4_XS
    }
}

SubBlock read_sub_block(GgmlType type, const uint8_t* p, int j) {
    switch (type) {
        case GgmlType::Q2_K:
            return {f16_at(p, 80), f16_at(p, 82), p[j] & 15, p[j] >> 4};
        case GgmlType::Q3_K:
            return {f16_at(p, 108), 0, q3_k_scale(p + 96, j), 0};
        case GgmlType::Q4_K:
        case GgmlType::Q5_K: {
            const uint8_t* s = p + 4;
            const int m = j < 4 ? (s[j + 4] & 63) : ((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
            return {f16_at(p, 0), f16_at(p, 2), k4_scale(s, j), m};
        }
        case GgmlType::Q6_K:
            return {f16_at(p, 208), 0, static_cast<int8_t>(p[192 + j]), 0};
        default: {  // IQ4_XS
            const int low = (p[4 + j / 2] >> (4 * (j % 2))) & 15;
            const int high = ((p[2] | (p[3] << 8)) >> (2 * j)) & 3;
            return {f16_at(p, 0), 0, (low | (high << 4)) - 32, 0};
        }
    }
}

constexpr int k_iq4_levels[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                  1,    13,   25,  38,  53,  69,  89,  113};

// The squared error of a sub-block of x when each value takes its nearest representable value
// for the given sub-block scale and minimum.
double best_sub_block_error(const TwoLevelLayout& layout, const float* x, const SubBlock& s) {
    const float scale = s.d * static_cast<float>(s.sc);
    const float offset = s.dmin * static_cast<float>(s.m);
    double total = 0;
    for (int i = 0; i < layout.sub_size; ++i) {
        double best = std::numeric_limits<double>::infinity();
        if (layout.iq4) {
            for (int level : k_iq4_levels) {
                const double e = x[i] - static_cast<double>(scale * static_cast<float>(level));
                best = std::min(best, e * e);
            }
        } else {
            for (int q = layout.qmin; q <= layout.qmax; ++q) {
                const double e = x[i] - static_cast<double>(scale * static_cast<float>(q) - offset);
                best = std::min(best, e * e);
            }
        }
        total += best;
    }
    return total;
}

// The representable values of value v of a block: scale * level - offset for each level.
struct ValueGrid {
    float scale;
    float offset;
    std::vector<int> levels;
};

std::vector<int> level_range(int lo, int hi) {
    std::vector<int> levels;
    for (int q = lo; q <= hi; ++q) levels.push_back(q);
    return levels;
}

ValueGrid value_grid(GgmlType type, const uint8_t* p, int v) {
    const std::vector<int> iq4(std::begin(k_iq4_levels), std::end(k_iq4_levels));
    switch (type) {
        case GgmlType::Q4_0:
            return {f16_at(p, 0), 0, level_range(-8, 7)};
        case GgmlType::Q4_1:
            return {f16_at(p, 0), -f16_at(p, 2), level_range(0, 15)};
        case GgmlType::Q5_0:
            return {f16_at(p, 0), 0, level_range(-16, 15)};
        case GgmlType::Q5_1:
            return {f16_at(p, 0), -f16_at(p, 2), level_range(0, 31)};
        // edgeq leaves out -128, which SIMD dot products cannot take (q8_0.cpp).
        case GgmlType::Q8_0:
            return {f16_at(p, 0), 0, level_range(-127, 127)};
        case GgmlType::TQ1_0:
            return {f16_at(p, 52), 0, level_range(-1, 1)};
        case GgmlType::TQ2_0:
            return {f16_at(p, 64), 0, level_range(-1, 1)};
        case GgmlType::IQ4_NL:
            return {f16_at(p, 0), 0, iq4};
        default: {
            const TwoLevelLayout layout = two_level_layout(type);
            const SubBlock s = read_sub_block(type, p, v / layout.sub_size);
            return {s.d * static_cast<float>(s.sc), s.dmin * static_cast<float>(s.m),
                    layout.iq4 ? iq4 : level_range(layout.qmin, layout.qmax)};
        }
    }
}

// Given the scales it stored, a quantizer has no reason to give a value anything but the
// nearest representable value: rounding is optimal for any weights.
TEST_P(QuantizeSearch, ValuesAreTheNearestOfTheirBlock) {
    const DType& t = *GetParam();
    if (!t.quantized || t.type == GgmlType::Q8_K) GTEST_SKIP() << "not a scaled block format";
    // The plain rounding of the reference quantizers uses the unrounded scale, so it may be
    // one level off for the stored F16 scale (as in ggml): only the importance path here.
    const bool reference_path = t.block_size == 32 && t.type != GgmlType::IQ4_NL;
    const bool ternary = t.type == GgmlType::TQ1_0 || t.type == GgmlType::TQ2_0;
    SCOPED_TRACE(random_.trace());
    constexpr int64_t n = 1024;
    for (Data kind : {Data::gaussian, Data::heavy_tailed}) {
        const std::vector<float> x = make_rows(random_, kind, 4, n, 1.0f);
        const std::vector<float> w = random_.importance(n);
        for (int64_t r = 0; r < 4; ++r) {
            const float* row = x.data() + r * n;
            for (const float* importance : {static_cast<const float*>(nullptr), w.data()}) {
                if (importance == nullptr && (reference_path || ternary)) continue;
                const std::vector<uint8_t> bytes = quantize(t, row, n, importance);
                const std::vector<float> y = dequantize(t, bytes, n);
                for (int64_t i = 0; i < n; ++i) {
                    const uint8_t* p =
                        bytes.data() + static_cast<size_t>(i / t.block_size) * t.type_size;
                    const ValueGrid g = value_grid(t.type, p, static_cast<int>(i % t.block_size));
                    double nearest = std::numeric_limits<double>::infinity();
                    for (int level : g.levels) {
                        const float candidate = g.scale * static_cast<float>(level) - g.offset;
                        nearest =
                            std::min(nearest, std::fabs(row[i] - static_cast<double>(candidate)));
                    }
                    const double got =
                        std::fabs(row[i] - static_cast<double>(y[static_cast<size_t>(i)]));
                    // A tie may go either way by the float rounding of (x + offset) / scale.
                    const double slack =
                        1e-6 * std::fabs(g.scale) +
                        4 * FLT_EPSILON * (std::fabs(row[i]) + std::fabs(g.offset) + got);
                    ASSERT_LE(got, nearest + slack)
                        << t.name << (importance ? " with" : " without") << " importance, value "
                        << i << ": x " << row[i] << " came back as " << y[static_cast<size_t>(i)]
                        << ", a representable value is " << nearest << " away";
                }
            }
        }
    }
}

// Without importance, given the stored super-block scales, no neighbouring integer sub-block
// scale (and minimum: the 3 x 3 neighbourhood for the affine formats) should lower a
// sub-block's squared error by more than 1%: the search ends in a local optimum.
TEST(QuantizeSearch, SubBlockScalesAreLocallyOptimal) {
    testing::Random random;
    SCOPED_TRACE(random.trace());
    for (GgmlType type : {GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K,
                          GgmlType::Q6_K, GgmlType::IQ4_XS}) {
        const DType& t = dtype(type);
        const TwoLevelLayout layout = two_level_layout(type);
        for (Data kind : {Data::gaussian, Data::heavy_tailed}) {
            constexpr int64_t n = 4096;
            const std::vector<float> x = make_rows(random, kind, 8, n, 1.0f);
            int64_t n_sub_blocks = 0;
            int64_t n_improvable = 0;
            double worst = 1;
            for (int64_t r = 0; r < 8; ++r) {
                const float* row = x.data() + r * n;
                const std::vector<uint8_t> bytes = quantize(t, row, n, nullptr);
                const std::vector<float> y = dequantize(t, bytes, n);
                for (int64_t b = 0; b < n / 256; ++b) {
                    const uint8_t* p = bytes.data() + static_cast<size_t>(b) * t.type_size;
                    for (int j = 0; j < layout.n_sub; ++j) {
                        const int64_t first = b * 256 + j * layout.sub_size;
                        double stored = 0;
                        for (int i = 0; i < layout.sub_size; ++i) {
                            const double e = row[first + i] -
                                             static_cast<double>(y[static_cast<size_t>(first + i)]);
                            stored += e * e;
                        }
                        const SubBlock s = read_sub_block(type, p, j);
                        double best = stored;
                        for (int ds = -1; ds <= 1; ++ds) {
                            for (int dm = layout.affine ? -1 : 0; dm <= (layout.affine ? 1 : 0);
                                 ++dm) {
                                SubBlock c = s;
                                c.sc += ds;
                                c.m += dm;
                                if (c.sc < layout.sc_lo || c.sc > layout.sc_hi) continue;
                                if (c.m < layout.sc_lo || c.m > layout.sc_hi) continue;
                                best = std::min(best, best_sub_block_error(layout, row + first, c));
                            }
                        }
                        ++n_sub_blocks;
                        if (best < 0.99 * stored) {
                            ++n_improvable;
                            worst = std::max(worst, stored / best);
                        }
                    }
                }
            }
            EXPECT_EQ(n_improvable, 0)
                << t.name << " on " << data_name(kind) << " rows: " << n_improvable << " of "
                << n_sub_blocks << " sub-blocks have a neighbouring scale with a lower error "
                << "(by up to " << worst << "x)";
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Types, QuantizeSearch, ::testing::ValuesIn(quantizable_types()),
                         type_name);

}  // namespace
}  // namespace edgeq::quant_test
