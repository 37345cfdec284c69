"""Two gloo processes: each loss on gathered shards equals the single-process loss on the
concatenated batch, local shards get world-size times the single-process gradient rows (so the
ranks' mean gradient of a shared encoder is the single-process one), loss heads and
logit_scale averaged over ranks get exactly the single-process gradient, and per-sample state
(SogCLR family, CE-CLIP thresholds) is identical on every rank."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn import functional as F

from clipflow.losses import build_loss
from clipflow.losses.distributed import average_gradients

WORLD_SIZE, LOCAL_BATCH, D, K = 2, 4, 6, 2
GLOBAL_BATCH = WORLD_SIZE * LOCAL_BATCH
CASES = {
    "clip": {"label_smoothing": 0.1},
    "helip": {"margin_weight": 0.5},
    "ce_clip": {"num_negatives": K},
    "sogclr": {"num_samples": 12, "tau_init": 0.1},
    "isogclr": {"num_samples": 12},
    "cl2l": {"num_augs": 2, "embed_dim": D, "hidden_dim": 8},
}
STEPS = 2  # a second step exercises the moving averages and the carried thresholds


def _data() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)

    def unit(*shape: int) -> torch.Tensor:
        return F.normalize(torch.randn(*shape, generator=generator, dtype=torch.float64), dim=-1)

    return {
        "image": unit(STEPS, GLOBAL_BATCH, D),
        "text": unit(STEPS, GLOBAL_BATCH, D),
        "negatives": unit(STEPS, GLOBAL_BATCH, K, D),
        "mask": torch.rand(STEPS, GLOBAL_BATCH, K, generator=generator) > 0.3,
        "ids": torch.stack(
            [torch.randperm(12, generator=generator)[:GLOBAL_BATCH] for _ in range(STEPS)]
        ),
        "image_views": unit(STEPS, 2, GLOBAL_BATCH, D),
        "text_views": unit(STEPS, 2, GLOBAL_BATCH, D),
    }


def run_cases(rank: int, world_size: int) -> dict[str, dict[str, object]]:
    """Run every case on this rank's rows of the global batch; return losses, grads and state."""
    data = _data()
    rows = slice(rank * GLOBAL_BATCH // world_size, (rank + 1) * GLOBAL_BATCH // world_size)
    results = {}
    for name, params in CASES.items():
        torch.manual_seed(0)  # identical head initialisation on every rank
        loss_fn = build_loss(name, **params).double()
        losses, grads = [], []
        for step in range(STEPS):
            image = data["image"][step, rows].clone().requires_grad_()
            text = data["text"][step, rows].clone().requires_grad_()
            extras: dict[str, object] = {}
            if name == "ce_clip":
                extras = {
                    "negative_text_features": data["negatives"][step, rows],
                    "negative_mask": data["mask"][step, rows],
                }
            elif name in ("sogclr", "isogclr"):
                extras = {"ids": data["ids"][step, rows]}
            elif name == "cl2l":
                extras = {
                    "image_views": list(data["image_views"][step, :, rows]),
                    "text_views": list(data["text_views"][step, :, rows]),
                }
            total = sum(loss_fn(image, text, torch.tensor(10.0), **extras).values())
            total.backward()
            losses.append(total.item())
            grads.append((image.grad, text.grad))
        results[name] = {"losses": losses, "grads": grads, "state": loss_fn.state_dict()}
    return results


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD_SIZE
    )
    try:
        torch.save(run_cases(rank, WORLD_SIZE), Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_gathered_losses_equal_single_process_losses(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD_SIZE, join=True)
    single = run_cases(0, 1)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(WORLD_SIZE)]
    for name in CASES:
        for rank, result in enumerate(ranks):
            assert result[name]["losses"] == pytest.approx(single[name]["losses"], rel=1e-10), name
            rows = slice(rank * LOCAL_BATCH, (rank + 1) * LOCAL_BATCH)
            for (image_grad, text_grad), (full_image, full_text) in zip(
                result[name]["grads"], single[name]["grads"], strict=True
            ):
                torch.testing.assert_close(image_grad / WORLD_SIZE, full_image[rows], msg=name)
                torch.testing.assert_close(text_grad / WORLD_SIZE, full_text[rows], msg=name)
            for key, value in single[name]["state"].items():
                torch.testing.assert_close(result[name]["state"][key], value, msg=f"{name}.{key}")


# Acceptance test of issue 14 (7): a shared linear "encoder", the loss heads and a learnable
# logit_scale, trained as the trainer does (backward of the plain loss, then the mean over ranks),
# get the same gradients as one process on the global batch. Before the fix the trainer scaled
# the loss by the world size, which doubled the heads' and logit_scale's gradients here.
HEAD_CASES = {
    "clip": {},
    "cl2l": {"num_augs": 1, "embed_dim": D, "hidden_dim": 8},
    "siamlip": {"num_augs": 1, "embed_dim": D, "hidden_dim": 8, "proj_dim": 4},
    "barlip": {"num_augs": 1, "embed_dim": D, "hidden_dim": 8, "proj_dim": 4},
    "swalip": {"num_augs": 1, "embed_dim": D, "hidden_dim": 8},
}


def run_head_cases(rank: int, world_size: int) -> dict[str, dict[str, torch.Tensor]]:
    """One training step per case on this rank's rows; gradients averaged over ranks."""
    data = _data()
    rows = slice(rank * GLOBAL_BATCH // world_size, (rank + 1) * GLOBAL_BATCH // world_size)
    results = {}
    for name, params in HEAD_CASES.items():
        torch.manual_seed(0)
        loss_fn = build_loss(name, **params).double()
        encoder = torch.nn.Linear(D, D).double()
        log_scale = torch.nn.Parameter(torch.tensor(2.0, dtype=torch.float64))

        def embed(x: torch.Tensor, encoder: torch.nn.Module = encoder) -> torch.Tensor:
            return F.normalize(encoder(x), dim=-1)

        extras: dict[str, object] = {}
        if getattr(loss_fn, "num_augs", 0):
            extras = {
                "image_views": [embed(data["image_views"][0, 0, rows])],
                "text_views": [embed(data["text_views"][0, 0, rows])],
            }
        terms = loss_fn(
            embed(data["image"][0, rows]), embed(data["text"][0, rows]), log_scale.exp(), **extras
        )
        sum(terms.values()).backward()
        for module in (encoder, loss_fn.heads):
            average_gradients(module)
        if world_size > 1:
            dist.all_reduce(log_scale.grad)
            log_scale.grad /= world_size
        grads = {f"encoder.{k}": p.grad for k, p in encoder.named_parameters()}
        grads |= {f"heads.{k}": p.grad for k, p in loss_fn.heads.named_parameters()}
        grads["logit_scale"] = log_scale.grad
        results[name] = grads
    return results


def _head_worker(rank: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD_SIZE
    )
    try:
        torch.save(run_head_cases(rank, WORLD_SIZE), Path(out_dir) / f"heads{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_processes_give_heads_and_logit_scale_the_single_process_gradient(
    tmp_path: Path,
) -> None:
    mp.spawn(
        _head_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD_SIZE, join=True
    )
    single = run_head_cases(0, 1)
    for rank in range(WORLD_SIZE):
        result = torch.load(tmp_path / f"heads{rank}.pt", weights_only=False)
        for name, grads in single.items():
            assert any(k.startswith("heads.") for k in grads) or name == "clip"
            for key, grad in grads.items():
                torch.testing.assert_close(result[name][key], grad, msg=f"{name} {key}")
