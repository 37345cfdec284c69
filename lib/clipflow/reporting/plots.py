"""Figures: training-loss curves of all runs, and per-benchmark init-vs-final bars.

Figures are built on ``matplotlib.figure.Figure`` (Agg canvas) rather than pyplot, so no global
backend or figure state is touched and it runs headless.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from clipflow.io import write_with
from clipflow.reporting.inputs import loss_columns
from clipflow.reporting.tables import DELTA, KEYS, checkpoint_rank

PANEL_SIZE = (4.5, 3.2)


def _label(experiment: str, run: str, experiments: int) -> str:
    return run if experiments == 1 else f"{experiment}/{run}"


def _save(figure: Figure, path: str | os.PathLike) -> Path:
    figure.tight_layout()
    return write_with(path, lambda tmp: figure.savefig(tmp, dpi=120))


def plot_loss_curves(logs: pd.DataFrame, path: str | os.PathLike) -> Path:
    """One panel per logged loss term (total ``loss`` first, then ``lr``), a line per run."""
    panels = loss_columns(list(logs.columns))
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    figure = Figure(figsize=(PANEL_SIZE[0] * ncols, PANEL_SIZE[1] * nrows))
    axes = figure.subplots(nrows, ncols, squeeze=False).ravel()
    experiments = logs["experiment"].nunique()
    for axis, column in zip(axes, panels, strict=False):
        for (experiment, run), log in logs.groupby(["experiment", "run"], sort=True):
            points = log[["step", column]].dropna()
            axis.plot(points["step"], points[column], label=_label(experiment, run, experiments))
        axis.set_title(column)
        axis.set_xlabel("step")
        if column == "lr":
            axis.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    for axis in axes[len(panels) :]:
        axis.set_visible(False)
    axes[0].legend(fontsize="small")
    return _save(figure, path)


def plot_benchmark(table: pd.DataFrame, benchmark: str, path: str | os.PathLike) -> Path:
    """Grouped bars of ``benchmark``'s headline metric: one group per run, a bar per checkpoint."""
    column = next(c for c in table.columns if c.startswith(f"{benchmark}/"))
    rows = table[table["checkpoint"] != DELTA].dropna(subset=[column])
    runs = list(dict.fromkeys(zip(rows["experiment"], rows["run"], strict=True)))
    checkpoints = sorted(set(rows["checkpoint"]), key=lambda name: (checkpoint_rank(name), name))
    values = rows.set_index(KEYS)[column]
    width = 0.8 / len(checkpoints)
    experiments = rows["experiment"].nunique()

    figure = Figure(figsize=(max(PANEL_SIZE[0], 1.2 * len(runs) + 1.5), PANEL_SIZE[1] + 0.6))
    axis = figure.subplots()
    positions = np.arange(len(runs))
    for index, checkpoint in enumerate(checkpoints):
        heights = [100 * values.get((e, r, checkpoint), np.nan) for e, r in runs]
        axis.bar(
            positions + (index - (len(checkpoints) - 1) / 2) * width,
            heights,
            width,
            label=checkpoint,
        )
    axis.set_xticks(
        positions, [_label(e, r, experiments) for e, r in runs], rotation=20, ha="right"
    )
    axis.set_ylabel(f"{column.split('/', 1)[1]} (%)")
    axis.set_title(benchmark)
    axis.legend(fontsize="small")
    return _save(figure, path)


def benchmarks_in(table: pd.DataFrame) -> list[str]:
    """Benchmark names of the table's metric columns, in column order."""
    return list(dict.fromkeys(c.split("/", 1)[0] for c in table.columns if c not in KEYS))
