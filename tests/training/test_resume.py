"""A run killed mid-epoch resumes from its last checkpoint and ends where an unbroken run does."""

import json
import os
import signal
import subprocess
import time

import pandas as pd
import pytest
import torch

from clipflow.models import load_checkpoint
from tests.conftest import PYTHON, REPO

RUN = {
    "model": "clipflow-tiny-vit",
    "epochs": 2,
    "batch_size": 16,
    "lr": 5e-4,
    "warmup_steps": 2,
    "seed": 5,
    "loss": "clip",
    "checkpoint_every_steps": 2,
}


SIMCLIP_ONLINE = {  # clusters from the current model's text embeddings, rebuilt each epoch
    "sampler": "similarity_clusters",
    "sampler_params": {"synthesis_prop": 0.5, "cluster_size": 4, "online_sim": "text"},
}


def _train_command(tmp, metadata, shards, name, run):
    out = tmp / name
    return [
        PYTHON,
        str(REPO / "workflow_scripts" / "train.py"),
        "--metadata",
        str(metadata),
        "--shards",
        str(shards),
        "--run-config",
        json.dumps(run),
        "--checkpoint-dir",
        str(out / "checkpoints"),
        "--model-init",
        str(out / "model_init.pt"),
        "--model-final",
        str(out / "model_final.pt"),
        "--log-csv",
        str(out / "train_log.csv"),
        "--log-jsonl",
        str(out / "train_log.jsonl"),
        "--threads",
        "1",
    ], out


@pytest.mark.parametrize("sampler", [{}, SIMCLIP_ONLINE], ids=["random", "similarity_clusters"])
def test_killed_run_resumes_and_matches_an_unbroken_run(
    sampler, tmp_path, tiny_download, metadata_file
):
    """Mid-epoch kill; the similarity-cluster run must replay the batches its checkpoint holds,
    since the model that built them (at the epoch's start) has moved on."""
    shards, run = tiny_download["shards"], {**RUN, **sampler}
    unbroken_cmd, unbroken = _train_command(tmp_path, metadata_file, shards, "unbroken", run)
    subprocess.run(unbroken_cmd, check=True, capture_output=True)

    resumed_cmd, resumed = _train_command(tmp_path, metadata_file, shards, "resumed", run)
    process = subprocess.Popen(resumed_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    latest = resumed / "checkpoints" / "latest.pt"
    deadline = time.monotonic() + 120
    while not latest.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    state = load_checkpoint(latest)
    assert state["epoch"] == 0 and state["step_in_epoch"] > 0, "the kill must land mid-epoch"
    assert not (resumed / "model_final.pt").exists()

    completed = subprocess.run(resumed_cmd, check=True, capture_output=True, text=True)
    assert "resumed from" in completed.stderr

    log_unbroken = pd.read_csv(unbroken / "train_log.csv")
    log_resumed = pd.read_csv(resumed / "train_log.csv")
    steps_per_epoch = 120 // 16
    assert list(log_resumed["step"]) == list(range(1, 2 * steps_per_epoch + 1))
    assert log_resumed["loss"].tolist() == pytest.approx(log_unbroken["loss"].tolist(), abs=1e-5)
    final_unbroken = load_checkpoint(unbroken / "model_final.pt")["state_dict"]
    final_resumed = load_checkpoint(resumed / "model_final.pt")["state_dict"]
    for name, tensor in final_unbroken.items():
        torch.testing.assert_close(final_resumed[name], tensor, atol=1e-5, rtol=0)
    init_a = load_checkpoint(unbroken / "model_init.pt")["state_dict"]
    init_b = load_checkpoint(resumed / "model_init.pt")["state_dict"]
    assert all(torch.equal(init_a[k], init_b[k]) for k in init_a)
