"""Sampling: which pairs form each batch of a run.

``samplers`` holds the registry of batch samplers chosen by name in config (``SAMPLERS``,
``build_sampler``); ``epochs`` builds a run's sampler over its dataset and gives it, each epoch,
the embeddings it asks for (the trainer's side, ``EpochBatches``).
"""

from clipflow.sampling.epochs import EpochBatches, build_run_sampler, embed_rows
from clipflow.sampling.samplers import (
    SAMPLERS,
    BatchSampler,
    HardPairBatches,
    RandomBatches,
    SimilarityClusterBatches,
    build_sampler,
)

__all__ = [
    "SAMPLERS",
    "BatchSampler",
    "EpochBatches",
    "HardPairBatches",
    "RandomBatches",
    "SimilarityClusterBatches",
    "build_run_sampler",
    "build_sampler",
    "embed_rows",
]
