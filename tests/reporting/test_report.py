"""Reporting: tables hold the expected numbers, figures are written, bad inputs fail in one line."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pandas as pd
import pytest

from clipflow.reporting import (
    ReportInputError,
    build_report,
    headline_metrics,
    load_results,
    load_train_logs,
)

SCRIPT = Path(__file__).parents[2] / "workflow_scripts" / "report.py"

RESULTS = {  # (run, checkpoint, benchmark) -> (task, metrics)
    ("clip", "init", "imagenet"): ("zeroshot_classification", {"acc1": 0.10, "acc5": 0.30}),
    ("clip", "final", "imagenet"): ("zeroshot_classification", {"acc1": 0.25, "acc5": 0.55}),
    ("clip", "init", "coco"): (
        "zeroshot_retrieval",
        {"image_retrieval_recall@1": 0.02, "text_retrieval_recall@1": 0.04},
    ),
    ("clip", "final", "coco"): (
        "zeroshot_retrieval",
        {"image_retrieval_recall@1": 0.10, "text_retrieval_recall@1": 0.20},
    ),
    ("negclip", "final", "imagenet"): ("zeroshot_classification", {"acc1": 0.20, "acc5": 0.50}),
    ("negclip", "final", "sugarcrepe"): (
        "image_caption_selection",
        {"add_att": 0.6, "swap_obj": 0.8, "acc": 0.7},
    ),
}


def write_results(root: Path) -> list[Path]:
    paths = []
    for (run, checkpoint, benchmark), (task, metrics) in RESULTS.items():
        path = root / "exp1" / "eval" / run / checkpoint / f"{benchmark}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"dataset": benchmark, "model": "RN50", "pretrained": None, "task": task}
        path.write_text(json.dumps({**record, "metrics": metrics, "language": "en"}))
        paths.append(path)
    return paths


def write_logs(root: Path) -> list[Path]:
    paths = []
    for run, extra in (("clip", {}), ("negclip", {"hard_negative_loss": [0.5, 0.4, 0.3]})):
        path = root / "exp1" / "runs" / run / "train_log.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        log = {
            "epoch": [0, 0, 1],
            "step": [1, 2, 3],
            "loss": [4.0, 3.5, 3.0],
            "contrastive_loss": [4.0, 3.1, 2.7],
            "lr": [1e-4, 2e-4, 3e-4],
            **extra,
        }
        pd.DataFrame(log).to_csv(path, index=False)
        paths.append(path)
    return paths


def run_script(monkeypatch: pytest.MonkeyPatch, *args: str) -> None:
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), *args])
    runpy.run_path(str(SCRIPT), run_name="__main__")


def test_report_script_writes_tables_and_plots(monkeypatch, tmp_path: Path) -> None:
    results, logs = write_results(tmp_path / "results"), write_logs(tmp_path / "results")
    tables, plots = tmp_path / "tables", tmp_path / "plots"
    run_script(
        monkeypatch,
        *("--results", *map(str, results), "--train-logs", *map(str, logs)),
        *("--tables-dir", str(tables), "--plots-dir", str(plots)),
    )
    for name in ("loss_curves", "coco", "imagenet", "sugarcrepe", "comparison"):
        assert (plots / f"{name}.png").read_bytes()[:4] == b"\x89PNG"

    summary = pd.read_csv(tables / "summary.csv")
    assert list(summary.columns) == [
        *("experiment", "run", "checkpoint"),
        *("coco/mean_R@1", "coco/IR@1", "coco/TR@1", "imagenet/acc1", "imagenet/acc5"),
        *("sugarcrepe/acc", "sugarcrepe/add_att", "sugarcrepe/swap_obj"),
    ]
    rows = summary.set_index(["run", "checkpoint"])
    assert list(rows.index) == [
        ("clip", "init"),
        ("clip", "final"),
        ("clip", "final-init"),
        ("negclip", "final"),
    ]
    assert rows.loc[("clip", "init"), "coco/mean_R@1"] == pytest.approx(0.03)
    assert rows.loc[("clip", "final"), "coco/mean_R@1"] == pytest.approx(0.15)
    assert rows.loc[("clip", "final-init"), "coco/mean_R@1"] == pytest.approx(0.12)
    assert rows.loc[("clip", "final-init"), "imagenet/acc1"] == pytest.approx(0.15)
    assert rows.loc[("clip", "final-init"), "imagenet/acc5"] == pytest.approx(0.25)
    assert rows.loc[("negclip", "final"), "sugarcrepe/acc"] == pytest.approx(0.7)
    assert pd.isna(rows.loc[("clip", "final"), "sugarcrepe/acc"])

    markdown = (tables / "summary.md").read_text()
    assert "| exp1         | clip    | final-init   |           12.00 |" in markdown
    assert "70.00" in markdown and "Metrics in percent" in markdown
    latex = (tables / "summary.tex").read_text()
    assert "coco/mean\\_R@1" in latex and "final-init" in latex and "\\begin{tabular}" in latex
    assert "exp1 & clip & final-init & 12.00 & 8.00 & 16.00 & 15.00 & 25.00 &  &  &  \\\\" in latex


def test_loss_curves_are_optional(tmp_path: Path) -> None:
    written = build_report(write_results(tmp_path / "r"), [], tmp_path / "t", tmp_path / "p")
    assert not (tmp_path / "p" / "loss_curves.png").exists()
    assert {p.name for p in written} == {
        *("summary.csv", "summary.md", "summary.tex"),
        *("coco.png", "imagenet.png", "sugarcrepe.png", "comparison.png"),
        *("published.csv", "published.md", "published.tex"),
    }
    assert (
        "no enabled benchmark names a published reference"
        in (tmp_path / "t" / "published.md").read_text()
    )


def test_published_numbers_beside_measured_with_differences(monkeypatch, tmp_path: Path) -> None:
    results = write_results(tmp_path / "results")
    run_script(
        monkeypatch,
        *("--results", *map(str, results), "--tables-dir", str(tmp_path / "t")),
        *("--plots-dir", str(tmp_path / "p"), "--reference", "coco=coco_5k"),
        *("imagenet=imagenet1k", "--published-as", "clip=OpenAI CLIP ViT-B/32"),
    )
    table = pd.read_csv(tmp_path / "t" / "published.csv").set_index(["kind", "name"])
    assert list(table.columns) == [
        *("coco/IR@1", "coco/IR@5", "coco/IR@10", "coco/TR@1", "coco/TR@5", "coco/TR@10"),
        "imagenet/acc1",
    ]
    assert list(table.index) == [
        *(("measured", "clip"), ("measured", "negclip")),
        *(("published", "CLIP RN50 CC3M-100k"), ("published", "OpenAI CLIP ViT-B/32")),
        *(("published", "SogCLR RN50 CC3M-100k"), ("published", "iSogCLR RN50 CC3M-100k")),
        ("measured-published", "clip - OpenAI CLIP ViT-B/32"),
    ]
    assert table.loc[("measured", "clip"), "coco/IR@1"] == pytest.approx(0.10)
    assert table.loc[("published", "OpenAI CLIP ViT-B/32"), "coco/TR@1"] == pytest.approx(0.501)
    assert table.loc[("published", "CLIP RN50 CC3M-100k"), "imagenet/acc1"] == pytest.approx(0.2135)
    delta = table.loc[("measured-published", "clip - OpenAI CLIP ViT-B/32")]
    assert delta["coco/IR@1"] == pytest.approx(0.10 - 0.304)
    assert delta["coco/TR@1"] == pytest.approx(0.20 - 0.501)
    assert delta["imagenet/acc1"] == pytest.approx(0.25 - 0.633)
    assert pd.isna(delta["coco/IR@5"])  # the fixture's coco result has no R@5
    markdown = (tmp_path / "t" / "published.md").read_text()
    assert "Radford et al. 2021" in markdown and "-20.40" in markdown


def test_unknown_reference_and_bad_published_csv_are_one_line(tmp_path: Path) -> None:
    results = write_results(tmp_path / "results")
    with pytest.raises(ValueError, match=r"no published numbers for benchmark\(s\) \['coco_1k'\]"):
        build_report(results, [], tmp_path / "t", tmp_path / "p", references={"coco": "coco_1k"})
    bad = tmp_path / "published.csv"
    bad.write_text("model,benchmark,metric,value,source\nm,b,acc1,high,paper\n")
    with pytest.raises(
        ReportInputError, match=r"published.csv: line 2 value: not a number: 'high'"
    ):
        build_report(results, [], tmp_path / "t", tmp_path / "p", published_csv=bad)


def test_shared_init_gives_every_run_its_gain(monkeypatch, tmp_path: Path) -> None:
    """negclip starts from clip's weights: its gain is measured against clip's init results."""
    results = write_results(tmp_path / "results")
    run_script(
        monkeypatch,
        *("--results", *map(str, results), "--shared-init", "negclip=clip"),
        *("--tables-dir", str(tmp_path / "t"), "--plots-dir", str(tmp_path / "p")),
    )
    rows = pd.read_csv(tmp_path / "t" / "summary.csv").set_index(["run", "checkpoint"])
    assert list(rows.index) == [
        *(("clip", "init"), ("clip", "final"), ("clip", "final-init")),
        *(("negclip", "final"), ("negclip", "final-init")),
    ]
    gain = rows.loc[("negclip", "final-init")]
    assert gain["imagenet/acc1"] == pytest.approx(0.20 - 0.10)
    assert gain["imagenet/acc5"] == pytest.approx(0.50 - 0.30)
    assert pd.isna(gain["sugarcrepe/acc"]) and pd.isna(gain["coco/mean_R@1"])  # no clip init
    assert (tmp_path / "p" / "comparison.png").stat().st_size > 0


def test_shared_init_needs_pairs(monkeypatch, capsys, tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        run_script(
            monkeypatch,
            *("--results", *map(str, write_results(tmp_path / "r")), "--shared-init", "negclip"),
            *("--tables-dir", str(tmp_path / "t"), "--plots-dir", str(tmp_path / "p")),
        )
    assert "RUN=OTHER" in capsys.readouterr().err


def test_headline_metrics_per_task() -> None:
    retrieval = {
        f"{kind}_retrieval_recall@{k}": value
        for kind, base in (("image", 0.1), ("text", 0.3))
        for k, value in ((1, base), (5, base + 0.1), (10, base + 0.2))
    }
    assert headline_metrics("zeroshot_retrieval", retrieval) == pytest.approx(
        {
            "mean_R@1": 0.2,
            **{"IR@1": 0.1, "IR@5": 0.2, "IR@10": 0.3},
            **{"TR@1": 0.3, "TR@5": 0.4, "TR@10": 0.5},
        }
    )
    classification = {"acc1": 0.5, "acc5": 0.9, "mean_per_class_recall": 0.4}
    assert headline_metrics("zeroshot_classification", classification) == {"acc1": 0.5, "acc5": 0.9}
    selection = {"add_att": 0.5, "acc": 0.6}
    assert list(headline_metrics("image_caption_selection", selection)) == ["acc", "add_att"]
    assert headline_metrics("linear_probe", {"lp_acc1": 0.3}) == {"lp_acc1": 0.3}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"task": "zeroshot_retrieval"}', "metrics: missing, empty or not an object"),
        ('{"metrics": {"acc1": 0.1}}', "task: missing or not a string"),
        ('{"task": "x", "metrics": {"acc1": "high"}}', "metrics.acc1: not a number: 'high'"),
        ("{", "line 1: invalid JSON"),
    ],
)
def test_malformed_result_names_file_and_field(tmp_path: Path, content: str, message) -> None:
    path = tmp_path / "exp" / "eval" / "run" / "final" / "coco.json"
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with pytest.raises(ReportInputError) as error:
        load_results([path])
    assert str(error.value).startswith(f"{path}: {message}")


def test_misplaced_result_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ReportInputError, match="path: expected <experiment>/eval/"):
        load_results([tmp_path / "coco.json"])


def test_log_missing_column_is_one_line_from_the_script(monkeypatch, capsys, tmp_path) -> None:
    results = write_results(tmp_path)
    log = tmp_path / "exp1" / "runs" / "clip" / "train_log.csv"
    log.parent.mkdir(parents=True)
    log.write_text("epoch,step,contrastive_loss\n0,1,2.0\n")
    with pytest.raises(SystemExit) as exit_:
        run_script(
            monkeypatch,
            *("--results", str(results[0]), "--train-logs", str(log)),
            *("--tables-dir", str(tmp_path / "t"), "--plots-dir", str(tmp_path / "p")),
        )
    assert exit_.value.code == 1
    assert capsys.readouterr().err == f"report.py: error: {log}: column 'loss': missing\n"


def test_non_numeric_log_column(tmp_path: Path) -> None:
    log = tmp_path / "e" / "runs" / "r" / "train_log.csv"
    log.parent.mkdir(parents=True)
    log.write_text("epoch,step,loss\n0,1,nan?\n")
    with pytest.raises(ReportInputError, match="column 'loss': not numeric"):
        load_train_logs([log])
