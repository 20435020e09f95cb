#!/usr/bin/env python3
"""Writes the seed corpus of hf-tokenizer-json-fuzz. Each seed is one selector byte (bits 0-2:
the architecture, llama qwen2 qwen3 gemma3 phi3 gemma2, modulo 6; 0x08: no
tokenizer_config.json; 0x10: part 4 is chat_template.jinja; 0x20: part 4 is merges.txt; 0x40:
part 4 is added_tokens.json; 0x80: a small tokenizer.model is present), then tokenizer.json,
tokenizer_config.json, config.json (its vocab_size, modulo 5000, is the vocabulary size) and
part 4, separated by NUL bytes."""
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
LLAMA3_RE = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
             "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")
QWEN2_RE = LLAMA3_RE.replace("\\p{N}{1,3}", "\\p{N}")


def byte_level(use_regex):
    return {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": use_regex}


def added(i, content, special=True):
    return {"id": i, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": False, "special": special}


def tokenizer(pre, added_tokens, merges, normalizer=None, post=None, vocab=None):
    vocab = vocab or {t: i for i, t in enumerate(["a", "b", "c", "ab", "\u0120a", "\u0120", "abc", "1"])}
    return {"version": "1.0", "added_tokens": added_tokens, "normalizer": normalizer, "pre_tokenizer": pre,
            "post_processor": post or byte_level(True), "decoder": byte_level(True),
            "model": {"type": "BPE", "byte_fallback": False, "ignore_merges": False, "vocab": vocab,
                      "merges": merges}}


def split(regex):
    return {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False}, byte_level(False)]}


def template(bos, eos=None):
    single = [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}]
    if eos:
        single.append({"SpecialToken": {"id": eos, "type_id": 0}})
    pair = single + [{"SpecialToken": {"id": bos, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}]
    return {"type": "TemplateProcessing", "single": single, "pair": pair, "special_tokens": {}}


def seed(selector, *parts):
    text = b"\0".join(p if isinstance(p, bytes) else
                      (p if isinstance(p, str) else json.dumps(p, ensure_ascii=False)).encode("utf-8") for p in parts)
    return bytes([selector]) + text


llama3 = tokenizer(split(LLAMA3_RE), [added(8, "<|begin_of_text|>"), added(9, "<|eot_id|>")], ["a b", "ab c"],
                   post={"type": "Sequence", "processors": [byte_level(True), template("<|begin_of_text|>")]})
llama3_config = {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "chat_template": "{{ messages }}",
                 "added_tokens_decoder": {"8": {"content": "<|begin_of_text|>", "special": True}}}
qwen = tokenizer(split(QWEN2_RE), [added(8, "<|endoftext|>"), added(9, "<tool_call>", False),
                                   added(10, "<|fim_prefix|>", False)], [["a", "b"], ["ab", "c"]],
                 normalizer={"type": "NFC"})
qwen_config = {"eos_token": "<|endoftext|>", "bos_token": None, "pad_token": "<|new|>",
               "chat_template": [{"name": "default", "template": "D"}, {"name": "tool-use", "template": "T"}]}
smollm = tokenizer({"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True},
                                                          byte_level(True)]},
                   [added(0, "<|endoftext|>"), added(1, "<|im_start|>")], ["a b"],
                   vocab={"<|endoftext|>": 0, "<|im_start|>": 1, "<|im_end|>": 2, "a": 3, "b": 4, "ab": 5})
llama_hf = {"added_tokens": [added(0, "<unk>"), added(1, "<s>")], "post_processor": template("<s>", "</s>"),
            "decoder": {"type": "Sequence", "decoders": []},
            "model": {"type": "BPE", "byte_fallback": True, "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "<0x0A>": 3},
                      "merges": []}}
roberta = {"added_tokens": [added(0, "<s>"), added(2, "</s>")], "pre_tokenizer": split(LLAMA3_RE),
           "post_processor": {"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 0]},
           "normalizer": {"type": "BertNormalizer", "lowercase": True},
           "model": {"type": "BPE", "vocab": {"<s>": 0, "a": 1, "</s>": 2}, "merges": []}}
config = {"bos_token_id": 8, "eos_token_id": [9, 10], "text_config": {"pad_token_id": 1}, "vocab_size": 12}
sp_tokenizer = {"added_tokens": [added(1, "<s>"), added(2, "</s>"), added(7, "<|x|>")],
                "post_processor": {"type": "Sequence", "processors": [template("<s>", "<|x|>")]},
                "normalizer": {"type": "Sequence", "normalizers": [{"type": "Lowercase"}, {"type": "StripAccents"}]}}
sp_config = {"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": True,
             "added_tokens_decoder": {"4": {"content": "\u2581x\u2581y", "special": False},
                                      "5": {"content": "<unused0>", "special": False},
                                      "9": {"content": "<|end|>", "special": True}}}

seeds = {
    "llama3.bin": seed(0, llama3, llama3_config, config, ""),
    "llama3-jinja.bin": seed(0x10, llama3, {"bos_token": "<|begin_of_text|>"}, config, "{{ x }}\r\n"),
    "qwen.bin": seed(1, qwen, qwen_config, {"bos_token_id": 8}, ""),
    "qwen-merges-txt.bin": seed(0x22, tokenizer(split(QWEN2_RE), [], []), qwen_config, "", "#v\na b\nab c\n"),
    "smollm.bin": seed(0x80, smollm, {"add_prefix_space": False, "bos_token": "<|im_start|>"}, "", ""),
    "llama-hf.bin": seed(0x40, llama_hf, {"bos_token": "<s>", "additional_special_tokens": ["<x>"]}, "",
                         '{"<y>": 5}'),
    "roberta.bin": seed(0, roberta, {"cls_token": "<s>", "sep_token": "</s>"}, {"eos_token_id": 2}, ""),
    "spm-llama.bin": seed(0xc0, sp_tokenizer, sp_config, config, '{"<pad>": 10}'),
    "spm-gemma3.bin": seed(0x93, sp_tokenizer, sp_config, {"vocab_size": 10, "eos_token_id": 1}, "T\r\n"),
    "spm-phi3.bin": seed(0x84, sp_tokenizer, dict(sp_config, tokenizer_class="LlamaTokenizer"), config, ""),
    "phi4.bin": seed(4, qwen, {"tokenizer_class": "GPT2Tokenizer", "eos_token": "<|endoftext|>"}, "", ""),
    "bad.bin": seed(0, '{"model": {"type": "BPE", "vocab": {"a": -1}}}', "[]", "{", "\xff"),
}
for name, data in seeds.items():
    (HERE / name).write_bytes(data)
print(f"wrote {len(seeds)} seeds to {HERE}")
