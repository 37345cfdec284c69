"""One metadata table per dataset: every successfully downloaded pair, in url-index order.

Columns: ``index`` (the url index: order in which urls are first seen across the shards, HELIP's
convention, where a shard's samples count in key order, i.e. url-list order, never in the order
img2dataset's threads happened to finish them), ``key`` (img2dataset's 9-digit key), ``url``,
``caption``, ``shard`` (tar file name) and ``status``. ``url_index.json`` maps url -> index, the
file HELIP's trainer reads (``clipflow.helip_formats``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from clipflow.data.shards import shard_members
from clipflow.io import read_parquet

METADATA_COLUMNS = ["index", "key", "url", "caption", "shard", "status"]


def read_shard_samples(tar_path: str | Path) -> list[dict]:
    """The samples of one img2dataset webdataset tar, from its ``key.json`` members."""
    samples = []
    for tar, member in shard_members(tar_path):
        if not member.name.endswith(".json"):
            continue
        handle = tar.extractfile(member)
        if handle is None:
            continue
        info = json.load(handle)
        samples.append(
            {
                "key": str(info.get("key", Path(member.name).stem)),
                "url": info.get("url") or "",
                "caption": info.get("caption") or "",
                "status": info.get("status", "success"),
            }
        )
    return samples


def build_metadata(shards_dir: str | Path) -> pd.DataFrame:
    """Scan ``*.tar`` in name order and each one's samples in key order, index the successful
    pairs; a repeated url keeps the first."""
    shards = sorted(Path(shards_dir).glob("*.tar"))
    if not shards:
        raise FileNotFoundError(f"{shards_dir}: no webdataset shards (*.tar)")
    rows = []
    for shard in shards:
        for sample in sorted(read_shard_samples(shard), key=lambda sample: sample["key"]):
            if sample["status"] == "success":
                rows.append({**sample, "shard": shard.name})
    frame = pd.DataFrame(rows, columns=METADATA_COLUMNS[1:])
    frame = frame.drop_duplicates("url", keep="first").reset_index(drop=True)
    frame.insert(0, "index", range(len(frame)))
    return frame[METADATA_COLUMNS]


def read_metadata(path: str | Path) -> pd.DataFrame:
    frame = read_parquet(path)
    missing = set(METADATA_COLUMNS) - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
    return frame
