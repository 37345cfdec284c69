"""Figures: training-loss curves of all runs, and per-benchmark init-vs-final bars.

Figures are built on ``matplotlib.figure.Figure`` (Agg canvas) rather than pyplot, so no global
backend or figure state is touched and it runs headless.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure

from clipflow.io import write_with
from clipflow.reporting.inputs import loss_columns
from clipflow.reporting.tables import (
    DELTA,
    KEYS,
    benchmarks_in,
    checkpoint_rank,
    headline_column,
    run_label,
)

PANEL_SIZE = (4.5, 3.2)
LINE_STYLES = ("-", "--", ":", "-.")
# comparison heatmap cell, inches: wide enough for "100.0 ± 10.0 (+10.0)" at CELL_FONT points
CELL_SIZE = (1.45, 0.32)
CELL_FONT = 7.5
# rough width of one character of a FONT-point label, inches (to size figure margins)
CHARACTER_WIDTH = 0.5 / 72


def _save(figure: Figure, path: str | os.PathLike) -> Path:
    if not figure.get_layout_engine():
        figure.tight_layout()
    return write_with(path, lambda tmp: figure.savefig(tmp, dpi=120))


def line_styles(count: int) -> list[tuple[Any, str]]:
    """``count`` distinct (colour, line style) pairs: the ten tab10 colours solid, then dashed,
    dotted and dash-dotted; beyond forty, as many colours of a continuous colormap."""
    palette = list(colormaps["tab10"].colors)
    if count > len(palette) * len(LINE_STYLES):
        palette = list(colormaps["turbo"](np.linspace(0, 1, count)))
    return [
        (palette[index % len(palette)], LINE_STYLES[index // len(palette) % len(LINE_STYLES)])
        for index in range(count)
    ]


def plot_loss_curves(logs: pd.DataFrame, path: str | os.PathLike) -> Path:
    """One panel per logged loss term (total ``loss`` first, then ``lr``), a line per run, each
    run its own (colour, line style) pair; the legend sits below the panels."""
    panels = loss_columns(list(logs.columns))
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    runs = logs.groupby(["experiment", "run"], sort=True)
    legend_rows = math.ceil(runs.ngroups / (2 * ncols))
    figure = Figure(
        figsize=(PANEL_SIZE[0] * ncols, PANEL_SIZE[1] * nrows + 0.25 * legend_rows + 0.3),
        layout="constrained",
    )
    axes = figure.subplots(nrows, ncols, squeeze=False).ravel()
    experiments = logs["experiment"].nunique()
    styles = line_styles(runs.ngroups)
    for axis, column in zip(axes, panels, strict=False):
        for ((experiment, run), log), (colour, style) in zip(runs, styles, strict=True):
            points = log[["step", column]].dropna()
            axis.plot(
                points["step"],
                points[column],
                color=colour,
                linestyle=style,
                label=run_label(experiment, run, experiments),
            )
        axis.set_title(column)
        axis.set_xlabel("step")
        if column == "lr":
            axis.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    for axis in axes[len(panels) :]:
        axis.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=2 * ncols, fontsize="small")
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
        positions, [run_label(e, r, experiments) for e, r in runs], rotation=20, ha="right"
    )
    axis.set_ylabel(f"{column.split('/', 1)[1]} (%)")
    axis.set_title(benchmark)
    axis.legend(fontsize="small")
    return _save(figure, path)


def plot_comparison(
    table: pd.DataFrame, path: str | os.PathLike, errors: pd.DataFrame | None = None
) -> Path:
    """All runs against all benchmarks in one heatmap: each benchmark's headline metric of the
    ``final`` checkpoint (percent, ``± std`` with ``errors``), with the gain over ``init`` in
    brackets where known. Cells are a fixed size, so the figure grows with the runs and
    benchmarks and no number overlaps another."""
    benchmarks = benchmarks_in(table)
    columns = [headline_column(table, b) for b in benchmarks]

    def final_rows(of: pd.DataFrame, checkpoint: str = "final") -> pd.DataFrame:
        return of[of["checkpoint"] == checkpoint].set_index(["experiment", "run"])[columns]

    final = final_rows(table)
    delta = final_rows(table, DELTA).reindex(final.index)
    spread = (
        final_rows(errors).reindex(final.index)
        if errors is not None
        else pd.DataFrame(np.nan, index=final.index, columns=columns)
    )
    experiments = table["experiment"].nunique()
    labels = [run_label(e, r, experiments) for e, r in final.index]
    scores = 100 * final.to_numpy(dtype=float)

    label_width = CHARACTER_WIDTH * 8 * max(map(len, labels)) + 0.4
    figure = Figure(
        figsize=(
            max(4.0, label_width + CELL_SIZE[0] * len(columns) + 1.0),
            1.5 + CELL_SIZE[1] * len(labels),
        ),
        layout="constrained",
    )
    axis = figure.subplots()
    image = axis.imshow(scores, cmap="viridis", vmin=0, vmax=100, aspect="auto")
    for (i, j), score in np.ndenumerate(scores):
        gain, std = 100 * delta.iat[i, j], 100 * spread.iat[i, j]
        text = (
            f"{score:.1f}"
            + ("" if np.isnan(std) else f" ± {std:.1f}")
            + ("" if np.isnan(gain) else f" ({gain:+.1f})")
        )
        axis.text(
            j,
            i,
            text,
            ha="center",
            va="center",
            fontsize=CELL_FONT,
            color="white" if score < 60 else "black",
        )
    axis.set_xticks(range(len(columns)), [c.replace("/", "\n") for c in columns], fontsize=8)
    axis.set_yticks(range(len(labels)), labels, fontsize=8)
    axis.xaxis.tick_top()
    axis.set_title("final checkpoint, % (gain over init)", fontsize=9)
    figure.colorbar(image, ax=axis, fraction=0.3 / (label_width + CELL_SIZE[0] * len(columns)))
    return _save(figure, path)
