#!/usr/bin/env python3
"""Writes the seed corpus of sentencepiece-fuzz: SentencePiece ModelProto files, encoded by
hand (no protobuf or sentencepiece package needed). trained-unigram.model is a real model,
made once with sentencepiece 0.2.3 and kept as is:
  sentencepiece.SentencePieceTrainer.train(input="../shared/data/text/sotu.txt",
      model_prefix="trained-unigram", vocab_size=300, user_defined_symbols=["<|user|>"],
      control_symbols=["<ctrl>"], input_sentence_size=20000, normalization_rule_name="identity")"""
import struct
from pathlib import Path

HERE = Path(__file__).resolve().parent
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
UNIGRAM, BPE = 1, 2


def varint(n):
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number, wire, payload):
    return varint(number << 3 | wire) + payload


def string(number, data):
    data = data.encode("utf-8") if isinstance(data, str) else data
    return field(number, 2, varint(len(data)) + data)


def piece(text, score, type_=None):
    out = string(1, text) + field(2, 5, struct.pack("<f", score))
    return out if type_ is None else out + field(3, 0, varint(type_))


def model(pieces, model_type=UNIGRAM, byte_fallback=False, name="identity"):
    out = b"".join(string(1, piece(*p)) for p in pieces)
    trainer = field(3, 0, varint(model_type)) + field(4, 0, varint(len(pieces)))
    if byte_fallback:
        trainer += field(35, 0, varint(1))
    out += string(2, trainer)
    out += string(3, string(1, name) + field(3, 0, varint(1)))
    return out


BASE = [("<unk>", 0.0, UNKNOWN), ("<s>", 0.0, CONTROL), ("</s>", 0.0, CONTROL)]
WORDS = [("\u2581the", -1.0), ("\u2581a", -1.5, NORMAL), ("s", -2.0), ("\u2581to", -2.5), ("ing", -3.0)]

seeds = {
    "unigram.model": model(BASE + WORDS),
    "types.model": model(BASE + [("<|user|>", 0.0, USER_DEFINED), ("<reserved>", 0.0, UNUSED),
                                 ("\u2581neg", -0.0, NORMAL), ("\u2581big", 3.0e38, NORMAL)] + WORDS),
    "bpe-bytes.model": model(BASE + [(f"<0x{b:02X}>", 0.0, BYTE) for b in range(256)] + WORDS, BPE, True),
    "bad-duplicate.model": model(BASE + WORDS + [("s", -9.0)]),
    "bad-no-unk.model": model([("<s>", 0.0, CONTROL), ("a", -1.0)]),
    "bad-byte.model": model(BASE + [("<0x41>", 0.0, BYTE)], BPE, False),
    "bad-nan.model": model(BASE + [("a", float("nan"))]),
    "unknown-fields.model": model(BASE + WORDS) + string(4, b"\x0a\x02hi") + field(200, 0, varint(7)),
}
for name, data in seeds.items():
    (HERE / name).write_bytes(data)
print(f"wrote {len(seeds)} seeds to {HERE}")
