"""Batch samplers chosen by name in config (``SAMPLERS``): which dataset positions form each batch.

A sampler is built once per run with ``(num_samples, batch_size, seed, rank, world_size,
**params)`` and asked for the batches of each epoch; every epoch's batches are a pure function of
(seed, epoch) (and, for samplers that need them, of the embeddings set for that epoch), so a run
resumed mid-epoch replays the same order and skips the batches it already trained on. Under
distributed training each rank takes a disjoint share. Every sampler has ``len(sampler)`` =
``num_samples // (batch_size · world_size)`` steps per epoch, like open_clip's random batches.

Samplers that rank samples by similarity name the embeddings they need in
``requires_embeddings`` (``"text"``, ``"image"`` or None); the trainer then calls
``set_embeddings(epoch, embeddings)`` (rows in dataset position order) before ``batches(epoch)``:
once, before training, or at the start of every epoch when ``refresh_embeddings`` is true.

- ``random``: a shuffle cut into batches.
- ``hard_pairs``: HELIP's hard-pair batches (docs/algorithms.md §2).
- ``similarity_clusters``: SimCLIP's similarity-cluster batches (docs/algorithms.md §6).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Protocol

import faiss
import numpy as np

from clipflow.helip_formats import read_hard_sample_csv
from clipflow.registry import Registry


class BatchSampler(Protocol):
    requires_embeddings: str | None
    refresh_embeddings: bool
    # whether its params name pairs by url index, so the trainer passes ``index_to_position``
    url_indexed: bool

    def __len__(self) -> int: ...

    def batches(self, epoch: int) -> list[list[int]]: ...


SAMPLERS: Registry[type] = Registry("sampler")


class _EpochBatches:
    """What every sampler shares: argument checks and the number of steps per epoch."""

    requires_embeddings: str | None = None
    refresh_embeddings = False
    url_indexed = False

    def __init__(
        self, num_samples: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, world_size={world_size})")
        if batch_size < 1 or num_samples < batch_size * world_size:
            raise ValueError(
                f"{num_samples} samples cannot fill a batch of {batch_size} on {world_size} rank(s)"
            )
        self.num_samples, self.batch_size, self.seed = num_samples, batch_size, seed
        self.rank, self.world_size = rank, world_size

    def __len__(self) -> int:
        return self.num_samples // (self.batch_size * self.world_size)


@SAMPLERS.register("random")
class RandomBatches(_EpochBatches):
    """Shuffle every epoch and cut into full batches (open_clip drops the last partial batch)."""

    def batches(self, epoch: int) -> list[list[int]]:
        order = np.random.default_rng([self.seed, epoch]).permutation(self.num_samples)
        per_step = self.batch_size * self.world_size
        steps = order[: len(self) * per_step].reshape(len(self), self.world_size, self.batch_size)
        return steps[:, self.rank].tolist()


@SAMPLERS.register("hard_pairs")
class HardPairBatches(_EpochBatches):
    """HELIP's hard-pair batches (docs/algorithms.md §2): ``[a1, h(a1), a2, h(a2), ...]``.

    ``hard_pairs`` is HELIP's ``<name>_hard_sample.csv`` (docs/formats.md, HELIP): per row an
    anchor's url index, then its hard pairs' url indices, hardest first. ``partners_topk`` (HELIP's
    sampler default 50) is how many of each row's first entries a partner is drawn from.

    Url index -> dataset position: the trainer's dataset follows the rows of the metadata parquet,
    whose ``index`` column is the url index 0..N-1 in row order, so by default position == url
    index and an index outside [0, N) is an error. Pass ``index_to_position`` when the dataset is
    a subset or reordering; then anchors and partners it does not map are dropped.

    One epoch, built identically on every rank from (seed, epoch) and cut into per-rank shares:

    1. Shuffle all positions; walk that order, skipping positions already used this epoch; each
       one met becomes the next anchor.
    2. Its partner is drawn uniformly from its first ``partners_topk`` hard pairs that are not yet
       used this epoch (so never one already in the batch, nor another anchor). When all of them
       are used, or it has none, the partner is a random unused position (taken from the far end
       of the shuffled order).
    3. The pairs fill the steps in order; step t's ``batch_size · world_size / 2`` pairs are cut
       into one batch per rank.

    Coverage, the resolution of "keep batch size and epoch length" with "every anchor once": an
    epoch has as many steps and batches of the same size as ``random``, so it holds
    ``len(self) · batch_size · world_size`` positions, half of them anchors; a half-batch design
    cannot make all N positions anchors in that length (that would double the epoch). What it
    does guarantee is what ``random`` guarantees: **within an epoch no position appears twice,
    on any rank, as anchor or partner, and all but N mod (batch_size · world_size) positions
    appear once**. About half of the positions are anchors in a given epoch, a different random
    half each epoch. (HELIP's released sampler makes every position an anchor, so its epoch is
    2N samples.) A partner is drawn only among unused hard pairs, which differs from a uniform
    draw over all ``partners_topk`` only when some of them were used earlier in the epoch, and
    falls back to a random partner only when all of them were: on 4000 clustered pairs mined at
    top-50, 98% of partners were hard pairs. Drawing over all of them instead, with anchors
    skipping seen positions, repeated 42% of the partners and left 22% of the data unseen.

    ``batch_size`` must be even. Unlike HELIP's sampler this works in a single process too, and
    ranks' shares are disjoint.
    """

    url_indexed = True

    def __init__(
        self,
        num_samples: int,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        *,
        hard_pairs: str | os.PathLike,
        partners_topk: int = 50,
        index_to_position: Mapping[int, int] | None = None,
    ) -> None:
        super().__init__(num_samples, batch_size, seed, rank, world_size)
        if batch_size % 2:
            raise ValueError(
                f"hard_pairs needs an even batch size (anchor + partner), got {batch_size}"
            )
        if partners_topk < 1:
            raise ValueError(f"partners_topk must be >= 1, got {partners_topk}")
        self.partners = _partner_table(
            read_hard_sample_csv(hard_pairs),
            num_samples,
            partners_topk,
            index_to_position,
            hard_pairs,
        )

    def batches(self, epoch: int) -> list[list[int]]:
        n = self.num_samples
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(n)
        draws = rng.random(len(self) * self.batch_size * self.world_size // 2)
        used = np.zeros(n + 1, dtype=bool)
        used[n] = True  # the table's padding value is n: never a free partner
        flat = np.empty(2 * len(draws), dtype=np.int64)
        head, tail = 0, n - 1
        for pair, draw in enumerate(draws):
            while used[order[head]]:
                head += 1
            anchor = order[head]
            used[anchor] = True
            candidates = self.partners[anchor]
            free = candidates[~used[candidates]]
            if free.size:
                partner = free[int(draw * free.size)]
            else:
                while used[order[tail]]:
                    tail -= 1
                partner = order[tail]
            used[partner] = True
            flat[2 * pair], flat[2 * pair + 1] = anchor, partner
        steps = flat.reshape(len(self), self.world_size, self.batch_size)
        return steps[:, self.rank].tolist()


def _partner_table(
    hard: Mapping[int, Sequence[int]],
    num_samples: int,
    topk: int,
    index_to_position: Mapping[int, int] | None,
    source: str | os.PathLike,
) -> np.ndarray:
    """``[N, topk]`` partner positions per anchor position, padded with N (no partner)."""
    dtype = np.int32 if num_samples < np.iinfo(np.int32).max else np.int64  # 3M-15M rows x topk
    table = np.full((num_samples, topk), num_samples, dtype=dtype)
    for anchor, partners in hard.items():
        row = [anchor, *partners[:topk]]
        if index_to_position is None:
            outside = [i for i in row if not 0 <= i < num_samples]
            if outside:
                raise ValueError(
                    f"{source}: url index {outside[0]} is not a position of the {num_samples} "
                    "training pairs; pass index_to_position if the dataset is not the metadata "
                    "table the pairs were mined from"
                )
        elif anchor in index_to_position:
            row = [index_to_position[i] for i in row if i in index_to_position]
        else:
            continue
        table[row[0], : len(row) - 1] = row[1:]
    return table


def _fraction(value: float | str) -> Fraction:
    """A proportion from config: a number or a fraction string such as ``"1/512"``."""
    try:
        prop = Fraction(value) if isinstance(value, str) else Fraction(float(value))
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"synthesis_prop must be a number or a fraction, got {value!r}") from None
    if not 0 <= prop <= 1:
        raise ValueError(f"synthesis_prop must be in [0, 1], got {value!r}")
    return prop


@SAMPLERS.register("similarity_clusters")
class SimilarityClusterBatches(_EpochBatches):
    """SimCLIP's similarity-cluster batches (docs/algorithms.md §6, docs/formats.md, SimCLIP).

    Each batch is ``S = int(B·p)`` synthesised samples, as n clusters, followed by ``B − S``
    random ones. A cluster is a random pivot not yet selected in this step, then ``m − 1``
    members drawn at random from the pivot's top ``m·s`` neighbours by cosine similarity of the
    embeddings (``s = neighborhood``), the pivot itself, exact duplicates (cosine ≥ 1 − 1e-6) and
    rows already selected excluded; the batch lists each cluster's pivot then its members.

    Parameters: ``synthesis_prop`` p (a number or a string fraction such as ``"1/512"``, which
    SimCLIP's argparse rejects); ``num_clusters`` n, or ``cluster_size`` c for
    ``n = max(S // c, 1)``; ``neighborhood`` s; ``warmup_prop`` with ``warmup_epochs``
    (SimCLIP's ``--upweight-epochs``, 0-based like its loop): the first epochs use one cluster,
    and at each listed epoch p doubles (capped at 1; SimCLIP would fail above 1) and
    ``n = max(S // cluster_size, 1)``, so clusters stay near ``cluster_size``; ``online_sim``
    ("text", "image" or None): which embeddings the trainer must set, and whether it refreshes
    them every epoch (None: text embeddings, set once before training, as SimCLIP's offline mode).
    When S is not a multiple of n the first ``S mod n`` clusters get one member more (SimCLIP
    asserts divisibility).

    Differences from the released ``get_synthesis_batch`` (its path B, the per-pivot scan):

    - Neighbours come from a k-NN table computed once per ``set_embeddings`` with faiss
      (``IndexFlatIP``, exact): for each row its ``2·m_max·s`` nearest rows (m_max: the largest
      cluster of the schedule), self and exact duplicates removed. A cluster then costs
      O(m·s) and a batch O(n·m·s), instead of an O(N·d) scan per pivot. Only when selected rows
      leave fewer than ``m·s`` of the pivot's table entries is the full scan done for that pivot,
      so the candidates are those of the released rule (ties aside); there, exact duplicates
      rank after every other row instead of being dropped, so a cluster can always be filled
      (the released code would then pick masked rows). The table costs O(N²·d) per
      ``set_embeddings`` (faiss, BLAS); with ``online_sim`` that is per epoch, more arithmetic
      than the released scans' O(N²·d·n/B) per epoch, but out of the steps. For N in the
      millions an approximate faiss index would have to build the table (not done here).
    - One "selected" set spans the batches of all ranks in a step, so a step's batches are
      disjoint; the random part is taken from one shuffle of the epoch split across ranks,
      skipping positions already selected in the step (the released code may repeat a sample
      in both parts). The synthesised parts of different steps may repeat samples, as released.
    - Members are listed cluster by cluster (pivot first), not in ascending position order.
    - The epoch has ``len(self)`` steps, like ``random`` (SimCLIP: the loader of B − S).
    """

    DUPLICATE_COS = 1.0 - 1e-6  # SimCLIP's max_sim = 1.0, with float32 rounding
    TABLE_MARGIN = 2  # table width = margin · (largest m·s): room for selected rows

    def __init__(
        self,
        num_samples: int,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        *,
        synthesis_prop: float | str = 1.0,
        num_clusters: int | None = None,
        cluster_size: int | None = None,
        neighborhood: int = 1,
        warmup_prop: bool = False,
        warmup_epochs: Sequence[int] = (4, 6, 8, 10, 12, 14, 16, 18),
        online_sim: str | None = None,
    ) -> None:
        super().__init__(num_samples, batch_size, seed, rank, world_size)
        if online_sim not in ("text", "image", None):
            raise ValueError(f"online_sim must be 'text', 'image' or null, got {online_sim!r}")
        if neighborhood < 1:
            raise ValueError(f"neighborhood must be >= 1, got {neighborhood}")
        if warmup_prop and (cluster_size is None or num_clusters is not None):
            raise ValueError("warmup_prop sets the clusters from cluster_size; give only that")
        if not warmup_prop and (num_clusters is None) == (cluster_size is None):
            raise ValueError("give exactly one of num_clusters and cluster_size")
        for name, value in (("num_clusters", num_clusters), ("cluster_size", cluster_size)):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        self.prop = _fraction(synthesis_prop)
        self.num_clusters, self.cluster_size = num_clusters, cluster_size
        self.neighborhood = neighborhood
        self.warmup_epochs = sorted(set(warmup_epochs)) if warmup_prop else []
        self.requires_embeddings = online_sim or "text"
        self.refresh_embeddings = online_sim is not None
        # the schedule is constant from the last warm-up epoch on
        last = max([0, *self.warmup_epochs])
        self.max_cluster = max(max(self.cluster_sizes(e), default=0) for e in range(last + 1))
        self._embeddings: np.ndarray | None = None
        self._neighbours = np.empty((0, 0), dtype=np.int64)
        self._embeddings_epoch = -1

    def synthesis_prop(self, epoch: int) -> Fraction:
        """p at ``epoch``: the configured p doubled at each warm-up epoch reached, at most 1."""
        doublings = sum(1 for e in self.warmup_epochs if e <= epoch)
        return min(Fraction(1), self.prop * 2**doublings)

    def cluster_sizes(self, epoch: int) -> list[int]:
        """Member counts (pivot included) of the clusters of one batch at ``epoch``; sum = S."""
        size = int(self.batch_size * self.synthesis_prop(epoch))
        if size == 0:
            return []
        if self.num_clusters is not None:
            count = self.num_clusters
        elif self.warmup_epochs and not any(e <= epoch for e in self.warmup_epochs):
            count = 1  # SimCLIP's warm-up starts from one cluster
        else:
            count = max(size // self.cluster_size, 1)
        if count > size:
            raise ValueError(f"{count} clusters cannot share {size} synthesised samples")
        return [size // count + (i < size % count) for i in range(count)]

    def set_embeddings(self, epoch: int, embeddings: np.ndarray) -> None:
        """Take ``[N, D]`` embeddings (dataset position order) and build the k-NN table."""
        array = np.asarray(embeddings, dtype=np.float32)
        if array.ndim != 2 or array.shape[0] != self.num_samples:
            raise ValueError(
                f"expected [{self.num_samples}, D] embeddings, got shape {array.shape}"
            )
        norms = np.linalg.norm(array, axis=1, keepdims=True)
        if not np.all(np.isfinite(norms) & (norms > 0)):
            raise ValueError("embeddings hold a zero or non-finite row")
        array = np.ascontiguousarray(array / norms)
        n = self.num_samples
        width = min(n - 1, self.TABLE_MARGIN * self.max_cluster * self.neighborhood)
        index = faiss.IndexFlatIP(array.shape[1])
        index.add(array)
        # +1 for the row itself; rows with exact duplicates lose table entries (module doc)
        scores, neighbours = index.search(array, width + 1)
        drop = (scores >= self.DUPLICATE_COS) | (neighbours == np.arange(n)[:, None])
        neighbours[drop] = n
        # stable: keeps the similarity order, moves the dropped (n) entries to the end
        by_drop = np.argsort(drop, axis=1, kind="stable")
        self._neighbours = np.take_along_axis(neighbours, by_drop, axis=1)[:, :width]
        self._embeddings, self._embeddings_epoch = array, epoch

    def batches(self, epoch: int) -> list[list[int]]:
        if self._embeddings is None:
            raise RuntimeError(
                f"similarity_clusters needs {self.requires_embeddings} embeddings: call "
                "set_embeddings(epoch, embeddings) before batches(epoch)"
            )
        if self.refresh_embeddings and self._embeddings_epoch != epoch:
            raise RuntimeError(
                f"online_sim={self.requires_embeddings!r} needs embeddings of epoch {epoch}; "
                f"the ones set are of epoch {self._embeddings_epoch}"
            )
        n = self.num_samples
        rng = np.random.default_rng([self.seed, epoch])
        stream = rng.permutation(n)
        sizes = self.cluster_sizes(epoch)
        random_part = self.batch_size - sum(sizes)
        selected = np.zeros(n + 1, dtype=bool)
        selected[n] = True  # the table's padding value
        head, mine = 0, []
        for _ in range(len(self)):
            step = []
            for rank in range(self.world_size):
                batch = [m for size in sizes for m in self._cluster(size, selected, rng)]
                for _ in range(random_part):
                    while selected[stream[head]]:
                        head += 1
                    batch.append(int(stream[head]))
                    selected[stream[head]] = True
                    head += 1  # consumed for the epoch, also once the step's mask is reset
                step.extend(batch)
                if rank == self.rank:
                    mine.append(batch)
            selected[step] = False
        return mine

    def _cluster(self, size: int, selected: np.ndarray, rng: np.random.Generator) -> list[int]:
        """A pivot and ``size − 1`` of its ``size·s`` nearest unselected rows; marks them."""
        n = self.num_samples
        pivot = int(rng.integers(n))  # uniform over the unselected rows, by rejection
        while selected[pivot]:
            pivot = int(rng.integers(n))
        selected[pivot] = True
        wanted = size * self.neighborhood
        row = self._neighbours[pivot]
        candidates = row[~selected[row]][:wanted]
        if len(candidates) < wanted:
            candidates = self._scan(pivot, selected, wanted)
        members = rng.choice(candidates, size - 1, replace=False) if size > 1 else []
        selected[members] = True
        return [pivot, *map(int, members)]

    def _scan(self, pivot: int, selected: np.ndarray, wanted: int) -> np.ndarray:
        """SimCLIP's full scan for one pivot: top ``wanted`` unselected rows, duplicates last."""
        scores = self._embeddings @ self._embeddings[pivot]
        scores[scores >= self.DUPLICATE_COS] = -2.0  # below any cosine: only if nothing else
        scores[selected[:-1]] = -np.inf
        order = np.argsort(-scores, kind="stable")[:wanted]
        return order[np.isfinite(scores[order])]


def build_sampler(
    name: str, num_samples: int, batch_size: int, seed: int, **params
) -> BatchSampler:
    return SAMPLERS.get(name)(num_samples=num_samples, batch_size=batch_size, seed=seed, **params)
