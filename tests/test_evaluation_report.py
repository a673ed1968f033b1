"""The evaluation report (artsim.evaluation.report): JSON, Markdown tables and a bar chart."""

from __future__ import annotations

import json

from PIL import Image

from artsim.evaluation.report import markdown_tables, write_report
from artsim.evaluation.run import EvalRun

ROWS = [
    {"task": "instance", "aspect": "global", "variant": "plain", "queries": 6,
     "recall@1": 5 / 6, "recall@5": 1.0, "ap": 0.9},
    {"task": "instance", "aspect": "global", "variant": "whitening", "queries": 6,
     "recall@1": 1.0, "recall@5": 1.0, "ap": None},
    {"task": "sitter", "aspect": "fused", "variant": "plain", "queries": 2,
     "hit@1": 0.5, "hit@5": 1.0, "ap": 0.75},
]  # fmt: skip


def _run(**kw) -> EvalRun:
    base = dict(catalog="cat", model="efficientnet-lite2", rows=list(ROWS),
                missing={"instance": 1}, notes=["faces: 2 paintings not analysed"])  # fmt: skip
    return EvalRun(**{**base, **kw})


def test_markdown_tables_have_one_table_per_task_with_its_headline_metrics():
    md = markdown_tables(ROWS)
    assert "### Instance retrieval (same painting, another rendering)" in md
    assert "| aspect | variant | queries | recall@1 | recall@5 | ap |" in md
    assert "| global | plain | 6 | 0.833 | 1.000 | 0.900 |" in md
    assert "| global | whitening | 6 | 1.000 | 1.000 | nan |" in md  # a metric not computed
    assert "| fused | plain | 2 | 0.500 | 1.000 | 0.750 |" in md
    assert "Same artist" not in md  # tasks without rows get no table
    assert markdown_tables([]) == ""


def test_write_report_writes_json_markdown_and_chart(tmp_path):
    paths = write_report(_run(), tmp_path / "report")
    assert set(paths) == {"json", "markdown", "chart"}
    data = json.loads(paths["json"].read_text())
    assert data["missing"] == {"instance": 1} and data["results"] == ROWS
    md = paths["markdown"].read_text()
    assert md.startswith("# Evaluation of `cat`")
    assert "Missing ground-truth rows (files not in the catalog): instance 1." in md
    assert "![metrics](evaluation.png)" in md and "- faces: 2 paintings not analysed" in md
    with Image.open(paths["chart"]) as im:
        assert im.width > im.height > 100  # two panels side by side
    none = write_report(_run(missing={}, notes=[]), tmp_path / "again")
    assert "rows (files not in the catalog): none." in none["markdown"].read_text()
