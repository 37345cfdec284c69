"""Checkpoint I/O: atomic writes, and loads restricted to tensors and plain containers."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from clipflow.errors import DiskFullError, InputError, is_disk_full


class CheckpointError(InputError):
    """A checkpoint that cannot be used: unreadable, unsafe, or of another architecture."""


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``state`` with ``torch.save`` to a temp file beside ``path``, then ``os.replace`` it.

    A job killed mid-write leaves the previous checkpoint intact, never a truncated one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(state, handle)
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        if is_disk_full(error):
            raise DiskFullError(path) from error
        raise
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint with ``weights_only=True`` (no arbitrary pickles from untrusted files)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises several types for corrupt/unsafe files
        raise CheckpointError(f"cannot load checkpoint {path}: {_load_failure(error)}") from error


def _load_failure(error: Exception) -> str:
    """The line of torch's error that says what is wrong with the file (for a refused pickle,
    the global it names; torch's first line is then advice about ``weights_only``)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    refused = [line for line in lines if "GLOBAL" in line]
    return (refused or lines or [type(error).__name__])[0]
