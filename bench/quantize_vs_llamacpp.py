#!/usr/bin/env python3
"""edgeq quantize against llama.cpp's llama-quantize, on the same synthetic models.

Three acceptance checks, each printed as a table with ratios and a PASS/FAIL line:

  a  A 1.1B Llama-shaped F16 model (random weights, the Llama SPM tokenizer) quantized to
     Q4_K_M by both tools: edgeq's file loads and generates in llama.cpp, every tensor has
     llama-quantize's type, and the file size is within 0.5% of llama-quantize's.
  b  For every type, with --pure in both tools, on a smaller model with Gaussian and with
     heavy-tailed weights: per-tensor dequantization RMSE of edgeq <= 1.01x llama.cpp's;
     with the same imatrix given to both, the importance-weighted RMSE <= llama.cpp's.
     Dequantization is done by gguf-py, independent of both tools.
  c  Q4_K_M of the 1.1B model with the same thread count: edgeq's best wall time over
     interleaved runs <= llama.cpp's best, and edgeq's peak RSS <= llama.cpp's.

Usage (numpy and gguf are the only dependencies beyond the standard library):

  python bench/quantize_vs_llamacpp.py all
  python bench/quantize_vs_llamacpp.py b --types Q4_K,IQ4_XS --dists heavy
  LLAMA_CPP_BIN=/path/to/llama.cpp/build/bin python bench/quantize_vs_llamacpp.py c --pairs 6

Models, imatrices and logs go to the work directory (default /tmp/edgeq-bench); models are
reused when they were made with the same arguments. The summary is written as JSON
(default WORK/summary-PART.json). Exit status: 0 all lines pass, 1 a line fails, 2 setup error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import gguf
from gguf import GGMLQuantizationType as QT

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"

# The types of part (b). A K-quant is requested through the mix whose --pure type it is;
# llama-quantize reads "Q4_K" as Q4_K_M too, edgeq only knows the mix names.
SWEEP_TYPES = ["F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K",
               "Q5_K", "Q6_K", "TQ1_0", "TQ2_0", "IQ4_NL", "IQ4_XS"]
MIX_OF_TYPE = {"Q3_K": "Q3_K_M", "Q4_K": "Q4_K_M", "Q5_K": "Q5_K_M"}

# llama.cpp's tensor_type_fallback (src/llama-quant.cpp): the type a row length that does
# not divide the block falls back to.
FALLBACK = {"Q2_K": "Q4_0", "Q3_K": "Q4_0", "TQ1_0": "Q4_0", "TQ2_0": "Q4_0", "Q4_K": "Q5_0",
            "Q5_K": "Q5_1", "Q6_K": "Q8_0", "IQ4_XS": "IQ4_NL"}

PLAIN_MAX_RATIO = 1.01


# ----------------------------------------------------------------------------- utilities

def log(msg: str = "") -> None:
    print(msg, flush=True)


def fmt_ratio(r: float) -> str:
    if r is None or (isinstance(r, float) and math.isnan(r)):
        return "-"
    if math.isinf(r):
        return "inf"
    return f"{r:.4f}"


def table(headers: list[str], rows: list[list], align: str | None = None) -> str:
    """A plain-text table; align is a string of 'l'/'r' per column (default: first l)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    align = align or ("l" + "r" * (len(headers) - 1))
    out = []
    for k, r in enumerate(cells):
        out.append("  ".join(c.ljust(w) if a == "l" else c.rjust(w)
                             for c, w, a in zip(r, widths, align)).rstrip())
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


@dataclass
class RunResult:
    cmd: list[str]
    rc: int
    wall_s: float
    cpu_s: float
    maxrss_kib: int
    log_path: str


# Each measured child is started by this small launcher, not by the benchmark process:
# Linux carries the RSS high-water mark of the address space a child is forked from (and of
# the one it execs away from) into the child's ru_maxrss, so a child of this process, which
# maps gigabytes of GGUF while it compares tensors, would report at least that. The launcher
# is a fresh interpreter of a few MiB; it forks the tool, waits for it, and writes its wall
# time, CPU time and peak RSS to a file.
LAUNCHER = r"""
import os, sys, time
out = sys.argv[1]
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execv(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, ru = os.wait4(pid, 0)
wall = time.perf_counter() - t0
with open(out, "w") as f:
    f.write("%r %r %d\n" % (wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss))
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


def run_measured(cmd: list[str], log_path: Path) -> RunResult:
    """Runs one child, its output to log_path; wall time, CPU time and peak RSS of that child."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    stats_path = log_path.with_name(log_path.name + ".rusage")
    remove(stats_path)
    with open(log_path, "wb") as out:
        out.write(("$ " + " ".join(cmd) + "\n").encode())
        out.flush()
        rc = subprocess.call([sys.executable, "-I", "-S", "-c", LAUNCHER, str(stats_path), *cmd],
                             stdout=out, stderr=subprocess.STDOUT)
    try:
        wall, cpu, maxrss = stats_path.read_text().split()
        stats_path.unlink()
    except (OSError, ValueError):
        return RunResult(cmd, rc if rc != 0 else 127, math.nan, math.nan, 0, str(log_path))
    return RunResult(cmd, rc, float(wall), float(cpu), int(maxrss), str(log_path))


def tail_of(path: str, n: int = 15) -> str:
    try:
        with open(path, "rb") as f:
            lines = f.read().decode(errors="replace").splitlines()
        return "\n".join("    | " + line for line in lines[-n:])
    except OSError:
        return ""


def remove(*paths: Path) -> None:
    for p in paths:
        try:
            os.remove(p)
        except FileNotFoundError:
            pass


def machine_info() -> dict:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gib = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    mem_gib = round(int(line.split()[1]) / 1048576, 1)
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {"cpu": cpu, "logical_cpus": os.cpu_count(), "usable_cpus": usable,
            "mem_gib": mem_gib, "kernel": platform.release(), "python": platform.python_version(),
            "numpy": np.__version__, "gguf_py": getattr(gguf, "__version__", None) or _gguf_version()}


def _gguf_version() -> str:
    try:
        from importlib.metadata import version
        return version("gguf")
    except Exception:  # noqa: BLE001 - informational only
        return "unknown"


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


# ----------------------------------------------------------------------------- tools

@dataclass
class Tools:
    edgeq: Path
    synth: Path
    llama_bin: Path

    @property
    def llama_quantize(self) -> Path:
        return self.llama_bin / "llama-quantize"

    def describe(self) -> dict:
        def first_line(cmd):
            try:
                r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
                lines = [l for l in (r.stdout + r.stderr).splitlines() if l.strip()]
                return lines[0].strip() if lines else "?"
            except Exception:  # noqa: BLE001
                return "?"
        commit = "?"
        try:
            r = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                               capture_output=True, text=True, timeout=30)
            commit = r.stdout.strip() or "?"
        except Exception:  # noqa: BLE001
            pass
        llama_version = "?"
        for probe in ("llama-bench", "llama-cli", "llama-simple"):
            exe = self.llama_bin / probe
            if exe.exists():
                try:
                    r = subprocess.run([str(exe), "--version"], capture_output=True, text=True,
                                       timeout=30)
                    m = re.search(r"version: (.*)", r.stdout + r.stderr)
                    if m:
                        llama_version = m.group(1).strip()
                        break
                except Exception:  # noqa: BLE001
                    pass
        built = dt.datetime.fromtimestamp(self.edgeq.stat().st_mtime).astimezone()
        return {"edgeq": str(self.edgeq), "edgeq_version": first_line([str(self.edgeq), "--version"]),
                "edgeq_built": built.isoformat(timespec="seconds"),
                "edgeq_git": commit, "llama_cpp_bin": str(self.llama_bin),
                "llama_cpp_version": llama_version}


def find_tools(args) -> Tools:
    edgeq_dir = args.edgeq_bin or os.environ.get("EDGEQ_BIN")
    candidates = [Path(edgeq_dir)] if edgeq_dir else [REPO / "build-bench", REPO / "build"]
    edgeq = synth = None
    for d in candidates:
        if (d / "edgeq").is_file() and (d / "edgeq-synth").is_file():
            edgeq, synth = d / "edgeq", d / "edgeq-synth"
            break
    if edgeq is None:
        sys.exit(f"error: edgeq and edgeq-synth not found in {', '.join(map(str, candidates))}; "
                 "build them (cmake --build BUILD --target edgeq_cli edgeq-synth) or pass "
                 "--edgeq-bin / EDGEQ_BIN")
    llama = args.llama_bin or os.environ.get("LLAMA_CPP_BIN")
    if not llama:
        log("LLAMA_CPP_BIN not set: running bench/build-llamacpp.sh")
        r = subprocess.run(["bash", str(Path(__file__).with_name("build-llamacpp.sh"))],
                           stdout=subprocess.PIPE, text=True)
        if r.returncode != 0:
            sys.exit("error: bench/build-llamacpp.sh failed")
        llama = r.stdout.strip().splitlines()[-1]
    llama_bin = Path(llama)
    for t in ("llama-quantize", "llama-simple", "llama-imatrix"):
        if not (llama_bin / t).is_file():
            sys.exit(f"error: {llama_bin / t} not found (LLAMA_CPP_BIN={llama_bin})")
    return Tools(edgeq, synth, llama_bin)


# ----------------------------------------------------------------------------- inputs

def ensure_file(path: Path, recipe: dict, make) -> Path:
    """Makes path with make() unless it exists with a sidecar recording the same recipe."""
    sidecar = path.with_name(path.name + ".recipe.json")
    if path.exists() and sidecar.exists():
        try:
            if json.loads(sidecar.read_text()) == recipe:
                log(f"  reusing {path}")
                return path
        except (OSError, ValueError):
            pass
    remove(path, sidecar)
    t0 = time.perf_counter()
    make()
    if not path.exists():
        sys.exit(f"error: {path} was not written")
    sidecar.write_text(json.dumps(recipe, indent=1))
    log(f"  made {path} ({path.stat().st_size / 2**20:.1f} MiB, {time.perf_counter() - t0:.1f} s)")
    return path


def synth_model(tools: Tools, work: Path, name: str, synth_args: list[str]) -> Path:
    path = work / "models" / name
    path.parent.mkdir(parents=True, exist_ok=True)

    def make():
        cmd = [str(tools.synth), "-o", str(path), "-t", str(os.cpu_count() or 1)] + synth_args
        r = run_measured(cmd, work / "logs" / f"synth-{name}.log")
        if r.rc != 0:
            remove(path)
            sys.exit(f"error: edgeq-synth failed (rc {r.rc}), see {r.log_path}\n{tail_of(r.log_path)}")
    return ensure_file(path, {"synth_args": synth_args}, make)


def llama_imatrix(tools: Tools, work: Path, model: Path, text: Path, chunks: int, threads: int) -> Path:
    path = work / "models" / (model.stem + ".imatrix.gguf")
    recipe = {"source": "llama-imatrix", "model": model.name,
              "model_recipe": json.loads(model.with_name(model.name + ".recipe.json").read_text()),
              "text": str(text), "chunks": chunks, "ctx": 512}

    def make():
        tmp = path.with_name(path.name + ".tmp.gguf")
        cmd = [str(tools.llama_bin / "llama-imatrix"), "-m", str(model), "-f", str(text),
               "-o", str(tmp), "--chunks", str(chunks), "-c", "512", "-t", str(threads),
               "--process-output", "--no-ppl"]
        r = run_measured(cmd, work / "logs" / f"imatrix-{model.stem}.log")
        if r.rc != 0 or not tmp.exists():
            sys.exit(f"error: llama-imatrix failed (rc {r.rc}), see {r.log_path}\n{tail_of(r.log_path)}")
        os.replace(tmp, path)
    return ensure_file(path, recipe, make)


def synthetic_imatrix(work: Path, model: Path, seed: int) -> Path:
    """llama.cpp's imatrix GGUF for every matrix but token_embd: exp(1.5 N(0,1)) per column."""
    path = work / "models" / (model.stem + ".synthetic-imatrix.gguf")
    recipe = {"source": "synthetic exp(1.5*N(0,1))", "model": model.name, "seed": seed,
              "model_recipe": json.loads(model.with_name(model.name + ".recipe.json").read_text())}

    def make():
        rng = np.random.default_rng(seed)
        reader = gguf.GGUFReader(str(model))
        tmp = path.with_name(path.name + ".tmp.gguf")
        w = gguf.GGUFWriter(str(tmp), arch="llama")
        # GGUFWriter adds general.architecture; llama.cpp's reader only needs the tensors.
        w.add_string("general.type", "imatrix")
        w.add_array("imatrix.datasets", ["synthetic"])
        w.add_uint32("imatrix.chunk_count", 1)
        w.add_uint32("imatrix.chunk_size", 512)
        count = 512.0
        for t in reader.tensors:
            if len(t.shape) < 2 or t.name == "token_embd.weight":
                continue
            n_cols = int(t.shape[0])
            values = np.exp(1.5 * rng.standard_normal(n_cols)).astype(np.float32)
            w.add_tensor(t.name + ".in_sum2", values * np.float32(count))
            w.add_tensor(t.name + ".counts", np.array([count], dtype=np.float32))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        os.replace(tmp, path)
    return ensure_file(path, recipe, make)


def load_imatrix(path: Path) -> dict[str, np.ndarray]:
    """Tensor name -> per-column importance (in_sum2 / counts), float64."""
    reader = gguf.GGUFReader(str(path))
    sums, counts = {}, {}
    for t in reader.tensors:
        if t.name.endswith(".in_sum2"):
            sums[t.name[:-8]] = np.asarray(t.data, dtype=np.float64)
        elif t.name.endswith(".counts"):
            counts[t.name[:-7]] = np.asarray(t.data, dtype=np.float64).reshape(-1)
    out = {}
    for name, s in sums.items():
        c = counts.get(name, np.ones(1))
        s = s.reshape(len(c), -1) / np.maximum(c, 1.0)[:, None]
        out[name] = s[0] if len(c) == 1 else s.mean(axis=0)
    return out


# ----------------------------------------------------------------------------- GGUF views

def tensor_infos(path: Path) -> dict[str, tuple[str, tuple[int, ...], int]]:
    """name -> (type name, ne, n_bytes) for every tensor of a GGUF file."""
    reader = gguf.GGUFReader(str(path))
    return {t.name: (t.tensor_type.name, tuple(int(x) for x in t.shape), int(t.n_bytes))
            for t in reader.tensors}


def as_f32_rows(t) -> np.ndarray:
    """A tensor of a GGUFReader as float32 rows (n_rows, ne[0]), dequantized by gguf-py."""
    ne0 = int(t.shape[0])
    if t.tensor_type == QT.F32:
        a = np.asarray(t.data, dtype=np.float32)
    elif t.tensor_type == QT.F16:
        a = np.asarray(t.data).view(np.float16).astype(np.float32)
    else:
        a = gguf.quants.dequantize(np.asarray(t.data), t.tensor_type)
    return a.reshape(-1, ne0)


def column_sq_err(ref: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Per-column sum over rows of (ref - q)^2, float64."""
    d = ref - q
    d *= d
    return d.sum(axis=0, dtype=np.float64)


def ratio(e: float, l: float) -> float:
    if l > 0:
        return e / l
    return 1.0 if e == 0 else math.inf


# ----------------------------------------------------------------------------- part (a)

def part_a(args, tools: Tools, work: Path) -> dict:
    log("\n=== (A) Q4_K_M of a 1.1B Llama-shaped F16 model: types, size, loads in llama.cpp ===")
    model = synth_model(tools, work, "tinyllama-1.1b-f16.gguf", tinyllama_args(args))
    d = work / "a"
    d.mkdir(parents=True, exist_ok=True)
    out_e, out_l = d / "edgeq-Q4_K_M.gguf", d / "llama-Q4_K_M.gguf"
    remove(out_e, out_l)
    re_ = run_measured([str(tools.edgeq), "quantize", str(model), str(out_e), "Q4_K_M",
                        str(args.threads)], work / "logs" / "a-edgeq-quantize.log")
    rl = run_measured([str(tools.llama_quantize), str(model), str(out_l), "Q4_K_M",
                       str(args.threads)], work / "logs" / "a-llama-quantize.log")
    result = {"model": str(model), "edgeq_out": str(out_e), "llama_out": str(out_l), "lines": {}}
    lines = result["lines"]
    if re_.rc != 0 or rl.rc != 0:
        for who, r in (("edgeq", re_), ("llama.cpp", rl)):
            if r.rc != 0:
                log(f"  {who} quantize failed (rc {r.rc}), log {r.log_path}\n{tail_of(r.log_path)}")
        lines["quantize runs"] = {"pass": False, "detail": "a quantizer failed"}
        return result
    log(f"  quantized: edgeq {re_.wall_s:.1f} s, llama.cpp {rl.wall_s:.1f} s ({args.threads} threads)")

    # Types, tensor by tensor.
    ie, il = tensor_infos(out_e), tensor_infos(out_l)
    mismatches = []
    for name in sorted(set(ie) | set(il)):
        te, tl = ie.get(name), il.get(name)
        if te is None or tl is None or te[0] != tl[0] or te[1] != tl[1]:
            mismatches.append({"tensor": name, "edgeq": te[0] if te else "(missing)",
                               "llama.cpp": tl[0] if tl else "(missing)",
                               "edgeq_shape": te[1] if te else None,
                               "llama_shape": tl[1] if tl else None})
    hist = {}
    for who, info in (("edgeq", ie), ("llama.cpp", il)):
        for tname, _, nb in info.values():
            h = hist.setdefault(tname, {"edgeq": [0, 0], "llama.cpp": [0, 0]})
            h[who][0] += 1
            h[who][1] += nb
    log("\n" + table(["type", "edgeq tensors", "edgeq MiB", "llama.cpp tensors", "llama.cpp MiB"],
                     [[k, v["edgeq"][0], f"{v['edgeq'][1] / 2**20:.2f}", v["llama.cpp"][0],
                       f"{v['llama.cpp'][1] / 2**20:.2f}"] for k, v in sorted(hist.items())]))
    if mismatches:
        log(f"\n  {len(mismatches)} tensor(s) whose type differs:")
        log(table(["tensor", "edgeq", "llama.cpp"],
                  [[m["tensor"], m["edgeq"], m["llama.cpp"]] for m in mismatches[:40]]))
    lines["every tensor has llama-quantize's type"] = {
        "pass": not mismatches, "detail": f"{len(ie)} tensors, {len(mismatches)} differ",
        "mismatches": mismatches}

    # Information only: identical bytes per tensor, metadata differences.
    identical = identical_tensors(out_e, out_l)
    log(f"\n  tensors whose quantized bytes are identical in both files: {identical} of {len(ie)}")
    result["identical_tensors"] = identical
    meta_diff = metadata_differences(out_e, out_l)
    if meta_diff:
        log("  metadata keys that differ (information):")
        for k, (ve, vl) in meta_diff.items():
            log(f"    {k}: edgeq={ve!s:.60} llama.cpp={vl!s:.60}")
    else:
        log("  metadata: the same keys and values in both files")
    result["metadata_differences"] = {k: [str(a), str(b)] for k, (a, b) in meta_diff.items()}

    # File size.
    se, sl = out_e.stat().st_size, out_l.stat().st_size
    rel = (se - sl) / sl
    log(f"\n  file size: edgeq {se:,} B, llama.cpp {sl:,} B, edgeq/llama.cpp = {se / sl:.6f} "
        f"({rel * 100:+.4f}%)")
    lines["file size within 0.5% of llama-quantize's"] = {
        "pass": abs(rel) <= 0.005, "edgeq_bytes": se, "llama_bytes": sl, "relative": rel}

    # Loads and generates in llama.cpp.
    gen = {}
    for who, path in (("edgeq", out_e), ("llama.cpp", out_l)):
        r = run_measured([str(tools.llama_bin / "llama-simple"), "-m", str(path), "-n",
                          str(args.n_gen), "Once upon a time"],
                         work / "logs" / f"a-llama-simple-{who.replace('.', '')}.log")
        text = Path(r.log_path).read_text(errors="replace")
        m = re.search(r"decoded (\d+) tokens in ([\d.]+) s, speed: ([\d.]+) t/s", text)
        n_dec = int(m.group(1)) if m else 0
        g = re.search(r"^(.*?)main: decoded", text, re.M)
        generated = g.group(1).strip() if g else ""
        gen[who] = {"rc": r.rc, "decoded": n_dec, "tok_per_s": float(m.group(3)) if m else None,
                    "text": generated, "log": r.log_path}
        log(f"  llama-simple on {who}'s file: rc {r.rc}, decoded {n_dec} tokens"
            + (f", {m.group(3)} t/s" if m else "") + f" (log {r.log_path})")
        log(f"    text: {generated[:160]!r}")
        if r.rc != 0 or n_dec == 0:
            log(tail_of(r.log_path))
    ok = gen["edgeq"]["rc"] == 0 and gen["edgeq"]["decoded"] >= 1
    lines["loads and generates in llama.cpp (llama-simple)"] = {"pass": ok, **gen["edgeq"]}
    result["generation"] = gen
    result["quantize_s"] = {"edgeq": re_.wall_s, "llama.cpp": rl.wall_s}

    all_ok = all(v["pass"] for v in lines.values())
    if all_ok and not args.keep:
        remove(out_e, out_l)
    elif not all_ok:
        log(f"  outputs kept for reproduction: {out_e} {out_l}")
    return result


def identical_tensors(pe: Path, pl: Path) -> int:
    te = {t.name: t for t in gguf.GGUFReader(str(pe)).tensors}
    n = 0
    for t in gguf.GGUFReader(str(pl)).tensors:
        o = te.get(t.name)
        if o is not None and o.tensor_type == t.tensor_type and \
                np.array_equal(np.asarray(o.data).view(np.uint8), np.asarray(t.data).view(np.uint8)):
            n += 1
    return n


def metadata_differences(pe: Path, pl: Path) -> dict:
    def kv(path):
        r = gguf.GGUFReader(str(path))
        out = {}
        for f in r.fields.values():
            if f.name.startswith("GGUF.") or f.name.startswith("tokenizer.ggml."):
                continue
            try:
                out[f.name] = f.contents()
            except Exception:  # noqa: BLE001
                out[f.name] = "?"
        return out
    a, b = kv(pe), kv(pl)
    return {k: (a.get(k, "(absent)"), b.get(k, "(absent)"))
            for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


# ----------------------------------------------------------------------------- part (b)

@dataclass
class SweepModel:
    label: str       # "normal", "heavy", "tail-normal" ...
    dist: str
    path: Path
    imatrix: Path | None
    imatrix_source: str


def compare_outputs(model: Path, out_e: Path, out_l: Path, target: str,
                    imat: dict[str, np.ndarray] | None) -> list[dict]:
    """Per-tensor RMSE of both outputs against the model's own weights (one tensor at a time)."""
    rm, re_, rl = (gguf.GGUFReader(str(p)) for p in (model, out_e, out_l))
    te = {t.name: t for t in re_.tensors}
    tl = {t.name: t for t in rl.tensors}
    rows = []
    for t in rm.tensors:
        if len(t.shape) < 2:
            continue
        name = t.name
        e, l = te.get(name), tl.get(name)
        ne0 = int(t.shape[0])
        expected = target
        if target in FALLBACK and ne0 % 256 != 0:
            expected = FALLBACK[target]
        row = {"tensor": name, "ne": [int(x) for x in t.shape], "expected": expected,
               "edgeq_type": e.tensor_type.name if e is not None else "(missing)",
               "llama_type": l.tensor_type.name if l is not None else "(missing)"}
        if e is None or l is None:
            rows.append(row)
            continue
        ref = as_f32_rows(t)
        ce = column_sq_err(ref, as_f32_rows(e))
        cl = column_sq_err(ref, as_f32_rows(l))
        n_rows = ref.shape[0]
        row["ref_rms"] = float(np.sqrt(np.mean(ref.astype(np.float64) ** 2)))
        del ref
        row["rmse_edgeq"] = float(np.sqrt(ce.sum() / (n_rows * ne0)))
        row["rmse_llama"] = float(np.sqrt(cl.sum() / (n_rows * ne0)))
        row["ratio"] = ratio(row["rmse_edgeq"], row["rmse_llama"])
        w = imat.get(name) if imat else None
        if w is not None and len(w) == ne0:
            row["wrmse_edgeq"] = float(np.sqrt(np.dot(w, ce) / (n_rows * w.sum())))
            row["wrmse_llama"] = float(np.sqrt(np.dot(w, cl) / (n_rows * w.sum())))
            row["wratio"] = ratio(row["wrmse_edgeq"], row["wrmse_llama"])
        rows.append(row)
    return rows


def judge(rows: list[dict], mode: str, imatrix_max: float) -> dict:
    """The verdict for one (model, mode, type): type agreement and the RMSE ratios."""
    type_bad = [r for r in rows if r["edgeq_type"] != r["llama_type"]]
    unexpected = [r for r in rows if r["llama_type"] != r["expected"] and len(r["ne"]) >= 2]
    plain = [r for r in rows if "ratio" in r]
    weighted = [r for r in rows if "wratio" in r]
    out = {"n_tensors": len(rows), "type_mismatches": [r["tensor"] for r in type_bad],
           "llama_unexpected_types": [(r["tensor"], r["llama_type"]) for r in unexpected]}
    if plain:
        worst = max(plain, key=lambda r: r["ratio"])
        out["max_ratio"], out["max_ratio_tensor"] = worst["ratio"], worst["tensor"]
        se = sum(r["rmse_edgeq"] ** 2 * np.prod(r["ne"]) for r in plain)
        sl = sum(r["rmse_llama"] ** 2 * np.prod(r["ne"]) for r in plain)
        out["model_ratio"] = ratio(math.sqrt(se), math.sqrt(sl))
    if weighted:
        # Pooled over the tensors with imatrix data, each weighted as in its own RMSE.
        se = sum(r["wrmse_edgeq"] ** 2 * np.prod(r["ne"]) for r in weighted)
        sl = sum(r["wrmse_llama"] ** 2 * np.prod(r["ne"]) for r in weighted)
        out["model_wratio"] = ratio(math.sqrt(se), math.sqrt(sl))
    failures = []
    if type_bad:
        failures.append(f"type differs on {len(type_bad)} tensor(s): " + ", ".join(
            f"{r['tensor']} edgeq {r['edgeq_type']} vs llama.cpp {r['llama_type']}" for r in type_bad[:4]))
    if mode == "plain":
        for r in plain:
            if r["ratio"] > PLAIN_MAX_RATIO:
                failures.append(f"{r['tensor']}: RMSE ratio {r['ratio']:.4f} > {PLAIN_MAX_RATIO}")
    else:
        if weighted:
            worst = max(weighted, key=lambda r: r["wratio"])
            out["max_wratio"], out["max_wratio_tensor"] = worst["wratio"], worst["tensor"]
        for r in weighted:
            if r["wratio"] > imatrix_max:
                failures.append(f"{r['tensor']}: weighted RMSE ratio {r['wratio']:.6f} > {imatrix_max}")
        # Tensors the imatrix has no data for are quantized without it by both tools.
        for r in plain:
            if "wratio" not in r and r["ratio"] > PLAIN_MAX_RATIO:
                failures.append(f"{r['tensor']} (no imatrix data): RMSE ratio {r['ratio']:.4f} > "
                                f"{PLAIN_MAX_RATIO}")
    out["failures"] = failures
    out["pass"] = not failures
    return out


def part_b(args, tools: Tools, work: Path) -> dict:
    log("\n=== (B) per-tensor dequantization RMSE, every type, --pure in both tools ===")
    models = []
    for dist in args.dists:
        path = synth_model(tools, work, f"sweep-{dist}.gguf", sweep_args(args, dist))
        if args.imatrix_source == "llama":
            im = llama_imatrix(tools, work, path, args.text, args.imatrix_chunks, args.threads)
        else:
            im = synthetic_imatrix(work, path, seed=11 if dist == "normal" else 12)
        models.append(SweepModel(dist, dist, path, im, "llama-imatrix over " + args.text.name
                                 if args.imatrix_source == "llama" else "synthetic"))
    if args.tail:
        for dist in args.dists:
            path = synth_model(tools, work, f"tail-{dist}.gguf", tail_args(args, dist))
            im = synthetic_imatrix(work, path, seed=21 if dist == "normal" else 22)
            models.append(SweepModel(f"tail-{dist}", dist, path, im, "synthetic"))

    for m in models:
        im = load_imatrix(m.imatrix)
        vals = np.concatenate(list(im.values()))
        spread = np.log10(vals.max() / max(vals.min(), 1e-30))
        per_tensor = np.median([np.log10(v.max() / max(v.min(), 1e-30)) for v in im.values()])
        log(f"  {m.label}: {m.path.name}, imatrix {m.imatrix.name} ({m.imatrix_source}; "
            f"{len(im)} tensors, values span {spread:.1f} decades overall, median "
            f"{per_tensor:.1f} within a tensor)")

    d = work / "b"
    d.mkdir(parents=True, exist_ok=True)
    runs = []
    failed_dirs = []
    for m in models:
        imat = load_imatrix(m.imatrix)
        for mode in ("plain", "imatrix"):
            for target in args.types:
                mix = MIX_OF_TYPE.get(target, target)
                out_e, out_l = d / "edgeq.gguf", d / "llama.gguf"
                remove(out_e, out_l)
                extra = ["--imatrix", str(m.imatrix)] if mode == "imatrix" else []
                tag = f"{m.label}-{mode}-{target}"
                cmd_e = [str(tools.edgeq), "quantize", "--pure", *extra, str(m.path), str(out_e),
                         mix, str(args.threads)]
                cmd_l = [str(tools.llama_quantize), "--pure", *extra, str(m.path), str(out_l), mix,
                         str(args.threads)]
                r_e = run_measured(cmd_e, work / "logs" / "b" / f"{tag}-edgeq.log")
                r_l = run_measured(cmd_l, work / "logs" / "b" / f"{tag}-llama.log")
                run = {"model": m.label, "dist": m.dist, "mode": mode, "type": target, "mix": mix,
                       "imatrix": str(m.imatrix) if mode == "imatrix" else None,
                       "imatrix_source": m.imatrix_source if mode == "imatrix" else None,
                       "edgeq_s": r_e.wall_s, "llama_s": r_l.wall_s,
                       "cmd_edgeq": cmd_e, "cmd_llama": cmd_l}
                if r_e.rc != 0 or r_l.rc != 0:
                    msg = "; ".join(f"{who} failed (rc {r.rc}, log {r.log_path})"
                                    for who, r in (("edgeq", r_e), ("llama.cpp", r_l)) if r.rc != 0)
                    run.update({"pass": False, "failures": [msg], "tensors": []})
                    log(f"  {tag:28s} FAIL {msg}")
                    runs.append(run)
                    continue
                rows = compare_outputs(m.path, out_e, out_l, target, imat if mode == "imatrix" else None)
                verdict = judge(rows, mode, args.imatrix_max_ratio)
                run.update(verdict)
                run["tensors"] = rows
                key = "max_wratio" if mode == "imatrix" else "max_ratio"
                log(f"  {tag:28s} max {'weighted ' if mode == 'imatrix' else ''}ratio "
                    f"{fmt_ratio(verdict.get(key)):>7} ({verdict.get(key + '_tensor', '-')}), "
                    f"pooled {fmt_ratio(verdict.get('model_wratio' if mode == 'imatrix' else 'model_ratio'))}, "
                    f"quantize {r_e.wall_s:5.1f} s vs {r_l.wall_s:5.1f} s  "
                    f"{'PASS' if verdict['pass'] else 'FAIL'}")
                if verdict["llama_unexpected_types"]:
                    log(f"      note: llama.cpp's type differs from its own rule on "
                        f"{verdict['llama_unexpected_types'][:3]}")
                if not verdict["pass"]:
                    keep = work / "failures" / tag
                    keep.mkdir(parents=True, exist_ok=True)
                    shutil.move(str(out_e), keep / "edgeq.gguf")
                    shutil.move(str(out_l), keep / "llama.gguf")
                    (keep / "README.txt").write_text(
                        "Reproduce:\n  " + " ".join(cmd_e).replace(str(out_e), str(keep / "edgeq.gguf"))
                        + "\n  " + " ".join(cmd_l).replace(str(out_l), str(keep / "llama.gguf"))
                        + "\nFailures:\n  " + "\n  ".join(verdict["failures"]) + "\n")
                    run["kept"] = str(keep)
                    failed_dirs.append(str(keep))
                    for f in verdict["failures"][:6]:
                        log(f"      {f}")
                    log(f"      inputs and outputs kept in {keep}")
                remove(out_e, out_l)
                runs.append(run)

    # Summary tables: one column per (model, mode); the max over tensors of edgeq/llama.cpp.
    log("\n(B) max over tensors of edgeq RMSE / llama.cpp RMSE, per type "
        f"(plain <= {PLAIN_MAX_RATIO}; imatrix: importance-weighted RMSE, <= {args.imatrix_max_ratio})")
    labels = [m.label for m in models]
    cols = [(lab, mode) for lab in labels for mode in ("plain", "imatrix")]
    index = {(r["model"], r["mode"], r["type"]): r for r in runs}
    rows = []
    for target in args.types:
        row = [target]
        ok = True
        for lab, mode in cols:
            r = index.get((lab, mode, target))
            if r is None:
                row.append("-")
                continue
            v = r.get("max_wratio" if mode == "imatrix" else "max_ratio")
            types_ok = not r.get("type_mismatches")
            row.append(fmt_ratio(v) + ("" if types_ok and r["pass"] else " !"))
            ok = ok and r["pass"]
        row.append("PASS" if ok else "FAIL")
        rows.append(row)
    headers = ["type"] + [f"{lab} {'plain' if mode == 'plain' else 'imat-w'}" for lab, mode in cols] + ["result"]
    log(table(headers, rows))
    log("  ('!' marks a cell whose run failed: a ratio over the limit or a type mismatch)")

    # Whole-model ratios, information.
    log("\n(B) pooled RMSE ratio edgeq/llama.cpp over all matrices (imatrix columns: weighted RMSE "
        "over the matrices with imatrix data / plain RMSE over all), and total quantize wall time")
    rows = []
    for target in args.types:
        row = [target]
        te = tl = 0.0
        for lab, mode in cols:
            r = index.get((lab, mode, target))
            if not r:
                row.append("-")
            elif mode == "imatrix":
                row.append(f"{fmt_ratio(r.get('model_wratio'))} / {fmt_ratio(r.get('model_ratio'))}")
            else:
                row.append(fmt_ratio(r.get("model_ratio")))
            if r:
                te += r["edgeq_s"]
                tl += r["llama_s"]
        row.append(f"{te:.1f}/{tl:.1f} s")
        rows.append(row)
    log(table(["type"] + [f"{lab} {mode}" for lab, mode in cols] + ["quantize time"], rows))

    # Fallback types on the tail model, information.
    tail_runs = [r for r in runs if r["model"].startswith("tail") and r["mode"] == "plain" and r.get("tensors")]
    if tail_runs:
        log("\n(B) rows not a multiple of 256 (tail models, ffn_down): type chosen by each tool")
        seen = {}
        for r in tail_runs:
            for t in r["tensors"]:
                if t["ne"][0] % 256 != 0 and r["type"] not in seen:
                    seen[r["type"]] = [r["type"], t["edgeq_type"], t["llama_type"], t["expected"],
                                       fmt_ratio(t.get("ratio"))]
        log(table(["requested", "edgeq", "llama.cpp", "llama.cpp rule", "RMSE ratio"], list(seen.values())))

    failed = [r for r in runs if not r["pass"]]
    line = {"pass": not failed, "runs": len(runs), "failed": [
        {"run": f"{r['model']}-{r['mode']}-{r['type']}", "failures": r.get("failures"), "kept": r.get("kept")}
        for r in failed]}
    line_name = (f"every type: plain RMSE <= {PLAIN_MAX_RATIO}x llama.cpp, imatrix-weighted RMSE "
                 f"<= {args.imatrix_max_ratio}x")
    return {"models": [{"label": m.label, "path": str(m.path), "imatrix": str(m.imatrix),
                        "imatrix_source": m.imatrix_source} for m in models],
            "runs": runs, "lines": {line_name: line}, "failure_dirs": failed_dirs}


# ----------------------------------------------------------------------------- part (c)

def part_c(args, tools: Tools, work: Path) -> dict:
    log(f"\n=== (C) Q4_K_M of the 1.1B model, {args.threads} threads: wall time and peak RSS, "
        f"{args.pairs} interleaved pairs ===")
    model = synth_model(tools, work, "tinyllama-1.1b-f16.gguf", tinyllama_args(args))
    d = work / "c"
    d.mkdir(parents=True, exist_ok=True)
    out = {"edgeq": d / "edgeq-Q4_K_M.gguf", "llama.cpp": d / "llama-Q4_K_M.gguf"}
    cmd = {"edgeq": [str(tools.edgeq), "quantize", str(model), str(out["edgeq"]), "Q4_K_M",
                     str(args.threads)],
           "llama.cpp": [str(tools.llama_quantize), str(model), str(out["llama.cpp"]), "Q4_K_M",
                         str(args.threads)]}
    log(f"  load average before: {load_average()}")
    results = {"edgeq": [], "llama.cpp": []}
    rows = []
    schedule = [("warm-up", w) for w in ("edgeq", "llama.cpp")] + \
               [(str(i + 1), w) for i in range(args.pairs) for w in ("edgeq", "llama.cpp")]
    for label, who in schedule:
        remove(*out.values())
        r = run_measured(cmd[who], work / "logs" / "c" / f"{label}-{who.replace('.', '')}.log")
        size = out[who].stat().st_size if out[who].exists() else 0
        remove(*out.values())
        if r.rc != 0:
            log(f"  {who} failed (rc {r.rc}), log {r.log_path}\n{tail_of(r.log_path)}")
            return {"lines": {"quantizers run": {"pass": False, "detail": f"{who} rc {r.rc}"}}}
        rows.append([label, who, f"{r.wall_s:.2f}", f"{r.cpu_s:.2f}", f"{r.maxrss_kib / 1024:.1f}",
                     f"{size / 2**20:.1f}", load_average().split()[0]])
        if label != "warm-up":
            results[who].append({"wall_s": r.wall_s, "cpu_s": r.cpu_s, "maxrss_kib": r.maxrss_kib})
        log(f"  {label:>7} {who:9s} wall {r.wall_s:7.2f} s  cpu {r.cpu_s:7.2f} s  "
            f"max RSS {r.maxrss_kib / 1024:8.1f} MiB")
    log("\n" + table(["run", "tool", "wall s", "user+sys s", "max RSS MiB", "output MiB", "load 1m"], rows))

    def stats(who):
        xs = results[who]
        return {"best_wall_s": min(x["wall_s"] for x in xs),
                "median_wall_s": statistics.median(x["wall_s"] for x in xs),
                "best_cpu_s": min(x["cpu_s"] for x in xs),
                "median_cpu_s": statistics.median(x["cpu_s"] for x in xs),
                "peak_rss_mib": max(x["maxrss_kib"] for x in xs) / 1024,
                "median_rss_mib": statistics.median(x["maxrss_kib"] for x in xs) / 1024}
    se, sl = stats("edgeq"), stats("llama.cpp")
    keys = [("best_wall_s", "best wall s"), ("median_wall_s", "median wall s"),
            ("best_cpu_s", "best user+sys s"), ("median_cpu_s", "median user+sys s"),
            ("peak_rss_mib", "peak RSS MiB"), ("median_rss_mib", "median RSS MiB")]
    log("\n" + table(["", *[k[1] for k in keys]],
                     [["edgeq", *[f"{se[k]:.2f}" for k, _ in keys]],
                      ["llama.cpp", *[f"{sl[k]:.2f}" for k, _ in keys]],
                      ["edgeq/llama.cpp", *[f"{se[k] / sl[k]:.3f}" for k, _ in keys]]]))
    log(f"  load average after: {load_average()}")
    lines = {
        f"wall time ({args.threads} threads): best edgeq <= best llama.cpp": {
            "pass": se["best_wall_s"] <= sl["best_wall_s"],
            "ratio": se["best_wall_s"] / sl["best_wall_s"],
            "median_ratio": se["median_wall_s"] / sl["median_wall_s"]},
        "peak memory: edgeq max RSS <= llama.cpp max RSS": {
            "pass": se["peak_rss_mib"] <= sl["peak_rss_mib"],
            "ratio": se["peak_rss_mib"] / sl["peak_rss_mib"]},
    }
    return {"model": str(model), "threads": args.threads, "pairs": args.pairs, "runs": results,
            "edgeq": se, "llama.cpp": sl, "lines": lines}


# ----------------------------------------------------------------------------- models

def tinyllama_args(args) -> list[str]:
    return ["--preset", "tinyllama-1.1b", "--type", "f16", "--dist", "normal", "--seed", "1",
            "--vocab-from", str(args.vocab)]


def sweep_args(args, dist: str) -> list[str]:
    return ["--preset", "custom", "--layers", str(args.sweep_layers), "--embd", str(args.sweep_embd),
            "--ffn", str(args.sweep_ffn), "--heads", str(args.sweep_heads), "--heads-kv",
            str(args.sweep_heads_kv), "--ctx", "2048", "--type", "f16", "--dist", dist,
            "--seed", "2" if dist == "normal" else "3", "--vocab-from", str(args.vocab)]


def tail_args(args, dist: str) -> list[str]:
    # ffn 1056 = 33 * 32: every ffn_down row is a whole number of 32-blocks but not of 256.
    return ["--preset", "custom", "--layers", "2", "--embd", "1024", "--ffn", "1056", "--heads", "16",
            "--heads-kv", "4", "--ctx", "512", "--vocab", "1024", "--type", "f16", "--dist", dist,
            "--seed", "4" if dist == "normal" else "5"]


# ----------------------------------------------------------------------------- main

def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("part", choices=["a", "b", "c", "all"], help="which acceptance check(s) to run")
    p.add_argument("--work", type=Path, default=Path(os.environ.get("EDGEQ_BENCH_WORK", "/tmp/edgeq-bench")),
                   help="work directory for models, outputs and logs (default /tmp/edgeq-bench)")
    p.add_argument("--edgeq-bin", help="directory with edgeq and edgeq-synth (default: EDGEQ_BIN, "
                                       "else build-bench/ or build/ of the repository)")
    p.add_argument("--llama-bin", help="llama.cpp bin directory (default: LLAMA_CPP_BIN, else "
                                       "bench/build-llamacpp.sh)")
    p.add_argument("--vocab", type=Path, default=SHARED / "data/vocab/ggml-vocab-llama-spm.gguf")
    p.add_argument("--text", type=Path, default=SHARED / "data/text/sotu.txt",
                   help="text for llama-imatrix")
    p.add_argument("-t", "--threads", type=int, default=2, help="threads for both quantizers (default 2)")
    p.add_argument("--pairs", type=int, default=4, help="(c) interleaved timing pairs (default 4)")
    p.add_argument("--types", default=",".join(SWEEP_TYPES), help="(b) comma-separated types")
    p.add_argument("--dists", default="normal,heavy", help="(b) weight distributions")
    p.add_argument("--imatrix-source", choices=["llama", "synthetic"], default="llama",
                   help="(b) imatrix of the sweep models: llama-imatrix over --text, or "
                        "exp(1.5 N(0,1)) per column written by this script")
    p.add_argument("--imatrix-chunks", type=int, default=8, help="(b) llama-imatrix chunks of 512")
    p.add_argument("--imatrix-max-ratio", type=float, default=1.0,
                   help="(b) limit on edgeq/llama.cpp importance-weighted RMSE (default 1.0)")
    p.add_argument("--no-tail", dest="tail", action="store_false",
                   help="(b) skip the models whose ffn_down rows are not a multiple of 256")
    p.add_argument("--sweep-layers", type=int, default=4)
    p.add_argument("--sweep-embd", type=int, default=1024)
    p.add_argument("--sweep-ffn", type=int, default=2816)
    p.add_argument("--sweep-heads", type=int, default=16)
    p.add_argument("--sweep-heads-kv", type=int, default=4)
    p.add_argument("--n-gen", type=int, default=16, help="(a) tokens llama-simple generates")
    p.add_argument("--keep", action="store_true", help="keep the quantized outputs of (a)")
    p.add_argument("--json", type=Path, help="summary path (default WORK/summary-PART.json)")
    args = p.parse_args()
    args.types = [t.strip().upper() for t in args.types.split(",") if t.strip()]
    args.dists = [d.strip() for d in args.dists.split(",") if d.strip()]
    for t in args.types:
        if t not in SWEEP_TYPES:
            p.error(f"--types: unknown type {t} (expected some of {','.join(SWEEP_TYPES)})")
    for d in args.dists:
        if d not in ("normal", "heavy"):
            p.error(f"--dists: expected normal and/or heavy, got {d}")
    for path in (args.vocab, args.text):
        if not path.exists():
            p.error(f"{path} not found")

    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    tools = find_tools(args)
    started = dt.datetime.now().astimezone()
    machine = machine_info()
    tool_info = tools.describe()
    log(f"edgeq vs llama.cpp quantize benchmark, {started:%Y-%m-%d %H:%M %Z}")
    log(f"machine: {machine['cpu']}, {machine['usable_cpus']} usable of {machine['logical_cpus']} "
        f"logical CPUs, {machine['mem_gib']} GiB RAM, Linux {machine['kernel']}; load average {load_average()}")
    log(f"edgeq:   {tool_info['edgeq']} ({tool_info['edgeq_version']}, built {tool_info['edgeq_built']}; "
        f"repository now at git {tool_info['edgeq_git']})")
    log(f"llama.cpp: {tool_info['llama_cpp_bin']} (version {tool_info['llama_cpp_version']})")
    log(f"work dir: {work}; threads: {args.threads}")

    parts = ["a", "b", "c"] if args.part == "all" else [args.part]
    summary = {"date": started.isoformat(timespec="seconds"), "machine": machine, "tools": tool_info,
               "threads": args.threads, "parts": {}}
    runners = {"a": part_a, "b": part_b, "c": part_c}
    for part in parts:
        t0 = time.perf_counter()
        summary["parts"][part] = runners[part](args, tools, work)
        summary["parts"][part]["elapsed_s"] = time.perf_counter() - t0

    log("\n=== acceptance ===")
    all_pass = True
    rows = []
    for part in parts:
        for name, line in summary["parts"][part]["lines"].items():
            all_pass = all_pass and line["pass"]
            extra = ""
            if "ratio" in line:
                extra = f"ratio {line['ratio']:.3f}"
                if "median_ratio" in line:
                    extra += f" (median {line['median_ratio']:.3f})"
            elif "relative" in line:
                extra = f"{line['relative'] * 100:+.4f}%"
            elif "detail" in line:
                extra = line["detail"]
            elif "failed" in line:
                extra = f"{line['runs'] - len(line['failed'])}/{line['runs']} runs pass"
            rows.append([part.upper(), name, extra, "PASS" if line["pass"] else "FAIL"])
    log(table(["part", "line", "figure", "result"], rows, "llll"))
    summary["pass"] = all_pass
    summary["finished"] = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    json_path = args.json or work / f"summary-{args.part}.json"
    json_path.write_text(json.dumps(summary, indent=1, default=str))
    log(f"\nsummary: {json_path}")
    return 0 if all_pass else 1


if __name__ == "__main__":
    sys.exit(main())
