"""Gradient accumulation's bookkeeping: one optimizer update's micro-batches and its log row.

With ``update_freq`` = K (clip-rocket's ``--update-freq``), an update is K consecutive
micro-batches of ``batch_size`` per rank; each backpropagates its own loss / K, so the update's
gradient is the mean of the micro-batches' gradients. Each micro-batch's loss sees only its own
batch (clip-rocket's accumulation: the contrastive negatives of a sample are the other samples of
its micro-batch, across ranks), unlike open_clip_train's ``--accum-freq``, which re-embeds every
micro-batch against the cached features of the others to get the loss of the whole update.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch


class UpdateMeter:
    """The loss terms, sample count and compute time of the micro-batches of one update.

    Terms are summed as detached tensors and read once per update, so accumulating does not add a
    device synchronisation per micro-batch.
    """

    def __init__(self) -> None:
        self.micro_batches = 0
        self.samples = 0
        self.seconds = 0.0
        self._total: torch.Tensor | float = 0.0
        self._terms: dict[str, torch.Tensor] = {}

    def add(
        self, total: torch.Tensor, terms: Mapping[str, torch.Tensor], samples: int, seconds: float
    ) -> None:
        """One micro-batch: its summed loss ``total``, its ``terms``, this rank's ``samples``."""
        self.micro_batches += 1
        self.samples += samples
        self.seconds += seconds
        # summed in fp32 whatever the autocast dtype: adding bf16 losses would round each sum
        self._total = self._total + total.detach().float()
        for name, value in terms.items():
            self._terms[name] = self._terms.get(name, 0.0) + value.detach().float()

    def log_row(self, world_size: int, step_seconds: float) -> dict[str, float]:
        """``loss`` and each term as means over the micro-batches; ``samples`` the update's
        samples over all ranks, and ``samples_per_s`` those over the update's compute time
        (micro-batches plus the optimizer step ``step_seconds``; data loading excluded)."""
        count = self.micro_batches
        samples = self.samples * world_size
        return {
            "loss": (self._total / count).item(),
            **{name: (value / count).item() for name, value in self._terms.items()},
            "samples": samples,
            "samples_per_s": samples / (self.seconds + step_seconds),
        }
