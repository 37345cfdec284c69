"""SIGTERM/SIGUSR1 mid-epoch: checkpoint after the step in flight, stop, and resume exactly."""

import os
import signal

import pandas as pd
import pytest
import torch

from clipflow.models import load_checkpoint
from clipflow.training import TrainConfig, TrainingPreempted, TrainOutputs, loop, train

CONFIG = dict(epochs=2, batch_size=16, warmup_steps=2, lr=5e-4, seed=5, threads=1)


def _outputs(root):
    return TrainOutputs(*(root / n for n in ("init.pt", "final.pt", "log.csv", "log.jsonl")))


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1], ids=["TERM", "USR1"])
def test_signal_checkpoints_and_the_rerun_matches_an_unbroken_run(
    signum, metadata, tiny_download, tmp_path, monkeypatch
):
    shards = tiny_download["shards"]
    cfg = TrainConfig(**CONFIG)
    train(cfg, metadata, shards, tmp_path / "unbroken" / "ckpt", _outputs(tmp_path / "unbroken"))

    calls = {"n": 0}
    build_extras = loop.build_extras

    def signal_at_step_4(*args, **kwargs):  # the signal lands while step 4 is being computed
        calls["n"] += 1
        if calls["n"] == 4:
            os.kill(os.getpid(), signum)
        return build_extras(*args, **kwargs)

    monkeypatch.setattr(loop, "build_extras", signal_at_step_4)
    before = signal.getsignal(signum)
    resumed = tmp_path / "resumed"
    with pytest.raises(TrainingPreempted) as stopped:
        train(cfg, metadata, shards, resumed / "ckpt", _outputs(resumed))
    assert (stopped.value.epoch, stopped.value.step_in_epoch) == (0, 4)
    assert stopped.value.exit_code == 128 + signum
    assert signal.Signals(signum).name in str(stopped.value)
    assert signal.getsignal(signum) == before, "the trainer must restore the previous handler"
    state = load_checkpoint(resumed / "ckpt" / "latest.pt")
    assert (state["epoch"], state["step_in_epoch"], len(state["log"])) == (0, 4, 4)
    assert not (resumed / "final.pt").exists()

    monkeypatch.setattr(loop, "build_extras", build_extras)
    train(cfg, metadata, shards, resumed / "ckpt", _outputs(resumed))
    unbroken_log = pd.read_csv(tmp_path / "unbroken" / "log.csv")
    resumed_log = pd.read_csv(resumed / "log.csv")
    assert resumed_log["loss"].tolist() == pytest.approx(unbroken_log["loss"].tolist(), abs=1e-5)
    expected = load_checkpoint(tmp_path / "unbroken" / "final.pt")["state_dict"]
    actual = load_checkpoint(resumed / "final.pt")["state_dict"]
    for name, tensor in expected.items():
        torch.testing.assert_close(actual[name], tensor, atol=1e-5, rtol=0)
