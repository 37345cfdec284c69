"""One logging format for every workflow script (the rule's ``log:`` file captures stderr), and
one line instead of a traceback for the errors that explain themselves (``clipflow.errors``)."""

from __future__ import annotations

import logging
import sys

from clipflow.errors import report_without_traceback


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.excepthook = report_without_traceback
