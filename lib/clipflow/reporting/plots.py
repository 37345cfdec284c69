"""Figures: training-loss curves of all runs, and per-benchmark init-vs-final bars.

Figures are built on ``matplotlib.figure.Figure`` (Agg canvas) rather than pyplot, so no global
backend or figure state is touched and it runs headless.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
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


def plot_benchmark(
    table: pd.DataFrame,
    benchmark: str,
    path: str | os.PathLike,
    shared_init: Mapping[str, str] | None = None,
    errors: pd.DataFrame | None = None,
) -> Path:
    """Grouped bars of ``benchmark``'s headline metric: one group per run, a bar per checkpoint
    (a run's ``init`` bar is that of the run it shares its initial weights with, if any).
    ``errors`` (same keys and columns as ``table``, e.g. standard deviations over seeds) draws
    an error bar of that length each side of a bar."""
    shared_init = shared_init or {}
    column = headline_column(table, benchmark)
    rows = table[table["checkpoint"] != DELTA].dropna(subset=[column])
    runs = list(dict.fromkeys(zip(rows["experiment"], rows["run"], strict=True)))
    checkpoints = sorted(set(rows["checkpoint"]), key=lambda name: (checkpoint_rank(name), name))
    values = rows.set_index(KEYS)[column]
    spreads = errors.set_index(KEYS)[column] if errors is not None else pd.Series(dtype=float)

    def value(experiment: str, run: str, checkpoint: str, numbers: pd.Series = values) -> float:
        if checkpoint == "init":
            run = shared_init.get(run, run)
        return 100 * numbers.get((experiment, run, checkpoint), np.nan)

    width = 0.8 / len(checkpoints)
    experiments = rows["experiment"].nunique()

    figure = Figure(figsize=(max(PANEL_SIZE[0], 1.2 * len(runs) + 1.5), PANEL_SIZE[1] + 0.6))
    axis = figure.subplots()
    positions = np.arange(len(runs))
    for index, checkpoint in enumerate(checkpoints):
        heights = [value(e, r, checkpoint) for e, r in runs]
        axis.bar(
            positions + (index - (len(checkpoints) - 1) / 2) * width,
            heights,
            width,
            yerr=[value(e, r, checkpoint, spreads) for e, r in runs]
            if errors is not None
            else None,
            capsize=3,
            label=checkpoint,
        )
    axis.set_xticks(
        positions, [_label(e, r, experiments) for e, r in runs], rotation=20, ha="right"
    )
    axis.set_ylabel(f"{column.split('/', 1)[1]} (%)")
    axis.set_title(benchmark)
    axis.legend(fontsize="small")
    return _save(figure, path)


def plot_comparison(table: pd.DataFrame, path: str | os.PathLike) -> Path:
    """All runs against all benchmarks in one heatmap: each benchmark's headline metric of the
    ``final`` checkpoint (percent), with the gain over ``init`` in brackets where known."""
    benchmarks = benchmarks_in(table)
    columns = [headline_column(table, b) for b in benchmarks]
    final = table[table["checkpoint"] == "final"].set_index(["experiment", "run"])[columns]
    delta = table[table["checkpoint"] == DELTA].set_index(["experiment", "run"])[columns]
    delta = delta.reindex(final.index)
    experiments = table["experiment"].nunique()
    labels = [_label(e, r, experiments) for e, r in final.index]

    figure = Figure(figsize=(2.0 + 1.6 * len(columns), 1.2 + 0.42 * len(labels)))
    axis = figure.subplots()
    image = axis.imshow(100 * final.to_numpy(dtype=float), cmap="viridis", vmin=0, vmax=100)
    for (i, j), score in np.ndenumerate(100 * final.to_numpy(dtype=float)):
        gain = 100 * delta.iat[i, j]
        text = f"{score:.1f}" + ("" if np.isnan(gain) else f" ({gain:+.1f})")
        axis.text(
            j,
            i,
            text,
            ha="center",
            va="center",
            fontsize=8,
            color="white" if score < 60 else "black",
        )
    axis.set_xticks(range(len(columns)), [c.replace("/", "\n") for c in columns], fontsize=8)
    axis.set_yticks(range(len(labels)), labels, fontsize=8)
    axis.set_title("final checkpoint, % (gain over init)")
    figure.colorbar(image, ax=axis, fraction=0.04)
    return _save(figure, path)


def headline_column(table: pd.DataFrame, benchmark: str) -> str:
    """The first (headline) ``benchmark/metric`` column of ``benchmark``."""
    return next(c for c in table.columns if c.startswith(f"{benchmark}/"))


def benchmarks_in(table: pd.DataFrame) -> list[str]:
    """Benchmark names of the table's metric columns, in column order."""
    return list(dict.fromkeys(c.split("/", 1)[0] for c in table.columns if c not in KEYS))
