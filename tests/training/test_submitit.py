"""The submitit launcher against the local SLURM cluster: a run submitted with submitit, stopped by
submitit's time-limit signal mid-run, requeued by submitit and resumed to completion."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from clipflow.models import load_checkpoint
from clipflow.training import TrainConfig, TrainOutputs
from clipflow.training.request import TrainingRequest
from clipflow.training.submitit_launch import SubmititOptions, submit

# one worker holds the cluster (its fixture starts and stops it)
pytestmark = [pytest.mark.slurm, pytest.mark.slow, pytest.mark.xdist_group("slurm")]


def _state(job_id: str) -> str:
    return subprocess.run(
        ["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True
    ).stdout.strip()


def _wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.3)


def test_submitit_run_is_requeued_on_its_signal_and_completes(
    slurm_cluster, metadata_file, tiny_download, tmp_path: Path
) -> None:
    cfg = TrainConfig(
        epochs=3, batch_size=16, lr=5e-4, warmup_steps=2, seed=3, checkpoint_every_steps=2
    )
    outputs = TrainOutputs(*(tmp_path / n for n in ("init.pt", "final.pt", "log.csv", "log.jsonl")))
    request = TrainingRequest(
        cfg, metadata_file, tiny_download["shards"], tmp_path / "checkpoints", outputs
    )
    options = SubmititOptions(
        folder=str(tmp_path / "submitit"),
        timeout_min=10,
        mem_gb=2,
        slurm_partition=slurm_cluster["partition"],
        slurm_account=slurm_cluster["account"],
    )

    job = submit(request, options)
    _wait_for((tmp_path / "checkpoints" / "latest.pt").exists, 300, "the first checkpoint")
    subprocess.run(["scancel", "--signal=USR2", job.job_id], check=True)  # submitit's time signal
    # SLURM holds a requeued job about two minutes; lift the hold to keep the test short
    _wait_for(lambda: _state(job.job_id) == "PENDING", 120, "the requeue")
    subprocess.run(["scontrol", "update", f"JobId={job.job_id}", "StartTime=now"], check=True)
    summary = job.result()

    steps_per_epoch = 120 // 16  # the tiny download has 120 pairs; batches drop the last
    assert summary["steps"] == 3 * steps_per_epoch

    def attempts() -> list[str]:
        return subprocess.run(
            ["sacct", "-D", "-X", "-n", "-P", "-j", job.job_id, "-o", "State"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()

    # the result is written before the job ends: wait for the accounting to see the end
    _wait_for(lambda: attempts()[-1:] != ["RUNNING"], 60, "the job to end")
    assert attempts() == ["REQUEUED", "COMPLETED"], attempts()
    log = "\n".join(p.read_text() for p in sorted((tmp_path / "submitit").glob("*_log.*")))
    resumed = re.search(r"resumed from \S+latest.pt at epoch (\d+) step (\d+)", log)
    assert resumed, log[-3000:]
    assert pd.read_csv(outputs.log_csv)["step"].tolist() == list(range(1, 3 * steps_per_epoch + 1))
    final = load_checkpoint(outputs.model_final)["state_dict"]
    assert all(torch.isfinite(v).all() for v in final.values() if v.is_floating_point())
