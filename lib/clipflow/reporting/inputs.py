"""Reading the report's inputs: result JSONs and training logs, located by their paths.

Paths carry the identifiers the workflow gives them, so nothing else needs to be passed in:
``<results>/<experiment>/eval/<run>/<checkpoint>/<benchmark>.json`` and
``<results>/<experiment>/runs/<run>/train_log.csv``; a replicate of a run (``train.seeds``) has
``<run>/seed<k>`` in place of ``<run>``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

RESULT_COLUMNS = [
    "experiment",
    "run",
    "seed",
    "checkpoint",
    "benchmark",
    "task",
    "metric",
    "value",
]
LOG_REQUIRED = ("epoch", "step", "loss")


class ReportInputError(ValueError):
    """A result or log file is misplaced or malformed; the message names the file and field."""

    def __init__(self, path: str | os.PathLike, field: str, problem: str) -> None:
        super().__init__(f"{path}: {field}: {problem}")


def replicate(parts: Sequence[str], at: int) -> tuple[str, int | None, int]:
    """(run, seed, number of path parts it spans) of the run instance ending at ``parts[at]``:
    ``<run>`` or ``<run>/seed<k>``."""
    last = parts[at]
    if last.startswith("seed") and last[4:].isdigit() and len(parts) + at > 0:
        return parts[at - 1], int(last[4:]), 2
    return last, None, 1


def result_identity(path: Path) -> tuple[str, str, int | None, str, str]:
    """``(experiment, run, seed, checkpoint, benchmark)`` from a result file's path (seed None
    for an unreplicated run)."""
    parts = path.parts
    expected = "expected <experiment>/eval/<run>[/seed<k>]/<checkpoint>/<benchmark>.json"
    if path.suffix != ".json" or len(parts) < 5:
        raise ReportInputError(path, "path", expected)
    run, seed, span = replicate(parts, -3)
    if len(parts) < 4 + span or parts[-3 - span] != "eval":
        raise ReportInputError(path, "path", expected)
    return parts[-4 - span], run, seed, parts[-2], path.stem


def headline_metrics(task: str, metrics: Mapping[str, float]) -> dict[str, float]:
    """The numbers a result contributes to the summary, in display order.

    Zero-shot: ``acc1``, ``acc5``. Retrieval: ``mean_R@1`` (mean of both directions), then
    ``IR@k`` (image retrieval, text->image) and ``TR@k`` (text retrieval, image->text), named
    after CLIP_benchmark's ``image_/text_retrieval_recall@k``. Caption selection (SugarCrepe):
    ``acc`` first, then the rest. Other tasks: every metric as written.
    """
    if task == "zeroshot_classification":
        return {key: metrics[key] for key in ("acc1", "acc5") if key in metrics}
    if task == "zeroshot_retrieval":
        ks = sorted({int(key.rpartition("@")[2]) for key in metrics if "_recall@" in key})
        headline = {}
        if {"image_retrieval_recall@1", "text_retrieval_recall@1"} <= metrics.keys():
            pair = metrics["image_retrieval_recall@1"] + metrics["text_retrieval_recall@1"]
            headline["mean_R@1"] = pair / 2
        for prefix, kind in (("IR", "image"), ("TR", "text")):
            for k in ks:
                if f"{kind}_retrieval_recall@{k}" in metrics:
                    headline[f"{prefix}@{k}"] = metrics[f"{kind}_retrieval_recall@{k}"]
        return headline
    if task == "image_caption_selection" and "acc" in metrics:
        return {"acc": metrics["acc"], **{k: v for k, v in metrics.items() if k != "acc"}}
    return dict(metrics)


def _read_result(path: Path) -> tuple[str, dict[str, float]]:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReportInputError(path, "file", "not found") from None
    except json.JSONDecodeError as error:
        raise ReportInputError(
            path, f"line {error.lineno}", f"invalid JSON ({error.msg})"
        ) from None
    if not isinstance(record, dict):
        raise ReportInputError(path, "top level", "expected an object")
    task, metrics = record.get("task"), record.get("metrics")
    if not isinstance(task, str):
        raise ReportInputError(path, "task", "missing or not a string")
    if not isinstance(metrics, dict) or not metrics:
        raise ReportInputError(path, "metrics", "missing, empty or not an object")
    for key, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ReportInputError(path, f"metrics.{key}", f"not a number: {value!r}")
    return task, metrics


def load_results(paths: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """One row per headline number of each result file (columns ``RESULT_COLUMNS``)."""
    rows = []
    for path in dict.fromkeys(Path(p) for p in paths):
        experiment, run, seed, checkpoint, benchmark = result_identity(path)
        task, metrics = _read_result(path)
        for metric, value in headline_metrics(task, metrics).items():
            rows.append((experiment, run, seed, checkpoint, benchmark, task, metric, float(value)))
    return pd.DataFrame(rows, columns=RESULT_COLUMNS).astype({"seed": "Int64"})


def load_train_logs(paths: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """All training logs stacked, with ``experiment`` and ``run`` columns from their paths (a
    replicate's run is ``<run>/seed<k>``)."""
    frames = []
    for path in map(Path, paths):
        run, seed, span = replicate(path.parts, -2) if len(path.parts) > 2 else ("", None, 1)
        if len(path.parts) < 3 + span or path.parts[-2 - span] != "runs":
            raise ReportInputError(
                path, "path", "expected <experiment>/runs/<run>[/seed<k>]/<log>.csv"
            )
        try:
            log = pd.read_csv(path)
        except FileNotFoundError:
            raise ReportInputError(path, "file", "not found") from None
        except pd.errors.EmptyDataError:
            raise ReportInputError(path, "header", "file is empty") from None
        for column in LOG_REQUIRED:
            if column not in log.columns:
                raise ReportInputError(path, f"column {column!r}", "missing")
        for column in [*loss_columns(list(log.columns)), "step"]:
            if not pd.api.types.is_numeric_dtype(log[column]):
                raise ReportInputError(path, f"column {column!r}", "not numeric")
        instance = run if seed is None else f"{run}/seed{seed}"
        frames.append(log.assign(experiment=path.parts[-3 - span], run=instance))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def loss_columns(columns: Sequence[str]) -> list[str]:
    """``loss`` then the per-term ``*_loss`` columns, then ``lr`` when logged."""
    terms = sorted(c for c in columns if c.endswith("_loss"))
    return ["loss", *terms, *(["lr"] if "lr" in columns else [])]
