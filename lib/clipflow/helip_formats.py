"""HELIP's file formats, written so its trainer could read them (docs/formats.md, HELIP).

One neutral home for the three files, so the data, mining and sampling stages share them
without importing each other:

- ``url_index.json``: ``{url: index}``, the pairs' ``index`` column (``clipflow.data.metadata``)
  keyed by url; HELIP keeps it as ``url_index/<name>_url_index.json``;
- ``<name>_hard_sample.csv``: no header, one row per anchor, ``anchor,h1,...,hk`` as url
  indices, hardest first, written by ``csv.writer`` with its default CRLF line ends, as HELIP's
  file has them on Linux (opened with ``newline=""`` so Windows does not double the CR);
- ``<name>_hard_sample_dict.json``: ``{anchor: [hard indices]}``, which HELIP's README promises
  but its code never writes; keys are JSON strings, as JSON requires.

Padding (-1) is not written: an anchor with fewer than k hard pairs gets a shorter row. HELIP's
sampler treats a short list by drawing a random partner, whereas a -1 would index the last pair.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from clipflow.io import write_json, write_with


def url_index(metadata: pd.DataFrame) -> dict[str, int]:
    """``{url: index}`` of a pairs table (``clipflow.data.metadata``)."""
    return {url: int(i) for url, i in zip(metadata["url"], metadata["index"], strict=True)}


def write_url_index(path: str | os.PathLike, metadata: pd.DataFrame) -> None:
    write_json(path, url_index(metadata), indent=None)


def helip_rows(hard: np.ndarray, anchor_ids: np.ndarray) -> Iterator[list[int]]:
    """``[anchor_id, hard_id_1, ...]`` per row of ``hard`` (positions mapped to url indices)."""
    hard = np.asarray(hard)
    ids = np.asarray(anchor_ids, dtype=np.int64)
    if hard.ndim != 2 or hard.shape[0] != ids.shape[0]:
        raise ValueError(f"hard pairs {hard.shape} do not match {ids.shape[0]} anchor ids")
    if hard.size and (hard.min() < -1 or hard.max() >= ids.shape[0]):
        raise ValueError(f"hard pairs hold positions outside [-1, {ids.shape[0]})")
    for anchor, row in zip(ids.tolist(), hard, strict=True):
        yield [anchor, *ids[row[row >= 0]].tolist()]


def write_helip_outputs(
    hard: np.ndarray,
    anchor_ids: np.ndarray,
    out_csv: str | os.PathLike,
    out_dict_json: str | os.PathLike,
) -> None:
    """Write the hard-sample CSV and dict JSON; ``hard`` holds row positions of ``anchor_ids``."""
    rows = list(helip_rows(hard, anchor_ids))

    def write_csv(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle, delimiter=",").writerows(rows)

    write_with(out_csv, write_csv)
    write_json(out_dict_json, {str(row[0]): row[1:] for row in rows}, indent=None)


def read_hard_sample_csv(path: str | os.PathLike) -> dict[int, list[int]]:
    """``{anchor: [hard indices]}`` from a hard-sample CSV, as HELIP's trainer reads it."""
    hard: dict[int, list[int]] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        for line, row in enumerate(csv.reader(handle), start=1):
            try:
                values = [int(cell) for cell in row]
            except ValueError:
                raise ValueError(f"{path}: line {line}: non-integer entry") from None
            if not values:
                raise ValueError(f"{path}: line {line}: empty row")
            if values[0] in hard:
                raise ValueError(f"{path}: line {line}: anchor {values[0]} repeated")
            hard[values[0]] = values[1:]
    return hard


def read_hard_sample_dict(path: str | os.PathLike) -> dict[int, list[int]]:
    """``{anchor: [hard indices]}`` from a hard-sample dict JSON (string keys made integers)."""
    with open(path, encoding="utf-8") as handle:
        raw = json.load(handle)
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a JSON object of anchor -> list of indices")
    try:
        return {int(anchor): [int(i) for i in hard] for anchor, hard in raw.items()}
    except (TypeError, ValueError):
        raise ValueError(f"{path}: anchors and hard indices must be integers") from None
