"""The summary table (run x checkpoint by benchmark/metric) and its CSV, Markdown and LaTeX forms.

The CSV keeps the metrics as fractions at full precision, for merging and scripts; Markdown and
LaTeX show percentages with two decimals, as paper tables do.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from clipflow.io import write_text

KEYS = ["experiment", "run", "checkpoint"]
DELTA = "final-init"
_CHECKPOINT_RANK = {"init": 0, "final": 2, DELTA: 3}


def checkpoint_rank(name: str) -> int:
    """Sort key putting ``init`` first, then other checkpoints, ``final``, and the delta row."""
    return _CHECKPOINT_RANK.get(name, 1)


def summary_table(
    results: pd.DataFrame, shared_init: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """Wide table from :func:`~clipflow.reporting.inputs.load_results` output.

    One row per (experiment, run, checkpoint), one column per ``benchmark/metric`` (benchmarks
    alphabetically, metrics in headline order), and for each run with a ``final`` checkpoint and
    an ``init`` one a ``final-init`` row of differences. ``shared_init`` maps a run to the run
    whose ``init`` results it shares (runs that start from the same weights are evaluated at
    init once, under one of them); a run not in it uses its own.
    """
    shared_init = shared_init or {}
    results = results.sort_values("benchmark", kind="stable")
    columns = list(dict.fromkeys(results["benchmark"] + "/" + results["metric"]))
    wide = (
        results.assign(column=results["benchmark"] + "/" + results["metric"])
        .pivot(index=KEYS, columns="column", values="value")
        .reindex(columns=columns)
    )
    deltas = []
    for experiment, run, checkpoint in wide.index:
        init = (experiment, shared_init.get(run, run), "init")
        if checkpoint == "final" and init in wide.index:
            difference = (
                wide.loc[[(experiment, run, "final")]].to_numpy() - wide.loc[[init]].to_numpy()
            )
            identity = dict(zip(KEYS, (experiment, run, DELTA), strict=True))
            deltas.append(pd.DataFrame(difference, columns=wide.columns).assign(**identity))
    table = pd.concat([wide.reset_index(), *deltas], ignore_index=True)[KEYS + columns]
    rank = table["checkpoint"].map(checkpoint_rank)
    order = table.assign(_rank=rank).sort_values(["experiment", "run", "_rank", "checkpoint"])
    return table.loc[order.index].reset_index(drop=True)


def as_percent(table: pd.DataFrame, keys: Sequence[str] = KEYS) -> pd.DataFrame:
    """Metric columns multiplied by 100 (identifier columns unchanged)."""
    metric_columns = [c for c in table.columns if c not in keys]
    return table.assign(**{c: table[c] * 100 for c in metric_columns})


def write_tables(
    table: pd.DataFrame,
    tables_dir: str | os.PathLike,
    stem: str = "summary",
    keys: Sequence[str] = KEYS,
    note: str = "final-init rows are differences in points.",
) -> list[Path]:
    """Write ``<stem>.csv`` (fractions), ``<stem>.md`` and ``<stem>.tex`` (percent, with
    ``note``) into ``tables_dir``; ``keys`` are the identifier columns."""
    tables_dir = Path(tables_dir)
    percent = as_percent(table, keys)
    note = f"Metrics in percent; {note}"
    blanks = percent.astype(object).where(percent.notna(), None)  # tabulate blanks only None
    markdown = blanks.to_markdown(index=False, floatfmt=".2f", missingval="")
    latex = percent.to_latex(index=False, float_format="%.2f", na_rep="", escape=True)
    return [
        write_text(tables_dir / f"{stem}.csv", table.to_csv(index=False)),
        write_text(tables_dir / f"{stem}.md", f"{note}\n\n{markdown}\n"),
        write_text(tables_dir / f"{stem}.tex", f"% {note}\n{latex}"),
    ]
