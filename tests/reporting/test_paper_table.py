"""A paper's table re-made from results: rows and columns as configured, measured beside published.

Every expected number below is worked by hand from RESULTS and PUBLISHED.
"""

from __future__ import annotations

import json
import math
import runpy
import sys
from pathlib import Path

import pandas as pd
import pytest

from clipflow.reporting import load_results
from clipflow.reporting.published import load_published, paper_table

SCRIPT = Path(__file__).parents[2] / "workflow_scripts" / "report.py"

RESULTS = {  # (run, checkpoint, benchmark) -> (task, metrics)
    ("clip", "init", "imagenet"): ("zeroshot_classification", {"acc1": 0.10, "acc5": 0.30}),
    ("clip", "init", "coco"): (
        "zeroshot_retrieval",
        {"image_retrieval_recall@1": 0.02, "text_retrieval_recall@1": 0.04},
    ),
    ("clip", "final", "imagenet"): ("zeroshot_classification", {"acc1": 0.25, "acc5": 0.55}),
    ("clip", "final", "coco"): (
        "zeroshot_retrieval",
        {"image_retrieval_recall@1": 0.10, "text_retrieval_recall@1": 0.20},
    ),
    ("helip", "final", "imagenet"): ("zeroshot_classification", {"acc1": 0.30, "acc5": 0.60}),
    ("helip", "final", "coco"): (
        "zeroshot_retrieval",
        {"image_retrieval_recall@1": 0.12, "text_retrieval_recall@1": 0.24},
    ),
}
PUBLISHED = """model,benchmark,metric,value,source
Paper CLIP,imagenet1k,acc1,20.0,"Paper A, Table 1"
Paper CLIP,coco_5k,IR@1,9.0,"Paper A, Table 2"
Paper HELIP,imagenet1k,acc1,23.5,"Paper A, Table 1"
Paper HELIP,imagenet1k,acc5,49.0,"Paper A, Table 9 (a metric not shown)"
Other,imagenet1k,acc1,50.0,"Paper B, Table 3"
Unused,imagenet1k,acc1,1.0,"not shown"
"""
SPEC = {
    "title": "Paper A, Tables 1 and 2",
    "rows": [
        # helip starts from clip's weights, so its init results are clip's
        {"label": "Zero-shot", "run": "helip", "checkpoint": "init", "published": "Paper CLIP"},
        {"label": "CLIP", "run": "clip"},
        {"label": "HELIP", "run": "helip", "published": "Paper HELIP"},
        {"label": "Reported only", "published": "Other"},
    ],
    "columns": [
        {"benchmark": "imagenet", "metric": "acc1", "label": "ImageNet"},
        {"benchmark": "coco", "metric": "IR@1", "label": "COCO_5k IR@1"},
    ],
}
REFERENCES = {"imagenet": "imagenet1k", "coco": "coco_5k"}
NAN = math.nan
EXPECTED = {  # row -> (ImageNet measured, published, COCO_5k IR@1 measured, published)
    "Zero-shot": (0.10, 0.20, 0.02, 0.09),
    "CLIP": (0.25, NAN, 0.10, NAN),
    "HELIP": (0.30, 0.235, 0.12, NAN),
    "Reported only": (NAN, 0.50, NAN, NAN),
}


def write_inputs(root: Path) -> tuple[list[Path], Path]:
    paths = []
    for (run, checkpoint, benchmark), (task, metrics) in RESULTS.items():
        path = root / "exp" / "eval" / run / checkpoint / f"{benchmark}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"dataset": benchmark, "task": task, "metrics": metrics}))
        paths.append(path)
    published = root / "published.csv"
    published.write_text(PUBLISHED)
    return paths, published


def test_rows_and_columns_hold_measured_and_published_numbers(tmp_path: Path) -> None:
    results, published = write_inputs(tmp_path)
    table = paper_table(
        load_results(results), load_published(published), SPEC, REFERENCES, {"helip": "clip"}
    )
    assert list(table.index) == list(EXPECTED)
    assert list(table.columns) == [
        ("ImageNet", "measured"),
        ("ImageNet", "published"),
        ("COCO_5k IR@1", "measured"),
        ("COCO_5k IR@1", "published"),
    ]
    for label, expected in EXPECTED.items():
        assert table.loc[label].to_numpy() == pytest.approx(expected, nan_ok=True)


def test_script_writes_the_paper_layout_in_three_formats(monkeypatch, tmp_path: Path) -> None:
    results, published = write_inputs(tmp_path)
    tables = tmp_path / "tables"
    arguments = ["--results", *map(str, results), "--tables-dir", str(tables)]
    arguments += ["--plots-dir", str(tmp_path / "plots"), "--published-csv", str(published)]
    arguments += ["--reference", "imagenet=imagenet1k", "coco=coco_5k"]
    arguments += ["--shared-init", "helip=clip", "--paper-table", json.dumps(SPEC)]
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), *arguments])
    runpy.run_path(str(SCRIPT), run_name="__main__")

    csv = pd.read_csv(tables / "paper.csv")
    assert list(csv.columns) == [
        "method",
        "ImageNet measured",
        "ImageNet published",
        "COCO_5k IR@1 measured",
        "COCO_5k IR@1 published",
    ]
    assert csv.set_index("method").loc["HELIP"].to_numpy() == pytest.approx(
        EXPECTED["HELIP"], nan_ok=True
    )
    markdown = (tables / "paper.md").read_text().splitlines()
    assert markdown[0] == "**Paper A, Tables 1 and 2**"
    # per model, the sources of the published numbers shown, each once, in the CSV's order
    assert markdown[2] == (
        "Metrics in percent; blank: not measured or not published. "
        "Paper CLIP: Paper A, Table 1; Paper A, Table 2. Paper HELIP: Paper A, Table 1. "
        "Other: Paper B, Table 3."
    )
    rows = {line.split("|")[1].strip(): line for line in markdown[4:]}
    cells = [cell.strip() for cell in rows["Zero-shot"].split("|")[2:-1]]
    assert cells == ["10.00", "20.00", "2.00", "9.00"]
    cells = [cell.strip() for cell in rows["Reported only"].split("|")[2:-1]]
    assert cells == ["", "50.00", "", ""]
    latex = (tables / "paper.tex").read_text()
    assert r"\multicolumn{2}{c}{ImageNet}" in latex
    assert r"\multicolumn{2}{c}{COCO\_5k IR@1}" in latex  # labels are LaTeX-escaped
    assert "30.00 & 23.50 & 12.00 &" in latex


def test_unknown_published_model_is_one_line(tmp_path: Path) -> None:
    results, published = write_inputs(tmp_path)
    spec = {**SPEC, "rows": [{"label": "X", "run": "clip", "published": "Nobody"}]}
    with pytest.raises(ValueError, match=r"^report.paper_table: .*\['Nobody'\]$"):
        paper_table(load_results(results), load_published(published), spec, REFERENCES)
