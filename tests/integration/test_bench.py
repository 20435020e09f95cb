"""edgeq bench on two tiny models (the llama3-bpe fixture converted to F16 and Q8_0): the JSON
has every key with sane values, size and bits per weight equal what gguf-py computes from the
file, the statistics equal those of the per-repetition samples, the thread counts and ISA are
the ones asked for; --md and the plain table have a row per model and thread count; bad input
gives one clear error and a non-zero exit."""
import json
import math
import os
import statistics
import subprocess

import pytest

gguf = pytest.importorskip("gguf")

from conftest import ROOT, sanitizer_report  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "hf" / "llama3-bpe"
KEYS = {"model": str, "type": str, "isa": str, "threads": int, "n_prompt": int, "n_gen": int, "load_ms": float,
        "peak_rss_mb": float, "size_mb": float, "bpw": float, "pp_tps": float, "pp_tps_sd": float, "tg_tps": float,
        "tg_tps_sd": float}


@pytest.fixture(scope="module")
def models(edgeq, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    paths = []
    for type_name in ["f16", "q8_0"]:
        path = out / f"llama3-bpe-{type_name}.gguf"
        edgeq.run("convert", FIXTURE, "-o", path, "--type", type_name)
        paths.append(path)
    return paths


def gguf_facts(path):
    """(type name as llama.cpp prints it, bits per weight over every tensor) by gguf-py."""
    reader = gguf.GGUFReader(str(path))
    file_type = int(reader.fields["general.file_type"].parts[-1][0])
    name = gguf.LlamaFileType(file_type).name.removeprefix("MOSTLY_")
    n_bytes = sum(int(t.n_bytes) for t in reader.tensors)
    n_values = sum(int(t.n_elements) for t in reader.tensors)
    return name, 8.0 * n_bytes / n_values


def bench_json(edgeq, *args, env=None):
    cmd = [str(edgeq.binary), "bench", *map(str, args), "--json"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr
    assert not sanitizer_report(result.stderr), result.stderr
    return json.loads(result.stdout)


def test_json_two_models_two_thread_counts(edgeq, models):
    reps = 3
    rows = bench_json(edgeq, *models, "-p", 24, "-n", 7, "-t", "1,2", "-r", reps)
    assert [(r["model"], r["threads"]) for r in rows] == [(str(m), t) for m in models for t in (1, 2)]
    previous_rss = 0.0
    for row in rows:
        for key, kind in KEYS.items():
            assert key in row, key
            value = row[key]
            if kind is float:
                assert isinstance(value, (int, float)) and not isinstance(value, bool), (key, value)
                assert math.isfinite(value), (key, value)
            else:
                assert isinstance(value, kind), (key, value)
        assert row["n_prompt"] == 24 and row["n_gen"] == 7
        assert row["isa"] in ("scalar", "avx2", "avx512")
        assert row["pp_tps"] > 0 and row["tg_tps"] > 0
        assert row["pp_tps_sd"] >= 0 and row["tg_tps_sd"] >= 0
        assert row["load_ms"] > 0
        for test in ("pp", "tg"):
            samples = row[f"{test}_samples_tps"]
            assert len(samples) == reps and all(s > 0 for s in samples)
            assert row[f"{test}_tps"] == pytest.approx(statistics.mean(samples), rel=1e-9)
            assert row[f"{test}_tps_sd"] == pytest.approx(statistics.stdev(samples), rel=1e-9, abs=1e-9)
        size = os.path.getsize(row["model"])
        assert row["size_mb"] * 2**20 == pytest.approx(size, rel=1e-12)
        type_name, bpw = gguf_facts(row["model"])
        assert row["type"] == type_name
        assert row["bpw"] == pytest.approx(bpw, rel=1e-12)
        # The process's high-water mark: at least the model it mapped, never decreasing.
        assert row["peak_rss_mb"] >= previous_rss and row["peak_rss_mb"] > 1.0
        previous_rss = row["peak_rss_mb"]
    assert {r["type"] for r in rows} == {"F16", "Q8_0"}


def test_isa_is_the_one_that_ran(edgeq, models):
    env = dict(os.environ, EDGEQ_ISA="scalar")
    (row,) = bench_json(edgeq, models[1], "-p", 8, "-n", 2, "-t", 1, "-r", 1, env=env)
    assert row["isa"] == "scalar"


def test_zero_skips_a_test(edgeq, models):
    (no_prompt,) = bench_json(edgeq, models[0], "-p", 0, "-n", 3, "-t", 1, "-r", 2)
    assert no_prompt["n_prompt"] == 0 and no_prompt["pp_tps"] is None and no_prompt["pp_tps_sd"] is None
    assert no_prompt["pp_samples_tps"] == [] and no_prompt["tg_tps"] > 0
    (no_gen,) = bench_json(edgeq, models[0], "-p", 5, "-n", 0, "-t", 1, "-r", 1)
    assert no_gen["tg_tps"] is None and no_gen["tg_tps_sd"] is None and no_gen["pp_tps"] > 0
    assert no_gen["pp_tps_sd"] == 0  # one repetition


def test_markdown_and_plain_tables(edgeq, models):
    md = edgeq.run("bench", *models, "-p", 8, "-n", 2, "-t", 1, "-t", 2, "-r", 1, "--md").stdout.splitlines()
    assert md[0].startswith("| model |") and "pp8 t/s" in md[0] and "tg2 t/s" in md[0]
    assert set(md[1].replace("|", "").split()) <= {"---", "---:"}
    rows = md[2:]
    assert len(rows) == 4
    for row, (model, threads) in zip(rows, [(m, t) for m in models for t in (1, 2)]):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[0] == str(model) and cells[5] == str(threads)
        assert cells[1] in ("F16", "Q8_0")
    plain = edgeq.run("bench", models[1], "-p", 8, "-n", 2, "-t", 1, "-r", 1).stdout.splitlines()
    assert plain[0].split()[0] == "model" and len(plain) == 2 and plain[1].startswith(str(models[1]))


@pytest.mark.parametrize("args,message", [
    (["MISSING", "-t", "1"], "no such file"),
    (["MODEL", "-t", "1,x"], "'x'"),
    (["MODEL", "-t", "0"], "'0'"),
    (["MODEL", "-t", "2,"], "positive integer"),
    (["MODEL", "-t", "-3"], "positive integer"),
    (["MODEL", "-r", "0"], "repetitions"),
    (["MODEL", "-p", "-1"], "prompt"),
    (["MODEL", "-n", "-2"], "generation"),
    (["MODEL", "--json", "--md"], "--json and --md"),
    (["NOT_GGUF"], "NOT_GGUF"),
])
def test_bad_input(edgeq, models, tmp_path, args, message):
    not_gguf = tmp_path / "not.gguf"
    not_gguf.write_bytes(b"this is not a model file at all")
    names = {"MODEL": str(models[0]), "MISSING": str(tmp_path / "missing.gguf"), "NOT_GGUF": str(not_gguf)}
    args = [names.get(a, a) for a in args]
    message = names.get(message, message)
    result = edgeq.run("bench", *args, check=False)
    assert result.returncode != 0
    assert result.stderr.startswith("edgeq: error:"), result.stderr
    assert message in result.stderr, result.stderr
    assert result.stdout == ""
    assert not sanitizer_report(result.stderr)
