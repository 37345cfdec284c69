"""Failures whose message says everything: one line naming the file, key or path at fault.

Workflow scripts print such an error alone (``clipflow.logging_setup`` installs the hook), so a
rule's log ends with the line that explains it instead of a traceback.
"""

from __future__ import annotations

import errno
import os
import sys
from types import TracebackType


class ReportedError(Exception):
    """An error whose one-line message is the whole report."""


class InputError(ReportedError, ValueError):
    """Bad input (a file, a config value, a checkpoint): the message names it."""


class DiskFullError(ReportedError, OSError):
    """A write that found no space left on the device; the message names the path."""

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__(errno.ENOSPC, f"no space left on device writing {os.fspath(path)}")

    def __str__(self) -> str:
        return self.strerror


def first_line(text: object) -> str:
    """``text`` as one line: its first non-blank line (library errors run to many lines)."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else ""


def is_disk_full(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)


def report_without_traceback(
    kind: type[BaseException], error: BaseException, traceback: TracebackType | None
) -> None:
    """``sys.excepthook``: a :class:`ReportedError` (or a full disk) prints as one line."""
    if isinstance(error, ReportedError) or is_disk_full(error):
        print(f"error: {first_line(error)}", file=sys.stderr)
    else:
        sys.__excepthook__(kind, error, traceback)
