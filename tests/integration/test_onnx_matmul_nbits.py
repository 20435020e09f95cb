"""MatMulNBits weights (edgeq/formats/onnx-matmul-nbits.h) checked in ONNX Runtime.

edgeq-nbits writes the initializers; a one-node com.microsoft MatMulNBits model built here with
the onnx package runs them in onnxruntime, and its output must match numpy's A @ dequant(B)^T,
where dequant(B) is decoded here from ORT's documented layout (and must equal edgeq's own
dequantization bit for bit). With A = I the operator returns the weights it computes with, which
must be edgeq's dequantization. Carried GGUF Q4_0 / Q8_0 blocks (made by gguf-py) must give
gguf-py's dequantization exactly.
"""
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
gguf = pytest.importorskip("gguf")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def nbits_bin():
    path = Path(os.environ.get("EDGEQ_NBITS_BIN", ROOT / "build" / "edgeq-nbits"))
    if not path.exists():
        pytest.exit(f"{path} does not exist: build the edgeq-nbits target first", returncode=2)
    return path


def run_tool(nbits_bin, *args, check=True):
    result = subprocess.run([str(nbits_bin), *map(str, args)], capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"edgeq-nbits {' '.join(map(str, args))} failed:\n{result.stderr}")
    return result


def load_weights(out_dir, n, k, bits, block_size):
    nb = (k + block_size - 1) // block_size
    blob = block_size * bits // 8
    packed = np.fromfile(out_dir / "packed.u8", dtype=np.uint8)
    assert packed.size == n * nb * blob
    scales = np.fromfile(out_dir / "scales.f32", dtype=np.float32)
    assert scales.size == n * nb
    zp_path = out_dir / "zero_points.u8"
    zero_points = np.fromfile(zp_path, dtype=np.uint8) if zp_path.exists() else None
    if zero_points is not None:
        assert zero_points.size == n * ((nb * bits + 7) // 8)
    dequant = np.fromfile(out_dir / "dequant.f32", dtype=np.float32).reshape(n, k)
    return packed.reshape(n, nb, blob), scales, zero_points, dequant


def reference_dequant(packed, scales, zero_points, n, k, bits, block_size):
    """Decoded from ORT's layout: codes low bits first along K, zero points packed per row."""
    nb = packed.shape[1]
    if bits == 4:
        codes = np.stack([packed & 0x0F, packed >> 4], axis=-1).reshape(n, nb, block_size)
    else:
        codes = packed.reshape(n, nb, block_size)
    if zero_points is None:
        zp = np.full((n, nb), 1 << (bits - 1), dtype=np.int32)
    elif bits == 4:
        zrow = zero_points.reshape(n, -1)
        zp = np.stack([zrow & 0x0F, zrow >> 4], axis=-1).reshape(n, -1)[:, :nb].astype(np.int32)
    else:
        zp = zero_points.reshape(n, nb).astype(np.int32)
    values = (codes.astype(np.int32) - zp[:, :, None]).astype(np.float32) * scales.reshape(n, nb)[:, :, None]
    return values.reshape(n, nb * block_size)[:, :k]


def matmul_nbits_session(packed, scales, zero_points, n, k, bits, block_size, accuracy_level=None):
    inputs = ["A", "B", "scales"] + (["zero_points"] if zero_points is not None else [])
    attrs = {"K": k, "N": n, "bits": bits, "block_size": block_size}
    if accuracy_level is not None:
        attrs["accuracy_level"] = accuracy_level
    node = helper.make_node("MatMulNBits", inputs, ["Y"], domain="com.microsoft", **attrs)
    initializers = [numpy_helper.from_array(packed, "B"), numpy_helper.from_array(scales, "scales")]
    if zero_points is not None:
        initializers.append(numpy_helper.from_array(zero_points, "zero_points"))
    graph = helper.make_graph(
        [node],
        "matmul_nbits",
        [helper.make_tensor_value_info("A", TensorProto.FLOAT, ["M", k])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["M", n])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def check_in_ort(packed, scales, zero_points, dequant, n, k, bits, block_size, rng):
    session = matmul_nbits_session(packed, scales, zero_points, n, k, bits, block_size)
    # A = I: the operator's output is the transposed weights it computes with.
    eye = np.eye(k, dtype=np.float32)
    (weights_t,) = session.run(None, {"A": eye})
    np.testing.assert_allclose(weights_t.T, dequant, rtol=1e-6, atol=1e-30)
    a = rng.standard_normal((5, k)).astype(np.float32)
    (y,) = session.run(None, {"A": a})
    ref = a.astype(np.float64) @ dequant.astype(np.float64).T
    bound = np.abs(a).astype(np.float64) @ np.abs(dequant).astype(np.float64).T
    assert np.all(np.abs(y - ref) <= 1e-5 * bound + 1e-6), np.max(np.abs(y - ref) / (bound + 1e-30))


@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("block_size", [16, 32, 64, 128])
def test_quantized_weights_run_in_onnxruntime(nbits_bin, tmp_path, bits, symmetric, block_size):
    rng = np.random.default_rng()
    for n, k, heavy in [(7, block_size * 3, False), (5, block_size * 2 + 7, True), (3, 19, False), (9, 257, True)]:
        if heavy:
            w = (rng.standard_t(3, size=(n, k)) * 0.05).astype(np.float32)
            w[:, rng.integers(0, k, size=2)] *= 10
        else:
            w = rng.standard_normal((n, k)).astype(np.float32) * 0.02
        src = tmp_path / f"w-{n}-{k}.f32"
        w.tofile(src)
        out = tmp_path / f"q-{n}-{k}"
        args = ["quantize", src, "--rows", n, "--cols", k, "--bits", bits, "--block-size", block_size, "-o", out]
        if not symmetric:
            args.append("--asymmetric")
        run_tool(nbits_bin, *args)
        packed, scales, zero_points, dequant = load_weights(out, n, k, bits, block_size)
        assert (zero_points is None) == symmetric
        np.testing.assert_array_equal(reference_dequant(packed, scales, zero_points, n, k, bits, block_size), dequant)
        # Quantization worked: nearly every value within half a step of the original. The search
        # may clip a few values harder to fit the rest better (5% of a 3 x 19 Gaussian matrix and
        # 3.5% of a small heavy-tailed one were seen); wrong codes would put most values off.
        step = np.abs(scales).reshape(n, -1).repeat(block_size, axis=1)[:, :k]
        within = np.mean(np.abs(dequant - w) <= 0.5 * step * (1 + 1e-5) + 1e-12)
        assert within > 0.85, within
        check_in_ort(packed, scales, zero_points, dequant, n, k, bits, block_size, rng)


@pytest.mark.parametrize("type_name", ["Q4_0", "Q8_0"])
def test_carried_gguf_blocks_run_in_onnxruntime(nbits_bin, tmp_path, type_name):
    rng = np.random.default_rng()
    qtype = getattr(gguf.GGMLQuantizationType, type_name)
    n, k = 11, 160
    w = rng.standard_normal((n, k)).astype(np.float32) * 0.05
    blocks = gguf.quants.quantize(w, qtype)
    expected = gguf.quants.dequantize(blocks, qtype).reshape(n, k).astype(np.float32)
    src = tmp_path / "blocks.bin"
    np.ascontiguousarray(blocks).tofile(src)
    out = tmp_path / "carried"
    run_tool(nbits_bin, "carry", src, "--type", type_name, "--rows", n, "--cols", k, "-o", out)
    bits = 4 if type_name == "Q4_0" else 8
    packed, scales, zero_points, dequant = load_weights(out, n, k, bits, 32)
    assert zero_points is None
    np.testing.assert_array_equal(dequant, expected)
    np.testing.assert_array_equal(reference_dequant(packed, scales, None, n, k, bits, 32), expected)
    check_in_ort(packed, scales, None, dequant, n, k, bits, 32, rng)


@pytest.mark.parametrize("symmetric", [True, False])
def test_int8_compute_path_agrees(nbits_bin, tmp_path, symmetric):
    """accuracy_level 4 (A quantized to int8 inside ORT) with edgeq's scales, negative ones included."""
    rng = np.random.default_rng()
    n, k, bs = 16, 256, 32
    w = rng.standard_normal((n, k)).astype(np.float32)
    src = tmp_path / "w.f32"
    w.tofile(src)
    out = tmp_path / "q"
    run_tool(nbits_bin, "quantize", src, "--rows", n, "--cols", k, "-o", out, *([] if symmetric else ["--asymmetric"]))
    packed, scales, zero_points, dequant = load_weights(out, n, k, 4, bs)
    session = matmul_nbits_session(packed, scales, zero_points, n, k, 4, bs, accuracy_level=4)
    a = rng.standard_normal((4, k)).astype(np.float32)
    (y,) = session.run(None, {"A": a})
    ref = a @ dequant.T
    assert np.max(np.abs(y - ref)) <= 0.02 * np.max(np.abs(ref))


def test_bad_input_is_an_error(nbits_bin, tmp_path):
    src = tmp_path / "short.f32"
    np.zeros(10, dtype=np.float32).tofile(src)
    result = run_tool(nbits_bin, "quantize", src, "--rows", 3, "--cols", 4, "-o", tmp_path / "x", check=False)
    assert result.returncode == 1 and "expected 48" in result.stderr
    np.zeros(12, dtype=np.float32).tofile(src)
    result = run_tool(nbits_bin, "quantize", src, "--rows", 3, "--cols", 4, "--bits", 3, "-o", tmp_path / "x", check=False)
    assert result.returncode == 1 and "bits 3" in result.stderr
    result = run_tool(nbits_bin, "carry", src, "--type", "Q4_K", "--rows", 1, "--cols", 256, "-o", tmp_path / "x", check=False)
    assert result.returncode == 1
