"""Published numbers beside this workflow's: the paper-table comparison (benchmarks.md).

``data/published.csv`` holds the reference rows (``model, benchmark, metric, value, source``;
values in percent as papers print them, metrics named as the summary's headline metrics, e.g.
``acc1``, ``IR@1``, ``macro_accuracy``). An enabled benchmark names the reference benchmark it
stands for (``benchmarks.enabled.<name>.published``, e.g. ``coco_5k``), and a run may name the
published model it reproduces (``runs.<run>.published_as``) to get a row of differences.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from clipflow.reporting.inputs import ReportInputError
from clipflow.reporting.tables import write_tables

PUBLISHED_CSV = Path(__file__).resolve().parent / "data" / "published.csv"
PUBLISHED_COLUMNS = ("model", "benchmark", "metric", "value", "source")
KEYS = ["kind", "name"]


def load_published(path: str | os.PathLike = PUBLISHED_CSV) -> pd.DataFrame:
    """The reference rows, values as fractions (like the results); one-line errors."""
    try:
        table = pd.read_csv(path)
    except FileNotFoundError:
        raise ReportInputError(path, "file", "not found") from None
    for column in PUBLISHED_COLUMNS:
        if column not in table.columns:
            raise ReportInputError(path, f"column {column!r}", "missing")
    values = pd.to_numeric(table["value"], errors="coerce")
    if values.isna().any():
        row = int(values.isna().idxmax()) + 2  # 1-based, after the header
        raise ReportInputError(
            path, f"line {row} value", f"not a number: {table['value'][row - 2]!r}"
        )
    return table.assign(value=values / 100)


def published_table(
    results: pd.DataFrame,
    published: pd.DataFrame,
    references: Mapping[str, str],
    published_as: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Measured (``final`` checkpoints) against published rows, on shared columns.

    ``results`` is :func:`~clipflow.reporting.inputs.load_results` output; ``references`` maps
    an evaluated benchmark's name to its reference benchmark in ``published``. Columns are
    ``<benchmark>/<metric>`` for each metric a published row reports; rows are ``measured`` per
    run, ``published`` per model and, for a run in ``published_as``, ``measured-published``.
    """
    published_as = published_as or {}
    measured = results[results["checkpoint"] == "final"]
    rows: dict[tuple[str, str], dict[str, float]] = {}
    columns: list[str] = []
    for benchmark, reference in references.items():
        reference_rows = published[published["benchmark"] == reference]
        for metric in dict.fromkeys(reference_rows["metric"]):
            column = f"{benchmark}/{metric}"
            columns.append(column)
            for row in reference_rows[reference_rows["metric"] == metric].itertuples():
                rows.setdefault(("published", row.model), {})[column] = row.value
            mine = measured[(measured["benchmark"] == benchmark) & (measured["metric"] == metric)]
            for row in mine.itertuples():
                rows.setdefault(("measured", row.run), {})[column] = row.value
    for run, model in published_as.items():
        if ("measured", run) in rows and ("published", model) in rows:
            ours, theirs = rows[("measured", run)], rows[("published", model)]
            rows[("measured-published", f"{run} - {model}")] = {
                c: ours[c] - theirs[c] for c in columns if c in ours and c in theirs
            }
    order = {"measured": 0, "published": 1, "measured-published": 2}
    index = sorted(rows, key=lambda key: (order[key[0]], key[1]))
    table = pd.DataFrame([rows[key] for key in index], columns=columns)
    return pd.concat([pd.DataFrame(index, columns=KEYS), table], axis=1)


def write_published_tables(
    table: pd.DataFrame, tables_dir: str | os.PathLike, published: pd.DataFrame
) -> list[Path]:
    """``published.{csv,md,tex}`` (percent in Markdown/LaTeX) with the sources listed."""
    models = set(table.loc[table["kind"] == "published", "name"])
    sources = published[published["model"].isin(models)].drop_duplicates("model")
    note = "published numbers from " + "; ".join(
        f"{row.model}: {row.source}" for row in sources.itertuples()
    )
    if table.empty:
        note = "no enabled benchmark names a published reference (benchmarks.enabled.*.published)."
    return write_tables(table, tables_dir, stem="published", keys=KEYS, note=note)
