"""Atomic writers for the files that rules declare as outputs, and cache keys for the files
that stay outside them."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from clipflow.errors import DiskFullError, is_disk_full


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside ``path``; on success it replaces ``path`` in one step. A full
    disk raises :class:`DiskFullError` naming ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except OSError as error:
        if is_disk_full(error):
            raise DiskFullError(path) from error
        raise
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> Path:
    return write_text(path, json.dumps(obj, indent=indent) + "\n")


def write_with(path: str | os.PathLike, writer: Callable[[Path], None]) -> Path:
    """Atomically write ``path`` with ``writer(tmp_path)`` (``df.to_parquet``, ``fig.savefig``)."""
    with atomic_path(path) as tmp:
        writer(tmp)
    return Path(path)


def write_npy(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Atomically write one array as ``.npy`` (no pickled objects)."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:  # a handle, so numpy never appends ".npy" itself
            np.save(handle, array, allow_pickle=False)

    return write_with(path, write)


def read_parquet(path: str | os.PathLike, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a parquet file by path.

    ``pd.read_parquet`` hands pyarrow a Python file object, after which pyarrow's thread pool
    aborts the interpreter at exit about one run in five ("terminate called without an active
    exception", apache/arrow#50482); a path keeps the read in Arrow's own file system.
    """
    return pq.read_table(os.fspath(path), columns=columns).to_pandas()


def encoder_fingerprint(model_name: str, checkpoint: str | os.PathLike | None, seed: int) -> str:
    """A short name for the frozen encoder, so cached embeddings of another one are never used.

    From the checkpoint's bytes (sha256) when there is one, else from the random init's seed.
    """
    digest = hashlib.sha256(model_name.encode())
    if checkpoint is None:
        digest.update(f"seed={seed}".encode())
    else:
        with open(checkpoint, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]
