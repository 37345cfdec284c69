"""Stopping cleanly when the cluster asks: SIGTERM (preemption, ``scancel``, timeout) or SIGUSR1
(SLURM ``--signal=USR1@<seconds>`` before the time limit).

The handler only records the request; the trainer finishes the step in flight, writes its resumable
checkpoint at that exact position and raises :class:`TrainingPreempted`, so a rerun continues where
the job stopped, with the weights an uninterrupted run would have had.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class TrainingPreempted(RuntimeError):
    """Training stopped on a signal after checkpointing; rerunning resumes it."""

    def __init__(self, signum: int, epoch: int, step_in_epoch: int) -> None:
        self.signum, self.epoch, self.step_in_epoch = signum, epoch, step_in_epoch
        super().__init__(
            f"stopped by {signal.Signals(signum).name} at epoch {epoch + 1} step {step_in_epoch};"
            " checkpoint saved, rerun to resume"
        )

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # the shell's convention for "terminated by signal N"


class StopSignals:
    """Context manager: while active, :data:`STOP_SIGNALS` set :attr:`received` instead of
    killing the process (outside the main thread, where Python cannot install handlers, it
    does nothing)."""

    def __init__(self, signals: tuple[signal.Signals, ...] = STOP_SIGNALS) -> None:
        self.signals = signals
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    def _record(self, signum: int, frame: FrameType | None) -> None:
        self.received = signum

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._record) for s in self.signals}
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
