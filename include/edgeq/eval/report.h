// The quantization trade-off report of `edgeq demo`: one row per variant of a model (size,
// quality against the baseline, speed on this machine), written as Markdown, JSON and an SVG
// chart of size against KL divergence.
//
//   TradeoffReport r = ...;                 // filled by the demo
//   write_text_atomic(dir / "report.md", report_markdown(r));
//   write_text_atomic(dir / "tradeoff.svg", tradeoff_svg(r));
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace edgeq {

struct VariantRow {
    std::string name;  // "Q4_K_M"
    std::string file;  // the GGUF file measured
    bool imatrix = false;
    bool baseline = false;  // the F16 baseline itself
    // Size.
    double size_mb = 0;  // file size, MiB
    double bpw = 0;      // bits per weight over every tensor
    // Quality on the held-out text, against the baseline's logits.
    double ppl = 0, ppl_err = 0;
    double kld_mean = 0, kld_err = 0;
    double kld_p99 = 0;
    double same_top = 0, same_top_err = 0;  // fractions, 0..1
    // Speed and memory on this machine.
    double pp_tps = 0, tg_tps = 0;
    double peak_rss_mb = 0;
    double pp_speedup = 0, tg_speedup = 0;  // over the baseline's
};

struct TradeoffReport {
    std::string model;         // the source model, as given
    std::string baseline;      // how the baseline was made ("F16, dequantized from Q4_K_M")
    std::string eval_text;     // the held-out text and what of it was scored
    std::string imatrix_text;  // the calibration text
    int32_t n_ctx = 0, n_chunks = 0;
    int32_t n_prompt = 0, n_gen = 0, threads = 0;
    std::string isa, cpu;
    std::string date;    // ISO 8601, UTC
    double seconds = 0;  // the demo's wall time
    std::vector<VariantRow> rows;
};

std::string report_markdown(const TradeoffReport& report);
// The table alone, as printed on the terminal (fixed-width columns).
std::string report_table(const TradeoffReport& report);
nlohmann::ordered_json report_json(const TradeoffReport& report);
// Size (x) against mean KL divergence (y, logarithmic), one labelled point per variant with
// its generation speed-up; the baseline (KLD 0) is drawn on the x axis.
std::string tradeoff_svg(const TradeoffReport& report);

}  // namespace edgeq
