#!/usr/bin/env python3
"""MatMulNBits weights: edgeq's quantizer against ONNX Runtime's own MatMulNBitsQuantizer.

For random matrices (Gaussian, and heavy-tailed: Student-t with 3 degrees of freedom and a few
outlier columns, as trained weights have), every bit width (4, 8), block size (16..128) and
mode (symmetric, asymmetric), both quantizers produce MatMulNBits weights for the same matrix:
ORT's through its Python API (the 'DEFAULT' round-to-nearest algorithm, on a one-node MatMul
model), edgeq's through build/edgeq-nbits. The weights each one really computes with are read
back from ONNX Runtime itself (the operator applied to A = I), and compared with the original:

  rmse      sqrt(mean((W - Wq)^2))                       edgeq without importance
  w-rmse    sqrt(sum(imp * (W - Wq)^2) / sum(imp) / N)   edgeq given the importance (--importance)

with imp a random positive per-input weight spread over orders of magnitude (an imatrix's
role). Prints a table with the ratios edgeq / ORT and a PASS/FAIL line (every ratio <= 1);
exit status 1 on FAIL.

  /tmp/venv/bin/python bench/onnx_nbits_vs_ort.py [--rows 256] [--cols 1000] [--seed 0]
      [--edgeq-nbits build/edgeq-nbits] [--json out.json]
"""
import argparse
import logging
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

ROOT = Path(__file__).resolve().parents[1]


def weights_in_ort(model: onnx.ModelProto, k: int) -> np.ndarray:
    """The weights the model's MatMulNBits computes with: its output for A = I, transposed."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"A": np.eye(k, dtype=np.float32)})
    return y.T


def ort_rtn(w: np.ndarray, bits: int, block_size: int, symmetric: bool) -> np.ndarray:
    n, k = w.shape
    node = helper.make_node("MatMul", ["A", "W"], ["Y"], name="mm")
    graph = helper.make_graph(
        [node],
        "mm",
        [helper.make_tensor_value_info("A", TensorProto.FLOAT, ["M", k])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["M", n])],
        [numpy_helper.from_array(np.ascontiguousarray(w.T), "W")],  # ONNX MatMul's B is K x N
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    quantizer = MatMulNBitsQuantizer(model, bits=bits, block_size=block_size, is_symmetric=symmetric)
    quantizer.process()
    quantized = quantizer.model.model
    assert any(nd.op_type == "MatMulNBits" for nd in quantized.graph.node), "ORT did not quantize the MatMul"
    return weights_in_ort(quantized, k)


def edgeq_nbits(tool: Path, work: Path, w: np.ndarray, bits: int, block_size: int, symmetric: bool,
                importance: np.ndarray | None) -> np.ndarray:
    n, k = w.shape
    src = work / "w.f32"
    w.astype(np.float32).tofile(src)
    out = work / "q"
    args = [str(tool), "quantize", str(src), "--rows", str(n), "--cols", str(k), "--bits", str(bits),
            "--block-size", str(block_size), "-o", str(out)]
    if not symmetric:
        args.append("--asymmetric")
    if importance is not None:
        importance.astype(np.float32).tofile(work / "imp.f32")
        args += ["--importance", str(work / "imp.f32")]
    subprocess.run(args, check=True)
    nb = (k + block_size - 1) // block_size
    inputs = ["A", "B", "scales"]
    inits = [
        numpy_helper.from_array(np.fromfile(out / "packed.u8", dtype=np.uint8).reshape(n, nb, block_size * bits // 8), "B"),
        numpy_helper.from_array(np.fromfile(out / "scales.f32", dtype=np.float32), "scales"),
    ]
    if not symmetric:
        inputs.append("zero_points")
        inits.append(numpy_helper.from_array(np.fromfile(out / "zero_points.u8", dtype=np.uint8), "zero_points"))
    node = helper.make_node("MatMulNBits", inputs, ["Y"], domain="com.microsoft", K=k, N=n, bits=bits, block_size=block_size)
    graph = helper.make_graph(
        [node], "nbits",
        [helper.make_tensor_value_info("A", TensorProto.FLOAT, ["M", k])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["M", n])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 8
    return weights_in_ort(model, k)


def rmse(w, wq, importance=None):
    d2 = (w.astype(np.float64) - wq.astype(np.float64)) ** 2
    if importance is None:
        return float(np.sqrt(d2.mean()))
    return float(np.sqrt((d2 * importance[None, :]).sum() / importance.sum() / w.shape[0]))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=256, help="N (output features)")
    parser.add_argument("--cols", type=int, default=1000, help="K (input features; 1000 leaves tails)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--edgeq-nbits", type=Path, default=ROOT / "build" / "edgeq-nbits")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    logging.disable(logging.INFO)  # the quantizer logs every node
    rng = np.random.default_rng(args.seed)
    n, k = args.rows, args.cols
    matrices = {"normal": rng.standard_normal((n, k)).astype(np.float32) * 0.02}
    heavy = rng.standard_t(3, size=(n, k)) * 0.02
    heavy[:, rng.choice(k, size=max(1, k // 32), replace=False)] *= rng.uniform(4, 16, size=max(1, k // 32))
    matrices["heavy"] = heavy.astype(np.float32)
    importance = np.exp(rng.normal(0, 1.5, size=k)).astype(np.float32)

    rows = []
    failed = False
    print(f"onnxruntime {ort.__version__}; W is {n} x {k}; seed {args.seed}")
    header = f"{'dist':7} {'bits':>4} {'block':>5} {'mode':5} | {'ORT rmse':>10} {'edgeq':>10} {'ratio':>6} | {'ORT w-rmse':>10} {'edgeq':>10} {'ratio':>6}"
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for dist, w in matrices.items():
            for bits in (4, 8):
                for block in (16, 32, 64, 128):
                    for symmetric in (True, False):
                        w_ort = ort_rtn(w, bits, block, symmetric)
                        w_ours = edgeq_nbits(args.edgeq_nbits, work, w, bits, block, symmetric, None)
                        w_ours_imp = edgeq_nbits(args.edgeq_nbits, work, w, bits, block, symmetric, importance)
                        r = {
                            "dist": dist, "bits": bits, "block_size": block,
                            "mode": "sym" if symmetric else "asym",
                            "ort_rmse": rmse(w, w_ort), "edgeq_rmse": rmse(w, w_ours),
                            "ort_wrmse": rmse(w, w_ort, importance), "edgeq_wrmse": rmse(w, w_ours_imp, importance),
                        }
                        r["ratio"] = r["edgeq_rmse"] / r["ort_rmse"]
                        r["wratio"] = r["edgeq_wrmse"] / r["ort_wrmse"]
                        failed |= r["ratio"] > 1 or r["wratio"] > 1
                        rows.append(r)
                        print(f"{dist:7} {bits:>4} {block:>5} {r['mode']:5} | {r['ort_rmse']:10.3e} {r['edgeq_rmse']:10.3e} "
                              f"{r['ratio']:6.3f} | {r['ort_wrmse']:10.3e} {r['edgeq_wrmse']:10.3e} {r['wratio']:6.3f}")
    for key, label in (("ratio", "rmse"), ("wratio", "w-rmse")):
        for bits in (4, 8):
            v = [r[key] for r in rows if r["bits"] == bits]
            print(f"{label} ratio, {bits} bits: geometric mean {np.exp(np.mean(np.log(v))):.3f}, worst {max(v):.3f}")
    print("FAIL: a ratio above 1" if failed else "PASS: edgeq's error is below ORT RTN's everywhere")
    if args.json:
        args.json.write_text(json.dumps({"onnxruntime": ort.__version__, "rows": n, "cols": k, "seed": args.seed, "results": rows}, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
