"""Results people can read: the headline table leads summary.md and equals the per-seed JSONs,
the comparison heatmap has no overlapping text at many runs and benchmarks, and every run of
the loss curves has its own (colour, line style)."""

from __future__ import annotations

import itertools
import json
import statistics
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from clipflow.reporting import build_report, plots
from clipflow.reporting.tables import summary_table

RUNS = [f"objective_with_a_long_name_{index}" for index in range(13)]
BENCHMARKS = [f"benchmark_{index}_of_eight" for index in range(8)]
SEEDS = [0, 1]


def acc1(run: int, benchmark: int, seed: int, checkpoint: str) -> float:
    """A distinct, reproducible accuracy per result (all in [0, 1])."""
    base = 0.05 + 0.06 * run + 0.01 * benchmark + 0.013 * seed
    return round(base + (0.1 if checkpoint == "final" else 0.0), 6)


def write_results(root: Path, runs: list[str], seeds: list[int]) -> list[Path]:
    paths = []
    for (r, run), (b, benchmark), seed, checkpoint in itertools.product(
        enumerate(runs), enumerate(BENCHMARKS), seeds, ("init", "final")
    ):
        path = root / "exp" / "eval" / run / f"seed{seed}" / checkpoint / f"{benchmark}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        metrics = {"acc1": acc1(r, b, seed, checkpoint), "acc5": 0.99}
        path.write_text(json.dumps({"task": "zeroshot_classification", "metrics": metrics}))
        paths.append(path)
    return paths


def markdown_rows(section: str) -> list[list[str]]:
    """The cells of the first Markdown table in ``section`` (header first, no rule line)."""
    lines = [line for line in section.splitlines() if line.startswith("|")]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    return [row for row in rows if not set("".join(row)) <= set("-:")]


def test_headline_table_leads_summary_and_equals_the_per_seed_jsons(tmp_path: Path) -> None:
    runs = RUNS[:4]
    build_report(write_results(tmp_path, runs, SEEDS), [], tmp_path / "t", tmp_path / "p")
    markdown = (tmp_path / "t" / "summary.md").read_text()
    headline, full = markdown.split("## All metrics")
    rows = markdown_rows(headline)
    assert rows[0] == ["run", "n", *(f"{b} (acc1)" for b in BENCHMARKS)]
    assert [row[0] for row in rows[1:]] == sorted(runs)
    for row in rows[1:]:
        r = runs.index(row[0])
        assert row[1] == str(len(SEEDS))
        for b, cell in enumerate(row[2:]):
            values = [acc1(r, b, seed, "final") for seed in SEEDS]
            mean, std = statistics.mean(values), statistics.stdev(values)
            assert cell == f"{100 * mean:.2f} ± {100 * std:.2f}"
    # the full table keeps every metric and checkpoint
    assert "acc5" in full and "final-init" in full and "acc5" not in headline


def test_headline_table_without_seeds_is_the_final_checkpoint(tmp_path: Path) -> None:
    paths = []
    for run, checkpoint, value in (("a", "init", 0.1), ("a", "final", 0.25), ("b", "final", 0.5)):
        path = tmp_path / "exp" / "eval" / run / checkpoint / "imagenet.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        metrics = {"acc1": value, "acc5": 0.9}
        path.write_text(json.dumps({"task": "zeroshot_classification", "metrics": metrics}))
        paths.append(path)
    build_report(paths, [], tmp_path / "t", tmp_path / "p")
    headline = (tmp_path / "t" / "summary.md").read_text().split("## All metrics")[0]
    assert markdown_rows(headline) == [["run", "imagenet (acc1)"], ["a", "25.00"], ["b", "50.00"]]


@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> dict[str, Figure]:
    """The figures the plotting functions save, by file name, drawn (so text has extents)."""
    saved: dict[str, Figure] = {}
    save = plots._save

    def keep(figure: Figure, path):
        written = save(figure, path)
        FigureCanvasAgg(figure).draw()
        saved[Path(path).name] = figure
        return written

    monkeypatch.setattr(plots, "_save", keep)
    return saved


@pytest.mark.parametrize(("runs", "benchmarks"), [(13, 8), (2, 1), (30, 3)])
def test_comparison_text_never_overlaps(tmp_path, figures, runs, benchmarks) -> None:
    names = [f"objective_with_a_long_name_{index}" for index in range(runs)]
    results = pd.DataFrame(
        [
            {
                "experiment": "exp",
                "run": run,
                "checkpoint": checkpoint,
                "benchmark": BENCHMARKS[b],
                "metric": "acc1",
                "value": min(1.0, acc1(r % 13, b, 0, checkpoint)),
            }
            for (r, run), b, checkpoint in itertools.product(
                enumerate(names), range(benchmarks), ("init", "final")
            )
        ]
    )
    table = summary_table(results)
    spreads = table.assign(**{c: 0.011 for c in table.columns if "/" in c})
    plots.plot_comparison(table, tmp_path / "comparison.png", spreads)
    figure = figures["comparison.png"]
    renderer = figure.canvas.get_renderer()
    (axis, colorbar) = figure.axes
    cells = axis.texts
    assert len(cells) == runs * benchmarks
    assert "±" in cells[0].get_text() and "(+10.0)" in cells[0].get_text()
    texts = [*cells, *axis.get_xticklabels(), *axis.get_yticklabels(), axis.title]
    boxes = [text.get_window_extent(renderer) for text in texts if text.get_text()]
    for first, second in itertools.combinations(boxes, 2):
        assert not first.overlaps(second), (first, second)
    # each number fits inside its cell, and the figure has no empty half
    cell_width = axis.get_window_extent(renderer).width / benchmarks
    assert max(box.width for box in boxes[: len(cells)]) < cell_width
    assert axis.get_window_extent(renderer).width > 0.4 * figure.bbox.width
    figure_box = figure.bbox
    assert all(
        figure_box.contains(box.x0, box.y0) and figure_box.contains(box.x1, box.y1) for box in boxes
    )


@pytest.mark.parametrize("runs", [3, 13, 45])
def test_every_loss_curve_has_its_own_colour_and_line_style(tmp_path, figures, runs) -> None:
    logs = pd.DataFrame(
        [
            {"experiment": "exp", "run": f"run{r:02d}", "epoch": 0, "step": step, "loss": 1 / step}
            for r in range(runs)
            for step in (1, 2)
        ]
    )
    plots.plot_loss_curves(logs, tmp_path / "loss_curves.png")
    lines = figures["loss_curves.png"].axes[0].get_lines()
    assert len(lines) == runs
    assert len({(to_hex(line.get_color()), line.get_linestyle()) for line in lines}) == runs
    legend = figures["loss_curves.png"].legends[0]
    assert [text.get_text() for text in legend.get_texts()] == [f"run{r:02d}" for r in range(runs)]
    assert np.isfinite(lines[0].get_ydata()).all()
