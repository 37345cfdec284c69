"""The report stage in one call: result JSONs and training logs in, tables and figures out."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from clipflow.io import write_text
from clipflow.reporting.claims import claims_table, write_claims
from clipflow.reporting.inputs import load_results, load_train_logs
from clipflow.reporting.plots import (
    plot_benchmark,
    plot_comparison,
    plot_loss_curves,
)
from clipflow.reporting.published import (
    PUBLISHED_CSV,
    load_published,
    paper_sources,
    paper_table,
    published_table,
    write_paper_tables,
    write_published_tables,
)
from clipflow.reporting.tables import (
    SEED_KEYS,
    benchmarks_in,
    mean_over_seeds,
    means_of,
    replicate_summary,
    replicated,
    spreads_of,
    summary_table,
    write_replicate_tables,
    write_tables,
)


def build_report(
    results: Sequence[str | os.PathLike],
    train_logs: Sequence[str | os.PathLike],
    tables_dir: str | os.PathLike,
    plots_dir: str | os.PathLike,
    shared_init: Mapping[str, str] | None = None,
    references: Mapping[str, str] | None = None,
    published_as: Mapping[str, str] | None = None,
    published_csv: str | os.PathLike = PUBLISHED_CSV,
    paper: Mapping[str, Any] | None = None,
    claims: Sequence[Mapping[str, Any]] = (),
) -> list[Path]:
    """Write the summary tables, ``loss_curves.png`` (when logs are given), one
    ``<benchmark>.png`` per benchmark and ``comparison.png``; return the paths written.

    ``shared_init`` maps a run to the run whose ``init`` results stand for its own (see
    :func:`~clipflow.reporting.tables.summary_table`). ``published.{csv,md,tex}`` set the
    benchmarks that ``references`` maps to a reference benchmark of ``published_csv`` beside
    its published rows (:mod:`clipflow.reporting.published`); with ``paper`` (the config's
    ``report.paper_table``), ``paper.{csv,md,tex}`` re-make that paper's table; with ``claims``
    (the config's), ``claims.{csv,md}`` (:mod:`clipflow.reporting.claims`).

    Results of replicated runs (``<run>/seed<k>`` paths) are summarised as mean, standard
    deviation and n over the seeds (``summary_per_seed.csv`` keeps each seed's row), the plots
    get error bars of one standard deviation, and the published and paper tables use the means.
    """
    if not results:
        raise ValueError("no result files given")
    per_seed_results = load_results(results)
    errors = None
    if replicated(per_seed_results):
        per_seed = summary_table(per_seed_results, shared_init, keys=SEED_KEYS)
        summary = replicate_summary(per_seed)
        written = write_replicate_tables(summary, tables_dir)
        written.append(
            write_text(Path(tables_dir, "summary_per_seed.csv"), per_seed.to_csv(index=False))
        )
        table, errors = means_of(summary), spreads_of(summary)
    else:
        table = summary_table(per_seed_results, shared_init)
        written = write_tables(table, tables_dir, headline=True)
    if claims:
        written += write_claims(claims_table(per_seed_results, claims), tables_dir)
    measured = mean_over_seeds(per_seed_results)
    published = load_published(published_csv)
    unknown = sorted(set((references or {}).values()) - set(published["benchmark"]))
    if unknown:
        raise ValueError(f"{published_csv}: no published numbers for benchmark(s) {unknown}")
    comparison = published_table(measured, published, references or {}, published_as)
    written += write_published_tables(comparison, tables_dir, published)
    if paper is not None:
        table_of_paper = paper_table(measured, published, paper, references or {}, shared_init)
        sources = paper_sources(published, paper, references or {})
        written += write_paper_tables(table_of_paper, tables_dir, paper["title"], sources)
    if train_logs:
        written.append(
            plot_loss_curves(load_train_logs(train_logs), Path(plots_dir, "loss_curves.png"))
        )
    for benchmark in benchmarks_in(table):
        path = Path(plots_dir, f"{benchmark}.png")
        written.append(plot_benchmark(table, benchmark, path, shared_init, errors))
    written.append(plot_comparison(table, Path(plots_dir, "comparison.png"), errors))
    return written
