"""Published numbers beside this workflow's: the paper-table comparison (benchmarks.md).

``data/published.csv`` holds the reference rows (``model, benchmark, metric, value, source``;
values in percent as papers print them, metrics named as the summary's headline metrics, e.g.
``acc1``, ``IR@1``, ``macro_accuracy``). An enabled benchmark names the reference benchmark it
stands for (``benchmarks.enabled.<name>.published``, e.g. ``coco_5k``), and a run may name the
published model it reproduces (``runs.<run>.published_as``) to get a row of differences.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from clipflow.io import write_text
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


PAPER_KINDS = ("measured", "published")


def paper_table(
    results: pd.DataFrame,
    published: pd.DataFrame,
    spec: Mapping[str, Any],
    references: Mapping[str, str],
    shared_init: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """A paper's results table re-made from this experiment (``report.paper_table``).

    ``spec`` has ``rows`` (``label``, optional ``run``, ``checkpoint`` (default ``final``) and
    ``published`` model of ``published``) and ``columns`` (``benchmark``, ``metric``, ``label``).
    The frame is indexed by the rows' labels (``method``); its columns are ``(label, kind)`` for
    each column and kind in ``PAPER_KINDS``: the run's value of ``benchmark/metric`` at that
    checkpoint, and the published model's value of ``metric`` on the benchmark's reference
    (``references``). A missing number is NaN. ``shared_init`` maps a run to the run whose
    ``init`` results stand for its own, as in the summary.
    """
    shared_init = shared_init or {}
    unknown = sorted(
        {row["published"] for row in spec["rows"] if "published" in row} - set(published["model"])
    )
    if unknown:
        raise ValueError(f"report.paper_table: no published numbers for model(s) {unknown}")
    measured = results.set_index(["run", "checkpoint", "benchmark", "metric"])["value"]
    reference = published.set_index(["model", "benchmark", "metric"])["value"]
    records = []
    for row in spec["rows"]:
        checkpoint = row.get("checkpoint", "final")
        run = row.get("run")
        if run is not None and checkpoint == "init":
            run = shared_init.get(run, run)
        record = {}
        for column in spec["columns"]:
            mine = (run, checkpoint, column["benchmark"], column["metric"])
            theirs = (row.get("published"), references.get(column["benchmark"]), column["metric"])
            record[(column["label"], "measured")] = measured.get(mine, float("nan"))
            record[(column["label"], "published")] = reference.get(theirs, float("nan"))
        records.append(record)
    columns = pd.MultiIndex.from_product([[c["label"] for c in spec["columns"]], PAPER_KINDS])
    index = pd.Index([row["label"] for row in spec["rows"]], name="method")
    return pd.DataFrame.from_records(records, index=index, columns=columns)


def paper_sources(
    published: pd.DataFrame, spec: Mapping[str, Any], references: Mapping[str, str]
) -> list[str]:
    """``"<model>: <source>; <source>"`` for each model with a number in the
    :func:`paper_table` of ``spec``, naming the sources of the numbers shown, each once."""
    shown = {
        (row["published"], references.get(column["benchmark"]), column["metric"])
        for row in spec["rows"]
        if "published" in row
        for column in spec["columns"]
    }
    keys = zip(published["model"], published["benchmark"], published["metric"], strict=True)
    rows = published[[key in shown for key in keys]]
    sources: dict[str, dict[str, None]] = {}
    for row in rows.itertuples():
        sources.setdefault(row.model, {})[row.source] = None
    return [f"{model}: {'; '.join(named)}" for model, named in sources.items()]


def write_paper_tables(
    table: pd.DataFrame, tables_dir: str | os.PathLike, title: str, sources: Sequence[str]
) -> list[Path]:
    """``paper.csv`` (fractions; columns ``<label> measured`` and ``<label> published``),
    ``paper.md`` and ``paper.tex`` (percent; LaTeX with the paper's two-level header) of a
    :func:`paper_table`, under ``title`` and with the ``sources`` of its published numbers."""
    tables_dir = Path(tables_dir)
    note = "Metrics in percent; blank: not measured or not published."
    note += "".join(f" {source}." for source in sources)
    flat_columns = [f"{label} {kind}" for label, kind in table.columns]
    percent = table * 100
    flat = percent.set_axis(flat_columns, axis=1).reset_index()
    markdown = (
        flat.astype(object)
        .where(flat.notna(), None)  # tabulate leaves only None blank
        .to_markdown(index=False, floatfmt=".2f", missingval="")
    )
    latex = percent.to_latex(float_format="%.2f", na_rep="", escape=True, multicolumn_format="c")
    return [
        write_text(
            tables_dir / "paper.csv",
            table.set_axis(flat_columns, axis=1).reset_index().to_csv(index=False),
        ),
        write_text(tables_dir / "paper.md", f"**{title}**\n\n{note}\n\n{markdown}\n"),
        write_text(tables_dir / "paper.tex", f"% {title}\n% {note}\n{latex}"),
    ]
