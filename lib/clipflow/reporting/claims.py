"""The claims table: does a method beat its control, paired by seed, as its paper claims?

Each claim of the config (``claims``) names a method run, its control run (same start and budget),
a benchmark, a headline metric and the claimed direction. Per seed the difference
``method - control`` of that metric is taken (seeds without both runs are left out); the table
reports both runs' means, the mean difference, its Student-t 95% confidence interval over the
paired differences, and a verdict (:func:`verdict`, documented in ``docs/claims.md``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from scipy import stats

from clipflow.io import write_text

CONFIDENCE = 0.95
REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not reproduced", "inconclusive"
CLAIM_FIELDS = ["claim", "method", "control", "benchmark", "metric", "direction", "checkpoint"]
MEASURED_FIELDS = [
    "n",
    "method_mean",
    "control_mean",
    "difference",
    "ci_low",
    "ci_high",
    "verdict",
]


def replicate_seeds(seeds: int | Sequence[int] | None) -> list[int | None]:
    """The seeds of ``train.seeds``: a count n is seeds 0..n-1; none is one unreplicated run."""
    if seeds is None:
        return [None]
    if isinstance(seeds, int):
        return list(range(seeds))
    return list(seeds)


def check_claims(config: Mapping[str, Any]) -> None:
    """Fail in one line when a claim names a run or benchmark that is not enabled, or when a
    run sets ``seeds`` (replicates are the experiment's: ``train.seeds``)."""
    for name, settings in config["runs"].items():
        if "seeds" in settings:
            raise ValueError(f"config key runs.{name}.seeds: only train.seeds replicates runs")
    runs = {name for name, run in config["runs"].items() if run.get("enabled", True)}
    benchmarks = set(config["benchmarks"].get("enabled", {}))
    for index, claim in enumerate(config.get("claims", [])):
        for key, known, what in (
            ("method", runs, "an enabled run"),
            ("control", runs, "an enabled run"),
            ("benchmark", benchmarks, "an enabled benchmark"),
        ):
            if claim[key] not in known:
                raise ValueError(f"config key claims[{index}].{key}: {claim[key]!r} is not {what}")


def t_interval(differences: Sequence[float]) -> tuple[float, float, float]:
    """(mean, low, high): the Student-t ``CONFIDENCE`` interval of the mean of ``differences``;
    low and high are NaN for fewer than two values."""
    n = len(differences)
    mean = sum(differences) / n
    if n < 2:
        return mean, math.nan, math.nan
    spread = pd.Series(differences).std(ddof=1) / math.sqrt(n)
    half = stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * spread
    return mean, mean - half, mean + half


def verdict(mean: float, low: float, high: float, direction: str) -> str:
    """``reproduced`` when the whole interval lies on the claimed side of 0; ``not reproduced``
    when the mean difference is not on the claimed side (0 included); else ``inconclusive``
    (the mean points the claimed way but the interval reaches 0, or there is one seed only)."""
    sign = 1 if direction == "greater" else -1
    if sign * mean <= 0:
        return NOT_REPRODUCED
    if not math.isnan(low) and min(sign * low, sign * high) > 0:
        return REPRODUCED
    return INCONCLUSIVE


def paired_values(results: pd.DataFrame, claim: Mapping[str, Any]) -> pd.DataFrame:
    """Per seed (index) the claim's metric of the method and of the control (columns)."""
    selected = results[
        (results["benchmark"] == claim["benchmark"])
        & (results["metric"] == claim["metric"])
        & (results["checkpoint"] == claim.get("checkpoint", "final"))
    ]
    columns = {}
    for role in ("method", "control"):
        rows = selected[selected["run"] == claim[role]]
        columns[role] = rows.set_index(rows["seed"].fillna(-1).astype(int))["value"]
    return pd.DataFrame(columns).dropna()


def claims_table(results: pd.DataFrame, claims: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per claim: its fields (``CLAIM_FIELDS``) and ``MEASURED_FIELDS``, metrics as
    fractions. ``results`` is :func:`~clipflow.reporting.inputs.load_results` output."""
    rows = []
    for claim in claims:
        paired = paired_values(results, claim)
        identity = {field: claim.get(field, "final") for field in CLAIM_FIELDS}
        if paired.empty:
            rows.append({**identity, "n": 0, "verdict": INCONCLUSIVE})
            continue
        mean, low, high = t_interval(list(paired["method"] - paired["control"]))
        rows.append(
            {
                **identity,
                "n": len(paired),
                "method_mean": paired["method"].mean(),
                "control_mean": paired["control"].mean(),
                "difference": mean,
                "ci_low": low,
                "ci_high": high,
                "verdict": verdict(mean, low, high, claim["direction"]),
            }
        )
    return pd.DataFrame(rows, columns=CLAIM_FIELDS + MEASURED_FIELDS)


def write_claims(table: pd.DataFrame, tables_dir: str | os.PathLike) -> list[Path]:
    """``claims.csv`` (fractions, full precision) and ``claims.md`` (points, 95% interval)."""
    tables_dir = Path(tables_dir)
    shown = table[["claim", "method", "control", "benchmark", "metric", "n"]].copy()
    shown["claimed"] = table["direction"].map({"greater": "> 0", "less": "< 0"})
    percent = table[["method_mean", "control_mean", "difference", "ci_low", "ci_high"]] * 100
    for role in ("method", "control"):
        shown[role] = [
            f"{run} ({value:.2f})"
            for run, value in zip(table[role], percent[f"{role}_mean"], strict=True)
        ]
    shown["difference [95% CI]"] = [
        f"{row.difference:+.2f} [{row.ci_low:+.2f}, {row.ci_high:+.2f}]"
        for row in percent.itertuples(index=False)
    ]
    shown["verdict"] = table["verdict"]
    note = (
        "Method and control: mean over seeds in percent; difference: mean of the per-seed "
        f"differences (method - control) in points, with its Student-t {CONFIDENCE:.0%} "
        "confidence interval over seeds (n pairs). Verdict rule: docs/claims.md."
    )
    markdown = shown.to_markdown(index=False)
    return [
        write_text(tables_dir / "claims.csv", table.to_csv(index=False)),
        write_text(tables_dir / "claims.md", f"{note}\n\n{markdown}\n"),
    ]
