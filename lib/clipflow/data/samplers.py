"""Batch samplers chosen by name in config (``SAMPLERS``): which dataset positions form each batch.

A sampler is built once per run and asked for the batches of each epoch; every epoch's batches are a
pure function of (seed, epoch), so a run resumed mid-epoch replays the same order and skips the
batches it already trained on. Under distributed training each rank takes a disjoint share.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from clipflow.registry import Registry


class BatchSampler(Protocol):
    def batches(self, epoch: int) -> list[list[int]]: ...


SAMPLERS: Registry[type] = Registry("sampler")


@SAMPLERS.register("random")
class RandomBatches:
    """Shuffle every epoch and cut into full batches (open_clip drops the last partial batch)."""

    def __init__(
        self, num_samples: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1
    ) -> None:
        if num_samples < batch_size * world_size:
            raise ValueError(
                f"{num_samples} samples cannot fill a batch of {batch_size} on {world_size} rank(s)"
            )
        self.num_samples, self.batch_size, self.seed = num_samples, batch_size, seed
        self.rank, self.world_size = rank, world_size

    def __len__(self) -> int:
        return self.num_samples // (self.batch_size * self.world_size)

    def batches(self, epoch: int) -> list[list[int]]:
        order = np.random.default_rng([self.seed, epoch]).permutation(self.num_samples)
        per_step = self.batch_size * self.world_size
        steps = order[: len(self) * per_step].reshape(len(self), self.world_size, self.batch_size)
        return steps[:, self.rank].tolist()


def build_sampler(
    name: str, num_samples: int, batch_size: int, seed: int, **params
) -> BatchSampler:
    return SAMPLERS.get(name)(num_samples=num_samples, batch_size=batch_size, seed=seed, **params)
