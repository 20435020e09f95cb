"""edgeq convert, checked against what llama.cpp's convert_hf_to_gguf.py writes.

The fixtures in tests/fixtures/hf/ (made by tests/fixtures/make_hf_fixtures.py) are tiny
transformers checkpoints, one per supported family; each carries expected-gguf.json, the
metadata and tensors llama.cpp's converter wrote for it. For every fixture and type, edgeq's
file must have the same tensors (name, type, shape, sha256 of the data, in the same order) and
the same metadata (every key but the provenance ones, in the same relative order, same GGUF
type, same value). Bad inputs must fail with one `edgeq: error:` line and leave no file.
Needs numpy and gguf only.
"""
import hashlib
import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
from gguf import GGUFReader, GGUFValueType  # noqa: E402
from gguf.quants import dequantize  # noqa: E402

from conftest import sanitizer_report  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hf"
NAMES = ["llama2-spm", "llama3-bpe", "smollm", "mistral", "qwen2", "qwen3", "gemma2", "gemma3", "phi3"]
SUPPORTED = ["LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM", "Gemma2ForCausalLM",
             "Gemma3ForCausalLM", "Phi3ForCausalLM"]
THREADS = 2


def fixture_dir(name):
    d = FIXTURES / name
    if not (d / "expected-gguf.json").is_file():
        pytest.fail(f"{d}/expected-gguf.json is missing: the fixtures are committed; "
                    "remake them with tests/fixtures/make_hf_fixtures.py")
    return d


def expected(name):
    return json.loads((fixture_dir(name) / "expected-gguf.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def converted(edgeq, tmp_path_factory):
    """convert(name, type) -> path of edgeq's output; each conversion runs once per session."""
    cache = {}
    root = tmp_path_factory.mktemp("convert")

    def convert(name, type_name):
        key = (name, type_name)
        if key not in cache:
            out = root / f"{name}-{type_name}.gguf"
            r = edgeq.run("convert", fixture_dir(name), "-o", out, "--type", type_name, "-t", THREADS, check=False)
            assert r.returncode == 0, f"edgeq convert {name} --type {type_name} failed ({r.returncode}):\n{r.stderr}"
            assert not sanitizer_report(r.stderr), r.stderr
            cache[key] = out
        return cache[key]

    return convert


# ---------------------------------------------------------------------------------------------
# reading a GGUF file as the expectations were written

def field_value(field):
    """(type, item type or None, value) of a gguf-py ReaderField."""
    types = field.types
    if types[0] == GGUFValueType.ARRAY:
        item = types[-1]
        if item == GGUFValueType.STRING:
            return "ARRAY", item.name, [bytes(field.parts[i]).decode("utf-8") for i in field.data]
        values = [field.parts[i].tolist()[0] for i in field.data]
        if item == GGUFValueType.BOOL:
            values = [bool(v) for v in values]
        return "ARRAY", item.name, values
    t = types[0]
    if t == GGUFValueType.STRING:
        return t.name, None, bytes(field.parts[-1]).decode("utf-8")
    value = field.parts[-1].tolist()[0]
    return t.name, None, bool(value) if t == GGUFValueType.BOOL else value


def read_metadata(reader):
    meta = []
    for key, field in reader.fields.items():
        if key.startswith("GGUF."):
            continue
        typ, item, value = field_value(field)
        meta.append({"key": key, "type": typ, "item_type": item, "value": value})
    return meta


def read_tensors(reader):
    return [{"name": t.name, "type": t.tensor_type.name, "shape": [int(x) for x in t.shape],
             "sha256": hashlib.sha256(np.ascontiguousarray(t.data).tobytes()).hexdigest()} for t in reader.tensors]


def is_provenance(key, rule):
    return key in rule["keys"] or any(key.startswith(p) for p in rule["prefixes"])


def same_value(typ, item, a, b):
    """Values equal; floats compared as float32 bit patterns (so -0.0 != 0.0 and NaN == NaN)."""
    float_types = ("FLOAT32", "FLOAT64")
    if typ in float_types or (typ == "ARRAY" and item in float_types):
        dt = np.float32 if "FLOAT32" in (typ, item) else np.float64
        a, b = np.atleast_1d(np.asarray(a, dtype=dt)), np.atleast_1d(np.asarray(b, dtype=dt))
        return a.shape == b.shape and np.array_equal(a.view(np.uint8), b.view(np.uint8))
    return a == b


def describe_value(v):
    if isinstance(v, list):
        return f"[{len(v)} items: {v[:4]!r}...]"
    return repr(v)[:200]


# ---------------------------------------------------------------------------------------------
# the same file as llama.cpp's converter

@pytest.mark.parametrize("type_name", ["f32", "f16"])
@pytest.mark.parametrize("name", NAMES)
def test_tensors_equal_llamacpp_converter(converted, name, type_name):
    """Every tensor: name, GGUF type, shape and the sha256 of its data, in the converter's order."""
    exp = expected(name)["tensors"][type_name]
    reader = GGUFReader(str(converted(name, type_name)))
    got = read_tensors(reader)
    exp_names, got_names = [t["name"] for t in exp], [t["name"] for t in got]
    assert set(got_names) == set(exp_names), (f"missing {sorted(set(exp_names) - set(got_names))}, "
                                              f"unexpected {sorted(set(got_names) - set(exp_names))}")
    by_name = {t["name"]: t for t in got}
    bad = []
    for e in exp:
        g = by_name[e["name"]]
        for field in ("type", "shape", "sha256"):
            if g[field] != e[field]:
                bad.append(f"{e['name']}: {field} {g[field]} != llama.cpp's {e[field]}")
    assert not bad, f"{len(bad)} differences:\n" + "\n".join(bad[:20])
    assert got_names == exp_names, "tensor order differs from llama.cpp's converter"


@pytest.mark.parametrize("type_name", ["f32", "f16"])
@pytest.mark.parametrize("name", NAMES)
def test_metadata_equals_llamacpp_converter(converted, name, type_name):
    """Every key but the provenance ones (general.name, .size_label ... which depend on the
    directory), with the same GGUF type and value, in the same relative order."""
    doc = expected(name)
    rule = doc["provenance"]
    exp = [m for m in doc["metadata"] if not is_provenance(m["key"], rule)]
    for m in exp:
        if m["key"] == "general.file_type":
            m["value"] = doc["file_type"][type_name]
    reader = GGUFReader(str(converted(name, type_name)))
    got = [m for m in read_metadata(reader) if not is_provenance(m["key"], rule)]
    exp_keys, got_keys = [m["key"] for m in exp], [m["key"] for m in got]
    assert set(got_keys) == set(exp_keys), (f"missing {[k for k in exp_keys if k not in got_keys]}, "
                                            f"unexpected {[k for k in got_keys if k not in exp_keys]}")
    by_key = {m["key"]: m for m in got}
    bad = []
    for e in exp:
        g = by_key[e["key"]]
        if (g["type"], g["item_type"]) != (e["type"], e.get("item_type")):
            bad.append(f"{e['key']}: type {g['type']}/{g['item_type']} != {e['type']}/{e.get('item_type')}")
        elif not same_value(e["type"], e.get("item_type"), g["value"], e["value"]):
            bad.append(f"{e['key']}: {describe_value(g['value'])} != llama.cpp's {describe_value(e['value'])}")
    assert not bad, "\n".join(bad)
    assert got_keys == exp_keys, f"key order differs from llama.cpp's converter:\n{got_keys}\n{exp_keys}"


@pytest.mark.parametrize("type_name", ["bf16", "q8_0"])
@pytest.mark.parametrize("name", NAMES)
def test_bf16_q8_0_tensors_equal_llamacpp_converter(converted, name, type_name):
    """The converter's own BF16 and Q8_0 (1-D tensors F32, Q8_0 rows not a multiple of 32 in F16)."""
    exp = expected(name)
    reader = GGUFReader(str(converted(name, type_name)))
    got = {t["name"]: t for t in read_tensors(reader)}
    bad = [f"{e['name']}: {got.get(e['name'])} != llama.cpp's {e}" for e in exp["tensors"][type_name]
           if {k: got.get(e["name"], {}).get(k) for k in ("type", "shape", "sha256")}
           != {k: e[k] for k in ("type", "shape", "sha256")}]
    assert not bad and len(got) == len(exp["tensors"][type_name]), "\n".join(bad[:10])
    assert reader.fields["general.file_type"].parts[-1][0] == exp["file_type"][type_name]


# ---------------------------------------------------------------------------------------------
# quantized output

@pytest.mark.parametrize("type_name, file_type, max_rel_rmse", [("q8_0", 7, 0.01), ("Q4_K_M", 15, 0.15)])
@pytest.mark.parametrize("name", NAMES)
def test_quantized_types_readable(converted, name, type_name, file_type, max_rel_rmse):
    """gguf-py reads the file; it has llama.cpp's tensors and shapes, the mix's file type, and each
    tensor dequantizes to its F32 conversion within the type's error."""
    f32 = {t.name: t for t in GGUFReader(str(converted(name, "f32"))).tensors}
    reader = GGUFReader(str(converted(name, type_name)))
    assert reader.fields["general.file_type"].parts[-1][0] == file_type
    got = {t.name: t for t in reader.tensors}
    assert set(got) == set(f32)
    for tname, t in got.items():
        ref = np.asarray(f32[tname].data, dtype=np.float32).reshape(-1)
        assert [int(x) for x in t.shape] == [int(x) for x in f32[tname].shape], tname
        values = dequantize(t.data, t.tensor_type).astype(np.float32).reshape(-1)
        rms = float(np.sqrt(np.mean(ref.astype(np.float64) ** 2))) or 1.0
        rel = float(np.sqrt(np.mean((values.astype(np.float64) - ref) ** 2))) / rms
        assert rel <= max_rel_rmse, f"{tname} ({t.tensor_type.name}): relative RMSE {rel:.4f}"


@pytest.mark.parametrize("name", NAMES)
def test_one_pass_q4_k_m_equals_quantize_of_f16(edgeq, converted, tmp_path, name):
    """convert --type Q4_K_M gives the bytes of `edgeq quantize` applied to convert --type f16."""
    one_pass = converted(name, "Q4_K_M")
    two_pass = tmp_path / "two-pass.gguf"
    edgeq.run("quantize", converted(name, "f16"), two_pass, "Q4_K_M", "-t", THREADS)
    a, b = one_pass.read_bytes(), two_pass.read_bytes()
    if a != b:
        ra, rb = GGUFReader(str(one_pass)), GGUFReader(str(two_pass))
        diff = [f"{x['name']}: {x['type']} vs {y['type']}" for x, y in zip(read_tensors(ra), read_tensors(rb)) if x != y]
        keys = [m["key"] for m, n in zip(read_metadata(ra), read_metadata(rb)) if m != n]
        pytest.fail(f"{len(a)} vs {len(b)} bytes; tensors differing: {diff[:10]}; keys differing: {keys[:10]}")


# ---------------------------------------------------------------------------------------------
# bad input

def copy_fixture(name, tmp_path):
    d = tmp_path / name
    shutil.copytree(fixture_dir(name), d)
    for p in d.iterdir():  # the converter's input only
        if p.name in ("expected-gguf.json", "reference.json", "reference-logits.npy"):
            p.unlink()
    return d


def assert_fails_cleanly(edgeq, src, tmp_path, *must_mention):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "model.gguf"
    r = edgeq.run("convert", src, "-o", out, "--type", "f16", "-t", THREADS, check=False)
    assert r.returncode != 0, f"edgeq convert succeeded on bad input {src}"
    assert not sanitizer_report(r.stderr), r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("edgeq: error:")]
    assert len(errors) == 1, f"expected one 'edgeq: error:' line, got:\n{r.stderr}"
    for text in must_mention:
        assert text.lower() in errors[0].lower(), f"{text!r} not in {errors[0]!r}"
    assert list(out_dir.iterdir()) == [], f"files left behind: {list(out_dir.iterdir())}"
    return errors[0]


def read_safetensors(path):
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    return header, raw[8 + n:]


def write_safetensors(path, header, tensors):
    """header: {name: {"dtype", "shape"}, "__metadata__"?}; tensors: {name: bytes}."""
    offset, entries, blobs = 0, {}, []
    if "__metadata__" in header:
        entries["__metadata__"] = header["__metadata__"]
    for name, data in tensors.items():
        entries[name] = {"dtype": header[name]["dtype"], "shape": header[name]["shape"],
                         "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(entries).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def test_damaged_missing_config(edgeq, tmp_path):
    d = copy_fixture("mistral", tmp_path)
    (d / "config.json").unlink()
    assert_fails_cleanly(edgeq, d, tmp_path, "config.json")


def test_damaged_unknown_architecture(edgeq, tmp_path):
    d = copy_fixture("mistral", tmp_path)
    config = json.loads((d / "config.json").read_text())
    config["architectures"] = ["FalconMambaForCausalLM"]
    (d / "config.json").write_text(json.dumps(config))
    message = assert_fails_cleanly(edgeq, d, tmp_path, "FalconMambaForCausalLM")
    missing = [a for a in SUPPORTED if a not in message]
    assert not missing, f"the message does not list the supported architectures {missing}: {message}"


def test_damaged_missing_shard(edgeq, tmp_path):
    d = copy_fixture("llama2-spm", tmp_path)
    index = json.loads((d / "model.safetensors.index.json").read_text())
    shard = sorted(set(index["weight_map"].values()))[-1]
    (d / shard).unlink()
    assert_fails_cleanly(edgeq, d, tmp_path, shard)


def test_damaged_truncated_shard(edgeq, tmp_path):
    d = copy_fixture("mistral", tmp_path)
    path = d / "model.safetensors"
    raw = path.read_bytes()
    path.write_bytes(raw[:len(raw) - 1000])
    assert_fails_cleanly(edgeq, d, tmp_path, "model.safetensors")


def test_damaged_unexpected_dtype(edgeq, tmp_path):
    """A weight stored as I32 (the right shape and byte count for I32)."""
    d = copy_fixture("mistral", tmp_path)
    path = d / "model.safetensors"
    header, data = read_safetensors(path)
    names = [k for k in header if k != "__metadata__"]
    victim = "model.layers.0.self_attn.q_proj.weight"
    assert victim in names
    tensors = {}
    for k in names:
        a, b = header[k]["data_offsets"]
        tensors[k] = data[a:b]
    bf16 = np.frombuffer(tensors[victim], dtype=np.uint16)
    tensors[victim] = bf16.astype(np.int32).tobytes()
    header[victim]["dtype"] = "I32"
    write_safetensors(path, header, tensors)
    assert_fails_cleanly(edgeq, d, tmp_path, victim)


@pytest.mark.parametrize("name", ["llama2-spm", "qwen2", "phi3"])
def test_damaged_tokenizer_missing(edgeq, tmp_path, name):
    d = copy_fixture(name, tmp_path)
    for f in ("tokenizer.model", "tokenizer.json"):
        if (d / f).exists():
            (d / f).unlink()
    assert_fails_cleanly(edgeq, d, tmp_path, "tokenizer")


# ---------------------------------------------------------------------------------------------
# streaming: resident memory is bounded by the largest tensor, not the model

def write_bf16_checkpoint(d, tensors, rng):
    """model.safetensors with random BF16 tensors {name: shape}, written tensor by tensor."""
    entries, offset = {}, 0
    for name, shape in tensors.items():
        n = int(np.prod(shape)) * 2
        entries[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    text = json.dumps(entries).encode()
    text += b" " * (-len(text) % 8)
    with open(d / "model.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for shape in tensors.values():
            x = (rng.standard_normal(shape, dtype=np.float32) * 0.02).view(np.uint32)
            f.write((x >> 16).astype("<u2").tobytes())


def test_streaming_memory_bound(edgeq, tmp_path):
    """A 600 MB checkpoint whose largest tensor is 23 MB converts within 2x that + 300 MB:
    a converter holding the model, or keeping the checkpoint's pages mapped, would not."""
    import os
    import subprocess

    d = tmp_path / "wide-llama"
    d.mkdir()
    src = fixture_dir("llama2-spm")
    for f in ["tokenizer.model", "tokenizer_config.json", "generation_config.json"]:
        shutil.copy(src / f, d / f)
    hidden, ffn, layers, vocab = 2048, 5632, 6, 512
    config = json.loads((src / "config.json").read_text())
    config.update(hidden_size=hidden, intermediate_size=ffn, num_hidden_layers=layers, num_attention_heads=16,
                  num_key_value_heads=16, vocab_size=vocab)
    (d / "config.json").write_text(json.dumps(config))
    tensors = {"model.embed_tokens.weight": (vocab, hidden)}
    for i in range(layers):
        p = f"model.layers.{i}."
        for proj in "qkvo":
            tensors[f"{p}self_attn.{proj}_proj.weight"] = (hidden, hidden)
        tensors[f"{p}mlp.gate_proj.weight"] = (ffn, hidden)
        tensors[f"{p}mlp.up_proj.weight"] = (ffn, hidden)
        tensors[f"{p}mlp.down_proj.weight"] = (hidden, ffn)
        tensors[f"{p}input_layernorm.weight"] = (hidden,)
        tensors[f"{p}post_attention_layernorm.weight"] = (hidden,)
    tensors["model.norm.weight"] = (hidden,)
    tensors["lm_head.weight"] = (vocab, hidden)
    write_bf16_checkpoint(d, tensors, np.random.default_rng())
    model_bytes = (d / "model.safetensors").stat().st_size
    largest = max(int(np.prod(s)) * 2 for s in tensors.values())
    bound = 2 * largest + 300 * 2**20
    assert model_bytes > bound + 200 * 2**20, "the test model must be larger than the bound"

    out = tmp_path / "wide-f16.gguf"
    log = tmp_path / "convert.log"
    with open(log, "wb") as sink:
        proc = subprocess.Popen([str(edgeq.binary), "convert", str(d), "-o", str(out), "--type", "f16", "-t",
                                 str(THREADS)], stdout=sink, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = log.read_text(errors="replace")
    assert proc.returncode == 0, stderr
    peak = usage.ru_maxrss * 1024
    assert peak < bound, f"peak RSS {peak / 2**20:.0f} MiB, bound {bound / 2**20:.0f} MiB (model {model_bytes / 2**20:.0f} MiB)"
    r = GGUFReader(str(out))
    assert len(r.tensors) == len(tensors)
    q = next(t for t in r.tensors if t.name == "blk.5.ffn_down.weight")
    assert q.tensor_type.name == "F16" and q.data.size == hidden * ffn
