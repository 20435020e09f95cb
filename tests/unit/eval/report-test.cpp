#include "edgeq/eval/report.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <regex>
#include <string>
#include <vector>

#include "../test-random.h"

namespace edgeq {
namespace {

TradeoffReport random_report(testing::Random& rng, int n) {
    TradeoffReport r;
    r.model = "model <&> \"quoted\".gguf";
    r.baseline = "F16";
    r.n_ctx = 512;
    r.n_chunks = 8;
    for (int i = 0; i < n; ++i) {
        VariantRow v;
        v.name = fmt::format("V{}", i);
        v.baseline = i == 0;
        v.imatrix = i % 2 == 1;
        v.size_mb = rng.uniform(50.0, 600.0);
        v.bpw = rng.uniform(2.0, 16.0);
        v.ppl = rng.uniform(10.0, 30.0);
        v.kld_mean = v.baseline ? 0.0 : std::pow(10.0, rng.uniform(-4.0, 0.5));
        v.same_top = rng.uniform(0.5, 1.0);
        v.tg_tps = rng.uniform(5.0, 100.0);
        r.rows.push_back(v);
    }
    return r;
}

// The y coordinate of each drawn point, in row order.
std::vector<double> point_ys(const std::string& svg) {
    std::vector<double> ys;
    const std::regex circle(
        R"re(<circle class="point" cx="([0-9.]+)" cy="([0-9.]+)" r="5" fill="[^"]+"/><text)re");
    for (auto it = std::sregex_iterator(svg.begin(), svg.end(), circle);
         it != std::sregex_iterator(); ++it)
        ys.push_back(std::stod((*it)[2].str()));
    return ys;
}

TEST(Report, EveryFormatHoldsEveryVariant) {
    testing::Random rng;
    const TradeoffReport r = random_report(rng, 7);
    const std::string md = report_markdown(r);
    const std::string table = report_table(r);
    const auto json = report_json(r);
    ASSERT_EQ(json.at("variants").size(), r.rows.size());
    for (size_t i = 0; i < r.rows.size(); ++i) {
        const std::string cell = fmt::format("| {} |", r.rows[i].name);
        EXPECT_NE(md.find(cell), std::string::npos);
        EXPECT_NE(table.find(r.rows[i].name), std::string::npos);
        EXPECT_EQ(json["variants"][i]["variant"], r.rows[i].name);
        EXPECT_DOUBLE_EQ(json["variants"][i]["kld_mean"].get<double>(), r.rows[i].kld_mean);
        EXPECT_DOUBLE_EQ(json["variants"][i]["size_mb"].get<double>(), r.rows[i].size_mb);
    }
}

TEST(Report, SvgPlacesHigherDivergenceHigherAndEscapesText) {
    testing::Random rng;
    for (int trial = 0; trial < 20; ++trial) {
        const TradeoffReport r = random_report(rng, 2 + trial % 9);
        const std::string svg = tradeoff_svg(r);
        EXPECT_EQ(svg.find("<&>"), std::string::npos);
        EXPECT_NE(svg.find("&lt;&amp;&gt; &quot;quoted&quot;"), std::string::npos);
        const std::vector<double> ys = point_ys(svg);
        ASSERT_EQ(ys.size(), r.rows.size());
        for (size_t i = 0; i < ys.size(); ++i) {
            for (size_t j = 0; j < ys.size(); ++j) {
                // SVG's y grows downwards: more divergence, smaller y.
                if (r.rows[i].kld_mean > r.rows[j].kld_mean) {
                    EXPECT_LE(ys[i], ys[j]);
                }
            }
        }
    }
}

}  // namespace
}  // namespace edgeq
