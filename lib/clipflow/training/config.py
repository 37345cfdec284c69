"""The parameters of one training run (one entry of ``runs:`` in the workflow config)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class TrainConfig:
    model: str = "clipflow-tiny-vit"
    pretrained: str | None = None  # local open_clip checkpoint; None = random init from `seed`
    epochs: int = 8
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup_steps: int = 20
    seed: int = 0
    loss: str = "clip"
    loss_params: dict[str, Any] = field(default_factory=dict)
    sampler: str = "random"
    sampler_params: dict[str, Any] = field(default_factory=dict)
    checkpoint_every_steps: int = 0  # 0: only at the end of each epoch
    num_workers: int = 0
    threads: int = 2
    device: str = "cpu"
