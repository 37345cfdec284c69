"""bf16/amp precision, gradient accumulation (update_freq) and gradient checkpointing in the loop.

Expected values are computed here by hand from the micro-batches the loop saw (recorded at its
``build_extras`` call): the initial model, the clip loss, autograd and a fresh AdamW.
"""

import copy
import os
import signal

import open_clip.transformer
import pandas as pd
import pytest
import torch
import yaml

from clipflow.config import ConfigError, check_config
from clipflow.losses import build_loss
from clipflow.models import create_model, load_checkpoint
from clipflow.training import TrainConfig, TrainingPreempted, TrainOutputs, loop, train
from tests.conftest import REPO

BETAS, EPS = (0.9, 0.98), 1e-6  # the trainer's AdamW (open_clip_train's defaults for ViTs)


def _outputs(root):
    return TrainOutputs(*(root / n for n in ("init.pt", "final.pt", "log.csv", "log.jsonl")))


def _run(cfg, metadata, shards, root):
    outputs = _outputs(root)
    train(cfg, metadata, shards, root / "checkpoints", outputs)
    return outputs


@pytest.fixture
def recorded(monkeypatch):
    """Each micro-batch's images and tokens as the loop fed them, with the autocast state and the
    model's gradient-checkpointing switches at that moment."""
    seen = []
    build_extras = loop.build_extras

    def recording(loss, model, batch, device, target=None):
        seen.append(
            {
                "images": batch["image"].clone(),
                "texts": batch["text"].clone(),
                "autocast": torch.get_autocast_dtype("cpu")
                if torch.is_autocast_enabled("cpu")
                else None,
                "checkpointing": (
                    model.visual.transformer.grad_checkpointing,
                    model.transformer.grad_checkpointing,
                ),
            }
        )
        return build_extras(loss, model, batch, device, target)

    monkeypatch.setattr(loop, "build_extras", recording)
    return seen


def _initial_model(cfg, outputs):
    model = create_model(cfg.model).model
    model.load_state_dict(load_checkpoint(outputs.model_init)["state_dict"])
    return model.train()


def _clip_loss(model, micro_batch):
    out = model(micro_batch["images"], micro_batch["texts"])
    return sum(build_loss("clip")(out[0], out[1], out[2]).values())


def _first_moments(state):
    return [entry["exp_avg"] for entry in state["optimizer"]["state"].values()]


def test_an_update_of_two_micro_batches_is_one_adamw_step_on_their_mean_gradient(
    metadata, tiny_download, tmp_path, recorded
):
    # 16 pairs in micro-batches of 8: one update; no warm-up and no decay, so the step is plain
    # AdamW at lr on every parameter
    cfg = TrainConfig(
        epochs=1,
        batch_size=8,
        update_freq=2,
        lr=1e-3,
        weight_decay=0.0,
        warmup_steps=0,
        seed=7,
        threads=1,
    )
    outputs = _run(cfg, metadata.iloc[:16], tiny_download["shards"], tmp_path)
    assert len(recorded) == 2 and all(len(m["images"]) == 8 for m in recorded)
    assert not torch.equal(recorded[0]["texts"], recorded[1]["texts"])

    model = _initial_model(cfg, outputs)
    losses = []
    for micro_batch in recorded:
        loss = _clip_loss(model, micro_batch)
        (loss / 2).backward()
        losses.append(loss.item())
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=1e-3, betas=BETAS, eps=EPS, weight_decay=0.0
    )
    optimizer.step()

    final = load_checkpoint(outputs.model_final)["state_dict"]
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(final[name], tensor, atol=1e-6, rtol=0, msg=name)
    # Adam's first step moves each weight by about lr·sign(gradient) whatever the gradient's
    # scale; its first moment, (1 − β1)·gradient, shows the scale: the mean, not the sum
    expected = {}
    for param in model.parameters():
        expected.setdefault(param.shape, []).append((1 - BETAS[0]) * param.grad)
    moments = _first_moments(
        load_checkpoint(outputs.model_final.parent / "checkpoints/finished.pt")
    )
    assert len(moments) == sum(len(v) for v in expected.values())
    for moment in moments:
        assert any(
            torch.allclose(moment, candidate, atol=1e-9, rtol=1e-4)
            for candidate in expected[moment.shape]
        )

    log = pd.read_csv(outputs.log_csv)
    assert len(log) == 1 and log["step"].tolist() == [1]
    assert log["samples"].tolist() == [16]
    assert log["loss"].iloc[0] == pytest.approx(sum(losses) / 2, abs=1e-6)


def test_bf16_trains_and_starts_at_the_fp32_loss(metadata, tiny_download, tmp_path, recorded):
    # 32 pairs, 2 steps per epoch, 4 epochs: the same pairs seen again, so the loss must fall
    cfg = TrainConfig(
        epochs=4, batch_size=16, lr=5e-4, warmup_steps=2, seed=11, precision="bf16", threads=1
    )
    outputs = _run(cfg, metadata.iloc[:32], tiny_download["shards"], tmp_path)
    log = pd.read_csv(outputs.log_csv)
    assert len(log) == 8 and torch.isfinite(torch.tensor(log["loss"].to_numpy())).all()
    assert log["loss"].iloc[-1] < log["loss"].iloc[0] - 0.05, log["loss"].tolist()
    assert {m["autocast"] for m in recorded} == {torch.bfloat16}
    final_state = load_checkpoint(outputs.model_final)["state_dict"]
    assert {t.dtype for t in final_state.values() if t.is_floating_point()} == {torch.float32}

    initial, final = _initial_model(cfg, outputs), create_model(cfg.model).model.train()
    final.load_state_dict(final_state)
    with torch.no_grad():
        fp32_loss = _clip_loss(initial, recorded[0]).item()
        assert _clip_loss(final, recorded[0]).item() < fp32_loss - 0.05
    # bf16 keeps 8 bits of mantissa: the loss moves by about 1e-3
    assert log["loss"].iloc[0] == pytest.approx(fp32_loss, abs=0.01)
    assert log["loss"].iloc[0] != pytest.approx(fp32_loss, abs=1e-5), "bf16 did not run"


def test_gradient_checkpointing_gives_the_same_step(
    metadata, tiny_download, tmp_path, recorded, monkeypatch
):
    calls = {"n": 0}
    checkpoint = open_clip.transformer.checkpoint

    def counting(*args, **kwargs):
        calls["n"] += 1
        return checkpoint(*args, **kwargs)

    monkeypatch.setattr(open_clip.transformer, "checkpoint", counting)
    shards, pairs = tiny_download["shards"], metadata.iloc[:16]
    cfg = TrainConfig(epochs=1, batch_size=16, lr=1e-3, warmup_steps=0, seed=3, threads=1)
    plain = _run(cfg, pairs, shards, tmp_path / "plain")
    assert calls["n"] == 0 and recorded[-1]["checkpointing"] == (False, False)
    cfg.grad_checkpointing = True
    checkpointed = _run(cfg, pairs, shards, tmp_path / "checkpointed")
    # one call per residual block of each tower (2 + 2); the backward recomputes inside it
    assert calls["n"] == 4 and recorded[-1]["checkpointing"] == (True, True)
    assert torch.equal(recorded[0]["images"], recorded[1]["images"])

    expected = load_checkpoint(plain.model_final)["state_dict"]
    actual = load_checkpoint(checkpointed.model_final)["state_dict"]
    for name, tensor in expected.items():
        torch.testing.assert_close(actual[name], tensor, atol=1e-6, rtol=0, msg=name)
    gradients = [
        _first_moments(load_checkpoint(run.model_final.parent / "checkpoints/finished.pt"))
        for run in (plain, checkpointed)
    ]
    for plain_moment, checkpointed_moment in zip(*gradients, strict=True):
        torch.testing.assert_close(checkpointed_moment, plain_moment, atol=1e-7, rtol=1e-5)


def test_a_signal_mid_update_checkpoints_after_it_and_the_resume_matches(
    metadata, tiny_download, tmp_path, monkeypatch
):
    shards, pairs = tiny_download["shards"], metadata.iloc[:48]  # 6 micro-batches, 3 updates
    cfg = TrainConfig(
        epochs=2, batch_size=8, update_freq=2, lr=1e-3, warmup_steps=1, seed=5, threads=1
    )
    unbroken = _run(cfg, pairs, shards, tmp_path / "unbroken")

    calls = {"n": 0}
    build_extras = loop.build_extras

    def signal_in_micro_batch_3(*args, **kwargs):  # the first micro-batch of update 2
        calls["n"] += 1
        if calls["n"] == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return build_extras(*args, **kwargs)

    monkeypatch.setattr(loop, "build_extras", signal_in_micro_batch_3)
    resumed = tmp_path / "resumed"
    with pytest.raises(TrainingPreempted) as stopped:
        _run(cfg, pairs, shards, resumed)
    assert calls["n"] == 4, "the update in flight must be finished"
    assert (stopped.value.epoch, stopped.value.step_in_epoch) == (0, 2)
    state = load_checkpoint(resumed / "checkpoints" / "latest.pt")
    assert (state["epoch"], state["step_in_epoch"], len(state["log"])) == (0, 2, 2)

    monkeypatch.setattr(loop, "build_extras", build_extras)
    _run(cfg, pairs, shards, resumed)
    unbroken_log = pd.read_csv(unbroken.log_csv)
    resumed_log = pd.read_csv(_outputs(resumed).log_csv)
    assert resumed_log["step"].tolist() == list(range(1, 7))
    assert resumed_log["loss"].tolist() == pytest.approx(unbroken_log["loss"].tolist(), abs=1e-5)
    expected = load_checkpoint(unbroken.model_final)["state_dict"]
    actual = load_checkpoint(_outputs(resumed).model_final)["state_dict"]
    for name, tensor in expected.items():
        torch.testing.assert_close(actual[name], tensor, atol=1e-5, rtol=0, msg=name)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"precision": "amp"}, "precision: amp (fp16 autocast + GradScaler) needs a CUDA device"),
        ({"precision": "fp16"}, "precision: 'fp16' is not one of fp32, bf16, amp"),
        ({"update_freq": 8}, "update_freq: 8 is not in [1, 7] (the batches of 16 per epoch)"),
    ],
)
def test_unusable_settings_fail_in_one_line(settings, message, metadata, tiny_download, tmp_path):
    cfg = TrainConfig(epochs=1, batch_size=16, threads=1, **settings)
    with pytest.raises(ValueError) as error:
        _run(cfg, metadata, tiny_download["shards"], tmp_path)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_the_schema_takes_the_settings_and_rejects_bad_values():
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    run = next(iter(config["runs"]))
    good = copy.deepcopy(config)
    good["runs"][run].update(precision="bf16", update_freq=4, grad_checkpointing=True)
    check_config(good, REPO / "config" / "schema.yaml")
    for key, value in [("precision", "fp16"), ("update_freq", 0), ("grad_checkpointing", "yes")]:
        bad = copy.deepcopy(config)
        bad["runs"][run][key] = value
        with pytest.raises(ConfigError, match=f"config key runs.{run}.{key}: "):
            check_config(bad, REPO / "config" / "schema.yaml")


@pytest.mark.gpu
def test_amp_keeps_its_loss_scale_across_a_resume(metadata, tiny_download, tmp_path, monkeypatch):
    """fp16 autocast with a GradScaler on CUDA; the scale written to latest.pt is the one the
    resumed run continues with (a fresh scaler would start at 2**16)."""
    shards, pairs = tiny_download["shards"], metadata.iloc[:48]
    cfg = TrainConfig(
        epochs=1,
        batch_size=8,
        update_freq=2,
        warmup_steps=1,
        seed=5,
        precision="amp",
        threads=1,
        device="cuda",
    )
    calls = {"n": 0}
    build_extras = loop.build_extras

    def signal_in_micro_batch_1(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            assert torch.get_autocast_dtype("cuda") == torch.float16
            os.kill(os.getpid(), signal.SIGTERM)
        return build_extras(*args, **kwargs)

    monkeypatch.setattr(loop, "build_extras", signal_in_micro_batch_1)
    with pytest.raises(TrainingPreempted):
        _run(cfg, pairs, shards, tmp_path)
    latest = tmp_path / "checkpoints" / "latest.pt"
    state = load_checkpoint(latest)
    assert state["step_in_epoch"] == 1 and state["scaler"]["scale"] > 0
    state["scaler"]["scale"] = 2.0**5  # a value no fresh scaler has; no step overflows at it
    torch.save(state, latest)

    monkeypatch.setattr(loop, "build_extras", build_extras)
    _run(cfg, pairs, shards, tmp_path)
    assert load_checkpoint(latest.with_name("finished.pt"))["scaler"]["scale"] == 2.0**5
    log = pd.read_csv(_outputs(tmp_path).log_csv)
    assert len(log) == 3 and torch.isfinite(torch.tensor(log["loss"].to_numpy())).all()
