// edgeq eval MODEL --text F [-c 512] [--chunks N] [--save-logits F | --kld-base F] [--json]:
// perplexity over a text, and the KL divergence from a base model's saved logits, with
// llama-perplexity's definitions (edgeq/eval/perplexity.h).
#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "commands.h"
#include "edgeq/core/error.h"
#include "edgeq/eval/perplexity.h"
#include "edgeq/runtime/engine.h"

namespace edgeq::cli {
namespace {

struct EvalArgs {
    std::string model;
    std::string text;
    std::string save_logits;
    std::string kld_base;
    std::string kld_positions;
    EvalOptions options;
    bool json = false;
};

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail("{}: cannot read the text", path);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

void print_distribution(const char* name, const Distribution& d, double scale, const char* unit) {
    const auto line = [&](const char* label, double v) {
        fmt::print("{:<8}{:>4}: {:10.6f}{}\n", label, name, v * scale, unit);
    };
    line("Maximum", d.max);
    line("99.9%", d.p99_9);
    line("99.0%", d.p99);
    line("95.0%", d.p95);
    line("90.0%", d.p90);
    line("Median", d.median);
    line("10.0%", d.p10);
    line("5.0%", d.p5);
    line("1.0%", d.p1);
    line("0.1%", d.p0_1);
    line("Minimum", d.min);
}

void print_kld(const KldResult& r) {
    fmt::print("{} chunks of {} tokens, {} positions scored\n\n", r.n_chunks, r.n_ctx, r.count);
    fmt::print("====== Perplexity statistics ======\n");
    fmt::print("Mean PPL(Q)                   : {:10.6f} ± {:10.6f}\n", r.ppl, r.ppl_unc);
    fmt::print("Mean PPL(base)                : {:10.6f} ± {:10.6f}\n", r.ppl_base, r.ppl_base_unc);
    fmt::print("Cor(ln(PPL(Q)), ln(PPL(base))): {:6.2f}%\n", 100.0 * r.cor_ln_ppl);
    fmt::print("Mean ln(PPL(Q)/PPL(base))     : {:10.6f} ± {:10.6f}\n", r.ln_ppl_ratio,
               r.ln_ppl_ratio_unc);
    fmt::print("Mean PPL(Q)/PPL(base)         : {:10.6f} ± {:10.6f}\n", r.ppl_ratio,
               r.ppl_ratio_unc);
    fmt::print("Mean PPL(Q)-PPL(base)         : {:10.6f} ± {:10.6f}\n\n", r.ppl_diff,
               r.ppl_diff_unc);
    fmt::print("====== KL divergence statistics ======\n");
    fmt::print("Mean     KLD: {:10.6f} ± {:10.6f}\n", r.kld_mean, r.kld_unc);
    print_distribution("KLD", r.kld, 1.0, "");
    fmt::print("\n====== Token probability statistics ======\n");
    fmt::print("Mean      Δp: {:6.3f} ± {:5.3f} %\n", 100.0 * r.dp_mean, 100.0 * r.dp_unc);
    print_distribution("Δp", r.dp, 100.0, "%");
    fmt::print("RMS Δp    : {:6.3f} ± {:5.3f} %\n", 100.0 * r.rms_dp, 100.0 * r.rms_dp_unc);
    fmt::print("Same top p: {:6.3f} ± {:5.3f} %\n", 100.0 * r.same_top, 100.0 * r.same_top_unc);
}

// One line per scored position, tab-separated, for paired comparisons of two variants. Written
// beside `path` and renamed into place when complete.
void write_positions(const std::string& path, const KldPositions& p) {
    const std::string temp = path + ".tmp";
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) fail("{}: cannot write the per-position values", path);
    out << "kld\tnll\tnll_base\tsame_top\n";
    for (size_t i = 0; i < p.kld.size(); ++i) {
        out << fmt::format("{:.9g}\t{:.9g}\t{:.9g}\t{}\n", p.kld[i], p.nll[i], p.nll_base[i],
                           int{p.same_top[i]});
    }
    out.close();
    if (!out || std::rename(temp.c_str(), path.c_str()) != 0) {
        std::remove(temp.c_str());
        fail("{}: writing the per-position values failed", path);
    }
}

void run(EvalArgs args) {
    if (!args.save_logits.empty() && !args.kld_base.empty())
        fail(
            "eval: --save-logits and --kld-base cannot be combined (save the base's logits first)");
    if (!args.kld_positions.empty() && args.kld_base.empty())
        fail(
            "eval: --kld-positions needs --kld-base (it writes the comparison's per-position "
            "values)");
    const auto model = LoadedModel::load(args.model);
    // Without --chunks, a comparison uses as many chunks as the base file holds.
    if (!args.kld_base.empty() && args.options.n_chunks < 0)
        args.options.n_chunks = logits_file_chunks(args.kld_base, *model, args.options.n_ctx);
    const EvalText text = prepare_eval_text(*model, read_text(args.text), args.options);
    if (!args.json)
        fmt::print(stderr, "eval: {} tokens, {} chunks of {}\n", text.tokens.size(), text.n_chunks,
                   text.n_ctx);
    if (!args.kld_base.empty()) {
        KldPositions positions;
        const KldResult r = evaluate_kld(*model, text, args.kld_base, args.options,
                                         args.kld_positions.empty() ? nullptr : &positions);
        if (!args.kld_positions.empty()) write_positions(args.kld_positions, positions);
        if (args.json) {
            fmt::print("{}\n", r.to_json().dump(2));
        } else {
            print_kld(r);
        }
        return;
    }
    const PerplexityResult r = evaluate_perplexity(*model, text, args.options, args.save_logits);
    if (args.json) {
        fmt::print("{}\n", r.to_json().dump(2));
        return;
    }
    std::string chunks;
    for (size_t i = 0; i < r.chunk_ppl.size(); ++i)
        chunks += fmt::format("[{}]{:.4f},", i + 1, r.chunk_ppl[i]);
    fmt::print("{}\n", chunks);
    fmt::print(
        "Final estimate: PPL = {:.4f} +/- {:.5f}  ({} chunks of {} tokens, {} scored, {:.1f} s)\n",
        r.ppl, r.ppl_unc, r.n_chunks, r.n_ctx, r.count, r.seconds);
    if (!args.save_logits.empty()) fmt::print("logits saved to {}\n", args.save_logits);
}

}  // namespace

void add_eval(CLI::App& app) {
    auto args = std::make_shared<EvalArgs>();
    CLI::App* cmd = app.add_subcommand(
        "eval",
        "Perplexity over a text, and KL divergence from a base model (as llama-perplexity)");
    cmd->add_option("model", args->model, "GGUF model")->required();
    cmd->add_option("--text,-f", args->text, "Text file to evaluate on")->required();
    cmd->add_option("-c,--ctx", args->options.n_ctx, "Tokens per chunk")->capture_default_str();
    cmd->add_option("--chunks", args->options.n_chunks,
                    "Chunks to evaluate (default: all; with --kld-base, the base file's)");
    cmd->add_option("-t,--threads", args->options.n_threads, "Threads (default: all)");
    cmd->add_option("-b,--batch-size", args->options.n_batch, "Tokens per forward step")
        ->capture_default_str();
    cmd->add_option("--save-logits", args->save_logits,
                    "Write this model's token distributions to FILE, for --kld-base");
    cmd->add_option("--kld-base", args->kld_base,
                    "Compare with the distributions saved by --save-logits (KL divergence...)");
    cmd->add_option("--kld-positions", args->kld_positions,
                    "With --kld-base: write each position's KLD, nll, base nll and same-top to "
                    "FILE (TSV)");
    cmd->add_flag("--json", args->json, "Print one JSON object with every statistic");
    cmd->callback([args] { run(*args); });
}

}  // namespace edgeq::cli
