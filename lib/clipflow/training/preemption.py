"""Stopping cleanly when the cluster asks: SIGTERM (preemption, ``scontrol requeue``, ``scancel``,
timeout) or SIGUSR1/SIGUSR2 (SLURM ``--signal=USR1@<seconds>`` before the time limit; submitit uses
USR2).

The handler only records the request; the trainer finishes the step in flight, writes its resumable
checkpoint at that exact position and raises :class:`TrainingPreempted`, so a rerun continues where
the job stopped, with the weights an uninterrupted run would have had. After a time-limit signal
the job itself must ask to run again (:func:`requeue_slurm_job`); after SIGTERM SLURM requeues a
preempted or requeued job on its own, and a cancelled one must stay cancelled.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping
from types import FrameType, TracebackType

TIME_LIMIT_SIGNALS = (signal.SIGUSR1, signal.SIGUSR2)
STOP_SIGNALS = (signal.SIGTERM, *TIME_LIMIT_SIGNALS)
log = logging.getLogger(__name__)


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


def requeue_slurm_job(
    signum: int,
    environ: Mapping[str, str] = os.environ,
    run: Callable[..., object] = subprocess.run,
) -> bool:
    """Put this SLURM job back in the queue after a time-limit signal; True if it asked.

    Called on rank 0 once the checkpoint is written. The requeued job reruns the same command,
    which resumes from that checkpoint. Nothing happens outside SLURM or after SIGTERM.
    """
    if signum not in TIME_LIMIT_SIGNALS or "SLURM_JOB_ID" not in environ:
        return False
    job = environ["SLURM_JOB_ID"]
    log.warning("requeueing SLURM job %s after %s", job, signal.Signals(signum).name)
    run(["scontrol", "requeue", job], check=True)
    return True
