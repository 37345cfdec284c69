"""Each epoch's batches of a run: its sampler (``clipflow.sampling.samplers``) built for the
run's dataset and fed the embeddings it ranks by.

A run's batches come from the sampler named in its config. Samplers that rank samples by
similarity (SimCLIP's clusters, docs/algorithms.md §6) get embeddings of every training row from the
model being trained: once before training (kept in the checkpoint directory, so a resumed run
clusters with the same ones) or, with ``refresh_embeddings``, at the start of every epoch. A run
resumed mid-epoch replays the batches stored in its checkpoint rather than rebuilding them, since
the model that would rebuild them has moved on since the epoch began.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from clipflow.data.shards import PairsDataset
from clipflow.encode import embed_images, embed_texts
from clipflow.io import write_npy
from clipflow.models import ClipBundle
from clipflow.sampling.samplers import SAMPLERS, BatchSampler, build_sampler

if TYPE_CHECKING:  # the trainer imports this module
    from clipflow.training.config import TrainConfig

log = logging.getLogger(__name__)
OFFLINE_EMBEDDINGS = "sampler_embeddings.npy"


def build_run_sampler(
    cfg: TrainConfig, dataset: PairsDataset, rank: int, world_size: int
) -> BatchSampler:
    """The run's sampler over ``dataset``'s positions, for this process's ``rank``.

    Hard pairs are mined by url index; the dataset holds only the pairs that downloaded, so url
    indices are mapped to dataset positions here (unless the config maps them itself).
    """
    params = dict(cfg.sampler_params)
    if SAMPLERS.get(cfg.sampler).url_indexed:
        urls = dataset.metadata["index"].astype(int)
        params.setdefault("index_to_position", dict(zip(urls, range(len(urls)), strict=True)))
    return build_sampler(
        cfg.sampler,
        len(dataset),
        cfg.batch_size,
        cfg.seed,
        rank=rank,
        world_size=world_size,
        **params,
    )


def embed_rows(
    modality: str,
    bundle: ClipBundle,
    dataset: PairsDataset,
    device: torch.device,
    batch_size: int = 256,
) -> np.ndarray:
    """``[N, D]`` embeddings of ``dataset``'s rows (position order) by the model as it is now.

    Images go through the evaluation transform, so no augmentation draws from the training RNG;
    the model is returned to training mode.
    """
    model, rows = bundle.model, dataset.metadata
    try:
        if modality == "text":
            return embed_texts(
                model, bundle.tokenizer, list(rows["caption"].astype(str)), batch_size, device
            )
        if modality == "image":
            images = (dataset.images[row.shard, row.key] for row in rows.itertuples(index=False))
            return embed_images(
                model, bundle.preprocess_val, images, batch_size, device, total=len(rows)
            )
        raise ValueError(f"samplers can rank by 'text' or 'image' embeddings, not {modality!r}")
    finally:
        model.train()


class EpochBatches:
    """Each epoch's batches of one run, feeding the sampler the embeddings it asks for."""

    def __init__(
        self,
        sampler: BatchSampler,
        bundle: ClipBundle,
        dataset: PairsDataset,
        device: torch.device,
        checkpoint_dir: str | Path,
        resumed: bool,
    ) -> None:
        self.sampler, self.bundle, self.dataset, self.device = sampler, bundle, dataset, device
        self.offline_embeddings = Path(checkpoint_dir) / OFFLINE_EMBEDDINGS
        self.resumed = resumed
        self._embeddings_set = False

    def __call__(self, epoch: int) -> list[list[int]]:
        modality = self.sampler.requires_embeddings
        if modality and (self.sampler.refresh_embeddings or not self._embeddings_set):
            self.sampler.set_embeddings(epoch, self._embeddings(modality, epoch))
            self._embeddings_set = True
        return self.sampler.batches(epoch)

    def _embeddings(self, modality: str, epoch: int) -> np.ndarray:
        if self.sampler.refresh_embeddings:
            log.info("epoch %d: %s embeddings for the sampler", epoch + 1, modality)
            return embed_rows(modality, self.bundle, self.dataset, self.device)
        # Offline mode embeds once with the starting model; a resumed run must reuse those.
        if self.resumed and self.offline_embeddings.exists():
            return np.load(self.offline_embeddings, allow_pickle=False)
        embeddings = embed_rows(modality, self.bundle, self.dataset, self.device)

        write_npy(self.offline_embeddings, embeddings)
        return embeddings
