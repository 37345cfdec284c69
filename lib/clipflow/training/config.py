"""The parameters of one training run (one entry of ``runs:`` in the workflow config)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
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
    # indexed: map-style, any sampler, exact resume; streaming: shards streamed (data/streaming.py)
    data_loader: str = "indexed"
    # streaming only: samples per epoch of all ranks (None: the metadata's pairs), shards drawn
    # with replacement, and each worker's shuffle buffer (open_clip_train's size)
    train_num_samples: int | None = None
    dataset_resampled: bool = False
    shuffle_buffer: int = 5000
    checkpoint_every_steps: int = 0  # 0: only at the end of each epoch
    # fp32 | bf16 | amp (fp16 autocast + GradScaler, CUDA only): training/precision.py
    precision: str = "fp32"
    # micro-batches of `batch_size` (per rank) per optimizer step: training/accumulation.py
    update_freq: int = 1
    grad_checkpointing: bool = False  # recompute activations in backward: less memory, same result
    num_workers: int = 0
    threads: int = 2
    device: str = "cpu"


DATA_LOADERS = ("indexed", "streaming")
STREAMING_SETTINGS = ("train_num_samples", "dataset_resampled", "shuffle_buffer")


def check_data_loader(cfg: TrainConfig) -> None:
    """Fail in one line when ``cfg.data_loader`` cannot serve the rest of ``cfg``.

    The stream reads pairs in shard order, so it serves only the ``random`` sampler (the others
    pick pairs by index), and its settings mean nothing to the indexed loader. Every loss works
    with both: the stream yields the same samples (``clipflow.data.shards.PairSamples``).
    """
    if cfg.data_loader not in DATA_LOADERS:
        raise ValueError(
            f"data_loader: {cfg.data_loader!r} is not one of {', '.join(DATA_LOADERS)}"
        )
    if cfg.data_loader == "streaming" and cfg.sampler != "random":
        raise ValueError(
            f"data_loader: streaming reads pairs in shard order and serves sampler: random only, "
            f"not {cfg.sampler!r}; use data_loader: indexed"
        )
    defaults = {f.name: f.default for f in fields(TrainConfig)}
    changed = [name for name in STREAMING_SETTINGS if getattr(cfg, name) != defaults[name]]
    if cfg.data_loader == "indexed" and changed:
        raise ValueError(
            f"{changed[0]} applies to data_loader: streaming only, this run's is indexed"
        )
