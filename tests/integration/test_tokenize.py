"""edgeq tokenize against llama.cpp's tokenizer test vectors (../shared/data/vocab).

Each ggml-vocab-NAME.gguf comes with NAME.gguf.inp (texts separated by the line
__ggml_vocab_test__) and NAME.gguf.out (the expected ids, one line per text), made without
special tokens and without parsing special-token text: `edgeq tokenize --ids-only --no-bos`.
Every vector of every vocabulary must match exactly.
"""
import random
from pathlib import Path

import pytest

SEPARATOR = "\n__ggml_vocab_test__\n"


def vocab_files(shared_data):
    return sorted((shared_data / "vocab").glob("ggml-vocab-*.gguf"))


def read_vectors(vocab: Path):
    raw = Path(str(vocab) + ".inp").read_bytes().decode("utf-8")
    texts = []
    pos = 0
    while pos < len(raw):
        nxt = raw.find(SEPARATOR, pos)
        if nxt < 0:
            texts.append(raw[pos:])
            break
        texts.append(raw[pos:nxt])
        pos = nxt + len(SEPARATOR)
    expected = [[int(t) for t in line.split()] for line in Path(str(vocab) + ".out").read_text().splitlines()]
    assert len(texts) == len(expected), f"{vocab.name}: {len(texts)} texts, {len(expected)} outputs"
    return list(zip(texts, expected))


def tokenize(edgeq, vocab, text, tmp_path, *flags):
    path = tmp_path / "input.txt"
    path.write_bytes(text.encode("utf-8"))
    out = edgeq.run("tokenize", vocab, "--file", path, "--ids-only", *flags).stdout
    lines = out.splitlines()
    assert len(lines) == 1, f"expected one line, got {out!r}"
    return [int(t) for t in lines[0].split()]


VOCABS = ["bert-bge", "deepseek-coder", "falcon", "gpt-2", "llama-spm", "phi-3", "starcoder"]


@pytest.mark.parametrize("name", VOCABS)
def test_vocab_vectors(edgeq, shared_data, tmp_path, name, capsys):
    vocab = shared_data / "vocab" / f"ggml-vocab-{name}.gguf"
    if not vocab.exists():
        pytest.skip(f"{vocab} not found")
    vectors = read_vectors(vocab)
    failures = []
    for text, expected in vectors:
        got = tokenize(edgeq, vocab, text, tmp_path, "--no-bos")
        if got != expected:
            failures.append(f"  {text!r}\n    expected {expected}\n    got      {got}")
    with capsys.disabled():
        print(f"\n{name}: {len(vectors) - len(failures)}/{len(vectors)} vectors pass")
    assert not failures, f"{name}: {len(failures)} of {len(vectors)} differ:\n" + "\n".join(failures)


def test_every_vocab_is_covered(shared_data):
    names = {p.name[len("ggml-vocab-"):-len(".gguf")] for p in vocab_files(shared_data)}
    assert names <= set(VOCABS), f"vocabularies without a test: {sorted(names - set(VOCABS))}"


def test_special_tokens_added(edgeq, shared_data, tmp_path):
    spm = shared_data / "vocab" / "ggml-vocab-llama-spm.gguf"
    bert = shared_data / "vocab" / "ggml-vocab-bert-bge.gguf"
    gpt2 = shared_data / "vocab" / "ggml-vocab-gpt-2.gguf"
    if not spm.exists():
        pytest.skip("vocabularies not found")
    plain = tokenize(edgeq, spm, "Hello world", tmp_path, "--no-bos")
    assert tokenize(edgeq, spm, "Hello world", tmp_path) == [1] + plain  # add_bos_token true
    plain = tokenize(edgeq, bert, "Hello world", tmp_path, "--no-bos")
    assert tokenize(edgeq, bert, "Hello world", tmp_path) == [101] + plain + [102]  # CLS ... SEP
    plain = tokenize(edgeq, gpt2, "Hello world", tmp_path, "--no-bos")
    assert tokenize(edgeq, gpt2, "Hello world", tmp_path) == plain  # gpt2: no BOS by default


def test_parse_special(edgeq, shared_data, tmp_path):
    spm = shared_data / "vocab" / "ggml-vocab-llama-spm.gguf"
    if not spm.exists():
        pytest.skip("vocabularies not found")
    as_text = tokenize(edgeq, spm, "a</s>b", tmp_path, "--no-bos")
    assert 2 not in as_text
    parsed = tokenize(edgeq, spm, "a</s>b", tmp_path, "--no-bos", "--parse-special")
    # SentencePiece: the text after a special token gets the space prefix again.
    a = tokenize(edgeq, spm, "a", tmp_path, "--no-bos")
    b = tokenize(edgeq, spm, "b", tmp_path, "--no-bos")
    assert parsed == a + [2] + b


def test_pieces_output(edgeq, shared_data):
    gpt2 = shared_data / "vocab" / "ggml-vocab-gpt-2.gguf"
    if not gpt2.exists():
        pytest.skip("vocabularies not found")
    out = edgeq.run("tokenize", gpt2, "--text", "Hello world\n", "--no-bos").stdout.splitlines()
    ids = [int(line.split("\t")[0]) for line in out]
    pieces = [line.split("\t", 1)[1] for line in out]
    assert ids == [int(t) for t in edgeq.run("tokenize", gpt2, "--text", "Hello world\n", "--no-bos",
                                             "--ids-only").stdout.split()]
    assert "".join(p[1:-1] for p in pieces) == "Hello world\\n"


def test_bad_input(edgeq, shared_data, tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + bytes(20))
    result = edgeq.run("tokenize", bad, "--text", "x", check=False)
    assert result.returncode != 0 and "error" in result.stderr
    result = edgeq.run("tokenize", tmp_path / "missing.gguf", "--text", "x", check=False)
    assert result.returncode != 0
    gpt2 = shared_data / "vocab" / "ggml-vocab-gpt-2.gguf"
    if gpt2.exists():
        result = edgeq.run("tokenize", gpt2, check=False)
        assert result.returncode != 0 and "--text" in result.stderr
