"""The trainer on streamed shards: epochs of train_num_samples, and a mid-epoch resume."""

import os
import signal

import pandas as pd
import pytest
import torch

from clipflow.models import load_checkpoint
from clipflow.training import TrainConfig, TrainingPreempted, TrainOutputs, loop, train

# 100 samples // batch 16 = 6 steps per epoch (the table's 120 pairs would give 7); SogCLR's
# per-sample state takes the url index each streamed sample carries
CONFIG = dict(
    epochs=2,
    batch_size=16,
    warmup_steps=1,
    lr=5e-4,
    seed=3,
    loss="sogclr",
    threads=1,
    data_loader="streaming",
    train_num_samples=100,
    shuffle_buffer=32,
    num_workers=2,
)


def _outputs(root):
    return TrainOutputs(*(root / n for n in ("init.pt", "final.pt", "log.csv", "log.jsonl")))


def test_streamed_run_stops_mid_epoch_and_resumes_its_step_count(
    metadata, tiny_download, tmp_path, monkeypatch
):
    shards, cfg = tiny_download["shards"], TrainConfig(**CONFIG)
    calls = {"n": 0}
    build_extras = loop.build_extras

    def signal_at_step_4(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            os.kill(os.getpid(), signal.SIGUSR1)
        return build_extras(*args, **kwargs)

    monkeypatch.setattr(loop, "build_extras", signal_at_step_4)
    with pytest.raises(TrainingPreempted):
        train(cfg, metadata, shards, tmp_path / "ckpt", _outputs(tmp_path))
    state = load_checkpoint(tmp_path / "ckpt" / "latest.pt")
    assert (state["epoch"], state["step_in_epoch"], len(state["log"])) == (0, 4, 4)

    monkeypatch.setattr(loop, "build_extras", build_extras)
    summary = train(cfg, metadata, shards, tmp_path / "ckpt", _outputs(tmp_path))
    log = pd.read_csv(tmp_path / "log.csv")
    assert summary["steps"] == len(log) == 12
    assert log["step"].tolist() == list(range(1, 13))
    assert log["epoch"].tolist() == [1] * 6 + [2] * 6
    assert log.iloc[:4]["loss"].tolist() == pytest.approx([row["loss"] for row in state["log"]])
    assert torch.isfinite(torch.tensor(log["loss"].to_numpy())).all()
    init = load_checkpoint(tmp_path / "init.pt")["state_dict"]
    final = load_checkpoint(tmp_path / "final.pt")["state_dict"]
    assert any(not torch.equal(init[k], final[k]) for k in init)
