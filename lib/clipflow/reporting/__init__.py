"""Reporting: merge per-benchmark result JSONs and training logs into tables and figures.

Reads files only (never imports the training or evaluation code): result JSONs in
CLIP_benchmark's shape at ``<experiment>/eval/<run>/<checkpoint>/<benchmark>.json`` and
``<experiment>/runs/<run>/train_log.csv`` logs. :func:`build_report` writes
``summary.{csv,md,tex}`` (rows run x checkpoint plus ``final-init`` deltas, columns
``benchmark/metric`` headline numbers), ``loss_curves.png`` and ``<benchmark>.png`` bars.
"""

from clipflow.reporting.inputs import (
    ReportInputError,
    headline_metrics,
    load_results,
    load_train_logs,
)
from clipflow.reporting.plots import plot_benchmark, plot_loss_curves
from clipflow.reporting.report import build_report
from clipflow.reporting.tables import summary_table, write_tables

__all__ = [
    "ReportInputError",
    "build_report",
    "headline_metrics",
    "load_results",
    "load_train_logs",
    "plot_benchmark",
    "plot_loss_curves",
    "summary_table",
    "write_tables",
]
