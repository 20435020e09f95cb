"""Writes the safetensors fuzz seeds in this folder (libFuzzer reads this script as a seed too,
a malformed one). official-*.safetensors come from the reference library and are also read by
tests/unit/formats/safetensors-test.cpp, which checks the values set here.

    python tests/fuzz/corpus/safetensors/generate.py   # needs numpy and safetensors
"""
import json
import os
import struct

import numpy as np
from safetensors.numpy import save_file

HERE = os.path.dirname(os.path.abspath(__file__))


def raw(name, header, data=b"", length=None):
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    n = len(text) if length is None else length
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(struct.pack("<Q", n) + text + data)


def entry(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


# Valid files from the reference writer.
save_file({
    "a": np.arange(6, dtype=np.float32).reshape(2, 3),
    "b": np.arange(-3, 3, dtype=np.int64),
    "c": np.array([0.5, -2.0, 65504.0, 1e-7], dtype=np.float16),
    "d": np.arange(8, dtype=np.uint8).reshape(2, 2, 2),
    "e": np.array([True, False, True]),
    "s": np.array(3.25, dtype=np.float64),
    "z": np.zeros((0, 3), dtype=np.float32),
}, os.path.join(HERE, "official-mixed.safetensors"), metadata={"format": "np", "seed": "corpus"})
save_file({}, os.path.join(HERE, "official-empty.safetensors"))

# Valid files written by hand: the 8-bit floats and the 16-bit types, and an odd header
# length that leaves the data unaligned.
f8 = bytes(range(0, 256, 17))
raw("f8-bf16.safetensors", {
    "__metadata__": {"k": "v"},
    "e4m3": entry("F8_E4M3", [16], 0, 16),
    "e5m2": entry("F8_E5M2", [4, 4], 16, 32),
    "bf16": entry("BF16", [2, 2], 32, 40),
    "i16": entry("I16", [2], 40, 44),
    "u32": entry("U32", [1], 44, 48),
    "i8": entry("I8", [], 48, 49),
}, f8 + f8 + struct.pack("<4H", 0x3f80, 0xc000, 0x7f80, 0x7fc0) + struct.pack("<2h", -1, 7)
   + struct.pack("<I", 123) + b"\x80")
raw("unaligned-f16.safetensors", b'{"h":' + json.dumps(entry("F16", [3], 0, 6)).encode() + b"}",
    struct.pack("<3H", 0x3c00, 0xbc00, 0x7c00))

# The fuzz target also reads an input that starts with '{' as "header NUL data".
with open(os.path.join(HERE, "framed-f16.txt"), "wb") as f:
    f.write(json.dumps({"__metadata__": {"a": "b"}, "h": entry("F16", [2, 1], 0, 4),
                        "z": entry("I32", [0], 4, 4), "e": entry("F8_E5M2", [3], 4, 7)}).encode()
            + b"\0" + struct.pack("<2H", 0x3c00, 0xfbff) + b"\x7c\x7d\x01")
with open(os.path.join(HERE, "framed-bad.txt"), "wb") as f:
    f.write(json.dumps({"a": entry("U8", [4], 0, 4), "b": entry("BF16", [2], 2, 6)}).encode()
            + b"\0" + bytes(6))

# Malformed files, one fault each.
with open(os.path.join(HERE, "bad-short.safetensors"), "wb") as f:
    f.write(b"\x10\x00\x00")
raw("bad-huge-length.safetensors", {}, length=1 << 40)
raw("bad-length-past-end.safetensors", {"t": entry("U8", [2], 0, 2)}, b"\x01\x02", length=40)
raw("bad-json.safetensors", b'{"t": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]', b"\x00")
raw("bad-not-object.safetensors", b"[1, 2, 3]")
raw("bad-unknown-dtype.safetensors", {"t": entry("F12", [1], 0, 2)}, b"\x00\x00")
raw("bad-overlap.safetensors", {"a": entry("U8", [4], 0, 4), "b": entry("U8", [4], 2, 6)}, bytes(6))
raw("bad-byte-count.safetensors", {"t": entry("F32", [2], 0, 4)}, bytes(8))
raw("bad-past-end.safetensors", {"t": entry("F32", [2], 0, 8)}, bytes(4))
raw("bad-duplicate.safetensors",
    b'{"t": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}, '
    b'"t": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}}', b"\x01\x02")
raw("bad-negative-dim.safetensors", {"t": entry("U8", [-1, 2], 0, 0)})
raw("bad-overflow.safetensors", {"t": entry("F64", [1 << 40, 1 << 40], 0, 8)}, bytes(8))
raw("bad-metadata.safetensors", {"__metadata__": {"n": 3}})
raw("bad-nesting.safetensors", b'{"t": {"dtype": "U8", "shape": [[[1]]], "data_offsets": [0, 1]}}',
    b"\x00")
