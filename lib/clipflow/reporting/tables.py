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
SEED_KEYS = ["experiment", "run", "seed", "checkpoint"]
STD = "std"
DELTA = "final-init"
_CHECKPOINT_RANK = {"init": 0, "final": 2, DELTA: 3}


def checkpoint_rank(name: str) -> int:
    """Sort key putting ``init`` first, then other checkpoints, ``final``, and the delta row."""
    return _CHECKPOINT_RANK.get(name, 1)


def summary_table(
    results: pd.DataFrame,
    shared_init: Mapping[str, str] | None = None,
    keys: Sequence[str] = KEYS,
) -> pd.DataFrame:
    """Wide table from :func:`~clipflow.reporting.inputs.load_results` output.

    One row per ``keys`` (experiment, run, checkpoint; :data:`SEED_KEYS` for a row per seed),
    one column per ``benchmark/metric`` (benchmarks alphabetically, metrics in headline order),
    and for each run with a ``final`` checkpoint and an ``init`` one a ``final-init`` row of
    differences. ``shared_init`` maps a run to the run whose ``init`` results it shares (runs that
    start from the same weights are evaluated at init once, under one of them); a run not in it
    uses its own.
    """
    keys = list(keys)
    shared_init = shared_init or {}
    results = results.sort_values("benchmark", kind="stable")
    columns = list(dict.fromkeys(results["benchmark"] + "/" + results["metric"]))
    wide = (
        results.assign(column=results["benchmark"] + "/" + results["metric"])
        .pivot(index=keys, columns="column", values="value")
        .reindex(columns=columns)
    )
    deltas = []
    for identity in wide.index:
        named = dict(zip(keys, identity, strict=True))
        init = tuple(
            {**named, "run": shared_init.get(named["run"], named["run"]), "checkpoint": "init"}[key]
            for key in keys
        )
        if named["checkpoint"] == "final" and init in wide.index:
            difference = wide.loc[[identity]].to_numpy() - wide.loc[[init]].to_numpy()
            named["checkpoint"] = DELTA
            deltas.append(pd.DataFrame(difference, columns=wide.columns).assign(**named))
    table = pd.concat([wide.reset_index(), *deltas], ignore_index=True)[keys + columns]
    rank = table["checkpoint"].map(checkpoint_rank)
    order = table.assign(_rank=rank).sort_values(
        [k for k in keys if k != "checkpoint"] + ["_rank", "checkpoint"]
    )
    return table.loc[order.index].reset_index(drop=True)


def run_label(experiment: str, run: str, experiments: int) -> str:
    """A run's name in tables and figures: prefixed by its experiment when there are several."""
    return run if experiments == 1 else f"{experiment}/{run}"


def headline_column(table: pd.DataFrame, benchmark: str) -> str:
    """The first (headline) ``benchmark/metric`` column of ``benchmark``."""
    return next(c for c in table.columns if c.startswith(f"{benchmark}/"))


def benchmarks_in(table: pd.DataFrame) -> list[str]:
    """Benchmark names of the table's metric columns, in column order."""
    metrics = [c for c in table.columns if c not in KEYS and c != "n" and not c.endswith(STD)]
    return list(dict.fromkeys(c.split("/", 1)[0] for c in metrics))


def _percent_cell(mean: float, std: float = float("nan")) -> str:
    """``mean`` in percent, ``± std`` when a spread is known; blank when the mean is not."""
    if pd.isna(mean):
        return ""
    return f"{100 * mean:.2f}" + ("" if pd.isna(std) else f" ± {100 * std:.2f}")


def headline_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The compact view of a summary table: a row per run (its ``final`` checkpoint), ``n``
    when the summary has it (:func:`replicate_summary`), and a column per benchmark holding
    its headline metric in percent, ``mean ± std`` where standard deviations are known."""
    final = summary[summary["checkpoint"] == "final"]
    experiments = summary["experiment"].nunique()
    identities = zip(final["experiment"], final["run"], strict=True)
    headline = pd.DataFrame({"run": [run_label(e, r, experiments) for e, r in identities]})
    if "n" in final.columns:
        headline["n"] = final["n"].to_numpy()
    for benchmark in benchmarks_in(summary):
        column = headline_column(summary, benchmark)
        spread = final.get(f"{column} {STD}", pd.Series(float("nan"), index=final.index))
        headline[f"{benchmark} ({column.split('/', 1)[1]})"] = [
            _percent_cell(mean, std) for mean, std in zip(final[column], spread, strict=True)
        ]
    return headline


def _markdown_with_headline(summary: pd.DataFrame, note: str, full_table: str) -> str:
    """``summary.md``: the :func:`headline_table` first, then the full table under ``note``."""
    headline = headline_table(summary).to_markdown(index=False, disable_numparse=True)
    return (
        "## Headline\n\nEach benchmark's headline metric of the final checkpoint, in percent"
        f"{' (mean ± standard deviation over n seeds)' if 'n' in summary.columns else ''}.\n\n"
        f"{headline}\n\n## All metrics\n\n{note}\n\n{full_table}\n"
    )


def replicated(results: pd.DataFrame) -> bool:
    """Whether ``results`` come from replicated runs (``train.seeds``): a ``seed`` is known."""
    return "seed" in results.columns and bool(results["seed"].notna().any())


def mean_over_seeds(results: pd.DataFrame) -> pd.DataFrame:
    """``results`` (long, one row per seed) with each number averaged over the seeds."""
    keys = [c for c in results.columns if c not in ("seed", "value")]
    return results.groupby(keys, sort=False, as_index=False)["value"].mean()


def replicate_summary(per_seed: pd.DataFrame) -> pd.DataFrame:
    """A :func:`summary_table` with :data:`SEED_KEYS` averaged over seeds: ``KEYS``, ``n`` (the
    seeds), then per metric column its mean and ``<column> std`` (sample standard deviation,
    ddof 1; NaN for one seed). ``final-init`` rows average the per-seed differences."""
    metrics = [c for c in per_seed.columns if c not in SEED_KEYS]
    groups = per_seed.groupby(KEYS, sort=False)
    table = groups[metrics].mean()
    spread = groups[metrics].std(ddof=1)
    table.insert(0, "n", groups["seed"].count())
    for column in metrics:
        table.insert(table.columns.get_loc(column) + 1, f"{column} {STD}", spread[column])
    return table.reset_index()


def means_of(summary: pd.DataFrame) -> pd.DataFrame:
    """The identifier and mean columns of a :func:`replicate_summary` (for plots)."""
    return summary[[c for c in summary.columns if c != "n" and not c.endswith(f" {STD}")]]


def spreads_of(summary: pd.DataFrame) -> pd.DataFrame:
    """The identifier and standard-deviation columns of a :func:`replicate_summary`, named like
    the means they belong to."""
    spread = [c for c in summary.columns if c.endswith(f" {STD}")]
    return summary[KEYS + spread].rename(columns=lambda c: c.removesuffix(f" {STD}"))


def write_replicate_tables(summary: pd.DataFrame, tables_dir: str | os.PathLike) -> list[Path]:
    """``summary.csv`` (fractions: means, ``<column> std`` and ``n``), ``summary.md`` and
    ``summary.tex`` (percent, ``mean ± std`` per cell, the mean alone for one seed, and an ``n``
    column)."""
    tables_dir = Path(tables_dir)
    means, spreads = means_of(summary), spreads_of(summary)
    cells = summary[KEYS + ["n"]].copy()
    for column in [c for c in means.columns if c not in KEYS]:
        cells[column] = [
            _percent_cell(mean, std)
            for mean, std in zip(means[column], spreads[column], strict=True)
        ]
    note = (
        "Metrics in percent, mean ± standard deviation over n seeds; final-init rows are "
        "differences in points, averaged over the seeds."
    )
    markdown = cells.to_markdown(index=False)
    latex = cells.to_latex(index=False, escape=True).replace("±", r"$\pm$")
    return [
        write_text(tables_dir / "summary.csv", summary.to_csv(index=False)),
        write_text(tables_dir / "summary.md", _markdown_with_headline(summary, note, markdown)),
        write_text(tables_dir / "summary.tex", f"% {note}\n{latex}"),
    ]


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
    headline: bool = False,
) -> list[Path]:
    """Write ``<stem>.csv`` (fractions), ``<stem>.md`` and ``<stem>.tex`` (percent, with
    ``note``) into ``tables_dir``; ``keys`` are the identifier columns; with ``headline``
    the Markdown starts with the :func:`headline_table`."""
    tables_dir = Path(tables_dir)
    percent = as_percent(table, keys)
    note = f"Metrics in percent; {note}"
    blanks = percent.astype(object).where(percent.notna(), None)  # tabulate blanks only None
    markdown = blanks.to_markdown(index=False, floatfmt=".2f", missingval="")
    latex = percent.to_latex(index=False, float_format="%.2f", na_rep="", escape=True)
    return [
        write_text(tables_dir / f"{stem}.csv", table.to_csv(index=False)),
        write_text(
            tables_dir / f"{stem}.md",
            _markdown_with_headline(table, note, markdown)
            if headline
            else f"{note}\n\n{markdown}\n",
        ),
        write_text(tables_dir / f"{stem}.tex", f"% {note}\n{latex}"),
    ]
