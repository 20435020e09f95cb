"""edgeq export --format onnx: every fixture family exported from its Hugging Face checkpoint,
checked by onnx.checker and run by ONNX Runtime with the KV cache (the prompt, then single-token
steps feeding present -> past), its logits compared with the reference logits that transformers
computed in float32 (tests/fixtures/hf/<family>/reference-logits.npy); onnxruntime-genai's
greedy tokens compared with edgeq's runtime on the equivalent GGUF.

Tolerances, per position, max|onnx - ref| / max|ref| (measured worst over the families in
brackets, ONNX Runtime 1.23):
  fp32, both --ops   1e-4  float32 rounding only [7.4e-7]
  fp16               2e-3  the fixtures hold bfloat16 values, which fp16 represents exactly,
                           so only rounding differs [5.8e-7]
int4/int8 (edgeq's MatMulNBits quantizer, block 32, symmetric): ort ops (MatMulNBits,
accuracy_level 0) against the standard export of the same dequantized weights, 1e-4; KL to
transformers' logits int4 <= 0.1 [5.8e-2 qwen2], int8 <= 2e-3 [4.9e-4 qwen2]. A Q4_0 / Q8_0
GGUF (carried over without requantizing) against edgeq's runtime on that GGUF: KL <= 1e-3
[2.0e-4 qwen3 Q8_0].
"""
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

FIXTURES = ROOT / "tests" / "fixtures" / "hf"
FAMILIES = ["llama2-spm", "llama3-bpe", "smollm", "mistral", "qwen2", "qwen3", "gemma2", "gemma3", "phi3"]
STEPS = 5  # tokens fed one at a time after the prompt


@pytest.fixture(scope="session")
def exported(edgeq, tmp_path_factory):
    """exported(family, ops, precision) -> directory of the fixture's export (made once)."""
    out_dir = tmp_path_factory.mktemp("onnx")
    made = {}

    def get(family, ops="ort", precision="fp32", *extra):
        key = (family, ops, precision, *extra)
        if key not in made:
            path = out_dir / "-".join(map(str, key))
            edgeq.run("export", FIXTURES / family, "--format", "onnx", "-o", path, "--ops", ops,
                      "--precision", precision, *extra)
            made[key] = path
        return made[key]

    return get


def reference(family):
    meta = json.loads((FIXTURES / family / "reference.json").read_text())
    return meta["ids"], np.load(FIXTURES / family / meta["logits"]).astype(np.float64)


def session(model_dir):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(str(model_dir / "model.onnx"), options,
                                providers=["CPUExecutionProvider"])


def empty_cache(sess, batch):
    return {i.name: np.zeros((batch, i.shape[1], 0, i.shape[3]), np.float32)
            for i in sess.get_inputs() if i.name.startswith("past_key_values.")}


def step(sess, ids, mask, positions, past):
    feed = {"input_ids": np.asarray(ids, np.int64), "attention_mask": np.asarray(mask, np.int64),
            "position_ids": np.asarray(positions, np.int64), **past}
    names = [o.name for o in sess.get_outputs()]
    out = dict(zip(names, sess.run(None, feed)))
    present = {"past_key_values." + k[len("present."):]: v for k, v in out.items() if k.startswith("present.")}
    return out["logits"], present


def run_with_cache(sess, ids, steps=STEPS):
    """The logits of every position: ids[:-steps] as one prompt, then one token per step."""
    n0 = len(ids) - steps
    past = empty_cache(sess, 1)
    logits = []
    for start, end in [(0, n0)] + [(i, i + 1) for i in range(n0, len(ids))]:
        out, past = step(sess, [ids[start:end]], np.ones((1, end), np.int64),
                         [list(range(start, end))], past)
        logits.append(out[0])
        assert past["past_key_values.0.key"].shape[2] == end
    return np.concatenate(logits).astype(np.float64)


def relative_error(got, ref):
    return np.abs(got - ref).max(axis=1) / np.abs(ref).max(axis=1)


# (ops, extra flags): the ort export with either attention (--attention gqa: ONNX Runtime's
# GroupQueryAttention contrib operator, masks as its attention_bias).
VARIANTS = {"standard": ("standard",), "ort": ("ort",), "ort-gqa": ("ort", "fp32", "--attention", "gqa")}


@pytest.mark.parametrize("ops", list(VARIANTS))
@pytest.mark.parametrize("family", FAMILIES)
def test_fp32_matches_transformers(family, ops, exported):
    model_dir = exported(family, *VARIANTS[ops])
    if ops == "ort-gqa":
        nodes = onnx.load(str(model_dir / "model.onnx"), load_external_data=False).graph.node
        assert sum(n.op_type == "GroupQueryAttention" for n in nodes) > 0
    onnx.checker.check_model(str(model_dir / "model.onnx"), full_check=False)
    ids, ref = reference(family)
    got = run_with_cache(session(model_dir), ids)
    err = relative_error(got, ref)
    assert err.max() <= 1e-4, f"worst position {err.argmax()}: {err.max():.2e}"


@pytest.mark.parametrize("family", ["llama3-bpe", "qwen3", "gemma2", "phi3"])
def test_fp16_matches_transformers(family, exported):
    model_dir = exported(family, "ort", "fp16")
    onnx.checker.check_model(str(model_dir / "model.onnx"))
    weights = onnx.load(str(model_dir / "model.onnx"), load_external_data=False).graph.initializer
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in weights)
    ids, ref = reference(family)
    err = relative_error(run_with_cache(session(model_dir), ids), ref)
    assert err.max() <= 2e-3, f"worst position {err.argmax()}: {err.max():.2e}"


@pytest.mark.parametrize("ops", list(VARIANTS))
@pytest.mark.parametrize("family", ["llama2-spm", "gemma2", "gemma3"])
def test_left_padded_batch(family, ops, exported):
    """Two prompts of different lengths in one batch, the shorter left-padded, then a step:
    each row's logits are those of the prompt run alone (padding and the sliding windows of the
    Gemma fixtures, 8 tokens, are masked by attention_mask and the key index)."""
    sess = session(exported(family, *VARIANTS[ops]))
    ids, _ = reference(family)
    a, b = ids[:23], ids[5:19]
    pad = len(a) - len(b)
    mask = np.array([[1] * len(a), [0] * pad + [1] * len(b)])
    positions = np.array([list(range(len(a))), [0] * pad + list(range(len(b)))])
    batch_logits, past = step(sess, [a, [0] * pad + b], mask, positions, empty_cache(sess, 2))
    nxt = [ids[23], ids[19]]
    mask = np.concatenate([mask, np.ones((2, 1), np.int64)], axis=1)
    step_logits, _ = step(sess, [[nxt[0]], [nxt[1]]], mask, [[len(a)], [len(b)]], past)
    for row, seq, n in [(0, a, 0), (1, b, pad)]:
        alone = run_with_cache(sess, seq + [nxt[row]], steps=1)
        got = np.concatenate([batch_logits[row, n:], step_logits[row]])
        np.testing.assert_allclose(got, alone, rtol=0, atol=1e-4 * np.abs(alone).max())


def test_genai_config_and_tokenizer_files(exported):
    model_dir = exported("qwen2")
    config = json.loads((model_dir / "genai_config.json").read_text())
    hf = json.loads((FIXTURES / "qwen2" / "config.json").read_text())
    decoder = config["model"]["decoder"]
    assert decoder["filename"] == "model.onnx"
    assert decoder["num_hidden_layers"] == hf["num_hidden_layers"]
    assert decoder["num_key_value_heads"] == hf["num_key_value_heads"]
    assert decoder["head_size"] == hf["hidden_size"] // hf["num_attention_heads"]
    assert decoder["inputs"]["past_key_names"] == "past_key_values.%d.key"
    assert config["model"]["vocab_size"] == hf["vocab_size"]
    assert (model_dir / "tokenizer.json").read_bytes() == (FIXTURES / "qwen2" / "tokenizer.json").read_bytes()
    # Weights live in the external data file, not in the protobuf.
    assert (model_dir / "model.onnx.data").stat().st_size > 4 * (model_dir / "model.onnx").stat().st_size


def test_gguf_input_matches_hf_input(edgeq, exported, tmp_path):
    """A GGUF of the checkpoint exports to the same logits as the checkpoint itself."""
    gguf = tmp_path / "m.gguf"
    edgeq.run("convert", FIXTURES / "llama3-bpe", "-o", gguf, "--type", "f32")
    edgeq.run("export", gguf, "--format", "onnx", "-o", tmp_path / "onnx")
    ids, _ = reference("llama3-bpe")
    from_gguf = run_with_cache(session(tmp_path / "onnx"), ids)
    from_hf = run_with_cache(session(exported("llama3-bpe")), ids)
    np.testing.assert_array_equal(from_gguf, from_hf)


TOKENIZER_TEXTS = [
    "Hello world, it's 2024!  \u00dcn\u00efcode  tabs\tand\nnewlines",
    " leading space",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8 and \u00e9mojis \U0001f389",
    "x=12345; y = x*2\n\n\tdone   ",
]


@pytest.mark.parametrize("family", ["llama3-bpe", "qwen2", "smollm", "llama2-spm", "gemma3"])
def test_genai_tokenizer_from_gguf(family, edgeq, tmp_path):
    """A GGUF input gets tokenizer.json and tokenizer_config.json written from its vocabulary
    (BPE merges as given; SentencePiece merges derived from the scores); onnxruntime-genai's
    tokenizer, which reads them, encodes like edgeq's tokenizer on the GGUF (genai's encode adds
    no BOS, so edgeq's runs with --no-bos) and decodes back to the text."""
    og = pytest.importorskip("onnxruntime_genai")
    gguf = tmp_path / "m.gguf"
    edgeq.run("convert", FIXTURES / family, "-o", gguf, "--type", "f32")
    result = edgeq.run("export", gguf, "--format", "onnx", "-o", tmp_path / "onnx")
    assert "no tokenizer.json" not in result.stdout
    config = json.loads((tmp_path / "onnx" / "tokenizer_config.json").read_text())
    with_bos = edgeq.run("tokenize", gguf, "--text", "a", "--ids-only").stdout.split()
    assert config["add_bos_token"] == (len(with_bos) == 2)
    tok = json.loads((tmp_path / "onnx" / "tokenizer.json").read_text())
    # SentencePiece: the space the normalizer prepends is dropped after a BOS when decoding.
    bos = [tok["model"]["vocab"][config["bos_token"]]] if tok["model"]["byte_fallback"] and config["add_bos_token"] else []
    tokenizer = og.Tokenizer(og.Model(str(tmp_path / "onnx")))
    for text in TOKENIZER_TEXTS:
        got = [int(t) for t in tokenizer.encode(text)]
        want = [int(t) for t in edgeq.run("tokenize", gguf, "--text", text, "--ids-only", "--no-bos").stdout.split()]
        assert got == want, text
        assert tokenizer.decode(np.array(bos + got, np.int32)) == text


def test_spm_checkpoint_gets_a_tokenizer_json(exported):
    """A SentencePiece checkpoint (tokenizer.model only) gets tokenizer.json too."""
    model_dir = exported("llama2-spm")
    assert (model_dir / "tokenizer.json").exists() and not (FIXTURES / "llama2-spm" / "tokenizer.json").exists()
    tok = json.loads((model_dir / "tokenizer.json").read_text())
    assert tok["model"]["byte_fallback"] and len(tok["model"]["merges"]) > 0


@pytest.mark.parametrize("args, message", [
    (["--ops", "tensorrt"], "--ops tensorrt"),
    (["--precision", "int3"], "--precision int3"),
    (["--block-size", "48"], "--block-size 48"),
    (["--format", "tflite"], "--format tflite"),
    (["--symmetric", "--asymmetric"], "exclude each other"),
    (["--attention", "flash"], "--attention flash"),
])
def test_bad_flags(edgeq, tmp_path, args, message):
    result = edgeq.run("export", FIXTURES / "qwen2", "-o", tmp_path / "out", *args, check=False)
    assert result.returncode == 1 and message in result.stderr, result.stderr
    assert not (tmp_path / "out" / "model.onnx").exists()


def test_bad_model(edgeq, tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 40)
    result = edgeq.run("export", bad, "-o", tmp_path / "out", check=False)
    assert result.returncode == 1 and "bad.gguf" in result.stderr, result.stderr
    assert not any((tmp_path / "out").glob("model.onnx*"))


@pytest.fixture(scope="session")
def logits_bin():
    path = Path(os.environ.get("EDGEQ_LOGITS_BIN", ROOT / "build" / "edgeq-logits"))
    if not path.exists():
        pytest.skip(f"{path} does not exist")
    return path


@pytest.mark.parametrize("family, ops", [("llama3-bpe", "ort"), ("qwen3", "ort"), ("gemma3", "ort"), ("phi3", "ort"),
                                         ("gemma3", "ort-gqa"), ("llama3-bpe", "ort-gqa")])
def test_genai_greedy_matches_edgeq(family, ops, edgeq, exported, logits_bin, tmp_path):
    og = pytest.importorskip("onnxruntime_genai")
    ids, _ = reference(family)
    prompt, n = ids[:12], 12
    model = og.Model(str(exported(family, *VARIANTS[ops])))
    params = og.GeneratorParams(model)
    params.set_search_options(max_length=len(prompt) + n, do_sample=False)
    generator = og.Generator(model, params)
    generator.append_tokens(np.array(prompt, dtype=np.int32))
    got = []
    while not generator.is_done() and len(got) < n:
        generator.generate_next_token()
        got.append(int(generator.get_next_tokens()[0]))
    gguf = tmp_path / "m.gguf"
    edgeq.run("convert", FIXTURES / family, "-o", gguf, "--type", "f32")
    result = subprocess.run([str(logits_bin), str(gguf), "--ids", ",".join(map(str, prompt)),
                             "--generate", str(n), "--kv", "f32"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    want = [int(t) for t in result.stdout.split()]
    # genai stops early at an end-of-sequence token; edgeq-logits does not.
    assert got == want[:len(got)] and len(got) > 0


def mean_kl(got, ref):
    def log_softmax(x):
        x = x - x.max(axis=1, keepdims=True)
        return x - np.log(np.exp(x).sum(axis=1, keepdims=True))
    lp, lq = log_softmax(ref), log_softmax(got)
    return float((np.exp(lp) * (lp - lq)).sum(axis=1).mean())


@pytest.mark.parametrize("precision", ["int4", "int8"])
@pytest.mark.parametrize("family", ["llama2-spm", "qwen2", "gemma2", "phi3"])
def test_matmul_nbits_matches_dequantized(family, precision, exported):
    """MatMulNBits (ort ops, accuracy_level 0: float activations) computes what the standard
    export's dequantized float weights compute: the packing is read as it was written."""
    ids, ref = reference(family)
    ort_dir = exported(family, "ort", precision, "--accuracy-level", "0")
    onnx.checker.check_model(str(ort_dir / "model.onnx"))
    nodes = onnx.load(str(ort_dir / "model.onnx"), load_external_data=False).graph.node
    assert sum(n.op_type == "MatMulNBits" for n in nodes) >= 4
    got = run_with_cache(session(ort_dir), ids)
    want = run_with_cache(session(exported(family, "standard", precision)), ids)
    err = relative_error(got, want)
    assert err.max() <= 1e-4, f"worst position {err.argmax()}: {err.max():.2e}"
    # And the quantization itself stays close to transformers' float model.
    assert mean_kl(got, ref) <= {"int4": 0.1, "int8": 2e-3}[precision]


@pytest.mark.parametrize("family, extra", [
    ("llama2-spm", ["--block-size", "16", "--asymmetric"]),
    ("llama2-spm", ["--block-size", "128", "--symmetric"]),
    ("qwen2", ["--block-size", "64", "--asymmetric"]),
    ("qwen2", ["--block-size", "128", "--asymmetric"]),
])
def test_int4_block_size_and_zero_points(family, extra, exported):
    """Other block sizes (K of 64, 160 and 176 leave tails at 64 and 128) and zero points: the
    MatMulNBits nodes carry them, and ONNX Runtime computes what edgeq's dequantized weights
    (the standard export) compute."""
    block = int(extra[1])
    asymmetric = "--asymmetric" in extra
    ort_dir = exported(family, "ort", "int4", "--accuracy-level", "0", *extra)
    onnx.checker.check_model(str(ort_dir / "model.onnx"))
    nodes = [n for n in onnx.load(str(ort_dir / "model.onnx"), load_external_data=False).graph.node
             if n.op_type == "MatMulNBits"]
    assert len(nodes) >= 4
    dims = {t.name: list(t.dims) for t in
            onnx.load(str(ort_dir / "model.onnx"), load_external_data=False).graph.initializer}
    for n in nodes:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        assert attrs["block_size"] == block
        assert (len(n.input) == 4 and n.input[3] != "") == asymmetric, n.input
        # The layout ORT's own quantizer writes (its CPU kernel runs flat scales slower).
        n_blocks = -(-attrs["K"] // block)
        assert dims[n.input[1]] == [attrs["N"], n_blocks, block * attrs["bits"] // 8]
        assert dims[n.input[2]] == [attrs["N"], n_blocks]
        if asymmetric:
            assert dims[n.input[3]] == [attrs["N"], -(-n_blocks * attrs["bits"] // 8)]
    ids, ref = reference(family)
    got = run_with_cache(session(ort_dir), ids)
    want = run_with_cache(session(exported(family, "standard", "int4", *extra)), ids)
    err = relative_error(got, want)
    assert err.max() <= 1e-4, f"worst position {err.argmax()}: {err.max():.2e}"
    assert mean_kl(got, ref) <= 0.1


@pytest.mark.parametrize("gguf_type, precision", [("q4_0", "int4"), ("q8_0", "int8")])
@pytest.mark.parametrize("family", ["llama3-bpe", "qwen3", "gemma3"])
def test_quantized_gguf_matches_edgeq_runtime(family, gguf_type, precision, edgeq, logits_bin, tmp_path):
    """A Q4_0 / Q8_0 GGUF exports its blocks unchanged (MatMulNBits, block 32, symmetric): ONNX
    Runtime's logits and edgeq's own runtime's on that GGUF are the same distribution."""
    ids, _ = reference(family)
    gguf = tmp_path / "m.gguf"
    edgeq.run("convert", FIXTURES / family, "-o", gguf, "--type", gguf_type)
    edgeq.run("export", gguf, "--format", "onnx", "-o", tmp_path / "onnx", "--precision", precision,
              "--accuracy-level", "0")
    got = run_with_cache(session(tmp_path / "onnx"), ids)
    out = tmp_path / "logits.npy"
    result = subprocess.run([str(logits_bin), str(gguf), "--ids", ",".join(map(str, ids)), "-o", str(out),
                             "--kv", "f32"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    want = np.load(out).astype(np.float64)
    # Measured: Q4_0 <= 1.7e-5, Q8_0 <= 2.0e-4 (qwen3); edgeq's matmul kernels quantize the
    # activations to 8 bits, the export's weights are the same.
    assert mean_kl(got, want) <= 1e-3


@pytest.mark.parametrize("family", FAMILIES)
def test_openvino_runs_standard_ops(family, exported):
    """OpenVINO (optional: skipped unless installed) runs the --ops standard export, prompt then
    a step through the cache, with transformers' logits (float32 inference precision)."""
    ov = pytest.importorskip("openvino")
    ids, ref = reference(family)
    compiled = ov.Core().compile_model(str(exported(family, "standard") / "model.onnx"), "CPU",
                                       {"INFERENCE_PRECISION_HINT": "f32"})
    n0 = len(ids) - 1
    past = {}
    for i in compiled.inputs:
        shape = i.get_partial_shape()
        if i.get_any_name().startswith("past_key_values."):
            past[i.get_any_name()] = np.zeros((1, shape[1].get_length(), 0, shape[3].get_length()), np.float32)
    logits = []
    for start, end in [(0, n0), (n0, len(ids))]:
        feed = {"input_ids": np.array([ids[start:end]], np.int64), "attention_mask": np.ones((1, end), np.int64),
                "position_ids": np.arange(start, end, dtype=np.int64)[None], **past}
        result = compiled.create_infer_request().infer(feed)
        logits.append(np.array(result[compiled.output("logits")][0]))
        past = {}
        for o in compiled.outputs:
            for name in o.get_names():
                if name.startswith("present."):
                    past["past_key_values." + name[len("present."):]] = np.array(result[o])
    err = relative_error(np.concatenate(logits).astype(np.float64), ref)
    assert err.max() <= 1e-4, f"worst position {err.argmax()}: {err.max():.2e}"
