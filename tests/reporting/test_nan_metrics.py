"""A metric that is NaN in a result JSON (acc5 below five classes, as CLIP_benchmark writes it)
reaches the tables as a blank cell, never as "nan" or a number; counts are not metrics."""

from __future__ import annotations

import json
import math
from pathlib import Path

from clipflow.evaluation import Scores, result_record
from clipflow.io import write_json
from clipflow.reporting import load_results
from clipflow.reporting.tables import summary_table, write_tables


def test_nan_acc5_is_a_blank_cell(tmp_path: Path) -> None:
    paths = []
    for checkpoint, acc1 in (("init", 0.25), ("final", 0.5)):
        metrics = {"acc1": acc1, "acc5": math.nan, "mean_per_class_recall": acc1}
        record = result_record("imagefolder_zeroshot", metrics, "tiny", None, "shapes")
        path = tmp_path / "exp" / "eval" / "clip" / checkpoint / "shapes.json"
        paths.append(write_json(path, record))
    assert '"acc5": NaN' in paths[0].read_text()  # json's NaN, as CLIP_benchmark writes it
    table = summary_table(load_results(paths))
    markdown, csv = (tmp_path / "tables" / f"summary.{ext}" for ext in ("md", "csv"))
    write_tables(table, tmp_path / "tables")
    rows = [line for line in markdown.read_text().splitlines() if line.startswith("| exp ")]
    cells = [[cell.strip() for cell in row.split("|")[3:6]] for row in rows]
    assert cells == [
        ["init", "25.00", ""],
        ["final", "50.00", ""],
        ["final-init", "25.00", ""],
    ]
    assert "nan" not in markdown.read_text().lower()
    assert csv.read_text().splitlines()[1] == "exp,clip,init,0.25,"
    latex = (tmp_path / "tables" / "summary.tex").read_text()
    assert "nan" not in latex.lower() and "exp & clip & init & 25.00 &  \\\\" in latex


def test_counts_stay_out_of_the_metrics(tmp_path: Path) -> None:
    scores = Scores({"acc": 0.5}, parts=["Attribute/vg/color"], counts={"ties": 3})
    record = result_record("vl_checklist", scores, "tiny", None)
    path = write_json(tmp_path / "exp" / "eval" / "clip" / "final" / "vl_checklist.json", record)
    assert json.loads(path.read_text())["counts"] == {"ties": 3}
    assert set(load_results([path])["metric"]) == {"acc"}
