"""The download report: how many candidate pairs became pairs, and why the others did not.

Built from :func:`clipflow.data.ingest.ingestion_summary`'s statistics and bad-row table, as
Markdown (counts, success rate, reasons, the first bad rows) and a bar plot of the same counts.
The figure is a ``matplotlib.figure.Figure`` (Agg canvas), so no global backend is touched.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from clipflow.io import write_json, write_text, write_with


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "n/a"


def loss_counts(stats: dict[str, Any]) -> list[tuple[str, str, int]]:
    """``(stage, reason, pairs)`` for every reason a candidate pair was lost, largest first
    within each stage (reading first)."""
    return [("read", reason, n) for reason, n in stats["rejection_reasons"].items()] + [
        (stats["stage"], reason, n) for reason, n in stats["failure_reasons"].items()
    ]


def download_report(
    stats: dict[str, Any], bad_rows: pd.DataFrame, source: str, examples: int = 20
) -> str:
    """Markdown: counts, success rates, losses by stage and reason, the first bad rows."""
    fetched = "downloaded with img2dataset" if stats["stage"] == "download" else "packed"
    lines = [
        "# Download report",
        "",
        f"Source: {source}.",
        "",
        *_table(
            ["candidate pairs", "rejected while reading", f"{fetched}", "in the shards", "failed"],
            [
                (
                    stats["candidates"],
                    stats["rejected"],
                    stats["count"],
                    stats["successes"],
                    stats["failed"],
                )
            ],
        ),
        "",
        f"Success rate: {_percent(stats['successes'], stats['count'])} of the pairs {fetched} "
        f"({stats['successes']} of {stats['count']}); "
        f"{_percent(stats['successes'], stats['candidates'])} of all candidate pairs "
        f"({stats['successes']} of {stats['candidates']}).",
        "",
        "## Why pairs were lost",
        "",
    ]
    losses = loss_counts(stats)
    lines += _table(["stage", "reason", "pairs"], losses) if losses else ["Nothing was lost."]
    lines += ["", "## Bad rows", ""]
    if len(bad_rows):
        shown = bad_rows.head(examples)
        lines += [
            f"The first {len(shown)} of {len(bad_rows)}, by source row "
            "(all of them are in `bad_rows.csv`):",
            "",
            *_table(list(bad_rows.columns), shown.itertuples(index=False)),
        ]
    else:
        lines.append("None.")
    return "\n".join(lines) + "\n"


def plot_download_report(stats: dict[str, Any], path: str | os.PathLike) -> Path:
    """Horizontal bars: pairs in the shards, then each (stage, reason) of a lost pair."""
    bars = [("in the shards", stats["successes"], "tab:green")] + [
        (f"{stage}: {reason}", n, "tab:orange" if stage == "read" else "tab:red")
        for stage, reason, n in loss_counts(stats)
    ]
    figure = Figure(figsize=(7, 1.2 + 0.35 * len(bars)))
    axis = figure.subplots()
    labels = [label if len(label) <= 60 else label[:57] + "..." for label, _, _ in bars]
    positions = range(len(bars))
    axis.barh(positions, [n for _, n, _ in bars], color=[c for _, _, c in bars])
    axis.set_yticks(list(positions), labels, fontsize="small")
    axis.invert_yaxis()
    for position, (_, n, _) in zip(positions, bars, strict=True):
        axis.annotate(str(n), (n, position), xytext=(3, 0), textcoords="offset points", va="center")
    axis.set_xlabel("candidate pairs")
    axis.set_title(
        f"{stats['successes']} of {stats['candidates']} candidate pairs in the shards "
        f"({_percent(stats['successes'], stats['candidates'])})"
    )
    figure.tight_layout()
    return write_with(path, lambda tmp: figure.savefig(tmp, dpi=120, format="png"))


def write_download_outputs(
    stats: dict[str, Any],
    bad_rows: pd.DataFrame,
    source: str,
    stats_path: str | os.PathLike,
    bad_rows_path: str | os.PathLike,
    report_path: str | os.PathLike,
    plot_path: str | os.PathLike,
) -> None:
    """The download rule's four summary files, each written atomically."""
    write_json(stats_path, stats)
    write_with(bad_rows_path, lambda tmp: bad_rows.to_csv(tmp, index=False))
    write_text(report_path, download_report(stats, bad_rows, source))
    plot_download_report(stats, plot_path)
