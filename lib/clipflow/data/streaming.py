"""Streaming the webdataset shards through DataLoader workers (``data_loader: streaming``).

The map-style :class:`~clipflow.data.shards.PairsDataset` first scans every tar for member offsets
and lets index samplers (HELIP's hard pairs, SimCLIP's clusters) pick any pair, which also makes a
mid-epoch resume exact. At real scale the ``random`` sampler needs neither, and open_clip_train's
``get_wds_dataset`` reads the shards front to back instead; :class:`StreamingPairs` does the same
with the ``webdataset`` package, and yields the same sample dicts (:class:`PairSamples`):

- **Pairs**: only the metadata table's pairs (the successful downloads, a repeated url once),
  matched to their row by (shard, key); caption and url index come from the table, as in
  ``PairsDataset``. Other samples in the shards are skipped.
- **Split** (open_clip_train's ``detshuffle2`` + ``split_by_node`` + ``split_by_worker``): every
  epoch the shard list is shuffled from (seed, epoch), identically in every process; rank r takes
  every world_size-th shard from r, and DataLoader worker w of n every n-th shard of that from w.
  The shares are disjoint, so one pass of all ranks' workers reads every pair exactly once.
- **Resampled** (``--dataset-resampled``, ``ResampledShards2``): each rank's worker draws shards
  with replacement, ``len(shards)`` at a time, from (seed, epoch, rank, worker); no shard count
  limit, repeats within an epoch.
- **Shuffle**: each worker shuffles its pairs in a buffer of ``shuffle_buffer`` (raw image bytes,
  decoded after the buffer, as open_clip_train does), seeded from (seed, epoch, rank, worker,
  pass), so a stream is a pure function of the seed, the epoch and the number of workers.
- **Epoch length** (``--train-num-samples``): ``num_samples // (batch_size · world_size)``
  batches on every rank (open_clip_train's ``num_batches``, rounded down so that every batch is
  full, like the index samplers), so all ranks run the same number of steps. Each worker batches
  its own stream and DataLoader takes the workers' batches in turn. A worker that has read its
  share before the epoch ends reads it again, reshuffled (as open_clip_train's ``with_epoch``
  does), and what a rank does not reach is left out of the epoch: an epoch is exactly one pass
  over the pairs only when the shares fill the epoch's batches evenly.
- **Workers**: open_clip_train keeps its workers and passes them the epoch through a shared
  counter (``SharedEpoch``); here, as in the indexed path, each epoch starts its own workers,
  which copy the epoch with the dataset.
- **Resume**: a run resumed mid-epoch restarts that epoch's stream from its beginning and trains
  the batches left in the epoch, so the epoch's first batches are trained twice and its last ones
  not at all (open_clip_train likewise restarts an epoch's stream); the step count, model,
  optimizer and RNG state continue from the checkpoint. Exact replay is promised only by the
  indexed loader.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Iterator
from itertools import count, islice
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import webdataset as wds
from PIL import Image

from clipflow.data.shards import IMAGE_SUFFIXES, PairSamples, decode_image

IMAGE_KEYS = tuple(suffix.lstrip(".") for suffix in IMAGE_SUFFIXES)


def batches_per_epoch(num_samples: int, batch_size: int, world_size: int) -> int:
    """open_clip_train's ``num_batches``, rounded down: full batches of each rank per epoch."""
    batches = num_samples // (batch_size * world_size)
    if batches < 1:
        raise ValueError(
            f"train_num_samples: {num_samples} samples cannot fill a batch of {batch_size} on "
            f"{world_size} rank(s)"
        )
    return batches


def _python_rng(*parts: int) -> random.Random:
    """A ``random.Random`` (webdataset's shuffle takes one) seeded from several integers."""
    return random.Random(int(np.random.SeedSequence(list(parts)).generate_state(1, np.uint64)[0]))


class StreamingPairs(torch.utils.data.IterableDataset):
    """This rank's endless stream of one epoch's samples; :meth:`loader` cuts it into batches.

    The first arguments and the extras options are ``PairsDataset``'s; ``num_samples`` is the
    epoch length of all ranks together (``train_num_samples``; None: the table's pairs).
    """

    def __init__(
        self,
        metadata: pd.DataFrame,
        shards_dir: str | Path,
        transform: Callable[[Image.Image], torch.Tensor],
        tokenizer: Callable[[list[str]], torch.Tensor],
        num_augs: int = 0,
        negatives: pd.DataFrame | None = None,
        num_negatives: int = 0,
        *,
        batch_size: int,
        num_samples: int | None = None,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        resampled: bool = False,
        shuffle_buffer: int = 5000,
    ) -> None:
        super().__init__()
        if shuffle_buffer < 1:
            raise ValueError(f"shuffle_buffer must be >= 1, got {shuffle_buffer}")
        self.samples = PairSamples(transform, tokenizer, num_augs, negatives, num_negatives)
        shards_dir = Path(shards_dir)
        shards = sorted(set(metadata["shard"]))
        missing = [shard for shard in shards if not (shards_dir / shard).is_file()]
        if missing:
            raise FileNotFoundError(f"{shards_dir}: no shard {missing[0]} (named in the metadata)")
        self.urls = [str(shards_dir / shard) for shard in shards]
        self._shard_of_url = dict(zip(self.urls, shards, strict=True))
        self._positions = {
            (shard, str(key)): position
            for position, (shard, key) in enumerate(
                zip(metadata["shard"], metadata["key"], strict=True)
            )
        }
        self._captions = metadata["caption"].astype(str).to_numpy()
        self._indices = metadata["index"].astype(np.int64).to_numpy()
        self.batch_size, self.seed = batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.resampled, self.shuffle_buffer = resampled, shuffle_buffer
        total = len(metadata) if num_samples is None else num_samples
        self.batches_per_epoch = batches_per_epoch(total, batch_size, world_size)
        self.epoch = 0  # iterating the dataset itself streams epoch 0

    def loader(
        self,
        epoch: int,
        num_batches: int,
        num_workers: int = 0,
        generator: torch.Generator | None = None,
    ) -> Iterator[dict[str, torch.Tensor]]:
        """The first ``num_batches`` batches of ``epoch``'s stream on this rank; the workers stop
        when the last one is taken."""
        consumers = self.world_size * max(1, num_workers)
        if not self.resampled and len(self.urls) < consumers:
            raise ValueError(
                f"data_loader streaming: {len(self.urls)} shard(s) cannot give each of "
                f"{self.world_size} rank(s) x {max(1, num_workers)} worker(s) its own; use fewer "
                "workers or dataset_resampled: true"
            )
        # A copy per epoch, so that no later call changes the epoch of a loader not yet read
        # (without workers, the stream reads its epoch at every pass).
        stream = copy.copy(self)
        stream.epoch = epoch
        loader = torch.utils.data.DataLoader(
            stream, batch_size=self.batch_size, num_workers=num_workers, generator=generator
        )
        return self._take(loader, num_batches)

    @staticmethod
    def _take(
        loader: torch.utils.data.DataLoader, num_batches: int
    ) -> Iterator[dict[str, torch.Tensor]]:
        # Dropping the exhausted iterator here shuts its workers down at once, before the next
        # epoch's loader starts its own.
        batches = iter(loader)
        yield from islice(batches, num_batches)

    def shard_share(self, epoch: int, worker: int = 0, num_workers: int = 1) -> list[str]:
        """The shards ``worker`` of this rank reads in each pass of ``epoch`` (not resampled)."""
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.urls))
        rank_share = order[self.rank :: self.world_size]
        return [self.urls[i] for i in rank_share[worker::num_workers]]

    def _pass_urls(self, epoch: int, pass_: int, worker: int, num_workers: int) -> list[str]:
        if not self.resampled:
            return self.shard_share(epoch, worker, num_workers)
        rng = np.random.default_rng([self.seed, epoch, self.rank, worker, pass_])
        return [self.urls[i] for i in rng.integers(len(self.urls), size=len(self.urls))]

    def _pairs(self, urls: list[str]) -> Iterator[tuple[int, bytes]]:
        """(metadata position, image bytes) of the table's pairs in ``urls``, in tar order."""
        for sample in wds.tarfile_samples({"url": url} for url in urls):
            shard, key = self._shard_of_url[sample["__url__"]], sample["__key__"]
            position = self._positions.get((shard, key))
            if position is None:
                continue
            image = next((sample[k] for k in IMAGE_KEYS if k in sample), None)
            if image is None:
                raise KeyError(f"{sample['__url__']}: no image for key {key!r}")
            yield position, image

    def _raw_stream(self, worker: int, num_workers: int) -> Iterator[tuple[int, bytes]]:
        """Pass after pass over this worker's shards, each pass shuffled on its own, so that
        no pair comes twice before the worker's whole share has come once."""
        for pass_ in count():
            urls = self._pass_urls(self.epoch, pass_, worker, num_workers)
            rng = _python_rng(self.seed, self.epoch, self.rank, worker, pass_)
            found = 0
            # open_clip_train fills a fifth of its buffer (1000 of 5000) before the first sample
            shuffled = wds.shuffle(self.shuffle_buffer, max(1, self.shuffle_buffer // 5), rng=rng)
            for pair in shuffled(self._pairs(urls)):
                found += 1
                yield pair
            if not found:  # else an endless loop over shards without pairs
                raise RuntimeError(f"{', '.join(urls)}: no pair of the metadata table")

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = torch.utils.data.get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        for position, image in self._raw_stream(worker, num_workers):
            yield self.samples(
                self._captions[position], int(self._indices[position]), decode_image(image)
            )
