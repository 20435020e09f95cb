"""edgeq imatrix against a numpy forward pass of the fixture checkpoints, and its file against
gguf-py and edgeq's own quantizer.

The reference is independent of edgeq's runtime: the fixture's Hugging Face safetensors are read
here (bfloat16 widened by hand) and run by a numpy transcription of the transformers model, whose
logits are first checked against the ones transformers stored with the fixture. The inputs of
every weight product are summed per column over the chunks llama-imatrix would form (consecutive
chunks of -c tokens, the first token of each replaced by BOS, the tail dropped)."""
import json
import struct
from pathlib import Path

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")

from gguf_models import heavy, llama_like, write_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "hf"


def read_safetensors(directory):
    """{name: float64 array} of every *.safetensors in a directory (BF16, F16 or F32)."""
    out = {}
    for path in sorted(directory.glob("*.safetensors")):
        data = path.read_bytes()
        n = struct.unpack("<Q", data[:8])[0]
        header = json.loads(data[8:8 + n])
        base = 8 + n
        for name, info in header.items():
            if name == "__metadata__":
                continue
            begin, end = info["data_offsets"]
            raw = data[base + begin:base + end]
            if info["dtype"] == "BF16":
                bits = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
                a = bits.view(np.float32)
            elif info["dtype"] == "F16":
                a = np.frombuffer(raw, dtype=np.float16)
            else:
                assert info["dtype"] == "F32", info["dtype"]
                a = np.frombuffer(raw, dtype=np.float32)
            out[name] = a.astype(np.float64).reshape(info["shape"])
    return out


class NumpyDecoder:
    """LlamaForCausalLM / Phi3ForCausalLM as transformers computes them (full rope, GQA,
    SwiGLU), recording the input of every weight product under its GGUF name."""

    def __init__(self, family):
        d = FIXTURES / family
        self.cfg = json.loads((d / "config.json").read_text())
        self.w = read_safetensors(d)
        self.fused = "model.layers.0.self_attn.qkv_proj.weight" in self.w

    def forward(self, ids, record=None):
        c, w = self.cfg, self.w
        n_head, n_kv = c["num_attention_heads"], c["num_key_value_heads"]
        hd = c.get("head_dim") or c["hidden_size"] // n_head
        eps, theta = c["rms_norm_eps"], c.get("rope_theta", 10000.0)
        n = len(ids)

        def rms(x, g):
            return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * g

        def mm(name, x, weight):
            if record is not None:
                record.append((name, x.copy()))
            return x @ weight.T

        inv = 1.0 / theta ** (np.arange(0, hd, 2) / hd)
        ang = np.outer(np.arange(n), inv)
        cos = np.concatenate([np.cos(ang)] * 2, axis=-1)[:, None, :]
        sin = np.concatenate([np.sin(ang)] * 2, axis=-1)[:, None, :]

        def rope(t):  # rotate_half convention, on [n, heads, hd]
            rot = np.concatenate([-t[..., hd // 2:], t[..., :hd // 2]], axis=-1)
            return t * cos + rot * sin

        x = w["model.embed_tokens.weight"][ids]
        mask = np.triu(np.full((n, n), -np.inf), 1)
        for il in range(c["num_hidden_layers"]):
            p, b = f"model.layers.{il}.", f"blk.{il}."
            h = rms(x, w[p + "input_layernorm.weight"])
            if self.fused:
                qkv = mm(b + "attn_qkv.weight", h, w[p + "self_attn.qkv_proj.weight"])
                q, k, v = np.split(qkv, [n_head * hd, (n_head + n_kv) * hd], axis=-1)
            else:
                q = mm(b + "attn_q.weight", h, w[p + "self_attn.q_proj.weight"])
                k = mm(b + "attn_k.weight", h, w[p + "self_attn.k_proj.weight"])
                v = mm(b + "attn_v.weight", h, w[p + "self_attn.v_proj.weight"])
            q = rope(q.reshape(n, n_head, hd))
            k = rope(k.reshape(n, n_kv, hd))
            v = v.reshape(n, n_kv, hd)
            rep = n_head // n_kv
            k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)
            s = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(hd) + mask
            s = np.exp(s - s.max(axis=-1, keepdims=True))
            s /= s.sum(axis=-1, keepdims=True)
            attn = np.einsum("hqk,khd->qhd", s, v).reshape(n, n_head * hd)
            x = x + mm(b + "attn_output.weight", attn, w[p + "self_attn.o_proj.weight"])
            h = rms(x, w[p + "post_attention_layernorm.weight"])
            if self.fused:
                gu = mm(b + "ffn_up.weight", h, w[p + "mlp.gate_up_proj.weight"])
                gate, up = np.split(gu, 2, axis=-1)
            else:
                gate = mm(b + "ffn_gate.weight", h, w[p + "mlp.gate_proj.weight"])
                up = mm(b + "ffn_up.weight", h, w[p + "mlp.up_proj.weight"])
            act = gate / (1 + np.exp(-gate)) * up
            x = x + mm(b + "ffn_down.weight", act, w[p + "mlp.down_proj.weight"])
        h = rms(x, w["model.norm.weight"])
        return mm("output.weight", h, w["lm_head.weight"])


def reference_imatrix(decoder, ids, n_ctx, n_chunks, bos):
    """{name: (sums of squares per column, rows)} as llama-imatrix defines them."""
    sums = {}
    for c in range(n_chunks):
        chunk = list(ids[c * n_ctx:(c + 1) * n_ctx])
        if bos is not None:
            chunk[0] = bos
        record = []
        decoder.forward(np.array(chunk), record)
        for name, x in record:
            if not name.startswith("blk."):
                continue
            s, rows = sums.get(name, (0.0, 0))
            sums[name] = (s + np.sum(x * x, axis=0), rows + x.shape[0])
    return sums


def read_imatrix(path):
    r = gguf.GGUFReader(str(path))
    fields = {k: f.contents() for k, f in r.fields.items() if not k.startswith("GGUF.")}
    return {t.name: t for t in r.tensors}, fields, [t.name for t in r.tensors]


@pytest.fixture(scope="module")
def converted(edgeq, tmp_path_factory):
    out = tmp_path_factory.mktemp("imatrix-models")
    made = {}

    def get(family):
        if family not in made:
            made[family] = out / f"{family}-f32.gguf"
            edgeq.run("convert", FIXTURES / family, "-o", made[family], "--type", "f32")
        return made[family]

    return get


@pytest.mark.parametrize("family", ["llama2-spm", "phi3"])
def test_numpy_decoder_matches_transformers(family):
    """The reference itself is right: its logits equal the ones transformers stored."""
    meta = json.loads((FIXTURES / family / "reference.json").read_text())
    expected = np.load(FIXTURES / family / meta["logits"]).astype(np.float64)
    got = NumpyDecoder(family).forward(np.array(meta["ids"]))
    assert np.max(np.abs(got - expected)) < 1e-4 * np.max(np.abs(expected)) + 1e-5


def calibration_text(shared_data, rng, n_bytes):
    text = (shared_data / "text" / "sotu.txt").read_text(encoding="utf-8")
    start = int(rng.integers(0, len(text) - n_bytes))
    return text[start:start + n_bytes].strip()


@pytest.mark.parametrize("family", ["llama2-spm", "phi3"])
def test_imatrix_equals_numpy(family, edgeq, converted, shared_data, tmp_path):
    rng = np.random.default_rng()
    model = converted(family)
    text_path = tmp_path / "calibration.txt"
    text_path.write_text(calibration_text(shared_data, rng, 3000), encoding="utf-8")
    n_ctx = int(rng.integers(17, 70))  # odd sizes too; the tail is dropped
    ids = [int(t) for t in edgeq.run("tokenize", model, "--file", text_path, "--ids-only").stdout.split()]
    n_chunks = min(3, len(ids) // n_ctx)
    out = tmp_path / "imatrix.gguf"
    edgeq.run("imatrix", model, "--text", text_path, "-o", out, "-c", n_ctx, "--chunks", 3,
              "--cache-type", "f32", "-t", 2)

    tensors, fields, order = read_imatrix(out)
    assert fields["general.type"] == "imatrix"
    assert fields["imatrix.datasets"] == [str(text_path)]
    assert fields["imatrix.chunk_count"] == n_chunks
    assert fields["imatrix.chunk_size"] == n_ctx

    decoder = NumpyDecoder(family)
    bos = ids[0]  # edgeq tokenize adds the tokenizer's BOS (checked by the tokenizer tests)
    assert bos == decoder.cfg["bos_token_id"]
    ref = reference_imatrix(decoder, ids, n_ctx, n_chunks, bos)
    names = sorted(ref)
    assert order == [f"{name}.{part}" for name in names for part in ("in_sum2", "counts")]
    for name, (sums, rows) in ref.items():
        s, c = tensors[name + ".in_sum2"], tensors[name + ".counts"]
        assert s.tensor_type == gguf.GGMLQuantizationType.F32
        assert list(s.shape) == [len(sums)] and list(c.shape) == [1]  # 1-D, as llama.cpp writes them
        assert float(c.data.ravel()[0]) == rows == n_chunks * n_ctx
        got = s.data.ravel().astype(np.float64)
        assert np.linalg.norm(got - sums) <= 2e-5 * np.linalg.norm(sums), name

    # The comparison can fail: without BOS in each chunk the sums move by far more than the
    # tolerance above.
    no_bos = reference_imatrix(decoder, ids, n_ctx, n_chunks, None)
    name = names[0]
    got = tensors[name + ".in_sum2"].data.ravel().astype(np.float64)
    assert np.linalg.norm(got - no_bos[name][0]) > 1e-3 * np.linalg.norm(no_bos[name][0])


def test_imatrix_file_drives_quantize_like_gguf_py_file(edgeq, converted, shared_data, tmp_path):
    """edgeq's file and one gguf-py writes with the same numbers give the same quantization,
    and both differ from quantizing without an imatrix."""
    rng = np.random.default_rng()
    model = converted("llama2-spm")
    text_path = tmp_path / "calibration.txt"
    text_path.write_text(calibration_text(shared_data, rng, 4000), encoding="utf-8")
    ours = tmp_path / "imatrix.gguf"
    edgeq.run("imatrix", model, "--text", text_path, "-o", ours, "-c", 64)
    tensors, _, order = read_imatrix(ours)

    theirs = tmp_path / "gguf-py.gguf"
    w = gguf.GGUFWriter(str(theirs), "imatrix")
    w.add_string("general.type", "imatrix")
    w.add_array("imatrix.datasets", ["calibration.txt"])
    w.add_uint32("imatrix.chunk_count", 2)
    w.add_uint32("imatrix.chunk_size", 64)
    for name in reversed(order):  # another order: the reader must go by name
        w.add_tensor(name, np.array(tensors[name].data, dtype=np.float32).ravel())
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    outs = {}
    for label, imatrix in (("ours", ours), ("theirs", theirs), ("none", None)):
        outs[label] = tmp_path / f"q-{label}.gguf"
        extra = ["--imatrix", imatrix] if imatrix else []
        edgeq.run("quantize", model, outs[label], "Q4_0", "--pure", *extra)
    assert outs["ours"].read_bytes() == outs["theirs"].read_bytes()
    assert outs["ours"].read_bytes() != outs["none"].read_bytes()


def test_imatrix_refuses_bad_input(edgeq, converted, tmp_path):
    model = converted("llama2-spm")
    short = tmp_path / "short.txt"
    short.write_text("Mr. Speaker, the state of our Union is strong.", encoding="utf-8")
    out = tmp_path / "out" / "imatrix.gguf"
    out.parent.mkdir()
    cases = [
        (["--text", short, "-c", 64], "need at least"),
        (["--text", tmp_path / "missing.txt"], "no such file"),
        (["--text", short, "-c", 0], "must be positive"),
        (["--text", short, "-c", 8, "--cache-type", "q4"], "--cache-type"),
    ]
    for args, message in cases:
        result = edgeq.run("imatrix", model, "-o", out, *args, check=False)
        assert result.returncode == 1, (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert list(out.parent.iterdir()) == []
    result = edgeq.run("imatrix", model, "--text", short, "-o", model, check=False)
    assert result.returncode == 1 and "is an input" in result.stderr


def test_synthetic_model_without_tokenizer_fails_cleanly(edgeq, tmp_path):
    rng = np.random.default_rng()
    path = tmp_path / "m.gguf"
    write_model(path, llama_like(rng, n_embd=64, n_ff=128, n_vocab=96, dist=heavy))
    text = tmp_path / "t.txt"
    text.write_text("some text " * 200, encoding="utf-8")
    result = edgeq.run("imatrix", path, "--text", text, "-o", tmp_path / "i.gguf", check=False)
    assert result.returncode == 1 and "error" in result.stderr
