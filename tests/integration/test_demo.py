"""edgeq demo end to end on a small converted fixture (the real run, on Gemma 3 270M, is README's
first command): every variant quantized, measured and reported; the three report files
written and consistent with each other and with edgeq's own eval of the same files."""
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import ROOT

FIXTURE = ROOT / "tests" / "fixtures" / "hf" / "llama2-spm"
TYPES = ["F16", "Q8_0", "Q4_K_M", "Q4_0", "Q2_K"]


@pytest.fixture(scope="module")
def demo(edgeq, shared_data, tmp_path_factory):
    work = tmp_path_factory.mktemp("demo")
    model = work / "fixture-f32.gguf"
    edgeq.run("convert", FIXTURE, "-o", model, "--type", "f32")
    out = work / "out"
    result = edgeq.run("demo", "--model", model, "--out", out, "--text", shared_data / "text" / "sotu.txt",
                       "--types", *TYPES, "-c", "64", "--chunks", "3", "--imatrix-chunks", "2",
                       "-p", "16", "-n", "4", "-r", "1", "-t", "2")
    return model, out, result


def test_writes_three_consistent_reports(demo):
    model, out, result = demo
    report = json.loads((out / "report.json").read_text())
    rows = report["variants"]
    assert [r["variant"] for r in rows] == TYPES
    by = {r["variant"]: r for r in rows}
    assert by["F16"]["baseline"] and by["F16"]["kld_mean"] == 0 and by["F16"]["tg_speedup"] == pytest.approx(1)
    for r in rows:
        assert Path(r["file"]).is_file()
        assert r["size_mb"] > 0 and r["bpw"] > 0 and r["ppl"] > 1 and r["tg_tps"] > 0 and r["peak_rss_mb"] > 0
        assert 0 <= r["same_top"] <= 1
        assert r["imatrix"] == (r["variant"] in ("Q4_K_M", "Q2_K"))
    # Fewer bits, more divergence: the ordering any quantizer must show. (The fixture's rows of
    # 64 values are not whole 256-blocks, so its Q2_K falls back to the 32-value types.)
    assert 0 < by["Q8_0"]["kld_mean"] < by["Q4_K_M"]["kld_mean"] < by["Q4_0"]["kld_mean"]
    assert by["Q8_0"]["size_mb"] > by["Q4_K_M"]["size_mb"] > by["Q4_0"]["size_mb"] >= by["Q2_K"]["size_mb"]
    md = (out / "report.md").read_text()
    for t in TYPES:
        assert f"| {t} |" in md
        assert t in result.stdout  # the printed table
    svg = ET.parse(out / "tradeoff.svg").getroot()  # well-formed XML
    points = [e for e in svg.iter("{http://www.w3.org/2000/svg}circle") if e.get("class") == "point"]
    assert len(points) == len(TYPES)
    assert not list(out.glob("*.tmp-*")), "a temporary file was left behind"


def test_numbers_equal_edgeq_eval_of_the_same_files(edgeq, demo, shared_data, tmp_path):
    """The demo's quality columns are edgeq eval's, on the held-apart half of the text."""
    model, out, _ = demo
    rows = {r["variant"]: r for r in json.loads((out / "report.json").read_text())["variants"]}
    text = (shared_data / "text" / "sotu.txt").read_text()
    cut = text.find("\n", len(text.encode()) // 2) if text.isascii() else None
    if cut is None:
        pytest.skip("the check splits the text by bytes; sotu.txt is expected to be ASCII")
    held = tmp_path / "held.txt"
    held.write_text(text[cut:])
    base = tmp_path / "base.logits"
    b = json.loads(edgeq.run("eval", rows["F16"]["file"], "--text", held, "-c", "64", "--chunks", "3", "-t", "2",
                             "--save-logits", base, "--json").stdout)
    assert b["ppl"] == pytest.approx(rows["F16"]["ppl"], rel=1e-6)
    k = json.loads(edgeq.run("eval", rows["Q4_0"]["file"], "--text", held, "-c", "64", "--chunks", "3", "-t", "2",
                             "--kld-base", base, "--json").stdout)
    assert k["kld_mean"] == pytest.approx(rows["Q4_0"]["kld_mean"], rel=1e-6)
    assert k["same_top"] == pytest.approx(rows["Q4_0"]["same_top"], rel=1e-6)


def test_missing_model_is_a_clear_error(edgeq, tmp_path):
    r = edgeq.run("demo", "--model", tmp_path / "absent.gguf", "--out", tmp_path / "o", check=False)
    assert r.returncode == 1 and "no such model" in r.stderr
    r = edgeq.run("demo", "--model", tmp_path / "absent.gguf", "--types", "Q9_X", check=False)
    assert r.returncode == 1
