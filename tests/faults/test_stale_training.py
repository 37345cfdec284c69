"""Item 1: a finished or stale training state is never reused. A finished run's state is retired,
so a forced rerun trains again; a stopped run whose inputs changed starts over."""

import os
import shutil
import signal

import pandas as pd
import pytest
import torch

from clipflow.models import load_checkpoint, save_checkpoint
from clipflow.training import TrainConfig, TrainingPreempted, TrainOutputs, loop, train

CONFIG = dict(epochs=1, batch_size=8, warmup_steps=1, lr=5e-4, seed=5, threads=1)


def _outputs(root):
    return TrainOutputs(*(root / n for n in ("init.pt", "final.pt", "log.csv", "log.jsonl")))


@pytest.fixture
def steps(monkeypatch):
    """Counts the batches trained; ``steps["stop_at"] = n`` sends SIGTERM during batch n."""
    counter = {"n": 0, "stop_at": None}
    build_extras = loop.build_extras

    def counting(*args, **kwargs):
        counter["n"] += 1
        if counter["n"] == counter["stop_at"]:
            os.kill(os.getpid(), signal.SIGTERM)
        return build_extras(*args, **kwargs)

    monkeypatch.setattr(loop, "build_extras", counting)
    return counter


def test_finished_state_is_retired_and_a_forced_rerun_trains_again(
    metadata, tiny_download, tmp_path, steps, caplog
):
    pairs, shards, checkpoints = metadata.iloc[:48], tiny_download["shards"], tmp_path / "ckpt"
    train(TrainConfig(**CONFIG), pairs, shards, checkpoints, _outputs(tmp_path / "a"))
    assert steps["n"] == 6
    assert not (checkpoints / "latest.pt").exists() and (checkpoints / "finished.pt").exists()
    train(TrainConfig(**CONFIG), pairs, shards, checkpoints, _outputs(tmp_path / "b"))
    assert steps["n"] == 12, "the rerun must train all 6 steps again"
    assert "resumed from" not in caplog.text
    first = load_checkpoint(tmp_path / "a" / "final.pt")["state_dict"]
    again = load_checkpoint(tmp_path / "b" / "final.pt")["state_dict"]
    assert all(torch.equal(first[name], again[name]) for name in first)


def test_stopped_run_with_more_pairs_starts_over(metadata, tiny_download, tmp_path, steps, caplog):
    shards, checkpoints = tiny_download["shards"], tmp_path / "ckpt"
    steps["stop_at"] = 3
    with pytest.raises(TrainingPreempted):
        train(TrainConfig(**CONFIG), metadata.iloc[:48], shards, checkpoints, _outputs(tmp_path))
    assert load_checkpoint(checkpoints / "latest.pt")["step_in_epoch"] == 3
    steps["n"], steps["stop_at"] = 0, None
    train(TrainConfig(**CONFIG), metadata.iloc[:64], shards, checkpoints, _outputs(tmp_path))
    assert steps["n"] == 8, "all 8 steps of the 64 pairs, none resumed"
    assert "differs in input pairs" in caplog.text
    assert (checkpoints / "latest.pt.stale").exists()
    assert len(pd.read_csv(tmp_path / "log.csv")) == 8


def _rewrite_hard_pairs(inputs):
    inputs["hard_pairs"].write_text("0,5,7\n1,2,9\n")


def _rewrite_negatives(inputs):
    inputs["negatives"].loc[1, "negative"] = "a red square"


def _redownload_shards(inputs):
    shard = next(inputs["shards"].glob("*.tar"))
    shard.write_bytes(shard.read_bytes())  # same bytes, a new file: as a re-download leaves it


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (_rewrite_hard_pairs, "hard_pairs"),
        (_rewrite_negatives, "negatives"),
        (_redownload_shards, "shards"),
    ],
)
def test_each_changed_input_makes_the_state_stale(
    change, key, metadata, tiny_download, tmp_path, caplog
):
    shards = tmp_path / "shards"
    shutil.copytree(tiny_download["shards"], shards)
    hard_pairs = tmp_path / "hard.csv"
    hard_pairs.write_text("0,5,7\n1,2,8\n")
    inputs = {
        "shards": shards,
        "hard_pairs": hard_pairs,
        "negatives": pd.DataFrame({"caption_index": [0, 1], "negative": ["a cat", "a dog"]}),
    }
    cfg = TrainConfig(**CONFIG, sampler_params={"hard_pairs": str(hard_pairs)})
    before = loop.input_fingerprint(cfg, metadata, shards, inputs["negatives"])
    latest = tmp_path / "latest.pt"
    save_checkpoint({"config": loop._settings(cfg), "inputs": before}, latest)
    assert loop._resumable_state(latest, cfg, before, torch.device("cpu"), True) is not None

    change(inputs)
    after = loop.input_fingerprint(cfg, metadata, shards, inputs["negatives"])
    assert {k for k in after if after[k] != before[k]} == {key}
    assert loop._resumable_state(latest, cfg, after, torch.device("cpu"), True) is None
    assert f"differs in input {key}" in caplog.text
    assert not latest.exists() and latest.with_name("latest.pt.stale").exists()
