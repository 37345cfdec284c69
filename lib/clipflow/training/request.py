"""One training run as files in, files out: what the train rule asks for, whichever launcher runs it
(the rule's job itself, srun/torchrun ranks, or a submitit job)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clipflow.data.metadata import read_metadata
from clipflow.io import read_parquet
from clipflow.training.config import TrainConfig
from clipflow.training.loop import TrainOutputs, train


@dataclass(frozen=True)
class TrainingRequest:
    cfg: TrainConfig
    metadata: Path
    shards: Path
    checkpoint_dir: Path
    outputs: TrainOutputs
    negatives: Path | None = None

    def run(self, on_preempted: Callable[[int], object] | None = None) -> dict[str, Any]:
        """Train (resuming from ``checkpoint_dir`` when an earlier attempt left a checkpoint)."""
        negatives = read_parquet(self.negatives) if self.negatives else None
        return train(
            self.cfg,
            read_metadata(self.metadata),
            self.shards,
            self.checkpoint_dir,
            self.outputs,
            negatives,
            on_preempted=on_preempted,
        )
