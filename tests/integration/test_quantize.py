"""edgeq quantize, checked with gguf-py: it reads every file edgeq writes, its numpy
dequantization equals edgeq's, its quantizers give the same bytes as edgeq's reference ones,
and the mixes give each tensor the type llama.cpp's rules give it."""
import hashlib
import os
import struct

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
from gguf.quants import dequantize, quantize  # noqa: E402

from conftest import sanitizer_report  # noqa: E402
from gguf_models import heavy, llama_like, normal, read_tensors, write_model  # noqa: E402

Q = gguf.GGMLQuantizationType
ALL_TYPES = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K",
             "Q6_K", "TQ1_0", "TQ2_0", "IQ4_NL", "IQ4_XS"]
# Mix names for --pure runs (the K types are named by their mixes).
MIX_OF = {"Q3_K": "Q3_K_S", "Q4_K": "Q4_K_S", "Q5_K": "Q5_K_S"}
# Types whose blocks are 256 values fall back for rows of 96 values, as llama.cpp does.
FALLBACK_96 = {"Q2_K": "Q4_0", "Q3_K": "Q4_0", "Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0", "TQ1_0": "Q4_0",
               "TQ2_0": "Q4_0", "IQ4_XS": "IQ4_NL"}


@pytest.fixture(scope="module", params=["normal", "heavy"])
def f32_model(request, tmp_path_factory):
    rng = np.random.default_rng()
    dist = normal if request.param == "normal" else heavy
    tensors = llama_like(rng, dist=dist)
    tensors["blk.0.odd.weight"] = dist(rng, (64, 96))  # rows that do not divide a 256 block
    path = tmp_path_factory.mktemp("model") / f"{request.param}-f32.gguf"
    write_model(path, tensors)
    return path, tensors


def quantize_to(edgeq, src, dst, type_name, *extra):
    edgeq.run("quantize", src, dst, MIX_OF.get(type_name, type_name), "--pure", *extra)
    return dst


@pytest.mark.parametrize("type_name", ALL_TYPES)
def test_gguf_py_reads_every_type(edgeq, f32_model, tmp_path, type_name):
    src, tensors = f32_model
    out = quantize_to(edgeq, src, tmp_path / "out.gguf", type_name)
    read, reader = read_tensors(out)
    assert set(read) == set(tensors)
    assert reader.fields["general.file_type"].parts[-1][0] > 0 or type_name == "F32"
    for name, t in read.items():
        if tensors[name].ndim == 1:
            assert t.tensor_type == Q.F32, name
        elif name == "blk.0.odd.weight":
            assert t.tensor_type.name == FALLBACK_96.get(type_name, type_name), name
        else:
            assert t.tensor_type.name == type_name, name
        values = dequantize(t.data, t.tensor_type)
        assert values.shape == tensors[name].shape
        assert np.all(np.isfinite(values))


@pytest.mark.parametrize("type_name", [t for t in ALL_TYPES if t != "F32"])
def test_dequantization_equals_gguf_py(edgeq, f32_model, tmp_path, type_name):
    """edgeq's dequantization (requantizing to F32) equals gguf-py's numpy one bit for bit."""
    src, _ = f32_model
    out = quantize_to(edgeq, src, tmp_path / "q.gguf", type_name)
    back = tmp_path / "back.gguf"
    edgeq.run("quantize", out, back, "F32", "--pure")
    quantized, _ = read_tensors(out)
    restored, _ = read_tensors(back)
    for name, t in quantized.items():
        ours = np.asarray(restored[name].data, dtype=np.float32)
        theirs = dequantize(t.data, t.tensor_type).astype(np.float32)
        np.testing.assert_array_equal(ours.reshape(theirs.shape), theirs, err_msg=f"{name} ({t.tensor_type.name})")


@pytest.mark.parametrize("type_name", ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "TQ1_0", "TQ2_0", "BF16", "F16"])
def test_quantized_bytes_equal_gguf_py(edgeq, f32_model, tmp_path, type_name):
    src, tensors = f32_model
    out = quantize_to(edgeq, src, tmp_path / "q.gguf", type_name)
    read, _ = read_tensors(out)
    for name, t in read.items():
        if tensors[name].ndim == 1 or t.tensor_type.name != type_name:
            continue
        if type_name == "F16":
            expected = tensors[name].astype(np.float16).view(np.uint8)
        else:
            expected = quantize(tensors[name], Q[type_name])
        ours = np.asarray(t.data).view(np.uint8).reshape(expected.shape)
        mismatch = np.flatnonzero(ours != expected)
        assert mismatch.size == 0, f"{name}: {mismatch.size} bytes differ, first at {mismatch[:5]}"


def types_of(path):
    read, _ = read_tensors(path)
    return {name: t.tensor_type.name for name, t in read.items()}


def use_more_bits(i, n):
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


@pytest.fixture(scope="module")
def eight_layer_model(tmp_path_factory):
    rng = np.random.default_rng()
    path = tmp_path_factory.mktemp("mix") / "llama8.gguf"
    write_model(path, llama_like(rng, n_layer=8), n_layer=8)
    return path


def test_q4_k_m_mix(edgeq, eight_layer_model, tmp_path):
    types = types_of(quantize_to_mix(edgeq, eight_layer_model, tmp_path, "Q4_K_M"))
    assert types["output.weight"] == "Q6_K"
    assert types["token_embd.weight"] == "Q4_K"
    for i in range(8):
        bumped = "Q6_K" if use_more_bits(i, 8) else "Q4_K"
        assert types[f"blk.{i}.attn_v.weight"] == bumped, i
        assert types[f"blk.{i}.ffn_down.weight"] == bumped, i
        for part in ("attn_q", "attn_k", "attn_output", "ffn_gate", "ffn_up"):
            assert types[f"blk.{i}.{part}.weight"] == "Q4_K"
        assert types[f"blk.{i}.attn_norm.weight"] == "F32"


def test_q3_k_m_and_q2_k_mixes(edgeq, eight_layer_model, tmp_path):
    q3 = types_of(quantize_to_mix(edgeq, eight_layer_model, tmp_path, "Q3_K_M"))
    q2 = types_of(quantize_to_mix(edgeq, eight_layer_model, tmp_path, "Q2_K"))
    for i in range(8):
        assert q3[f"blk.{i}.attn_v.weight"] == ("Q5_K" if i < 2 else "Q4_K")
        assert q3[f"blk.{i}.ffn_down.weight"] == "Q4_K"
        assert q3[f"blk.{i}.attn_output.weight"] == "Q4_K"
        assert q3[f"blk.{i}.ffn_up.weight"] == "Q3_K"
        assert q2[f"blk.{i}.attn_v.weight"] == "Q4_K"  # 8 heads over 2 kv heads: GQA 4
        assert q2[f"blk.{i}.ffn_down.weight"] == "Q3_K"
        assert q2[f"blk.{i}.attn_output.weight"] == "Q3_K"
        assert q2[f"blk.{i}.attn_q.weight"] == "Q2_K"
    assert q3["output.weight"] == q2["output.weight"] == "Q6_K"


def test_tied_embeddings_take_the_output_type(edgeq, tmp_path):
    rng = np.random.default_rng()
    tensors = llama_like(rng)
    del tensors["output.weight"]
    src = tmp_path / "tied.gguf"
    write_model(src, tensors)
    types = types_of(quantize_to_mix(edgeq, src, tmp_path, "Q4_K_M"))
    assert types["token_embd.weight"] == "Q6_K"


def test_overrides(edgeq, eight_layer_model, tmp_path):
    out = tmp_path / "o.gguf"
    edgeq.run("quantize", eight_layer_model, out, "Q4_K_M", "--tensor-type", "attn_q=q8_0", "--tensor-type",
              r"blk\.[0-3]\.ffn_up=Q5_K", "--output-tensor-type", "q5_k", "--token-embedding-type", "Q8_0")
    types = types_of(out)
    assert types["output.weight"] == "Q5_K"
    assert types["token_embd.weight"] == "Q8_0"
    assert all(types[f"blk.{i}.attn_q.weight"] == "Q8_0" for i in range(8))
    assert [types[f"blk.{i}.ffn_up.weight"] for i in range(8)] == ["Q5_K"] * 4 + ["Q4_K"] * 4
    out2 = tmp_path / "leave.gguf"
    edgeq.run("quantize", eight_layer_model, out2, "Q4_K_M", "--leave-output-tensor")
    assert types_of(out2)["output.weight"] == "F32"


def quantize_to_mix(edgeq, src, tmp_path, mix):
    out = tmp_path / f"{mix}.gguf"
    edgeq.run("quantize", src, out, mix)
    return out


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_dry_run_writes_nothing(edgeq, eight_layer_model, tmp_path):
    out = tmp_path / "dry.gguf"
    result = edgeq.run("quantize", eight_layer_model, out, "Q4_K_M", "--dry-run")
    assert not out.exists()
    assert "blk.0.attn_v.weight" in result.stdout and "Q6_K" in result.stdout
    assert "bits per weight" in result.stdout


def test_refuses_to_overwrite_its_input(edgeq, eight_layer_model, tmp_path):
    src = tmp_path / "in.gguf"
    src.write_bytes(eight_layer_model.read_bytes())
    before = digest(src)
    link = tmp_path / "link.gguf"
    link.symlink_to(src)
    for target in (src, link):
        result = edgeq.run("quantize", src, target, "Q8_0", check=False)
        assert result.returncode == 1
        assert "refusing to overwrite the input" in result.stderr
    assert digest(src) == before


def test_failed_run_leaves_nothing(edgeq, eight_layer_model, tmp_path):
    out = tmp_path / "out" / "q2ks.gguf"
    out.parent.mkdir()
    result = edgeq.run("quantize", eight_layer_model, out, "Q2_K_S", check=False)
    assert result.returncode == 1
    assert "importance matrix" in result.stderr
    assert list(out.parent.iterdir()) == []


def write_imatrix_gguf(path, entries, chunks=10):
    w = gguf.GGUFWriter(str(path), "imatrix")
    w.add_array("imatrix.datasets", ["test"])
    w.add_uint32("imatrix.chunk_count", chunks)
    w.add_uint32("imatrix.chunk_size", 512)
    for name, values in entries.items():
        count = 64.0  # a power of two, so sums / count gives back the values exactly
        w.add_tensor(name + ".in_sum2", (values * count).astype(np.float32))
        w.add_tensor(name + ".counts", np.array([count], dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def write_imatrix_dat(path, entries, n_calls=8):
    with open(path, "wb") as f:
        f.write(struct.pack("<i", len(entries)))
        for name, values in entries.items():
            f.write(struct.pack("<i", len(name)))
            f.write(name.encode())
            f.write(struct.pack("<ii", n_calls, len(values)))
            f.write((values * n_calls).astype(np.float32).tobytes())
        f.write(struct.pack("<i", 10))
        f.write(struct.pack("<i", 4))
        f.write(b"test")


def test_imatrix_formats_agree_and_lower_the_weighted_error(edgeq, tmp_path):
    rng = np.random.default_rng()
    tensors = llama_like(rng, dist=heavy)
    src = tmp_path / "m.gguf"
    write_model(src, tensors)
    entries = {name: np.exp(1.5 * rng.standard_normal(a.shape[1])).astype(np.float32)
               for name, a in tensors.items() if a.ndim == 2}
    write_imatrix_gguf(tmp_path / "imatrix.gguf", entries)
    write_imatrix_dat(tmp_path / "imatrix.dat", entries)
    plain = quantize_to_mix(edgeq, src, tmp_path, "Q4_K_S")
    with_gguf = tmp_path / "gguf.gguf"
    with_dat = tmp_path / "dat.gguf"
    edgeq.run("quantize", src, with_gguf, "Q4_K_S", "--imatrix", tmp_path / "imatrix.gguf")
    edgeq.run("quantize", src, with_dat, "Q4_K_S", "--imatrix", tmp_path / "imatrix.dat")
    assert digest(with_gguf) == digest(with_dat)
    a, _ = read_tensors(plain)
    b, _ = read_tensors(with_gguf)
    for name, imp in entries.items():
        x = tensors[name].astype(np.float64)
        err_plain = np.sum(imp * (x - dequantize(a[name].data, a[name].tensor_type)) ** 2)
        err_imatrix = np.sum(imp * (x - dequantize(b[name].data, b[name].tensor_type)) ** 2)
        assert err_imatrix < err_plain, name


def damaged_files(valid):
    data = valid.read_bytes()
    n_kv_offset = 16
    yield "truncated", data[: len(data) // 2]
    yield "oversized count", data[:8] + struct.pack("<Q", 1 << 60) + data[16:]
    yield "oversized kv count", data[:n_kv_offset] + struct.pack("<Q", 1 << 60) + data[24:]
    yield "random bytes", os.urandom(4096)
    yield "random after magic", b"GGUF" + os.urandom(4092)
    yield "empty", b""
    # The first tensor's data offset, pointed far past the end of the file.
    r = gguf.GGUFReader(str(valid))
    first = r.tensors[0]
    offset_field = first.field.offset + sum(p.nbytes for p in first.field.parts) - 8
    yield "bad offset", data[:offset_field] + struct.pack("<Q", 1 << 40) + data[offset_field + 8:]
    yield "misaligned offset", data[:offset_field] + struct.pack("<Q", 3) + data[offset_field + 8:]


def test_damaged_inputs_get_one_line_errors(edgeq, tmp_path):
    rng = np.random.default_rng()
    valid = tmp_path / "valid.gguf"
    write_model(valid, llama_like(rng, n_layer=1))
    for what, data in damaged_files(valid):
        bad = tmp_path / "bad.gguf"
        bad.write_bytes(data)
        for args in (["quantize", bad, tmp_path / "out.gguf", "Q4_0"], ["inspect", bad]):
            result = edgeq.run(*args, check=False)
            assert result.returncode == 1, (what, args[0], result.stderr)
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("edgeq: error:"), (what, result.stderr)
            assert not sanitizer_report(result.stderr), (what, result.stderr)
            assert not (tmp_path / "out.gguf").exists()
    for args in (["quantize", tmp_path / "missing.gguf", tmp_path / "o.gguf", "Q4_0"], ["inspect", tmp_path]):
        result = edgeq.run(*args, check=False)
        assert result.returncode == 1 and result.stderr.startswith("edgeq: error:"), result.stderr
    result = edgeq.run("quantize", valid, tmp_path / "o.gguf", "Q4_Z", check=False)
    assert result.returncode == 1 and "unknown type 'Q4_Z'" in result.stderr


def test_inspect_json(edgeq, eight_layer_model, tmp_path):
    import json
    out = quantize_to_mix(edgeq, eight_layer_model, tmp_path, "Q4_K_M")
    info = json.loads(edgeq.run("inspect", out, "--json").stdout)
    read, _ = read_tensors(out)
    assert info["format"] == "gguf" and info["version"] == 3
    assert {t["name"]: t["type"] for t in info["tensors"]} == {n: t.tensor_type.name for n, t in read.items()}
    assert info["parameters"] == sum(int(np.prod(t.shape)) for t in read.values())
    assert info["metadata"]["general.file_type"]["value"] == 15
    assert 4.0 < info["bits_per_weight"] < 6.5
    text = edgeq.run("inspect", out).stdout
    assert "llama · 8 layers" in text and "Q4_K_M" in text


def test_interrupted_run_leaves_nothing(edgeq_bin, synth_bin, tmp_path):
    import signal
    import subprocess
    import time
    model = tmp_path / "big.gguf"
    subprocess.run([str(synth_bin), "-o", str(model), "--preset", "custom", "--layers", "4", "--embd", "1024",
                    "--ffn", "2816", "--vocab", "32000", "--heads", "16", "--heads-kv", "4"],
                   check=True, capture_output=True)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    process = subprocess.Popen([str(edgeq_bin), "quantize", str(model), str(out_dir / "q.gguf"), "Q4_K_M", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(1.0)
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=60)
    if process.returncode == 0:
        pytest.skip("the run finished before the signal")
    assert process.returncode == -signal.SIGTERM
    assert list(out_dir.iterdir()) == []
