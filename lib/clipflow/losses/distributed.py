"""Multi-process helpers: gather a batch from every rank so a loss sees the global batch.

Like open_clip's ``gather_features`` with ``local_loss=False, gather_with_grad=False``
(docs/algorithms.md §1), every rank computes the loss on the concatenated global batch and only its
own shard keeps its autograd history. Unlike open_clip, the local shard's gradient is scaled by
the world size on its way back: every rank's loss equals the global-batch loss L, rank r's
encoder then receives W·∂L/∂(shard r), and the mean over ranks (DDP or ``average_gradients``)
is Σ_r ∂L/∂(shard r), the single-process gradient. Parameters used after the gather (loss heads,
``logit_scale``) get ∂L on every rank, so their mean is exact too; scaling the whole loss by W
instead (the trainer did this before) made their gradients W times too large.
Without an initialised process group (or with one process) every helper is the identity.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist


def world() -> tuple[int, int]:
    """Return ``(rank, world_size)``; ``(0, 1)`` when torch.distributed is not initialised."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class _ScaleGradient(torch.autograd.Function):
    """Identity forward; multiplies the incoming gradient by ``factor`` on the way back."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor, factor: float) -> torch.Tensor:
        ctx.factor = factor
        return tensor.view_as(tensor)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad * ctx.factor, None


def gather_tensor(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` from every rank along dim 0, in rank order.

    The local shard is the caller's tensor, whose gradient is multiplied by the world size
    (see the module docstring); other ranks' shards are plain copies. Every rank must pass the
    same shape (equal per-rank batch sizes).
    """
    rank, world_size = world()
    if world_size == 1:
        return tensor
    shards = [torch.empty_like(tensor) for _ in range(world_size)]
    dist.all_gather(shards, tensor.detach().contiguous())
    shards[rank] = (
        _ScaleGradient.apply(tensor, float(world_size)) if tensor.requires_grad else tensor
    )
    return torch.cat(shards, dim=0)


def gather_features(
    image_features: torch.Tensor, text_features: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gather both modalities' embeddings from every rank (local shard keeps its gradient)."""
    return gather_tensor(image_features), gather_tensor(text_features)


def average_gradients(module: torch.nn.Module) -> None:
    """All-reduce (mean) the gradients of ``module``'s parameters across ranks.

    For loss-owned heads that the trainer does not wrap in DistributedDataParallel: call it
    after ``backward()`` and before ``optimizer.step()`` so every rank applies the same update.
    """
    _, world_size = world()
    if world_size == 1:
        return
    for param in module.parameters():
        if param.grad is not None:
            dist.all_reduce(param.grad)
            param.grad /= world_size
