"""Training through submitit, clip-rocket's launcher (``run_with_submitit.py``), instead of the
rule's own job: the train rule runs where snakemake runs, submits the run to SLURM with submitit
and waits for it.

The submitted callable is :class:`TrainingJob`, a ``submitit.helpers.Checkpointable``: on
submitit's time-limit signal (USR2) the trainer checkpoints (``training/preemption.py``), then the
signal is handed back to submitit, whose handler calls ``checkpoint()`` and requeues the same
callable; the rerun resumes from ``latest.pt``, which holds all the state.
"""

from __future__ import annotations

import logging
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import submitit

from clipflow.logging_setup import setup_logging
from clipflow.training.preemption import TrainingPreempted
from clipflow.training.request import TrainingRequest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SubmititOptions:
    """Where and how big the SLURM job is (the train rule fills these from `resources.train`)."""

    folder: str  # submitit's job files (pickles, logs)
    timeout_min: int = 60
    nodes: int = 1
    tasks_per_node: int = 1
    gpus_per_node: int = 0
    cpus_per_task: int = 1
    mem_gb: float = 4.0
    slurm_partition: str | None = None
    slurm_account: str | None = None
    slurm_qos: str | None = None
    slurm_signal_delay_s: int = 120  # USR2 this long before the time limit
    slurm_additional_parameters: dict[str, Any] = field(default_factory=dict)

    def executor_parameters(self) -> dict[str, Any]:
        parameters = {k: v for k, v in vars(self).items() if k != "folder" and v is not None}
        if not parameters["slurm_additional_parameters"]:
            del parameters["slurm_additional_parameters"]
        return parameters


class TrainingJob(submitit.helpers.Checkpointable):
    """The run, as submitit executes it in the job (its default ``checkpoint()`` resubmits
    this same object: the progress lives in the checkpoint directory, not in the object)."""

    def __init__(self, request: TrainingRequest) -> None:
        self.request = request

    def __call__(self) -> dict[str, Any]:
        setup_logging()
        try:
            return self.request.run()
        except TrainingPreempted as stopped:
            log.warning("%s", stopped)
            # The trainer's handlers are gone again: submitit's own handler now checkpoints
            # and requeues (USR2), or logs and ignores SIGTERM, as for any submitit job.
            signal.raise_signal(stopped.signum)
            raise


def submit(
    request: TrainingRequest, options: SubmititOptions, job_name: str = "clipflow-train"
) -> submitit.Job:
    """Submit ``request`` to SLURM with submitit."""
    Path(options.folder).mkdir(parents=True, exist_ok=True)
    executor = submitit.AutoExecutor(folder=options.folder, cluster="slurm")
    executor.update_parameters(name=job_name, **options.executor_parameters())
    job = executor.submit(TrainingJob(request))
    log.info("submitted SLURM job %s (submitit folder %s)", job.job_id, options.folder)
    return job


def submit_and_wait(request: TrainingRequest, options: SubmititOptions) -> dict[str, Any]:
    """Submit ``request``, wait through any requeues, and return the trainer's summary."""
    return submit(request, options).result()
