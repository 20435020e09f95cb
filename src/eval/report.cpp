#include "edgeq/eval/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace edgeq {
namespace {

std::string escape_xml(const std::string& s) {
    std::string out;
    for (const char c : s) {
        switch (c) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&quot;";
                break;
            default:
                out += c;
        }
    }
    return out;
}

std::string kld_text(const VariantRow& r) {
    if (r.baseline) return "0";
    return fmt::format("{:.5f}", r.kld_mean);
}

std::string speedup_text(double x) {
    return x > 0 ? fmt::format("{:.2f}x", x) : "-";
}

}  // namespace

std::string report_table(const TradeoffReport& report) {
    std::string s =
        fmt::format("{:<9} {:>4} {:>9} {:>6} {:>9} {:>9} {:>9} {:>7} {:>8} {:>7} {:>6} {:>8}\n",
                    "variant", "imat", "size MiB", "bpw", "ppl", "KLD", "KLD p99", "top1 %",
                    "pp t/s", "tg t/s", "tg x", "peak MiB");
    for (const VariantRow& r : report.rows) {
        s += fmt::format(
            "{:<9} {:>4} {:>9.1f} {:>6.2f} {:>9.3f} {:>9} {:>9.4f} {:>7.2f} {:>8.1f} {:>7.1f} "
            "{:>6} {:>8.0f}\n",
            r.name, r.imatrix ? "yes" : "", r.size_mb, r.bpw, r.ppl, kld_text(r), r.kld_p99,
            100 * r.same_top, r.pp_tps, r.tg_tps, speedup_text(r.tg_speedup), r.peak_rss_mb);
    }
    return s;
}

std::string report_markdown(const TradeoffReport& report) {
    std::string s = fmt::format("# Quantization trade-off: {}\n\n", report.model);
    s += fmt::format("- Baseline: {}\n", report.baseline);
    s +=
        fmt::format("- Quality: {}; context {} tokens, {} chunks, the second half of each scored\n",
                    report.eval_text, report.n_ctx, report.n_chunks);
    s += fmt::format("- Importance matrix: {}\n", report.imatrix_text);
    s +=
        fmt::format("- Speed: prompt {} tokens, generation {} tokens, {} threads, {} kernels, {}\n",
                    report.n_prompt, report.n_gen, report.threads, report.isa, report.cpu);
    s += fmt::format("- Made {} in {:.0f} s\n\n", report.date, report.seconds);
    s += "| variant | imatrix | size MiB | bpw | ppl | KLD mean | KLD p99 | same top % | pp t/s "
         "| tg t/s | pp x F16 | tg x F16 | peak MiB |\n";
    s += "|---|:-:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n";
    for (const VariantRow& r : report.rows) {
        s += fmt::format(
            "| {} | {} | {:.1f} | {:.2f} | {:.3f} ± {:.3f} | {} | {:.4f} | {:.2f} | {:.1f} | "
            "{:.1f} "
            "| {} | {} | {:.0f} |\n",
            r.name, r.imatrix ? "yes" : "", r.size_mb, r.bpw, r.ppl, r.ppl_err,
            r.baseline ? "0" : fmt::format("{:.5f} ± {:.5f}", r.kld_mean, r.kld_err), r.kld_p99,
            100 * r.same_top, r.pp_tps, r.tg_tps, speedup_text(r.pp_speedup),
            speedup_text(r.tg_speedup), r.peak_rss_mb);
    }
    s += "\nKLD: mean Kullback-Leibler divergence of the variant's next-token distribution from "
         "the baseline's, per scored token (nats). Same top: how often both put the same token "
         "first. Speed-ups are over the baseline on this machine. `tradeoff.svg` plots size "
         "against KLD.\n";
    return s;
}

nlohmann::ordered_json report_json(const TradeoffReport& report) {
    nlohmann::ordered_json j;
    j["model"] = report.model;
    j["baseline"] = report.baseline;
    j["eval_text"] = report.eval_text;
    j["imatrix_text"] = report.imatrix_text;
    j["n_ctx"] = report.n_ctx;
    j["n_chunks"] = report.n_chunks;
    j["n_prompt"] = report.n_prompt;
    j["n_gen"] = report.n_gen;
    j["threads"] = report.threads;
    j["isa"] = report.isa;
    j["cpu"] = report.cpu;
    j["date"] = report.date;
    j["seconds"] = report.seconds;
    nlohmann::ordered_json rows = nlohmann::ordered_json::array();
    for (const VariantRow& r : report.rows) {
        nlohmann::ordered_json o;
        o["variant"] = r.name;
        o["file"] = r.file;
        o["imatrix"] = r.imatrix;
        o["baseline"] = r.baseline;
        o["size_mb"] = r.size_mb;
        o["bpw"] = r.bpw;
        o["ppl"] = r.ppl;
        o["ppl_err"] = r.ppl_err;
        o["kld_mean"] = r.kld_mean;
        o["kld_err"] = r.kld_err;
        o["kld_p99"] = r.kld_p99;
        o["same_top"] = r.same_top;
        o["same_top_err"] = r.same_top_err;
        o["pp_tps"] = r.pp_tps;
        o["tg_tps"] = r.tg_tps;
        o["pp_speedup"] = r.pp_speedup;
        o["tg_speedup"] = r.tg_speedup;
        o["peak_rss_mb"] = r.peak_rss_mb;
        rows.push_back(std::move(o));
    }
    j["variants"] = std::move(rows);
    return j;
}

std::string tradeoff_svg(const TradeoffReport& report) {
    constexpr double width = 760, height = 480;
    constexpr double left = 80, right = 30, top = 50, bottom = 60;
    const double plot_w = width - left - right, plot_h = height - top - bottom;

    double max_size = 1;
    double lo = 1e-4, hi = 1e-1;  // KLD range, widened to the data in powers of ten
    bool first = true;
    for (const VariantRow& r : report.rows) {
        max_size = std::max(max_size, r.size_mb);
        if (r.baseline || r.kld_mean <= 0) continue;
        if (first) {
            lo = hi = r.kld_mean;
            first = false;
        }
        lo = std::min(lo, r.kld_mean);
        hi = std::max(hi, r.kld_mean);
    }
    const double e_lo = std::floor(std::log10(lo));
    const double e_hi = std::max(e_lo + 1, std::ceil(std::log10(hi)));
    const double x_max = std::ceil(max_size * 1.1 / 50) * 50;
    auto px = [&](double size) { return left + plot_w * size / x_max; };
    auto py = [&](double kld) {
        if (kld <= 0) return top + plot_h;
        const double t = (std::log10(kld) - e_lo) / (e_hi - e_lo);
        return top + plot_h * (1 - std::clamp(t, 0.0, 1.0));
    };

    std::string s = fmt::format(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} "
        "{1}\" font-family=\"sans-serif\" font-size=\"12\">\n",
        width, height);
    s += fmt::format("<rect width=\"{}\" height=\"{}\" fill=\"white\"/>\n", width, height);
    s += fmt::format(
        "<text x=\"{}\" y=\"24\" font-size=\"15\" text-anchor=\"middle\">{}: size against KL "
        "divergence (label: generation speed-up over F16)</text>\n",
        width / 2, escape_xml(report.model));
    // Axes, grid and ticks.
    s += fmt::format(
        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#444\"/>\n",
        left, top, plot_w, plot_h);
    for (double e = e_lo; e <= e_hi; e += 1) {
        const double y = py(std::pow(10.0, e));
        s += fmt::format(
            "<line x1=\"{0}\" y1=\"{1:.1f}\" x2=\"{2}\" y2=\"{1:.1f}\" stroke=\"#ddd\"/>"
            "<text x=\"{3}\" y=\"{4:.1f}\" text-anchor=\"end\">1e{5:.0f}</text>\n",
            left, y, left + plot_w, left - 6, y + 4, e);
    }
    const double step = x_max <= 200 ? 25 : x_max <= 600 ? 50 : 100;
    for (double x = 0; x <= x_max + 1e-9; x += step) {
        s += fmt::format(
            "<line x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\" stroke=\"#eee\"/>"
            "<text x=\"{0:.1f}\" y=\"{3}\" text-anchor=\"middle\">{4:.0f}</text>\n",
            px(x), top, top + plot_h, top + plot_h + 18, x);
    }
    s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">file size (MiB)</text>\n",
                     left + plot_w / 2, height - 16);
    s += fmt::format(
        "<text x=\"18\" y=\"{0}\" text-anchor=\"middle\" transform=\"rotate(-90 18 {0})\">mean "
        "KL divergence to the baseline (nats, log scale)</text>\n",
        top + plot_h / 2);
    // Points.
    for (const VariantRow& r : report.rows) {
        const double x = px(r.size_mb), y = py(r.baseline ? 0 : r.kld_mean);
        const char* colour = r.baseline ? "#888" : r.imatrix ? "#c0392b" : "#2471a3";
        s +=
            fmt::format("<circle class=\"point\" cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"5\" fill=\"{}\"/>",
                        x, y, colour);
        s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\">{} ({})</text>\n", x + 7, y - 6,
                         escape_xml(r.name), speedup_text(r.tg_speedup));
    }
    s += fmt::format(
        "<circle cx=\"{0}\" cy=\"{1}\" r=\"5\" fill=\"#2471a3\"/><text x=\"{2}\" y=\"{3}\">no "
        "imatrix</text><circle cx=\"{0}\" cy=\"{4}\" r=\"5\" fill=\"#c0392b\"/><text x=\"{2}\" "
        "y=\"{5}\">with imatrix</text>\n",
        left + plot_w - 110, top + 16, left + plot_w - 100, top + 20, top + 34, top + 38);
    s += "</svg>\n";
    return s;
}

}  // namespace edgeq
