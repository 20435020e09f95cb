#!/usr/bin/env python3
"""edgeq convert against llama.cpp's convert_hf_to_gguf.py (and llama-quantize).

Two parts, each printed as a table with a PASS/FAIL line per acceptance check:

  a  Correctness on the fixtures of tests/fixtures/hf (one tiny checkpoint per family, with
     transformers' float32 logits for a prompt): llama.cpp's runtime loads edgeq's F32 GGUF,
     and its logits for the same token ids are within 1e-3 of transformers' (relative:
     max|a - b| / max|b| per position, the worst position reported) for every family.
     llama.cpp's logits come from bench/llama_logits.c, compiled here against the llama.cpp
     build (libllama + llama.h).
  b  Speed and memory on a 1.1B Llama-shaped BF16 checkpoint (TinyLlama's shape, random
     weights, Llama's 32000-piece SentencePiece vocabulary, sharded by save_pretrained):
       - `edgeq convert --type f16` against `convert_hf_to_gguf.py --outtype f16`, in
         interleaved pairs: edgeq >= 5x faster (best wall time of each side) and <= 0.5x the peak RSS;
         the two files have byte-identical tensors and the same metadata but provenance;
       - `edgeq convert --type q4_k_m` against convert_hf_to_gguf.py + llama-quantize
         (Q4_K_M, same threads): the one pass is faster (best of each side), and equals, byte for byte,
         `edgeq quantize` of edgeq's own F16 file.

Usage:

  python bench/convert_vs_llamacpp.py all            # a, then b (about 30 min on 2 cores)
  python bench/convert_vs_llamacpp.py a
  python bench/convert_vs_llamacpp.py b --pairs 6 --q4-pairs 3 -t 2

Needs a Python with numpy and gguf for (a); (b) also makes the checkpoint with torch,
transformers and sentencepiece (+ protobuf), and runs llama.cpp's converter, whose
requirements (requirements/requirements-convert_hf_to_gguf.txt) it needs. A C compiler (cc).
Exit status: 0 every line passes, 1 a line fails, 2 setup error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import gguf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quantize_vs_llamacpp import (  # noqa: E402  (shared bench helpers: launcher, tables, machine)
    load_average, log, machine_info, remove, run_measured, table, tail_of,
)

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
FIXTURES = REPO / "tests" / "fixtures" / "hf"

LOGITS_MAX_REL = 1e-3
F16_MIN_SPEEDUP = 5.0
F16_MAX_RSS_RATIO = 0.5

# general.* keys derived from the directory name, README.md, _name_or_path or parameter count.
PROVENANCE_KEYS = {
    "general.name", "general.author", "general.version", "general.organization", "general.finetune",
    "general.basename", "general.description", "general.quantized_by", "general.size_label",
    "general.license", "general.license.name", "general.license.link", "general.url", "general.doi",
    "general.uuid", "general.repo_url", "general.tags", "general.languages",
}
PROVENANCE_PREFIXES = ("general.source.", "general.base_model.", "general.dataset.")


def is_provenance(key: str) -> bool:
    return key in PROVENANCE_KEYS or key.startswith(PROVENANCE_PREFIXES)


# ----------------------------------------------------------------------------- tools

class Tools:
    def __init__(self, args):
        self.threads = args.threads
        self.edgeq = self._find_edgeq(args)
        self.llama_bin = self._find_llama_bin(args)
        self.llama_src = self._find_llama_src(args)
        self.python = args.convert_python or sys.executable

    @staticmethod
    def _find_edgeq(args) -> Path:
        given = args.edgeq_bin or os.environ.get("EDGEQ_BIN")
        candidates = [Path(given)] if given else [REPO / "build-bench", REPO / "build"]
        for c in candidates:
            exe = c / "edgeq" if c.is_dir() else c
            if exe.is_file():
                r = subprocess.run([str(exe), "convert", "--help"], capture_output=True, text=True)
                if r.returncode == 0:
                    return exe
        sys.exit(f"error: no edgeq with a `convert` subcommand in {', '.join(map(str, candidates))}; "
                 "build it or pass --edgeq-bin / EDGEQ_BIN")

    @staticmethod
    def _find_llama_bin(args) -> Path:
        llama = args.llama_bin or os.environ.get("LLAMA_CPP_BIN")
        if not llama:
            log("LLAMA_CPP_BIN not set: running bench/build-llamacpp.sh")
            r = subprocess.run(["bash", str(Path(__file__).with_name("build-llamacpp.sh"))],
                               stdout=subprocess.PIPE, text=True)
            if r.returncode != 0:
                sys.exit("error: bench/build-llamacpp.sh failed")
            llama = r.stdout.strip().splitlines()[-1]
        path = Path(llama)
        if not (path / "llama-quantize").is_file():
            sys.exit(f"error: {path / 'llama-quantize'} not found (LLAMA_CPP_BIN={path})")
        return path

    def _find_llama_src(self, args) -> Path:
        """The llama.cpp source of that build: --llama-src, LLAMA_CPP_SRC, or its CMakeCache."""
        given = args.llama_src or os.environ.get("LLAMA_CPP_SRC")
        candidates = [Path(given)] if given else []
        cache = self.llama_bin.parent / "CMakeCache.txt"
        if cache.is_file():
            for line in cache.read_text(errors="replace").splitlines():
                if line.startswith("CMAKE_HOME_DIRECTORY:INTERNAL="):
                    candidates.append(Path(line.split("=", 1)[1]))
        for c in candidates:
            if (c / "include" / "llama.h").is_file() and (c / "convert_hf_to_gguf.py").is_file():
                return c
        sys.exit("error: llama.cpp's source (include/llama.h, convert_hf_to_gguf.py) not found; "
                 "pass --llama-src or LLAMA_CPP_SRC")

    def llama_logits(self, work: Path) -> Path:
        """bench/llama_logits.c compiled against this llama.cpp (rebuilt when the source changes)."""
        src = Path(__file__).with_name("llama_logits.c")
        lib_dir = self.llama_bin
        if not any(lib_dir.glob("libllama.so*")) and (lib_dir.parent / "src").is_dir():
            lib_dir = lib_dir.parent / "src"
        if not any(lib_dir.glob("libllama.so*")):
            sys.exit(f"error: libllama.so not found beside {self.llama_bin} (llama.cpp built without "
                     "BUILD_SHARED_LIBS?)")
        exe = work / "llama_logits"
        stamp = hashlib.sha256(src.read_bytes() + str(lib_dir).encode()).hexdigest()[:16]
        stamp_path = work / "llama_logits.stamp"
        if exe.is_file() and stamp_path.is_file() and stamp_path.read_text() == stamp:
            return exe
        cmd = [os.environ.get("CC", "cc"), "-O2", "-std=c11", f"-I{self.llama_src / 'include'}",
               f"-I{self.llama_src / 'ggml' / 'include'}", str(src), f"-L{lib_dir}", "-lllama", "-lggml",
               "-lggml-base", f"-Wl,-rpath,{lib_dir}", "-o", str(exe)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"error: compiling {src} failed:\n$ {' '.join(cmd)}\n{r.stderr}")
        stamp_path.write_text(stamp)
        return exe

    def describe(self) -> dict:
        def first_line(cmd):
            try:
                r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
                lines = [x for x in (r.stdout + r.stderr).splitlines() if x.strip()]
                return lines[0].strip() if lines else "?"
            except Exception:  # noqa: BLE001 - informational only
                return "?"
        git = first_line(["git", "-C", str(REPO), "describe", "--always", "--dirty"])
        llama_version = "?"
        for probe in ("llama-cli", "llama-simple", "llama-bench"):
            if (self.llama_bin / probe).is_file():
                line = next((x for x in subprocess.run([str(self.llama_bin / probe), "--version"], capture_output=True,
                                                       text=True).stderr.splitlines() if x.startswith("version:")), None)
                if line:
                    llama_version = line.split(":", 1)[1].strip()
                    break
        return {"edgeq": str(self.edgeq), "edgeq_version": first_line([str(self.edgeq), "--version"]),
                "edgeq_git": git, "llama_cpp_bin": str(self.llama_bin), "llama_cpp_src": str(self.llama_src),
                "llama_cpp_version": llama_version,
                "convert_python": self.python,
                "transformers": first_line([self.python, "-c", "import transformers; print(transformers.__version__)"])}


# ----------------------------------------------------------------------------- part a

def part_a(args, tools: Tools, work: Path) -> dict:
    log("\n== (a) logits: llama.cpp's runtime on edgeq's F32 file against transformers' float32 ==")
    exe = tools.llama_logits(work)
    names = sorted(p.name for p in FIXTURES.iterdir() if (p / "reference.json").is_file()) if FIXTURES.is_dir() else []
    if not names:
        sys.exit(f"error: no fixtures in {FIXTURES} (tests/fixtures/make_hf_fixtures.py makes them)")
    out_dir = work / "a"
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, results = [], []
    for name in names:
        d = FIXTURES / name
        ref = json.loads((d / "reference.json").read_text())
        expected = np.load(d / "reference-logits.npy")
        gguf_path, logits_path = out_dir / f"{name}-f32.gguf", out_dir / f"{name}.logits"
        remove(gguf_path, logits_path)
        r = subprocess.run([str(tools.edgeq), "convert", str(d), "-o", str(gguf_path), "--type", "f32",
                            "-t", str(tools.threads)], capture_output=True, text=True)
        entry = {"fixture": name, "tokens": len(ref["ids"]), "vocab": int(expected.shape[1])}
        if r.returncode != 0:
            entry.update(ok=False, error=f"edgeq convert failed: {r.stderr.strip()[-300:]}")
        else:
            r = subprocess.run([str(exe), str(gguf_path), str(logits_path), str(tools.threads),
                                *map(str, ref["ids"])], capture_output=True, text=True)
            if r.returncode != 0:
                entry.update(ok=False, error=f"llama.cpp: {r.stderr.strip()[-300:]}")
            else:
                got = np.fromfile(logits_path, dtype=np.float32)
                if got.size != expected.size:
                    entry.update(ok=False, error=f"{got.size} logits, expected {expected.size}")
                else:
                    got = got.reshape(expected.shape)
                    rel = np.abs(got - expected).max(axis=1) / np.abs(expected).max(axis=1)
                    worst = int(rel.argmax())
                    entry.update(ok=bool(rel.max() <= LOGITS_MAX_REL), worst_rel=float(rel.max()), worst_pos=worst,
                                 median_rel=float(np.median(rel)),
                                 argmax_agree=float((got.argmax(1) == expected.argmax(1)).mean()))
        results.append(entry)
        if "worst_rel" in entry:
            rows.append([name, entry["tokens"], entry["vocab"], f"{entry['worst_rel']:.2e}", entry["worst_pos"],
                         f"{entry['median_rel']:.2e}", f"{entry['argmax_agree']:.3f}", "PASS" if entry["ok"] else "FAIL"])
        else:
            rows.append([name, entry["tokens"], entry["vocab"], "-", "-", "-", "-", "FAIL"])
            log(f"  {name}: {entry['error']}")
        remove(gguf_path, logits_path)
    log(table(["fixture", "tokens", "vocab", "worst rel", "at pos", "median rel", "argmax agree", "result"], rows,
              "lrrrrrrl"))
    ok = all(e["ok"] for e in results)
    worst = max((e.get("worst_rel", float("inf")) for e in results), default=float("nan"))
    return {"fixtures": results,
            "lines": [{"name": f"logits within {LOGITS_MAX_REL:g} (relative) of transformers, every family",
                       "figure": f"{len(results)} families, worst {worst:.2e}", "pass": ok}]}


# ----------------------------------------------------------------------------- the 1.1B checkpoint

TINYLLAMA_CONFIG = {
    "architectures": ["LlamaForCausalLM"], "attention_bias": False, "bos_token_id": 1, "eos_token_id": 2,
    "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": 5632,
    "max_position_embeddings": 2048, "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 22,
    "num_key_value_heads": 4, "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": None,
    "rope_theta": 10000.0, "tie_word_embeddings": False, "torch_dtype": "bfloat16", "transformers_version": "4.35.0",
    "use_cache": True, "vocab_size": 32000}
ZEPHYR_TEMPLATE = ("{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + "
                   "eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n"
                   "{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n"
                   "{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}")


def spm_model_from_gguf_vocab(vocab_gguf: Path) -> bytes:
    """Llama's SentencePiece model (tokenizer.model), assembled from the pieces, scores and types
    of llama.cpp's ggml-vocab-llama-spm.gguf (32000 pieces, byte fallback)."""
    from sentencepiece import sentencepiece_model_pb2 as pb
    import sentencepiece as spm
    r = gguf.GGUFReader(str(vocab_gguf))
    tokens = [bytes(r.fields["tokenizer.ggml.tokens"].parts[i]).decode("utf-8")
              for i in r.fields["tokenizer.ggml.tokens"].data]
    scores = [float(r.fields["tokenizer.ggml.scores"].parts[i][0]) for i in r.fields["tokenizer.ggml.scores"].data]
    types = [int(r.fields["tokenizer.ggml.token_type"].parts[i][0]) for i in r.fields["tokenizer.ggml.token_type"].data]
    m = pb.ModelProto()
    for tok, score, typ in zip(tokens, scores, types):
        p = m.pieces.add()
        p.piece, p.score, p.type = tok, score, typ  # GGUF token types use SentencePiece's numbering
    ts = m.trainer_spec
    ts.model_type = pb.TrainerSpec.BPE
    ts.vocab_size = len(tokens)
    ts.byte_fallback = True
    ts.split_digits = True
    ts.unk_id, ts.bos_id, ts.eos_id, ts.pad_id = 0, 1, 2, -1
    ns = m.normalizer_spec
    ns.name = "identity"
    ns.add_dummy_prefix = True
    ns.remove_extra_whitespaces = False
    ns.escape_whitespaces = True
    data = m.SerializeToString()
    sp = spm.SentencePieceProcessor(model_proto=data)
    assert sp.vocab_size() == 32000 and sp.encode("Hello world")[0] > 2
    return data


def make_checkpoint(out: str, seed: int, shard: str) -> None:
    """Runs in a child process (`make-checkpoint`): the 1.1B BF16 checkpoint, save_pretrained."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    cfg_dir = d / ".config"
    cfg_dir.mkdir(exist_ok=True)
    (cfg_dir / "config.json").write_text(json.dumps(TINYLLAMA_CONFIG, indent=2))
    config = AutoConfig.from_pretrained(str(cfg_dir))
    shutil.rmtree(cfg_dir)
    torch.manual_seed(seed)
    torch.set_default_dtype(torch.bfloat16)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(str(d), max_shard_size=shard)
    (d / "config.json").write_text(json.dumps(TINYLLAMA_CONFIG, indent=2) + "\n")
    (d / "generation_config.json").write_text(json.dumps(
        {"bos_token_id": 1, "eos_token_id": 2, "max_length": 2048, "pad_token_id": 0, "transformers_version": "4.35.0"},
        indent=2) + "\n")
    (d / "tokenizer.model").write_bytes(spm_model_from_gguf_vocab(SHARED / "data" / "vocab" / "ggml-vocab-llama-spm.gguf"))
    decoder = {str(i): {"content": c, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False,
                        "special": True} for i, c in enumerate(["<unk>", "<s>", "</s>"])}
    (d / "tokenizer_config.json").write_text(json.dumps(
        {"add_bos_token": True, "add_eos_token": False, "added_tokens_decoder": decoder, "bos_token": "<s>",
         "chat_template": ZEPHYR_TEMPLATE, "clean_up_tokenization_spaces": False, "eos_token": "</s>", "legacy": False,
         "model_max_length": 2048, "pad_token": "</s>", "padding_side": "right", "sp_model_kwargs": {},
         "tokenizer_class": "LlamaTokenizer", "unk_token": "<unk>", "use_default_system_prompt": False}, indent=2) + "\n")


def ensure_checkpoint(args, tools: Tools, work: Path) -> Path:
    d = work / "models" / "tinyllama-1.1b-bf16"
    recipe = {"config": TINYLLAMA_CONFIG, "seed": args.seed, "shard": args.shard, "version": 1}
    sidecar = d / ".recipe.json"
    if sidecar.is_file() and json.loads(sidecar.read_text()) == recipe:
        log(f"  reusing {d}")
        return d
    shutil.rmtree(d, ignore_errors=True)
    log(f"  making {d} (transformers, random init, BF16, shards of {args.shard}) ...")
    t0 = time.perf_counter()
    r = subprocess.run([tools.python, __file__, "make-checkpoint", str(d), "--seed", str(args.seed),
                        "--shard", args.shard])
    if r.returncode != 0:
        sys.exit("error: making the checkpoint failed (needs torch, transformers, sentencepiece, protobuf)")
    sidecar.write_text(json.dumps(recipe))
    size = sum(p.stat().st_size for p in d.glob("*.safetensors"))
    log(f"  made {d}: {len(list(d.glob('*.safetensors')))} shards, {size / 2**20:.0f} MiB, "
        f"{time.perf_counter() - t0:.0f} s")
    return d


# ----------------------------------------------------------------------------- comparing files

def gguf_contents(path: Path):
    r = gguf.GGUFReader(str(path))
    meta = []
    for key, field in r.fields.items():
        if key.startswith("GGUF."):
            continue
        if field.types[0] == gguf.GGUFValueType.ARRAY:
            value = [bytes(field.parts[i]) for i in field.data] if field.types[-1] == gguf.GGUFValueType.STRING \
                else [field.parts[i].tobytes() for i in field.data]
        else:
            value = bytes(field.parts[-1]) if field.types[0] == gguf.GGUFValueType.STRING else field.parts[-1].tobytes()
        meta.append((key, tuple(int(t) for t in field.types), value))
    return r, meta


def compare_gguf(a: Path, b: Path) -> dict:
    """Tensors (name, type, shape, bytes, order) and metadata except provenance (keys, order,
    types, value bytes) of two files; values are compared as their raw bytes."""
    ra, ma = gguf_contents(a)
    rb, mb = gguf_contents(b)
    ta, tb = {t.name: t for t in ra.tensors}, {t.name: t for t in rb.tensors}
    differing = []
    for name in ta.keys() & tb.keys():
        x, y = ta[name], tb[name]
        if x.tensor_type != y.tensor_type or list(x.shape) != list(y.shape) or \
                not np.array_equal(np.asarray(x.data).view(np.uint8), np.asarray(y.data).view(np.uint8)):
            differing.append(name)
    ka = [m for m in ma if not is_provenance(m[0])]
    kb = [m for m in mb if not is_provenance(m[0])]
    kb_by = {m[0]: m for m in kb}
    meta_diff = [m[0] for m in ka if kb_by.get(m[0]) != m] + [k for k in kb_by if k not in {m[0] for m in ka}]
    return {"tensors": len(ta), "only_first": sorted(ta.keys() - tb.keys()), "only_second": sorted(tb.keys() - ta.keys()),
            "differing": sorted(differing), "same_order": [t.name for t in ra.tensors] == [t.name for t in rb.tensors],
            "metadata_differing": meta_diff, "metadata_same_order": [m[0] for m in ka] == [m[0] for m in kb],
            "provenance_skipped": sorted({m[0] for m in ma + mb if is_provenance(m[0])})}


def files_equal(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(1 << 24), fb.read(1 << 24)
            if x != y:
                return False
            if not x:
                return True


# ----------------------------------------------------------------------------- part b

def timed(tools, label, cmd, log_path, runs, tag):
    r = run_measured([str(c) for c in cmd], log_path)
    if r.rc != 0:
        log(f"  {label} failed (rc {r.rc}); log {log_path}\n{tail_of(r.log_path)}")
        sys.exit(1)
    runs.append({"wall_s": r.wall_s, "cpu_s": r.cpu_s, "maxrss_kib": r.maxrss_kib})
    log(f"  {tag:14s} {label:34s} {r.wall_s:8.2f} s wall {r.cpu_s:8.2f} s cpu {r.maxrss_kib / 1024:8.1f} MiB peak RSS"
        f"   load {os.getloadavg()[0]:.2f}")
    return r


def stats(runs):
    walls = [x["wall_s"] for x in runs]
    rss = [x["maxrss_kib"] / 1024 for x in runs]
    return {"runs": runs, "best_s": min(walls), "median_s": statistics.median(walls),
            "peak_rss_mib": max(rss), "median_rss_mib": statistics.median(rss)}


def part_b(args, tools: Tools, work: Path) -> dict:
    log("\n== (b) 1.1B BF16 checkpoint: edgeq convert against convert_hf_to_gguf.py (+ llama-quantize) ==")
    model = ensure_checkpoint(args, tools, work)
    out = work / "b"
    out.mkdir(parents=True, exist_ok=True)
    logs = work / "logs"
    t = str(tools.threads)
    # page cache: read the checkpoint once so that neither tool pays for the disk first
    for p in sorted(model.iterdir()):
        if p.is_file():
            with open(p, "rb") as f:
                while f.read(1 << 24):
                    pass
    env_note = f"OMP_NUM_THREADS={t}"
    os.environ["OMP_NUM_THREADS"] = t  # torch in llama.cpp's converter: the same thread count

    e_f16, l_f16 = out / "edgeq-f16.gguf", out / "llama-f16.gguf"
    e_cmd = [tools.edgeq, "convert", model, "-o", e_f16, "--type", "f16", "-t", t]
    l_cmd = [tools.python, tools.llama_src / "convert_hf_to_gguf.py", model, "--outtype", "f16", "--outfile", l_f16]
    log(f"\n-- F16: {args.pairs} interleaved pairs, {t} threads ({env_note} for the Python converter)")
    runs = {"edgeq": [], "llama.cpp": []}
    for i in range(args.pairs):
        order = ["edgeq", "llama.cpp"] if i % 2 == 0 else ["llama.cpp", "edgeq"]
        for who in order:
            target, cmd = (e_f16, e_cmd) if who == "edgeq" else (l_f16, l_cmd)
            remove(target)
            timed(tools, "convert --type f16" if who == "edgeq" else "convert_hf_to_gguf --outtype f16", cmd,
                  logs / f"f16-{who}-{i}.log", runs[who], f"pair {i + 1} {who}")
    f16 = {who: stats(r) for who, r in runs.items()}
    cmp16 = compare_gguf(e_f16, l_f16)
    speed16 = f16["llama.cpp"]["best_s"] / f16["edgeq"]["best_s"]
    rss16 = f16["edgeq"]["peak_rss_mib"] / f16["llama.cpp"]["peak_rss_mib"]
    log("")
    log(table(["F16", "best s", "median s", "peak RSS MiB", "median RSS MiB"],
              [[who, f"{s['best_s']:.2f}", f"{s['median_s']:.2f}", f"{s['peak_rss_mib']:.0f}",
                f"{s['median_rss_mib']:.0f}"] for who, s in f16.items()]))
    log(f"  speed-up (llama.cpp / edgeq): best {speed16:.2f}x, median "
        f"{f16['llama.cpp']['median_s'] / f16['edgeq']['median_s']:.2f}x; peak RSS edgeq / llama.cpp {rss16:.3f}")
    log(f"  files: {cmp16['tensors']} tensors, {len(cmp16['differing'])} differ, only edgeq {cmp16['only_first'][:5]}, "
        f"only llama.cpp {cmp16['only_second'][:5]}, same order {cmp16['same_order']}; metadata differing "
        f"{cmp16['metadata_differing']}, same order {cmp16['metadata_same_order']}; provenance skipped "
        f"{cmp16['provenance_skipped']}")
    identical16 = (not cmp16["differing"] and not cmp16["only_first"] and not cmp16["only_second"]
                   and cmp16["same_order"] and not cmp16["metadata_differing"] and cmp16["metadata_same_order"])

    # Q4_K_M: one pass against convert + llama-quantize
    e_q4, l_q4, l_tmp = out / "edgeq-q4_k_m.gguf", out / "llama-q4_k_m.gguf", out / "llama-f16-for-q4.gguf"
    e_q4_cmd = [tools.edgeq, "convert", model, "-o", e_q4, "--type", "q4_k_m", "-t", t]
    l_conv = [tools.python, tools.llama_src / "convert_hf_to_gguf.py", model, "--outtype", "f16", "--outfile", l_tmp]
    l_quant = [tools.llama_bin / "llama-quantize", l_tmp, l_q4, "Q4_K_M", t]
    log(f"\n-- Q4_K_M: {args.q4_pairs} interleaved pairs, {t} threads")
    q4runs = {"edgeq": [], "llama.cpp": []}
    for i in range(args.q4_pairs):
        order = ["edgeq", "llama.cpp"] if i % 2 == 0 else ["llama.cpp", "edgeq"]
        for who in order:
            if who == "edgeq":
                remove(e_q4)
                timed(tools, "convert --type q4_k_m", e_q4_cmd, logs / f"q4-edgeq-{i}.log", q4runs["edgeq"],
                      f"pair {i + 1} edgeq")
            else:
                remove(l_q4, l_tmp)
                parts = []
                timed(tools, "convert_hf_to_gguf --outtype f16", l_conv, logs / f"q4-llama-convert-{i}.log", parts,
                      f"pair {i + 1} llama")
                timed(tools, "llama-quantize Q4_K_M", l_quant, logs / f"q4-llama-quantize-{i}.log", parts,
                      f"pair {i + 1} llama")
                remove(l_tmp)
                q4runs["llama.cpp"].append({"wall_s": sum(p["wall_s"] for p in parts),
                                            "cpu_s": sum(p["cpu_s"] for p in parts),
                                            "maxrss_kib": max(p["maxrss_kib"] for p in parts), "steps": parts})
    q4 = {who: stats(r) for who, r in q4runs.items()}
    speed_q4 = q4["llama.cpp"]["best_s"] / q4["edgeq"]["best_s"]
    log("")
    log(table(["Q4_K_M", "best s", "median s", "peak RSS MiB"],
              [[who, f"{s['best_s']:.2f}", f"{s['median_s']:.2f}", f"{s['peak_rss_mib']:.0f}"] for who, s in q4.items()]))
    log(f"  speed-up (convert + llama-quantize / one pass): best {speed_q4:.2f}x, median "
        f"{q4['llama.cpp']['median_s'] / q4['edgeq']['median_s']:.2f}x; peak RSS edgeq / llama.cpp "
        f"{q4['edgeq']['peak_rss_mib'] / q4['llama.cpp']['peak_rss_mib']:.3f}")

    two_pass = out / "edgeq-q4_k_m-two-pass.gguf"
    remove(two_pass)
    r = run_measured([str(tools.edgeq), "quantize", str(e_f16), str(two_pass), "Q4_K_M", "-t", t],
                     logs / "q4-edgeq-quantize.log")
    if r.rc != 0:
        sys.exit(f"error: edgeq quantize failed; log {r.log_path}\n{tail_of(r.log_path)}")
    one_eq_two = files_equal(e_q4, two_pass)
    log(f"  edgeq quantize of edgeq's F16 (Q4_K_M): {r.wall_s:.2f} s; one pass == two pass: {one_eq_two}")
    if not one_eq_two:
        c = compare_gguf(e_q4, two_pass)
        log(f"    differing tensors {c['differing'][:10]}, metadata {c['metadata_differing'][:10]}")
    info = compare_gguf(e_q4, l_q4)
    types_e = {t_.name: t_.tensor_type.name for t_ in gguf.GGUFReader(str(e_q4)).tensors}
    types_l = {t_.name: t_.tensor_type.name for t_ in gguf.GGUFReader(str(l_q4)).tensors}
    same_types = sum(types_e.get(k) == v for k, v in types_l.items())
    log(f"  information: edgeq's Q4_K_M against llama.cpp's: {same_types}/{len(types_l)} tensors of the same type, "
        f"{info['tensors'] - len(info['differing'])} byte-identical, sizes {e_q4.stat().st_size} / {l_q4.stat().st_size} B")
    if not args.keep:
        remove(e_q4, l_q4, two_pass, e_f16, l_f16)

    lines = [
        {"name": f"F16: edgeq >= {F16_MIN_SPEEDUP:g}x faster (best wall of each side)", "figure":
            f"{speed16:.2f}x (median {f16['llama.cpp']['median_s'] / f16['edgeq']['median_s']:.2f}x)",
         "pass": speed16 >= F16_MIN_SPEEDUP},
        {"name": f"F16: edgeq peak RSS <= {F16_MAX_RSS_RATIO:g}x llama.cpp's", "figure": f"ratio {rss16:.3f}",
         "pass": rss16 <= F16_MAX_RSS_RATIO},
        {"name": "F16: tensors byte-identical, metadata equal but provenance",
         "figure": f"{cmp16['tensors']} tensors, {len(cmp16['differing'])} differ, "
                   f"{len(cmp16['metadata_differing'])} keys differ", "pass": identical16},
        {"name": "Q4_K_M: one pass faster than convert + llama-quantize (best of each side)",
         "figure": f"{speed_q4:.2f}x", "pass": speed_q4 > 1.0},
        {"name": "Q4_K_M: one pass == edgeq quantize of edgeq's F16, byte for byte", "figure": "",
         "pass": one_eq_two},
    ]
    return {"model": str(model), "threads": tools.threads, "f16": f16, "f16_compare": cmp16, "q4_k_m": q4,
            "q4_one_pass_equals_two_pass": one_eq_two, "lines": lines}


# ----------------------------------------------------------------------------- main

def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "make-checkpoint":
        ap = argparse.ArgumentParser()
        ap.add_argument("cmd")
        ap.add_argument("dir")
        ap.add_argument("--seed", type=int, default=0)
        ap.add_argument("--shard", default="1GB")
        a = ap.parse_args()
        make_checkpoint(a.dir, a.seed, a.shard)
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("part", choices=["all", "a", "b"], nargs="?", default="all")
    ap.add_argument("--work", type=Path, default=Path("/tmp/edgeq-bench"), help="work directory (default %(default)s)")
    ap.add_argument("--edgeq-bin", help="edgeq binary or its directory (default EDGEQ_BIN, build-bench/, build/)")
    ap.add_argument("--llama-bin", help="llama.cpp's bin directory (default LLAMA_CPP_BIN, else build-llamacpp.sh)")
    ap.add_argument("--llama-src", help="llama.cpp's source (default LLAMA_CPP_SRC, else the build's CMakeCache)")
    ap.add_argument("--convert-python", help="Python that runs convert_hf_to_gguf.py and makes the checkpoint "
                                             "(default: this one)")
    ap.add_argument("-t", "--threads", type=int, default=2, help="threads for every tool (default %(default)s)")
    ap.add_argument("--pairs", type=int, default=4, help="interleaved F16 pairs (default %(default)s)")
    ap.add_argument("--q4-pairs", type=int, default=2, help="interleaved Q4_K_M pairs (default %(default)s)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the checkpoint's weights")
    ap.add_argument("--shard", default="1GB", help="save_pretrained max_shard_size (default %(default)s)")
    ap.add_argument("--keep", action="store_true", help="keep the (b) output files")
    ap.add_argument("--json", type=Path, help="summary path (default WORK/summary-convert-PART.json)")
    args = ap.parse_args()
    if args.pairs < 1 or args.q4_pairs < 1:
        ap.error("--pairs and --q4-pairs must be >= 1")
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    tools = Tools(args)
    started = dt.datetime.now().astimezone()
    machine = machine_info()
    log(f"machine: {machine['cpu']}, {machine['usable_cpus']} usable of {machine['logical_cpus']} logical CPUs, "
        f"{machine['mem_gib']} GiB RAM, Linux {machine['kernel']}; load average {load_average()}")
    tool_info = tools.describe()
    log("tools: " + ", ".join(f"{k}={v}" for k, v in tool_info.items()))
    summary = {"date": started.isoformat(timespec="seconds"), "machine": machine, "tools": tool_info}
    if args.part in ("all", "a"):
        summary["a"] = part_a(args, tools, work)
    if args.part in ("all", "b"):
        summary["b"] = part_b(args, tools, work)
    rows, ok = [], True
    for part in ("a", "b"):
        for line in summary.get(part, {}).get("lines", []):
            rows.append([part.upper(), line["name"], line["figure"], "PASS" if line["pass"] else "FAIL"])
            ok &= line["pass"]
    log(f"\n== acceptance ({machine['cpu']}, {machine['usable_cpus']} CPUs, {args.threads} threads; "
        f"load average {load_average()}) ==")
    log(table(["part", "line", "figure", "result"], rows, "llll"))
    summary["pass"] = ok
    path = args.json or work / f"summary-convert-{args.part}.json"
    path.write_text(json.dumps(summary, indent=1, default=str))
    log(f"summary: {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
