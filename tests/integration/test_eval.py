"""edgeq eval against numpy: perplexity and KL divergence of fixture models recomputed from the
logits that tools/edgeq-logits dumps (one decode of each whole chunk, in float64 here), with
llama-perplexity's definitions written out independently below:

  tokens   the whole text tokenized with BOS (if the vocabulary adds it), cut into chunks of
           n_ctx; each chunk's first token replaced by BOS (if added)
  scored   positions n_ctx/2 .. n_ctx-2 of each chunk, each predicting the next token
  ppl      exp(mean nll) +- ppl * sqrt(var(nll) / (count - 1))
  KLD      sum over tokens with log p_base > -16 of p_base (log p_base - log q)

Also: a model against itself gives exactly 0; base files made on other text, context or
chunks, or damaged, are refused with a clear message.
"""
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "hf"
N_CTX = 64
N_CHUNKS = 3


@pytest.fixture(scope="session")
def logits_bin():
    path = Path(os.environ.get("EDGEQ_LOGITS_BIN", ROOT / "build" / "edgeq-logits"))
    if not path.exists():
        pytest.exit(f"{path} does not exist: build the project first (see README.md)", returncode=2)
    return path


@pytest.fixture(scope="session")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("eval")


@pytest.fixture(scope="session")
def texts(work, shared_data):
    """Two different texts, each a few thousand characters of the State of the Union corpus."""
    raw = (shared_data / "text" / "sotu.txt").read_bytes()
    a, b = work / "a.txt", work / "b.txt"
    a.write_bytes(raw[:6000])
    b.write_bytes(raw[200000:206000])
    return a, b


@pytest.fixture(scope="session")
def models(edgeq, work):
    """(family, kind) -> GGUF path: the fixture in F32 and its Q4_0 requantization."""
    made = {}

    def get(family, kind="f32"):
        if (family, kind) not in made:
            f32 = work / f"{family}-f32.gguf"
            if not f32.exists():
                edgeq.run("convert", FIXTURES / family, "-o", f32, "--type", "f32")
            path = f32
            if kind != "f32":
                path = work / f"{family}-{kind}.gguf"
                edgeq.run("quantize", f32, path, kind)
            made[(family, kind)] = path
        return made[(family, kind)]

    return get


def eval_json(edgeq, *args):
    return json.loads(edgeq.run("eval", *args, "--json").stdout)


def chunk_logits(edgeq, logits_bin, work, model, text, n_ctx=N_CTX, n_chunks=N_CHUNKS):
    """Per scored position: float64 logits and next token, chunks as llama-perplexity makes them.
    Each whole chunk is one decode (edgeq eval decodes a prefix, then pieces of 32 positions)."""
    ids = [int(t) for t in edgeq.run("tokenize", model, "-f", text, "--ids-only").stdout.split()]
    probe = edgeq.run("tokenize", model, "--text", "", "--ids-only").stdout.split()
    bos = int(probe[0]) if probe else None
    assert len(ids) >= n_ctx * n_chunks
    rows, targets = [], []
    for c in range(n_chunks):
        chunk = ids[c * n_ctx:(c + 1) * n_ctx]
        if bos is not None:
            chunk[0] = bos
        out = work / "chunk.npy"
        subprocess_run(logits_bin, model, "--ids", ",".join(map(str, chunk)), "-o", out)
        logits = np.load(out).astype(np.float64)
        first = n_ctx // 2
        rows.append(logits[first:n_ctx - 1])
        targets.extend(chunk[first + 1:n_ctx])
    return np.concatenate(rows), np.array(targets)


def subprocess_run(*args):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def log_softmax(x):
    m = x.max(axis=1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=1, keepdims=True))


def percentile(sorted_values, fraction):
    p = fraction * (len(sorted_values) - 1)
    i = int(p)
    p -= i
    return (1 - p) * sorted_values[i] + p * sorted_values[min(i + 1, len(sorted_values) - 1)]


@pytest.mark.parametrize("family", ["llama2-spm", "qwen2"])
def test_perplexity_equals_numpy(edgeq, logits_bin, work, models, texts, family):
    model = models(family)
    got = eval_json(edgeq, model, "--text", texts[0], "-c", N_CTX, "--chunks", N_CHUNKS, "-t", 2)
    logits, targets = chunk_logits(edgeq, logits_bin, work, model, texts[0])
    nll = -log_softmax(logits)[np.arange(len(targets)), targets]
    ppl = np.exp(nll.mean())
    unc = ppl * np.sqrt(nll.var() / (len(nll) - 1))
    assert got["count"] == N_CHUNKS * (N_CTX - 1 - N_CTX // 2) == len(nll)
    # Same engine and F16 KV cache, decoded in other pieces: float rounding only.
    assert got["ppl"] == pytest.approx(ppl, rel=1e-4)
    assert got["ppl_unc"] == pytest.approx(unc, rel=1e-3)
    per_chunk = [np.exp(nll[:(c + 1) * len(nll) // N_CHUNKS].mean()) for c in range(N_CHUNKS)]
    assert got["chunk_ppl"] == pytest.approx(per_chunk, rel=1e-4)


def test_kld_against_itself_is_zero(edgeq, work, models, texts):
    model = models("llama2-spm")
    base = work / "self.lgp"
    saved = eval_json(edgeq, model, "--text", texts[0], "-c", N_CTX, "--chunks", N_CHUNKS, "--save-logits", base)
    got = eval_json(edgeq, model, "--text", texts[0], "-c", N_CTX, "--kld-base", base)
    assert got["n_chunks"] == N_CHUNKS
    for key in ("kld_mean", "kld_max", "kld_min", "kld_median", "ln_ppl_ratio", "dp_mean", "rms_dp", "ppl_diff"):
        assert got[key] == 0.0, key
    assert got["same_top"] == 1.0
    assert got["ppl"] == got["ppl_base"] == saved["ppl"]


@pytest.mark.parametrize("family", ["llama2-spm", "qwen2"])
def test_kld_of_q4_0_equals_numpy(edgeq, logits_bin, work, models, texts, family):
    base_model, quant = models(family), models(family, "Q4_0")
    base = work / f"{family}-base.lgp"
    edgeq.run("eval", base_model, "--text", texts[0], "-c", N_CTX, "--chunks", N_CHUNKS, "--save-logits", base)
    positions = work / f"{family}-positions.tsv"
    got = eval_json(edgeq, quant, "--text", texts[0], "-c", N_CTX, "--kld-base", base, "--kld-positions", positions)

    lb, targets = chunk_logits(edgeq, logits_bin, work, base_model, texts[0])
    lq, _ = chunk_logits(edgeq, logits_bin, work, quant, texts[0])
    lpb, lpq = log_softmax(lb), log_softmax(lq)
    idx = np.arange(len(targets))
    kept = lpb > -16
    kld = np.where(kept, np.exp(lpb) * (lpb - lpq), 0.0).sum(axis=1)
    nll, nll_base = -lpq[idx, targets], -lpb[idx, targets]
    p_diff = np.exp(-nll) - np.exp(-nll_base)
    n = len(kld)
    assert got["count"] == n
    assert kld.mean() > 1e-4, "the Q4_0 fixture should differ measurably from its base"
    # The base's log-probabilities are kept to 2.4e-4 nats: per position, differences of a few
    # 1e-5 nats (and float rounding of the logits, decoded in other pieces here).
    tol = dict(rel=5e-3, abs=1e-4)
    assert got["kld_mean"] == pytest.approx(kld.mean(), **tol)
    assert got["kld_unc"] == pytest.approx(np.sqrt(kld.var() / (n - 1)), **tol)
    s = np.sort(kld)
    assert got["kld_max"] == pytest.approx(s[-1], **tol)
    assert got["kld_median"] == pytest.approx(np.median(s), **tol)
    assert got["kld_p99"] == pytest.approx(percentile(s, 0.99), **tol)
    assert got["kld_p10"] == pytest.approx(percentile(s, 0.10), **tol)
    assert got["ln_ppl_ratio"] == pytest.approx(nll.mean() - nll_base.mean(), **tol)
    assert got["ppl_base"] == pytest.approx(np.exp(nll_base.mean()), rel=1e-4)
    assert got["ppl"] == pytest.approx(np.exp(nll.mean()), rel=1e-4)
    assert got["rms_dp"] == pytest.approx(np.sqrt((p_diff ** 2).mean()), **tol)
    assert got["dp_mean"] == pytest.approx(p_diff.mean(), **tol)
    same = (lpb.argmax(axis=1) == lpq.argmax(axis=1)).mean()
    # A near tie can flip with the KV cache's rounding: allow one position.
    assert abs(got["same_top"] - same) <= 1.0 / n + 1e-12
    assert got["same_top_unc"] == pytest.approx(np.sqrt(got["same_top"] * (1 - got["same_top"]) / (n - 1)))
    # --kld-positions: the per-position values the statistics were made from, in scoring order.
    assert positions.read_text().splitlines()[0].split("\t") == ["kld", "nll", "nll_base", "same_top"]
    per = np.loadtxt(positions, skiprows=1, ndmin=2)
    assert per.shape == (n, 4)
    # Per position, both log-probabilities are on the base's grid: at most one step (2.4e-4 nats) off.
    assert per[:, 0] == pytest.approx(kld, rel=5e-3, abs=2.5e-4)
    assert per[:, 1] == pytest.approx(nll, rel=1e-3, abs=1e-4)
    assert per[:, 2] == pytest.approx(nll_base, rel=1e-3, abs=1e-4)
    assert abs(per[:, 3].mean() - same) <= 1.0 / n + 1e-12
    assert per[:, 0].mean() == pytest.approx(got["kld_mean"], rel=1e-6)


def test_base_from_other_text_context_or_chunks_is_refused(edgeq, work, models, texts):
    model = models("llama2-spm")
    base = work / "refuse.lgp"
    edgeq.run("eval", model, "--text", texts[0], "-c", N_CTX, "--chunks", N_CHUNKS, "--save-logits", base)
    r = edgeq.run("eval", model, "--text", texts[1], "-c", N_CTX, "--kld-base", base, check=False)
    assert r.returncode == 1 and "other tokens" in r.stderr, r.stderr
    r = edgeq.run("eval", model, "--text", texts[0], "-c", N_CTX // 2, "--kld-base", base, check=False)
    assert r.returncode == 1 and "context of 64" in r.stderr and "-c 32" in r.stderr, r.stderr
    r = edgeq.run("eval", model, "--text", texts[0], "-c", N_CTX, "--chunks", 2, "--kld-base", base, check=False)
    assert r.returncode == 1 and "3 chunks" in r.stderr, r.stderr
    other = models("qwen2")  # another vocabulary size
    r = edgeq.run("eval", other, "--text", texts[0], "-c", N_CTX, "--kld-base", base, check=False)
    assert r.returncode == 1 and "vocabulary" in r.stderr, r.stderr
    r = edgeq.run("eval", model, "--text", texts[0], "--save-logits", work / "x", "--kld-base", base, check=False)
    assert r.returncode == 1 and "cannot be combined" in r.stderr
    r = edgeq.run("eval", model, "--text", texts[0], "--kld-positions", work / "y", check=False)
    assert r.returncode == 1 and "--kld-positions needs --kld-base" in r.stderr, r.stderr


def test_damaged_base_files_are_refused(edgeq, work, models, texts):
    model = models("llama2-spm")
    base = work / "damage.lgp"
    edgeq.run("eval", model, "--text", texts[0], "-c", N_CTX, "--chunks", N_CHUNKS, "--save-logits", base)
    data = base.read_bytes()
    cases = {
        "truncated": (data[:len(data) - 7], "truncated"),
        "header only": (data[:64], "truncated"),
        "empty": (b"", "not an edgeq logits file"),
        "llama.cpp's format": (b"_logits_" + data[8:], "not an edgeq logits file"),
        "trailing": (data + b"\0" * 4, "trailing bytes"),
        "version": (data[:8] + (7).to_bytes(4, "little") + data[12:], "version 7"),
    }
    # A NaN in the first record's nll.
    nan = bytearray(data)
    nan[64:68] = np.array([np.nan], dtype="<f4").tobytes()
    cases["nan"] = (bytes(nan), "record 0 at offset 64 is corrupt")
    for name, (content, message) in cases.items():
        bad = work / "bad.lgp"
        bad.write_bytes(content)
        r = edgeq.run("eval", model, "--text", texts[0], "-c", N_CTX, "--chunks", N_CHUNKS, "--kld-base", bad, check=False)
        assert r.returncode == 1, (name, r.stderr)
        assert message in r.stderr, (name, r.stderr)
        assert "internal error" not in r.stderr


def test_short_text_and_bad_flags(edgeq, work, models, texts):
    model = models("llama2-spm")
    short = work / "short.txt"
    short.write_text("Only a few words.")
    r = edgeq.run("eval", model, "--text", short, "-c", N_CTX, check=False)
    assert r.returncode == 1 and "needs at least 128" in r.stderr, r.stderr
    r = edgeq.run("eval", model, "--text", texts[0], "-c", N_CTX, "--chunks", 100000, check=False)
    assert r.returncode == 1 and "chunks" in r.stderr, r.stderr
    r = edgeq.run("eval", model, "--text", texts[0], "-c", N_CTX, "--chunks", 0, check=False)
    assert r.returncode == 1 and "evaluates nothing" in r.stderr, r.stderr
    r = edgeq.run("eval", model, "--text", texts[0], "-c", 4096, check=False)
    assert r.returncode == 1 and "longer than the model's 2048" in r.stderr, r.stderr
    r = edgeq.run("eval", model, "--text", work / "missing.txt", check=False)
    assert r.returncode == 1 and "cannot read" in r.stderr, r.stderr
    # A failed --save-logits leaves nothing behind.
    out = work / "never.lgp"
    r = edgeq.run("eval", model, "--text", short, "-c", N_CTX, "--save-logits", out, check=False)
    assert r.returncode == 1 and not out.exists()
    assert not list(work.glob("never.lgp.tmp-*"))
