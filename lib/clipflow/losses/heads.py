"""Trainable modules the CL2L and SSL losses own, and the EMA target the trainer keeps for BYOLIP.

clip-rocket (docs/algorithms.md §3) puts its extra projectors on backbone features; open_clip towers
do not expose those uniformly, so here every head maps the model's L2-normalised ``[B, D]``
embeddings (clean pair and augmented views). A loss builds its heads in ``loss.heads`` and applies
them itself; the trainer only optimises ``loss.heads.parameters()`` (see ``clipflow.losses``).
In multi-process runs, convert BatchNorm heads with ``nn.SyncBatchNorm.convert_sync_batchnorm``
if you want DDP to sync them; the losses already run heads on the gathered global batch.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F


class MLPHead(nn.Sequential):
    """SimSiam/clip-rocket style head: (Linear → BatchNorm → ReLU) × (layers − 1) → Linear.

    ``last_bn`` appends a BatchNorm without affine parameters (clip-rocket's SiamLIP projector).
    """

    def __init__(
        self,
        in_dim: int,
        hidden_dim: int,
        out_dim: int,
        num_layers: int = 2,
        last_bn: bool = False,
    ) -> None:
        if num_layers < 2:
            raise ValueError(f"an MLP head needs at least 2 layers, got {num_layers}")
        layers: list[nn.Module] = []
        dim = in_dim
        for _ in range(num_layers - 1):
            layers += [nn.Linear(dim, hidden_dim), nn.BatchNorm1d(hidden_dim), nn.ReLU()]
            dim = hidden_dim
        layers.append(nn.Linear(dim, out_dim))
        if last_bn:
            layers.append(nn.BatchNorm1d(out_dim, affine=False))
        super().__init__(*layers)


class Prototypes(nn.Module):
    """SwALIP prototypes: cosine scores of normalised inputs against unit-norm prototype vectors.

    Equivalent to clip-rocket's weight-normalised linear layer with its norm fixed at 1.
    """

    def __init__(self, dim: int, num_prototypes: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(num_prototypes, dim) / math.sqrt(dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return F.normalize(z, dim=-1) @ F.normalize(self.weight, dim=-1).T


class LogitScale(nn.Module):
    """A learnable logit scale 1/τ stored as its log (open_clip style), capped at ``max_scale``.

    CL2L's separate view projectors get their own, initialised at 1/0.1 (clip-rocket).
    """

    def __init__(self, init_scale: float, max_scale: float = 100.0) -> None:
        super().__init__()
        self.log_scale = nn.Parameter(torch.tensor(math.log(init_scale)))
        self.max_scale = max_scale

    def forward(self) -> torch.Tensor:
        return self.log_scale.exp().clamp(max=self.max_scale)


class EMATarget(nn.Module):
    """A frozen copy of ``online`` that follows it by exponential moving average (BYOL target).

    Model side (BYOLIP): ``target = EMATarget(model, momentum=0.99)``; embed the batch's inputs
    with ``target.module.encode_image(...)`` / ``encode_text(...)`` under ``torch.no_grad()``,
    pass them as the ``target_*`` extras, and call ``target.update(model)`` after each optimizer
    step. Save ``target.state_dict()`` in the checkpoint. BYOLIP keeps one for its own projectors.
    """

    def __init__(self, online: nn.Module, momentum: float = 0.99) -> None:
        super().__init__()
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum}")
        self.momentum = momentum
        self.module = copy.deepcopy(online).requires_grad_(False)

    @torch.no_grad()
    def update(self, online: nn.Module) -> None:
        """target ← momentum·target + (1 − momentum)·online; buffers (BN stats) are copied."""
        for target_param, online_param in zip(
            self.module.parameters(), online.parameters(), strict=True
        ):
            target_param.lerp_(online_param, 1.0 - self.momentum)
        for target_buffer, online_buffer in zip(
            self.module.buffers(), online.buffers(), strict=True
        ):
            target_buffer.copy_(online_buffer)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        with torch.no_grad():
            return self.module(*args, **kwargs)
