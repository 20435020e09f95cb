"""Writes data/pretokenizer-splits.json: random texts split by each pre-tokenizer family's
regular expressions as Hugging Face tokenizers applies them (Oniguruma; a Sequence of Split
pre-tokenizers with the "isolated" behaviour, which keeps the text between matches as words).
pre-tokenizer-test.cpp checks edgeq's hand-written scanners against these word boundaries.

Run with an environment that has `tokenizers`: /tmp/venv-fx/bin/python make_pretokenizer_splits.py
"""
import json
import random
from pathlib import Path

from tokenizers import Regex, pre_tokenizers

GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN2 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN35 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
TEKKEN = r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
GPT4O = r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"

FAMILIES = {
    "gpt-2": [GPT2],
    "llama-bpe": [LLAMA3],
    "qwen2": [QWEN2],
    "qwen35": [QWEN35],
    "tekken": [TEKKEN],
    "gpt-4o": [GPT4O],
    "starcoder": [r"\p{N}", GPT2],
    "falcon": [r"[\p{P}\$\+<=>\^~\|`]+", GPT2, r"[0-9][0-9][0-9]"],
    "default": [r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", r"[0-9][0-9][0-9]"],
    "deepseek-coder": [r"[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", "[一-龥ࠀ-一가-퟿]+", r"\p{N}"],
    "bloom": [" ?[^(\\s|.,!?…。，、।۔،)]+"],
}

# Characters old enough to have the same category in every Unicode version in use.
ALPHABET = list("aZbYcXqQ  \t\n\r'sStTmMdDlLvVrReE0123456789.,!?;:-_()[]{}<>/\\|$+=^~`\"#%&*@") + list(
    "äÄéÉñßøÆœ中文字日本語한국어кириллицаΑλφαΣ…—“”‘’，。、！？ ١٢٣६७ⅣⅫ²³½😀✅ǅʰ"
) + ["\u0301", "\u0303", "\u00a0", "\u2009", "\u3000", "\u0085", "\u2028", "\u00ad", "\u0e31"]


def main():
    rng = random.Random(20240601)
    cases = []
    for name, regexes in FAMILIES.items():
        pre = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(r), behavior="isolated") for r in regexes])
        for _ in range(60):
            text = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 30)))
            words = [list(span) for _, span in pre.pre_tokenize_str(text)]
            cases.append({"pre": name, "text": text, "words": words})
    out = Path(__file__).parent / "data" / "pretokenizer-splits.json"
    out.write_text("[\n" + ",\n".join(json.dumps(c, ensure_ascii=False) for c in cases) + "\n]\n", encoding="utf-8")
    print(f"{out}: {len(cases)} cases")


if __name__ == "__main__":
    main()
