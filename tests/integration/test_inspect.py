"""edgeq inspect on safetensors files and Hugging Face checkpoint directories written by the
official safetensors package, and on damaged safetensors files."""
import json
import os
import struct

import numpy as np
import pytest

st = pytest.importorskip("safetensors.numpy")

from conftest import sanitizer_report  # noqa: E402


def save(path, tensors, metadata=None):
    st.save_file(tensors, str(path), metadata=metadata)


def random_tensors(rng):
    return {
        "model.embed_tokens.weight": rng.standard_normal((64, 32)).astype(np.float16),
        "model.layers.0.self_attn.q_proj.weight": rng.standard_normal((32, 32)).astype(np.float32),
        "model.layers.0.mlp.up_proj.weight": rng.standard_normal((48, 32)).astype(np.float64),
        "counts": rng.integers(-100, 100, size=(7,), dtype=np.int32),
        "mask": rng.random((3, 5)) > 0.5,
        "bytes": rng.integers(0, 255, size=(9,), dtype=np.uint8),
    }


def test_inspect_safetensors_file(edgeq, tmp_path):
    rng = np.random.default_rng()
    tensors = random_tensors(rng)
    path = tmp_path / "model.safetensors"
    save(path, tensors, metadata={"format": "pt"})
    info = json.loads(edgeq.run("inspect", path, "--json").stdout)
    assert info["format"] == "safetensors"
    assert info["metadata"] == {"format": "pt"}
    names = {"float16": "F16", "float32": "F32", "float64": "F64", "int32": "I32", "bool": "BOOL", "uint8": "U8"}
    listed = {t["name"]: t for t in info["tensors"]}
    assert set(listed) == set(tensors)
    for name, array in tensors.items():
        assert listed[name]["dtype"] == names[array.dtype.name]
        assert listed[name]["shape"] == list(array.shape)
        assert listed[name]["bytes"] == array.nbytes
    assert info["parameters"] == sum(a.size for a in tensors.values())
    text = edgeq.run("inspect", path).stdout
    assert "safetensors" in text and "model.embed_tokens.weight" in text


def test_inspect_sharded_checkpoint(edgeq, tmp_path):
    rng = np.random.default_rng()
    tensors = random_tensors(rng)
    names = sorted(tensors)
    shards = {"model-00001-of-00002.safetensors": names[:3], "model-00002-of-00002.safetensors": names[3:]}
    weight_map = {}
    for file, part in shards.items():
        save(tmp_path / file, {n: tensors[n] for n in part})
        weight_map.update({n: file for n in part})
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    config = {"architectures": ["LlamaForCausalLM"], "hidden_size": 32, "num_hidden_layers": 1,
              "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 48, "vocab_size": 64,
              "torch_dtype": "float16"}
    (tmp_path / "config.json").write_text(json.dumps(config))
    info = json.loads(edgeq.run("inspect", tmp_path, "--json").stdout)
    assert info["format"] == "huggingface"
    assert info["architecture"] == "LlamaForCausalLM"
    assert info["shards"] == 2
    assert {t["name"]: t["file"] for t in info["tensors"]} == weight_map
    assert "LlamaForCausalLM · 1 layers · hidden 32 · 4 heads (2 kv)" in edgeq.run("inspect", tmp_path).stdout
    os.remove(tmp_path / "model-00002-of-00002.safetensors")
    result = edgeq.run("inspect", tmp_path, check=False)
    assert result.returncode == 1 and "model-00002-of-00002.safetensors" in result.stderr


def damaged_safetensors(valid):
    data = valid.read_bytes()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_len])
    yield "truncated", data[: len(data) - 5]
    yield "oversized header length", struct.pack("<Q", 1 << 62) + data[8:]
    yield "header past the end", struct.pack("<Q", len(data)) + data[8:]
    name = next(k for k in header if k != "__metadata__")
    bad = dict(header)
    bad[name] = dict(header[name], data_offsets=[0, 1 << 40])
    text = json.dumps(bad).encode()
    yield "bad offset", struct.pack("<Q", len(text)) + text + data[8 + header_len:]
    yield "random bytes", os.urandom(2048)
    yield "random after a plausible length", struct.pack("<Q", 100) + b"{" + os.urandom(200)


def test_damaged_safetensors_get_one_line_errors(edgeq, tmp_path):
    valid = tmp_path / "valid.safetensors"
    save(valid, random_tensors(np.random.default_rng()))
    for what, data in damaged_safetensors(valid):
        bad = tmp_path / "bad.safetensors"
        bad.write_bytes(data)
        result = edgeq.run("inspect", bad, check=False)
        assert result.returncode == 1, (what, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("edgeq: error:"), (what, result.stderr)
        assert not sanitizer_report(result.stderr), (what, result.stderr)
