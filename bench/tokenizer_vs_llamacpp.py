#!/usr/bin/env python3
"""edgeq's Hugging Face tokenizer import against llama.cpp's convert_hf_to_gguf.py.

Builds synthetic checkpoint directories (tokenizer files and config.json, no weights) for
every supported family and for the variations the import has to get right, converts each
with llama.cpp's converter (--vocab-only) and with edgeq (tools/edgeq-tokenizer-meta), and
compares every tokenizer.* key: name, relative order, GGUF type and value (floats bit for
bit; tokenizer.chat_templates as a set, since gguf-py builds it from a Python set). A case
where the converter fails must fail in edgeq too.

  --sentencepiece  also trains SentencePiece models of every kind (unigram, BPE, char, word;
                   user-defined and control symbols; byte fallback), and checks that every
                   piece, score (bits) and type edgeq reads from tokenizer.model is what
                   SentencePiece's own Python API reports; and that models SentencePiece
                   refuses to load are refused by edgeq too.

Vocabularies come from llama.cpp's own test vocabularies (models/ggml-vocab-*.gguf: the Llama 2
SentencePiece, Llama 3, Qwen2, StarCoder and GPT-2 BPE vocabularies) and from SentencePiece
models trained on a text (default ../shared/data/text/sotu.txt).

Usage, with a Python that has transformers, sentencepiece, tokenizers, torch, numpy (the
converter's requirements):

  cmake -S . -B build-tok -G Ninja && cmake --build build-tok --target edgeq-tokenizer-meta
  python bench/tokenizer_vs_llamacpp.py --llama-src /path/to/llama.cpp --tool build-tok/edgeq-tokenizer-meta
  python bench/tokenizer_vs_llamacpp.py --only qwen --keep

Exit status: 0 every case matches, 1 a case differs, 2 setup error. Not run in CI.
"""

from __future__ import annotations

import argparse
import concurrent.futures as futures
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"

# ---------------------------------------------------------------------------------------------
# vocabularies


def read_gguf_vocab(llama_src: Path, name: str):
    from gguf import GGUFReader
    reader = GGUFReader(str(llama_src / "models" / f"ggml-vocab-{name}.gguf"))
    fields = reader.fields

    def strings(key):
        f = fields[key]
        return [bytes(f.parts[i]).decode("utf-8") for i in f.data]

    def numbers(key):
        f = fields[key]
        return [f.parts[i].tolist()[0] for i in f.data]

    tokens = strings("tokenizer.ggml.tokens")
    types = numbers("tokenizer.ggml.token_type")
    scores = numbers("tokenizer.ggml.scores") if "tokenizer.ggml.scores" in fields else None
    merges = strings("tokenizer.ggml.merges") if "tokenizer.ggml.merges" in fields else None
    return tokens, types, scores, merges


def sentencepiece_model_from_vocab(tokens, scores, types, path: Path, extra=()):
    """A tokenizer.model (BPE with byte fallback) holding a llama.cpp test vocabulary."""
    from sentencepiece import sentencepiece_model_pb2 as pb
    m = pb.ModelProto()
    m.trainer_spec.model_type = pb.TrainerSpec.BPE
    m.trainer_spec.vocab_size = len(tokens) + len(extra)
    m.trainer_spec.byte_fallback = True
    m.normalizer_spec.name = "identity"
    m.normalizer_spec.add_dummy_prefix = True
    m.normalizer_spec.remove_extra_whitespaces = False
    for text, score, t in list(zip(tokens, scores, types)) + list(extra):
        p = m.pieces.add()
        p.piece = text
        p.score = score
        p.type = t
    path.write_bytes(m.SerializeToString())


def train_sentencepiece(corpus: Path, prefix: Path, **options) -> Path:
    import sentencepiece as spm
    defaults = dict(input=str(corpus), model_prefix=str(prefix), vocab_size=400, model_type="unigram",
                    character_coverage=0.995, num_threads=2, input_sentence_size=20000,
                    shuffle_input_sentence=False, minloglevel=2)
    defaults.update(options)
    spm.SentencePieceTrainer.train(**defaults)
    return prefix.with_suffix(".model")


def added(i, content, special=True, normalized=False, **extra):
    d = {"id": i, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": normalized, "special": special}
    d.update(extra)
    return d


def decoder_entry(token):
    return {k: token[k] for k in ("content", "lstrip", "normalized", "rstrip", "single_word", "special")}


LLAMA3_RE = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
             "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")
QWEN2_RE = LLAMA3_RE.replace("\\p{N}{1,3}", "\\p{N}")


def byte_level(add_prefix_space=False, trim_offsets=True, use_regex=True):
    return {"type": "ByteLevel", "add_prefix_space": add_prefix_space, "trim_offsets": trim_offsets,
            "use_regex": use_regex}


def template(bos=None, eos=None, bos_ids=(), eos_ids=()):
    single, pair, specials = [], [], {}
    if bos:
        single.append({"SpecialToken": {"id": bos, "type_id": 0}})
        specials[bos] = {"id": bos, "ids": list(bos_ids), "tokens": [bos]}
    single.append({"Sequence": {"id": "A", "type_id": 0}})
    if eos:
        single.append({"SpecialToken": {"id": eos, "type_id": 0}})
        specials[eos] = {"id": eos, "ids": list(eos_ids), "tokens": [eos]}
    pair = list(single)
    if bos:
        pair.append({"SpecialToken": {"id": bos, "type_id": 1}})
    pair.append({"Sequence": {"id": "B", "type_id": 1}})
    if eos:
        pair.append({"SpecialToken": {"id": eos, "type_id": 1}})
    return {"type": "TemplateProcessing", "single": single, "pair": pair, "special_tokens": specials}


class Vocabs:
    """The vocabularies the cases are built from, loaded once."""

    def __init__(self, llama_src: Path, corpus: Path, work: Path):
        self.llama_src = llama_src
        self.spm = read_gguf_vocab(llama_src, "llama-spm")
        self.llama3 = read_gguf_vocab(llama_src, "llama-bpe")
        self.qwen2 = read_gguf_vocab(llama_src, "qwen2")
        self.starcoder = read_gguf_vocab(llama_src, "starcoder")
        self.gpt2 = read_gguf_vocab(llama_src, "gpt-2")
        self.phi3 = read_gguf_vocab(llama_src, "phi-3")
        models = work / "sp-models"
        models.mkdir(parents=True, exist_ok=True)
        self.llama2_model = models / "llama2.model"
        tokens, types, scores, _ = self.spm
        sentencepiece_model_from_vocab(tokens, scores, types, self.llama2_model)
        # CodeLlama: the Llama 2 pieces and 16 more (the infill tokens among them).
        self.codellama_model = models / "codellama.model"
        extra = [(f"\u2581<{n}>", 0.0, 1) for n in ("PRE", "MID", "SUF", "EOT")] + \
                [(f"\u2581<extra{i}>", -1e9, 1) for i in range(12)]
        sentencepiece_model_from_vocab(tokens, scores, types, self.codellama_model, extra)
        # Gemma-like: <pad> <eos> <bos> <unk> first, turn markers as user-defined pieces.
        self.gemma_model = train_sentencepiece(
            corpus, models / "gemma", vocab_size=420, model_type="bpe", pad_id=0, eos_id=1, bos_id=2,
            unk_id=3, pad_piece="<pad>", eos_piece="<eos>", bos_piece="<bos>", unk_piece="<unk>",
            user_defined_symbols=["<start_of_turn>", "<end_of_turn>", "<unused0>", "<unused1>",
                                  "<mask>", "[@BOS@]"],
            control_symbols=["<start_of_image>"], byte_fallback=True)

    def sp_pieces(self, model: Path):
        import sentencepiece as spm
        sp = spm.SentencePieceProcessor(model_file=str(model))
        return [sp.IdToPiece(i) for i in range(sp.vocab_size())]

    def llama3_json(self, merge_pairs=False, regex=LLAMA3_RE, post=None, extra_added=()):
        toks, types, _, merges = self.llama3
        vocab = {t: i for i, t in enumerate(toks) if i < 128000}
        addl = [added(i, toks[i]) for i in range(128000, 128256)] + list(extra_added)
        bos = "<|begin_of_text|>"
        if post is None:
            post = {"type": "Sequence", "processors": [
                byte_level(True, False, True), template(bos, None, [128000])]}
        return {
            "version": "1.0", "truncation": None, "padding": None, "added_tokens": addl,
            "normalizer": None,
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False},
                byte_level(False, True, False)]},
            "post_processor": post,
            "decoder": byte_level(True, True, True),
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                      "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": True,
                      "vocab": vocab, "merges": [m.split(" ") for m in merges] if merge_pairs else merges}}

    def qwen_json(self, extra=(), merge_pairs=True, post=None):
        toks, _, _, merges = self.qwen2
        vocab = {t: i for i, t in enumerate(toks) if i < 151643}
        names = [("<|endoftext|>", True), ("<|im_start|>", True), ("<|im_end|>", True),
                 ("<|object_ref_start|>", True), ("<|object_ref_end|>", True), ("<|box_start|>", True),
                 ("<|box_end|>", True), ("<|quad_start|>", True), ("<|quad_end|>", True),
                 ("<|vision_start|>", True), ("<|vision_end|>", True), ("<|vision_pad|>", True),
                 ("<|image_pad|>", True), ("<|video_pad|>", True), ("<tool_call>", False),
                 ("</tool_call>", False), ("<|fim_prefix|>", False), ("<|fim_middle|>", False),
                 ("<|fim_suffix|>", False), ("<|fim_pad|>", False), ("<|repo_name|>", False),
                 ("<|file_sep|>", False)] + list(extra)
        addl = [added(151643 + i, c, s) for i, (c, s) in enumerate(names)]
        return {
            "version": "1.0", "truncation": None, "padding": None, "added_tokens": addl,
            "normalizer": {"type": "NFC"},
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": QWEN2_RE}, "behavior": "Isolated", "invert": False},
                byte_level(False, False, False)]},
            "post_processor": post if post is not None else byte_level(False, False, False),
            "decoder": byte_level(False, False, False),
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                      "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                      "vocab": vocab, "merges": [m.split(" ") for m in merges] if merge_pairs else merges}}, addl

    def starcoder_json(self):
        toks, types, _, merges = self.starcoder
        specials = [i for i, t in enumerate(types) if t == 3]
        return {
            "version": "1.0", "truncation": None, "padding": None,
            "added_tokens": [added(i, toks[i]) for i in specials], "normalizer": None,
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "Digits", "individual_digits": True}, byte_level(False, True, True)]},
            "post_processor": byte_level(True, False, True), "decoder": byte_level(True, True, True),
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                      "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                      "vocab": {t: i for i, t in enumerate(toks)}, "merges": merges}}, toks, specials

    def gpt2_json(self):
        toks, types, _, merges = self.gpt2
        return {
            "version": "1.0", "truncation": None, "padding": None,
            "added_tokens": [added(50256, "<|endoftext|>")], "normalizer": None,
            "pre_tokenizer": byte_level(False, True, True), "post_processor": byte_level(True, False, True),
            "decoder": byte_level(True, True, True),
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                      "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False,
                      "vocab": {t: i for i, t in enumerate(toks)}, "merges": merges}}

    def llama_hf_json(self, n=32000):
        """A Llama 2 vocabulary as a byte-fallback BPE tokenizer.json (no tokenizer.model)."""
        toks = self.spm[0][:n]
        return {
            "version": "1.0", "truncation": None, "padding": None,
            "added_tokens": [added(0, "<unk>"), added(1, "<s>"), added(2, "</s>")],
            "normalizer": {"type": "Sequence", "normalizers": [
                {"type": "Prepend", "prepend": "\u2581"},
                {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
            "pre_tokenizer": None, "post_processor": template("<s>", None, [1]),
            "decoder": {"type": "Sequence", "decoders": [
                {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
                {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
            "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                      "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                      "vocab": {t: i for i, t in enumerate(toks)}, "merges": []}}


# ---------------------------------------------------------------------------------------------
# the cases


def write_json(d: Path, name: str, obj):
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_text(json.dumps(obj, indent=2, ensure_ascii=False), encoding="utf-8")


LLAMA_CONFIG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64,
                "intermediate_size": 96, "num_attention_heads": 4, "num_hidden_layers": 2,
                "num_key_value_heads": 2, "rms_norm_eps": 1e-05, "max_position_embeddings": 2048}
SP_DECODER = {str(i): {"content": c, "lstrip": False, "normalized": False, "rstrip": False,
                       "single_word": False, "special": True} for i, c in enumerate(["<unk>", "<s>", "</s>"])}
CHAT = "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}"


def config(base, **changes):
    c = json.loads(json.dumps(base))
    c.update(changes)
    return c


def entry(content, special=True, **flags):
    e = {"content": content, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False,
         "special": special}
    e.update(flags)
    return e


@dataclass
class Case:
    name: str
    arch: str
    build: Callable[[Path, Vocabs], None]
    note: str = ""


def tinyllama(d: Path, v: Vocabs):
    shutil.copy(v.llama2_model, d / "tokenizer.model")
    write_json(d, "config.json", config(LLAMA_CONFIG, bos_token_id=1, eos_token_id=2, vocab_size=32000))
    decoder = dict(SP_DECODER)
    decoder.update({"32000": entry("<|im_start|>"), "31999": entry("\u2581hello\u2581world", False),
                    "31998": entry("<|extra|>", False), "31997": entry("<unused0>", False),
                    "31996": entry("\n\n", False), "40000": entry("<beyond>")})
    write_json(d, "tokenizer_config.json", {
        "add_bos_token": True, "add_eos_token": False, "added_tokens_decoder": decoder, "bos_token": "<s>",
        "chat_template": CHAT, "clean_up_tokenization_spaces": False, "eos_token": "</s>", "legacy": False,
        "pad_token": "</s>", "padding_side": "right", "tokenizer_class": "LlamaTokenizer", "unk_token": "<unk>"})
    write_json(d, "tokenizer.json", {
        "version": "1.0", "added_tokens": [added(0, "<unk>"), added(1, "<s>"), added(2, "</s>")],
        "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"},
                                                          {"type": "Replace", "pattern": {"String": " "},
                                                           "content": "\u2581"}]},
        "pre_tokenizer": None, "post_processor": template("<s>", None, [1]), "decoder": None,
        "model": {"type": "BPE", "byte_fallback": True, "vocab": {}, "merges": []}})
    write_json(d, "generation_config.json", {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0})


def llama2_plain(d: Path, v: Vocabs):
    """Only tokenizer.model, tokenizer_config.json (add_prefix_space, dict tokens) and the
    template in chat_template.jinja; added_tokens.json; a config vocab_size above the model's."""
    shutil.copy(v.llama2_model, d / "tokenizer.model")
    write_json(d, "config.json", config(LLAMA_CONFIG, bos_token_id=1, eos_token_id=2, pad_token_id=32001,
                                        vocab_size=32005))
    write_json(d, "tokenizer_config.json", {
        "add_prefix_space": True, "add_bos_token": True, "add_eos_token": True,
        "bos_token": {"__type": "AddedToken", "content": "<s>", "lstrip": False, "normalized": True,
                      "rstrip": False, "single_word": False},
        "eos_token": "</s>", "unk_token": "<unk>", "tokenizer_class": "LlamaTokenizer"})
    write_json(d, "added_tokens.json", {"<pad>": 32001, "<sep>": 32002, "<far>": 40000})
    (d / "chat_template.jinja").write_bytes(b"{{ bos_token }}{% for m in messages %}{{ m['content'] }}\r\n"
                                            b"{% endfor %}\n")


def llama2_truncated(d: Path, v: Vocabs):
    """config vocab_size below the model's: pieces past it are dropped."""
    shutil.copy(v.llama2_model, d / "tokenizer.model")
    write_json(d, "config.json", config(LLAMA_CONFIG, bos_token_id=1, eos_token_id=31000, vocab_size=31990))
    write_json(d, "tokenizer_config.json", {"add_bos_token": False, "chat_template": "",
                                            "added_tokens_decoder": {"31995": entry("<x>")}})
    (d / "chat_template.json").write_text(json.dumps({"chat_template": "unused: tokenizer_config has one"}))


def llama2_roberta(d: Path, v: Vocabs):
    """tokenizer.json with a RobertaProcessing post-processor; bos from cls, eos from sep."""
    shutil.copy(v.llama2_model, d / "tokenizer.model")
    write_json(d, "config.json", config(LLAMA_CONFIG, vocab_size=32000))
    write_json(d, "tokenizer_config.json", {"cls_token": "<s>", "sep_token": "</s>", "mask_token": "<unk>",
                                            "add_bos_token": False, "add_sep_token": False})
    write_json(d, "tokenizer.json", {
        "version": "1.0", "added_tokens": [added(0, "<unk>"), added(1, "<s>"), added(2, "</s>")],
        "normalizer": {"type": "BertNormalizer", "lowercase": True, "strip_accents": None},
        "pre_tokenizer": None,
        "post_processor": {"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 1],
                           "trim_offsets": True, "add_prefix_space": True},
        "decoder": None, "model": {"type": "BPE", "byte_fallback": True, "vocab": {}, "merges": []}})


def llama2_eos_template(d: Path, v: Vocabs):
    """A template that appends a token other than tokenizer_config's eos: eot takes the old eos."""
    shutil.copy(v.llama2_model, d / "tokenizer.model")
    write_json(d, "config.json", config(LLAMA_CONFIG, vocab_size=32000, eot_token_id=5))
    write_json(d, "tokenizer_config.json", {"bos_token": "<s>", "eos_token": "<0x0A>", "add_eos_token": False,
                                            "chat_template": [{"name": "default", "template": CHAT},
                                                              {"name": "tool use", "template": "T{{ x }}"},
                                                              {"name": "rag-v2", "template": "R"},
                                                              {"name": "empty", "template": ""}]})
    write_json(d, "tokenizer.json", {
        "version": "1.0",
        "added_tokens": [added(1, "<s>"), added(2, "</s>"), added(13, "<0x0A>"), added(1, "<s>")],
        "normalizer": {"type": "Sequence", "normalizers": [{"type": "Lowercase"}, {"type": "StripAccents"}]},
        "pre_tokenizer": None,
        "post_processor": {"type": "Sequence", "processors": [template("<s>", "</s>", [1], [2])]},
        "decoder": None, "model": {"type": "BPE", "byte_fallback": True, "vocab": {}, "merges": []}})


def llama2_pair_sep(d: Path, v: Vocabs):
    """A pair template A </s> </s> B: add_sep from the middle tokens."""
    shutil.copy(v.llama2_model, d / "tokenizer.model")
    write_json(d, "config.json", config(LLAMA_CONFIG, vocab_size=32000, bos_token_id=True))
    post = {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "</s>", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {}}
    write_json(d, "tokenizer_config.json", {"bos_token": "", "eos_token": "</s>", "sep_token": None})
    write_json(d, "tokenizer.json", {
        "version": "1.0", "added_tokens": [added(1, "<s>"), added(2, "</s>")], "normalizer": None,
        "pre_tokenizer": None, "post_processor": post, "decoder": None,
        "model": {"type": "BPE", "byte_fallback": True, "vocab": {}, "merges": []}})


def codellama(d: Path, v: Vocabs):
    shutil.copy(v.codellama_model, d / "tokenizer.model")
    write_json(d, "config.json", config(LLAMA_CONFIG, bos_token_id=1, eos_token_id=2, vocab_size=32016))
    write_json(d, "tokenizer_config.json", {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
                                            "add_bos_token": True, "eot_token": "\u2581<EOT>",
                                            "chat_template": CHAT})
    write_json(d, "tokenizer.json", {
        "version": "1.0", "added_tokens": [added(0, "<unk>"), added(1, "<s>"), added(2, "</s>")],
        "normalizer": None, "pre_tokenizer": None, "post_processor": template("<s>", None, [1]),
        "decoder": None, "model": {"type": "BPE", "byte_fallback": True, "vocab": {}, "merges": []}})


def mistral(d: Path, v: Vocabs):
    shutil.copy(v.llama2_model, d / "tokenizer.model")
    write_json(d, "config.json", {"architectures": ["MistralForCausalLM"], "model_type": "mistral",
                                  "hidden_size": 64, "intermediate_size": 96, "num_attention_heads": 4,
                                  "num_hidden_layers": 2, "num_key_value_heads": 2, "bos_token_id": 1,
                                  "eos_token_id": [2, 3], "vocab_size": 32000})
    write_json(d, "tokenizer_config.json", {
        "add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
        "unk_token": "<unk>", "pad_token": None, "legacy": True, "tokenizer_class": "LlamaTokenizer",
        "chat_template": [{"name": "default", "template": "{{ bos_token }}[INST] {{ m }} [/INST]"},
                          {"name": "tool_use", "template": "{{ tools }}"}],
        "added_tokens_decoder": SP_DECODER})


def llama3(merge_pairs: bool, **kw):
    def build(d: Path, v: Vocabs):
        write_json(d, "tokenizer.json", v.llama3_json(merge_pairs, **kw))
        toks = v.llama3[0]
        write_json(d, "tokenizer_config.json", {
            "added_tokens_decoder": {str(i): entry(toks[i]) for i in range(128000, 128256)},
            "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "clean_up_tokenization_spaces": True,
            "chat_template": "{{- bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}",
            "model_max_length": 131072, "tokenizer_class": "PreTrainedTokenizerFast"})
        write_json(d, "config.json", config(LLAMA_CONFIG, bos_token_id=128000,
                                            eos_token_id=[128001, 128008, 128009], vocab_size=128256,
                                            head_dim=16))
        write_json(d, "generation_config.json", {"bos_token_id": 128000, "eos_token_id": [128001, 128009],
                                                 "temperature": 0.6, "top_p": 0.9})
    return build


def llama3_templates(d: Path, v: Vocabs):
    """chat_template.jinja with additional_chat_templates/, a tokenizer_config without one."""
    write_json(d, "tokenizer.json", v.llama3_json(True))
    write_json(d, "tokenizer_config.json", {"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>",
                                            "pad_token": "<|reserved_special_token_2|>",
                                            "tokenizer_class": "PreTrainedTokenizerFast"})
    write_json(d, "config.json", config(LLAMA_CONFIG, bos_token_id=128000, eos_token_id=128001,
                                        vocab_size=128256))
    (d / "chat_template.jinja").write_text("{{ bos_token }}{{ messages }}\n", encoding="utf-8")
    extra = d / "additional_chat_templates"
    extra.mkdir()
    (extra / "tool_use.jinja").write_text("TOOLS {{ tools }}", encoding="utf-8")
    (extra / "rag.v2.jinja").write_text("RAG", encoding="utf-8")
    (extra / "notes.txt").write_text("not a template", encoding="utf-8")


def llama3_no_config(d: Path, v: Vocabs):
    """tokenizer.json and config.json only: ids from config.json, flags from the post-processor."""
    write_json(d, "tokenizer.json", v.llama3_json(False))
    write_json(d, "config.json", config(LLAMA_CONFIG, bos_token_id=128000, eos_token_id=128009,
                                        vocab_size=128300))


def llama3_unknown_regex(d: Path, v: Vocabs):
    """A Split regex no one knows: the converter's hash is unknown, edgeq refuses it too."""
    write_json(d, "tokenizer.json", v.llama3_json(False, regex=LLAMA3_RE.replace("{1,3}", "{1,4}")))
    write_json(d, "tokenizer_config.json", {"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>"})
    write_json(d, "config.json", config(LLAMA_CONFIG, vocab_size=128256))


def smollm_like(d: Path, v: Vocabs):
    """SmolLM's structure (Digits + ByteLevel) with StarCoder's vocabulary: 'starcoder'; vocab
    size 49152 forces add_bos_token False; add_prefix_space False comes first."""
    tj, toks, specials = v.starcoder_json()
    write_json(d, "tokenizer.json", tj)
    write_json(d, "tokenizer_config.json", {
        "add_prefix_space": False, "added_tokens_decoder": {str(i): entry(toks[i]) for i in specials},
        "additional_special_tokens": ["<fim_prefix>"], "bos_token": "<fim_prefix>", "eos_token": "<fim_middle>",
        "pad_token": "<fim_middle>", "unk_token": "<|endoftext|>", "tokenizer_class": "GPT2Tokenizer",
        "add_bos_token": True, "chat_template": CHAT})
    write_json(d, "config.json", config(LLAMA_CONFIG, bos_token_id=1, eos_token_id=2, pad_token_id=2,
                                        vocab_size=49152))


def gpt2_vocab(d: Path, v: Vocabs):
    write_json(d, "tokenizer.json", v.gpt2_json())
    write_json(d, "tokenizer_config.json", {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
                                            "unk_token": "<|endoftext|>", "tokenizer_class": "GPT2Tokenizer"})
    write_json(d, "config.json", config(LLAMA_CONFIG, vocab_size=50257))


def qwen(qwen3: bool, merge_pairs=True, post=None, embedding=False):
    def build(d: Path, v: Vocabs):
        extra = [("<tool_response>", False), ("</tool_response>", False), ("<think>", False),
                 ("</think>", False)] if qwen3 else []
        if embedding:
            post_processor = template(None, "<|endoftext|>", (), [151643])
        else:
            post_processor = post
        tj, addl = v.qwen_json(extra, merge_pairs, post_processor)
        write_json(d, "tokenizer.json", tj)
        write_json(d, "tokenizer_config.json", {
            "add_bos_token": False, "add_prefix_space": False,
            "added_tokens_decoder": {str(a["id"]): decoder_entry(a) for a in addl},
            "additional_special_tokens": ["<|im_start|>", "<|im_end|>"], "bos_token": None,
            "chat_template": "{%- for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{%- endfor %}",
            "clean_up_tokenization_spaces": False, "eos_token": "<|im_end|>", "errors": "replace",
            "model_max_length": 131072, "pad_token": "<|endoftext|>", "split_special_tokens": False,
            "tokenizer_class": "Qwen2Tokenizer", "unk_token": None})
        arch = "Qwen3ForCausalLM" if qwen3 else "Qwen2ForCausalLM"
        write_json(d, "config.json", {"architectures": [arch], "model_type": "qwen3" if qwen3 else "qwen2",
                                      "bos_token_id": 151643, "eos_token_id": 151645, "hidden_size": 64,
                                      "intermediate_size": 96, "num_attention_heads": 4, "num_hidden_layers": 2,
                                      "num_key_value_heads": 2, "vocab_size": 151936})
    return build


def qwen3_overrides(d: Path, v: Vocabs):
    """tokenizer_config.json changes what AutoTokenizer holds: flags of added_tokens_decoder
    entries win over tokenizer.json's, named special tokens become special (and are added when
    missing, as are extra special tokens), as does any other "*_token" string."""
    qwen(True)(d, v)
    cfg = json.loads((d / "tokenizer_config.json").read_text())
    dec = cfg["added_tokens_decoder"]
    dec["151657"]["special"] = True             # <tool_call>
    dec["151659"]["special"] = False            # <|fim_prefix|>: still looks special
    dec["151660"]["normalized"] = True          # <|fim_middle|>
    cfg["pad_token"] = "<|newpad|>"
    cfg["additional_special_tokens"] = ["<|im_start|>", "<|extra_new|>"]
    cfg["think_token"] = "<think>"
    cfg["unk_token"] = {"__type": "AddedToken", "content": "</think>", "special": False}
    write_json(d, "tokenizer_config.json", cfg)


def qwen3_bad_named(d: Path, v: Vocabs):
    """A named token given as an object that is not an AddedToken: transformers refuses it."""
    qwen(True)(d, v)
    cfg = json.loads((d / "tokenizer_config.json").read_text())
    cfg["unk_token"] = {"content": "</think>"}
    write_json(d, "tokenizer_config.json", cfg)


def gemma(kind: str):
    def build(d: Path, v: Vocabs):
        shutil.copy(v.gemma_model, d / "tokenizer.model")
        pieces = v.sp_pieces(v.gemma_model)
        decoder = {str(i): entry(p) for i, p in enumerate(pieces[:4])}
        for i, p in enumerate(pieces):
            if p in ("<start_of_turn>", "<end_of_turn>"):
                decoder[str(i)] = entry(p)
            if p in ("<unused0>", "<mask>", "[@BOS@]"):
                decoder[str(i)] = entry(p, False)
        decoder[str(len(pieces))] = entry("<image_soft_token>")
        decoder["100000"] = entry("<far_away>")
        write_json(d, "tokenizer_config.json", {
            "add_bos_token": True, "add_eos_token": False, "added_tokens_decoder": decoder, "bos_token": "<bos>",
            "chat_template": "{{ bos_token }}{% for m in messages %}<start_of_turn>{{ m['role'] }}\n{{ m['content'] }}<end_of_turn>\n{% endfor %}",
            "eos_token": "<eos>", "pad_token": "<pad>", "unk_token": "<unk>", "tokenizer_class": "GemmaTokenizer",
            "boi_token": "<start_of_image>"})
        common = {"hidden_size": 64, "intermediate_size": 96, "num_attention_heads": 4, "num_hidden_layers": 2,
                  "num_key_value_heads": 2, "head_dim": 32}
        if kind == "gemma2":
            write_json(d, "config.json", dict(common, architectures=["Gemma2ForCausalLM"], model_type="gemma2",
                                              bos_token_id=2, eos_token_id=[1, 107], pad_token_id=0,
                                              vocab_size=len(pieces) + 8))
        elif kind == "gemma3":
            write_json(d, "config.json", dict(common, architectures=["Gemma3ForCausalLM"], model_type="gemma3_text",
                                              bos_token_id=2, eos_token_id=[1, 106], pad_token_id=0,
                                              vocab_size=len(pieces) + 8))
        else:  # Gemma3ForConditionalGeneration: ids only in text_config
            write_json(d, "config.json", {
                "architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3", "eos_token_id": [1, 106],
                "text_config": dict(common, model_type="gemma3_text", vocab_size=len(pieces) + 16,
                                    bos_token_id=2, pad_token_id=0, eos_token_id=1),
                "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 32, "intermediate_size": 64,
                                  "num_attention_heads": 2, "num_hidden_layers": 1}})
            (d / "chat_template.jinja").write_text("{{ bos_token }}jinja wins over nothing\n", encoding="utf-8")
    return build


def phi3(d: Path, v: Vocabs):
    shutil.copy(v.llama2_model, d / "tokenizer.model")
    toks, types, _, _ = v.phi3
    decoder = {"0": entry("<unk>"), "1": entry("<s>"), "2": entry("</s>", False)}
    added_list = [added(0, "<unk>"), added(1, "<s>"), added(2, "</s>", False)]
    for i in range(32000, 32011):
        decoder[str(i)] = entry(toks[i], types[i] == 3)
        added_list.append(added(i, toks[i], types[i] == 3, rstrip=True))
    decoder["32005"] = entry("\u2581placeholder\u2581five", False)
    write_json(d, "tokenizer_config.json", {
        "add_bos_token": False, "add_eos_token": False, "added_tokens_decoder": decoder, "bos_token": "<s>",
        "chat_template": "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n{% endfor %}",
        "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>", "unk_token": "<unk>",
        "tokenizer_class": "LlamaTokenizer"})
    write_json(d, "tokenizer.json", {
        "version": "1.0", "added_tokens": added_list, "normalizer": None, "pre_tokenizer": None,
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [], "special_tokens": {}},
        "decoder": None, "model": {"type": "BPE", "byte_fallback": True, "vocab": {}, "merges": []}})
    write_json(d, "added_tokens.json", {"<|extra_added|>": 32020})
    write_json(d, "config.json", {"architectures": ["Phi3ForCausalLM"], "model_type": "phi3", "hidden_size": 64,
                                  "intermediate_size": 96, "num_attention_heads": 4, "num_hidden_layers": 2,
                                  "num_key_value_heads": 4, "bos_token_id": 1, "eos_token_id": 32000,
                                  "pad_token_id": 32000, "vocab_size": 32064})


def llama_hf(d: Path, v: Vocabs):
    """No tokenizer.model; a byte-fallback BPE tokenizer.json with a Sequence decoder."""
    tj = v.llama_hf_json()
    tj["added_tokens"] += [added(32000, "<|im_start|>"), added(32001, "<|im_end|>", False)]
    write_json(d, "tokenizer.json", tj)
    write_json(d, "tokenizer_config.json", {
        "bos_token": "<s>", "eos_token": "<|im_end|>", "unk_token": "<unk>", "add_bos_token": True,
        "add_eos_token": False, "tokenizer_class": "LlamaTokenizer", "chat_template": CHAT,
        "additional_special_tokens": ["<|im_start|>"]})
    write_json(d, "config.json", config(LLAMA_CONFIG, vocab_size=32002))


def no_tokenizer(d: Path, v: Vocabs):
    write_json(d, "config.json", dict(LLAMA_CONFIG, vocab_size=32000))


def gemma2_no_model(d: Path, v: Vocabs):
    write_json(d, "tokenizer.json", v.llama3_json(False))
    write_json(d, "config.json", {"architectures": ["Gemma2ForCausalLM"], "model_type": "gemma2", "head_dim": 32,
                                  "hidden_size": 64, "intermediate_size": 96, "num_attention_heads": 4,
                                  "num_hidden_layers": 2, "num_key_value_heads": 2, "vocab_size": 128256})


def negative_id(d: Path, v: Vocabs):
    shutil.copy(v.llama2_model, d / "tokenizer.model")
    write_json(d, "config.json", config(LLAMA_CONFIG, vocab_size=32000, pad_token_id=-1))


CASES = [
    Case("tinyllama", "llama", tinyllama, "SPM; added_tokens_decoder (special, looks special, ▁, past vocab); template bos"),
    Case("llama2-plain", "llama", llama2_plain, "SPM, no tokenizer.json; added_tokens.json; chat_template.jinja (CRLF); padding"),
    Case("llama2-truncated", "llama", llama2_truncated, "SPM, vocab_size below the model's; empty chat template"),
    Case("llama2-roberta", "llama", llama2_roberta, "RobertaProcessing; cls/sep fallback; BertNormalizer"),
    Case("llama2-eos-template", "llama", llama2_eos_template, "template appends a token != eos (eot); named templates"),
    Case("llama2-pair-sep", "llama", llama2_pair_sep, "pair template A </s> </s> B; bool bos_token_id"),
    Case("codellama", "llama", codellama, "vocab 32016: CodeLlama's second special vocabulary (eot)"),
    Case("mistral", "llama", mistral, "MistralForCausalLM SPM; eos list in config; list of templates"),
    Case("llama3", "llama", llama3(False), "BPE llama-bpe, merges as strings"),
    Case("llama3-pairs", "llama", llama3(True), "BPE llama-bpe, merges as pairs"),
    Case("llama3-templates", "llama", llama3_templates, "chat_template.jinja + additional_chat_templates/"),
    Case("llama3-no-config", "llama", llama3_no_config, "no tokenizer_config.json; vocab_size past the tokens"),
    Case("llama3-unknown-regex", "llama", llama3_unknown_regex, "an unknown pre-tokenizer: both fail"),
    Case("llama-hf", "llama", llama_hf, "LlamaHfVocab: byte-fallback BPE tokenizer.json, no tokenizer.model"),
    Case("smollm-like", "llama", smollm_like, "Digits+ByteLevel (starcoder vocab); 49152 forces add_bos False"),
    Case("gpt2", "llama", gpt2_vocab, "ByteLevel alone, the GPT-2 vocabulary"),
    Case("qwen2.5", "qwen2", qwen(False, merge_pairs=False), "BPE qwen2, merges as strings"),
    Case("qwen3", "qwen3", qwen(True), "BPE qwen2, merges as pairs, non-special added tokens"),
    Case("qwen3-embedding", "qwen3", qwen(True, embedding=True), "template appending <|endoftext|>"),
    Case("qwen3-overrides", "qwen3", qwen3_overrides, "tokenizer_config flags win; named/extra tokens added"),
    Case("qwen3-bad-named", "qwen3", qwen3_bad_named, "unk_token an object without __type: both fail"),
    Case("gemma2", "gemma2", gemma("gemma2"), "trained SPM; eos list; add_space_prefix last"),
    Case("gemma3", "gemma3", gemma("gemma3"), "trained SPM"),
    Case("gemma3-mm", "gemma3", gemma("gemma3mm"), "Gemma3ForConditionalGeneration: ids in text_config; .jinja"),
    Case("phi3", "phi3", phi3, "Phi-3 variant: tokenizer.json added_tokens override; added_tokens.json"),
    Case("no-tokenizer", "llama", no_tokenizer, "no tokenizer files: both fail"),
    Case("gemma2-no-model", "gemma2", gemma2_no_model, "Gemma 2 without tokenizer.model: both fail"),
    Case("negative-id", "llama", negative_id, "a negative special id in config.json: both fail"),
]


# ---------------------------------------------------------------------------------------------
# running both sides


def gguf_tokenizer_keys(path: Path):
    import numpy as np
    from gguf import GGUFReader, GGUFValueType
    reader = GGUFReader(str(path))
    keys = []
    for name, f in reader.fields.items():
        if not name.startswith("tokenizer."):
            continue
        t = f.types
        if t[0] == GGUFValueType.ARRAY:
            et = t[-1]
            if et == GGUFValueType.STRING:
                value = [bytes(f.parts[i]).decode("utf-8") for i in f.data]
            elif et == GGUFValueType.FLOAT32:
                value = [int(f.parts[i].view(np.uint32)[0]) for i in f.data]
            else:
                value = [int(f.parts[i][0]) for i in f.data]
            keys.append((name, "ARRAY", et.name, value))
        elif t[0] == GGUFValueType.STRING:
            keys.append((name, "STRING", None, bytes(f.parts[-1]).decode("utf-8")))
        elif t[0] == GGUFValueType.FLOAT32:
            keys.append((name, "FLOAT32", None, int(f.parts[-1].view(np.uint32)[0])))
        elif t[0] == GGUFValueType.BOOL:
            keys.append((name, "BOOL", None, bool(f.parts[-1][0])))
        else:
            keys.append((name, t[0].name, None, int(f.parts[-1][0])))
    return keys


def hparams_vocab_size(d: Path):
    """vocab_size as the converter's hparams hold it (AutoConfig's defaults, text_config merged)."""
    try:
        from transformers import AutoConfig
        hparams = AutoConfig.from_pretrained(d, trust_remote_code=False).to_dict()
    except Exception:  # noqa: BLE001 - the converter falls back to the raw file too
        hparams = json.loads((d / "config.json").read_text())
    if "text_config" in hparams:
        hparams = {**hparams, **hparams["text_config"]}
    return hparams.get("vocab_size") or 0


def run_converter(args, case: Case, d: Path, out: Path):
    log = out.with_suffix(".log")
    cmd = [args.python, str(args.llama_src / "convert_hf_to_gguf.py"), str(d), "--vocab-only", "--outfile", str(out)]
    with open(log, "w") as f:
        rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] or [""]
        return None, tail[0]
    return gguf_tokenizer_keys(out), None


def run_edgeq(args, case: Case, d: Path, vocab_size: int):
    cmd = [str(args.tool), str(d), "--arch", case.arch, "--vocab-size", str(vocab_size), "--time"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        return None, p.stderr.strip(), None
    ms = None
    for line in p.stderr.splitlines():
        if line.startswith("time_ms"):
            ms = float(line.split()[1])
    keys = [(e["key"], e["type"], e.get("element_type"), e["value"]) for e in json.loads(p.stdout)["keys"]]
    return keys, None, ms


def compare(theirs, ours):
    diffs = []
    names_theirs = [k[0] for k in theirs]
    names_ours = [k[0] for k in ours]
    if names_theirs != names_ours:
        diffs.append(f"keys: converter {names_theirs}\n           edgeq     {names_ours}")
    ours_by_name = {k[0]: k for k in ours}
    for name, typ, element, value in theirs:
        if name not in ours_by_name:
            continue
        _, typ2, element2, value2 = ours_by_name[name]
        if (typ, element) != (typ2, element2):
            diffs.append(f"{name}: type {typ}/{element} vs {typ2}/{element2}")
            continue
        if name == "tokenizer.chat_templates":
            value, value2 = sorted(value), sorted(value2)
        if value != value2:
            if isinstance(value, list):
                n = min(len(value), len(value2))
                bad = [i for i in range(n) if value[i] != value2[i]]
                diffs.append(f"{name}: {len(value)} vs {len(value2)} items, {len(bad)} differ; first: "
                             + ", ".join(f"[{i}] {value[i]!r} vs {value2[i]!r}" for i in bad[:4]))
            else:
                diffs.append(f"{name}: {value!r} vs {value2!r}")
    return diffs


def run_case(args, vocabs: Vocabs, case: Case):
    d = args.work / "cases" / case.name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    case.build(d, vocabs)
    out = args.work / "out" / f"{case.name}.gguf"
    out.parent.mkdir(parents=True, exist_ok=True)
    vocab_size = hparams_vocab_size(d)
    t0 = time.time()
    theirs, their_error = run_converter(args, case, d, out)
    t_conv = time.time() - t0
    ours, our_error, ms = run_edgeq(args, case, d, vocab_size)
    if theirs is None and ours is None:
        return case, "both fail", [f"converter: {their_error}", f"edgeq: {our_error}"], ms, t_conv
    if theirs is None:
        return case, "DIFFER", [f"converter fails: {their_error}"], ms, t_conv
    if ours is None:
        return case, "DIFFER", [f"edgeq fails: {our_error}"], ms, t_conv
    diffs = compare(theirs, ours)
    n_keys = len(theirs)
    return case, "identical" if not diffs else "DIFFER", diffs or [f"{n_keys} keys"], ms, t_conv


# ---------------------------------------------------------------------------------------------
# SentencePiece: pieces, scores and types against SentencePiece's own reading


def sentencepiece_check(args, corpus: Path):
    import struct
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as pb
    work = args.work / "sp-check"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    trained = {
        "unigram": dict(model_type="unigram", vocab_size=500),
        "bpe": dict(model_type="bpe", vocab_size=500),
        "char": dict(model_type="char", vocab_size=120),
        "word": dict(model_type="word", vocab_size=300),
        "bpe-bytes": dict(model_type="bpe", vocab_size=600, byte_fallback=True),
        "unigram-symbols": dict(model_type="unigram", vocab_size=500, user_defined_symbols=["<|user|>", "▁x▁y"],
                                control_symbols=["<ctrl>", "<ctrl2>"], pad_id=3, unk_id=0, bos_id=1, eos_id=2),
        "gemma-order": dict(model_type="bpe", vocab_size=450, pad_id=0, eos_id=1, bos_id=2, unk_id=3,
                            byte_fallback=True, user_defined_symbols=["<start_of_turn>"]),
    }
    models = {name: train_sentencepiece(corpus, work / name, **opts) for name, opts in trained.items()}
    # Pieces the trainer never writes: UNUSED, a -0.0 score, a NaN score (BPE), USER_DEFINED.
    base = pb.ModelProto()
    base.ParseFromString(models["unigram"].read_bytes())
    odd = pb.ModelProto()
    odd.CopyFrom(base)
    odd.pieces[10].type = pb.ModelProto.SentencePiece.UNUSED
    odd.pieces[11].score = -0.0
    odd.pieces[13].type = pb.ModelProto.SentencePiece.USER_DEFINED
    (work / "odd.model").write_bytes(odd.SerializeToString())
    models["odd"] = work / "odd.model"
    odd_bpe = pb.ModelProto()
    odd_bpe.ParseFromString(models["bpe"].read_bytes())
    odd_bpe.pieces[12].score = float("nan")
    odd_bpe.pieces[13].score = float("inf")
    (work / "odd-bpe.model").write_bytes(odd_bpe.SerializeToString())
    models["odd-bpe"] = work / "odd-bpe.model"

    failures = 0
    for name, path in models.items():
        sp = spm.SentencePieceProcessor(model_file=str(path))
        proto = pb.ModelProto()
        proto.ParseFromString(path.read_bytes())
        expected = []
        for i in range(sp.vocab_size()):
            # SentencePiece's API has no IsUserDefined: the raw type comes from the proto, and
            # must agree with the API's predicates.
            raw = proto.pieces[i].type
            api = 2 if sp.IsUnknown(i) else 3 if sp.IsControl(i) else 5 if sp.IsUnused(i) else 6 if sp.IsByte(i) else None
            if api is not None and api != raw or api is None and raw not in (1, 4):
                print(f"  {name}: proto type {raw} disagrees with the API at {i}")
                failures += 1
            bits = struct.unpack("<I", struct.pack("<f", sp.GetScore(i)))[0]
            expected.append((sp.IdToPiece(i), bits, raw))
        p = subprocess.run([str(args.tool), "--sentencepiece", str(path)], capture_output=True, text=True)
        if p.returncode != 0:
            print(f"  {name}: edgeq fails: {p.stderr.strip()}")
            failures += 1
            continue
        ours = [(e["piece"], e["score"], e["type"]) for e in json.loads(p.stdout)["pieces"]]
        nan = lambda b: (b & 0x7f800000) == 0x7f800000 and (b & 0x7fffff) != 0  # noqa: E731
        bad = [i for i, (a, b) in enumerate(zip(expected, ours))
               if a[0] != b[0] or a[2] != b[2] or (a[1] != b[1] and not (nan(a[1]) and nan(b[1])))]
        status = "identical" if len(expected) == len(ours) and not bad else "DIFFER"
        failures += status != "identical"
        kinds = sorted({t for _, _, t in expected})
        print(f"  {name:16} {len(expected):4} pieces, types {kinds}: {status}"
              + (f" first {[(i, expected[i], ours[i]) for i in bad[:3]]}" if bad else ""))

    # Models SentencePiece refuses: edgeq must refuse them too.
    def mutated(change):
        m = pb.ModelProto()
        m.CopyFrom(base)
        change(m)
        return m.SerializeToString()

    def drop_unk(m):
        for p in m.pieces:
            if p.type == pb.ModelProto.SentencePiece.UNKNOWN:
                p.type = pb.ModelProto.SentencePiece.CONTROL
                p.piece = "<was-unk>"

    bad_models = {
        "duplicate-piece": mutated(lambda m: setattr(m.pieces[20], "piece", m.pieces[21].piece)),
        "empty-piece": mutated(lambda m: setattr(m.pieces[20], "piece", "")),
        "no-unknown": mutated(drop_unk),
        "two-unknowns": mutated(lambda m: setattr(m.pieces[20], "type", pb.ModelProto.SentencePiece.UNKNOWN)),
        "byte-without-fallback": mutated(lambda m: (setattr(m.pieces[20], "type", pb.ModelProto.SentencePiece.BYTE),
                                                    setattr(m.pieces[20], "piece", "<0x41>"))),
        "truncated": models["bpe"].read_bytes()[:-7],
        "not-protobuf": b"\xff\xff\xff\xff not a model",
        "unigram-nan-score": mutated(lambda m: setattr(m.pieces[12], "score", float("nan"))),
        "unigram-inf-score": mutated(lambda m: setattr(m.pieces[1], "score", float("-inf"))),
    }
    bad_bytes = pb.ModelProto()
    bad_bytes.ParseFromString(models["bpe-bytes"].read_bytes())
    for p in bad_bytes.pieces:
        if p.piece == "<0x41>":
            p.piece = "<0x4g>"
    bad_models["bad-byte-piece"] = bad_bytes.SerializeToString()
    for name, data in bad_models.items():
        path = work / f"bad-{name}.model"
        path.write_bytes(data)
        try:
            spm.SentencePieceProcessor(model_file=str(path))
            sp_ok = True
        except Exception:  # noqa: BLE001
            sp_ok = False
        p = subprocess.run([str(args.tool), "--sentencepiece", str(path)], capture_output=True, text=True)
        ours_ok = p.returncode == 0
        agree = sp_ok == ours_ok
        failures += not agree
        print(f"  bad {name:22} sentencepiece {'loads' if sp_ok else 'refuses'}, edgeq "
              f"{'loads' if ours_ok else 'refuses'}: {'agree' if agree else 'DIFFER'}"
              + ("" if ours_ok else f" ({p.stderr.strip()[:110]})"))
    return failures


# ---------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llama-src", type=Path, default=Path(os.environ.get("LLAMA_CPP_SRC", "/tmp/llama/src")),
                    help="llama.cpp source tree (convert_hf_to_gguf.py, gguf-py, models/)")
    ap.add_argument("--tool", type=Path, default=None, help="edgeq-tokenizer-meta (default: build-tok/, build/)")
    ap.add_argument("--python", default=sys.executable, help="Python that runs the converter")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "edgeq-tokenizer-bench")
    ap.add_argument("--corpus", type=Path, default=SHARED / "data" / "text" / "sotu.txt")
    ap.add_argument("--only", default="", help="run the cases whose name contains this")
    ap.add_argument("-j", "--jobs", type=int, default=min(8, os.cpu_count() or 1))
    ap.add_argument("--sentencepiece", action="store_true", help="also check the SentencePiece reader")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()

    sys.path.insert(0, str(args.llama_src / "gguf-py"))
    if args.tool is None:
        for candidate in (REPO / "build-tok" / "edgeq-tokenizer-meta", REPO / "build" / "edgeq-tokenizer-meta"):
            if candidate.exists():
                args.tool = candidate
                break
    if args.tool is None or not args.tool.exists():
        print("edgeq-tokenizer-meta not found; build it or pass --tool", file=sys.stderr)
        return 2
    if not (args.llama_src / "convert_hf_to_gguf.py").exists():
        print(f"{args.llama_src}: no convert_hf_to_gguf.py", file=sys.stderr)
        return 2
    corpus = args.corpus
    if not corpus.exists():
        corpus = args.work / "corpus.txt"
        args.work.mkdir(parents=True, exist_ok=True)
        corpus.write_text("\n".join(p.read_text(errors="replace")
                                    for p in sorted((args.llama_src / "models").glob("*.inp"))))

    args.work.mkdir(parents=True, exist_ok=True)
    vocabs = Vocabs(args.llama_src, corpus, args.work)
    failures = 0
    if args.sentencepiece:
        print("SentencePiece reader against sentencepiece", flush=True)
        failures += sentencepiece_check(args, corpus)

    cases = [c for c in CASES if args.only in c.name]
    print(f"\n{len(cases)} cases: llama.cpp's converter ({args.llama_src}) against {args.tool}", flush=True)
    with futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(lambda c: run_case(args, vocabs, c), cases))
    for case, status, details, ms, t_conv in results:
        timing = f"edgeq {ms:.0f} ms, converter {t_conv:.1f} s" if ms is not None else f"converter {t_conv:.1f} s"
        print(f"{case.name:22} {status:10} {timing:34} {case.note}")
        if status == "DIFFER" or args.only:
            for d in details:
                print(f"{'':25}{d}")
        failures += status == "DIFFER"
    print(f"\n{'all match' if failures == 0 else f'{failures} differ'}")
    if not args.keep:
        shutil.rmtree(args.work, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
