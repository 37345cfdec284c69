"""The report stage in one call: result JSONs and training logs in, tables and figures out."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from clipflow.reporting.inputs import load_results, load_train_logs
from clipflow.reporting.plots import benchmarks_in, plot_benchmark, plot_loss_curves
from clipflow.reporting.tables import summary_table, write_tables


def build_report(
    results: Sequence[str | os.PathLike],
    train_logs: Sequence[str | os.PathLike],
    tables_dir: str | os.PathLike,
    plots_dir: str | os.PathLike,
) -> list[Path]:
    """Write the summary tables, ``loss_curves.png`` (when logs are given) and one
    ``<benchmark>.png`` per benchmark; return the paths written."""
    if not results:
        raise ValueError("no result files given")
    table = summary_table(load_results(results))
    written = write_tables(table, tables_dir)
    if train_logs:
        written.append(
            plot_loss_curves(load_train_logs(train_logs), Path(plots_dir, "loss_curves.png"))
        )
    for benchmark in benchmarks_in(table):
        written.append(plot_benchmark(table, benchmark, Path(plots_dir, f"{benchmark}.png")))
    return written
