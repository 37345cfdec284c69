"""Batch samplers: HELIP hard-pair batches (docs/algorithms.md §2) and SimCLIP similarity clusters
(§6).

Hard pairs are mined from clustered embeddings and written in HELIP's CSV format; similarity
clusters are checked against planted groups and against SimCLIP's per-pivot full scan.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from clipflow.mining import mine_hard_pairs, write_helip_outputs
from clipflow.sampling.samplers import (
    SAMPLERS,
    HardPairBatches,
    RandomBatches,
    SimilarityClusterBatches,
    build_sampler,
)

N, TOPK, PARTNERS = 600, 60, 50


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def hard_csv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """HELIP's CSV for N pairs from 15 shared topics (tests/mining's generator), url index = row."""
    rng = np.random.default_rng(1)
    base = rng.normal(size=(15, 16))[rng.integers(0, 15, N)] + 0.7 * rng.normal(size=(N, 16))
    image = unit(base + 0.5 * rng.normal(size=base.shape) + 1.0)
    text = unit(base @ rng.normal(size=(16, 16)) / 4 + 0.5 * rng.normal(size=base.shape) + 1.0)
    hard = mine_hard_pairs(image, text, TOPK)
    path = tmp_path_factory.mktemp("helip") / "syn_hard_sample.csv"
    write_helip_outputs(hard, np.arange(N), path, path.with_suffix(".json"))
    return path, hard


def hard_batches(
    path: Path, batch_size: int = 40, world_size: int = 1, epoch: int = 0, **kw: int
) -> list[list[list[int]]]:
    """Every rank's batches of one epoch, in rank order."""
    return [
        HardPairBatches(N, batch_size, 7, rank, world_size, hard_pairs=path, **kw).batches(epoch)
        for rank in range(world_size)
    ]


def test_registry_and_build() -> None:
    assert SAMPLERS.names() == ["hard_pairs", "random", "similarity_clusters"]
    sampler = build_sampler("random", 100, 8, 0, rank=1, world_size=2)
    assert len(sampler) == 6 and sampler.requires_embeddings is None


def test_hard_pair_batches_are_anchor_partner_pairs(hard_csv: tuple[Path, np.ndarray]) -> None:
    path, hard = hard_csv
    (batches,) = hard_batches(path)
    assert len(batches) == len(RandomBatches(N, 40, 7)) == 15
    used: set[int] = set()  # replay the epoch in order: the only process, so the global order
    hard_partners = 0
    for batch in batches:
        assert len(batch) == 40 and len(set(batch)) == 40  # no index twice in a batch
        for anchor, partner in zip(batch[::2], batch[1::2], strict=True):
            assert anchor not in used and partner not in used  # each position once per epoch
            used.add(anchor)
            candidates = set(hard[anchor, :PARTNERS].tolist())
            if partner in candidates:
                hard_partners += 1
            else:  # random partner only when every candidate was already used
                assert candidates <= used
            used.add(partner)
    assert len(used) == N  # N is a multiple of the batch: every position covered
    assert hard_partners / (N // 2) > 0.9


def test_hard_pair_ranks_are_disjoint_and_deterministic(
    hard_csv: tuple[Path, np.ndarray],
) -> None:
    path, _ = hard_csv
    shares = hard_batches(path, batch_size=32, world_size=3)
    assert [len(s) for s in shares] == [len(RandomBatches(N, 32, 7, r, 3)) for r in range(3)]
    seen = [i for share in shares for batch in share for i in batch]
    assert len(seen) == len(set(seen)) == 6 * 32 * 3  # disjoint, 600 // 96 steps of 3 × 32
    assert hard_batches(path, 32, 3) == shares != hard_batches(path, 32, 3, epoch=1)


def test_partners_topk_limits_the_candidates(hard_csv: tuple[Path, np.ndarray]) -> None:
    path, hard = hard_csv
    (batches,) = hard_batches(path, partners_topk=1)
    used: set[int] = set()
    for batch in batches:
        for anchor, partner in zip(batch[::2], batch[1::2], strict=True):
            used.add(anchor)
            assert partner == hard[anchor, 0] or hard[anchor, 0] in used  # the hardest, if free
            used.add(partner)


def test_index_to_position_maps_url_indices(tmp_path: Path) -> None:
    # 8 pairs whose url indices are 100 + 7 - position; url 999 is not in the dataset
    path = tmp_path / "ids_hard_sample.csv"
    path.write_text("".join(f"{100 + i},999,{100 + (i ^ 1)}\r\n" for i in range(8)))
    mapping = {100 + i: 7 - i for i in range(8)}
    sampler = HardPairBatches(8, 4, 0, hard_pairs=path, index_to_position=mapping)
    for batch in sampler.batches(0):
        for anchor, partner in zip(batch[::2], batch[1::2], strict=True):
            assert partner == 7 - ((7 - anchor) ^ 1)  # the mapped hard pair, 999 dropped
    with pytest.raises(ValueError, match="url index 100 is not a position of the 8"):
        HardPairBatches(8, 4, 0, hard_pairs=path)


def test_hard_partner_is_uniform_over_the_first_topk_entries(tmp_path: Path) -> None:
    """HELIP's partner draw, re-typed from haonan3/HELIP ``src/training/data.py``,
    ``CustomDistributedSampler.__iter__``: ``hard_idx_list[random.choice(range(topk))]`` with
    ``hard_idx_list`` the CSV row after its anchor. On a hand-written CSV (anchor a's hard pairs
    are a+1, ..., a+8 mod 64), the first pair of every epoch (all positions still free) must
    take the candidate of rank r ∈ [0, topk) with probability 1/topk, and never one past topk."""
    n, topk, epochs = 64, 5, 1000
    path = tmp_path / "ring_hard_sample.csv"
    path.write_text("".join(",".join(str((a + k) % n) for k in range(9)) + "\n" for a in range(n)))
    sampler = HardPairBatches(n, 8, 11, hard_pairs=path, partners_topk=topk)
    counts = np.zeros(topk, dtype=int)
    for epoch in range(epochs):
        anchor, partner = sampler.batches(epoch)[0][:2]
        rank = (partner - anchor) % n - 1
        assert 0 <= rank < topk
        counts[rank] += 1
    expected = epochs / topk  # 200 each; binomial sd 12.6, so ±50 is about 4 sd
    assert np.all(np.abs(counts - expected) < 50), counts


def test_hard_pairs_rejects_odd_batches(hard_csv: tuple[Path, np.ndarray]) -> None:
    with pytest.raises(ValueError, match="even batch size"):
        HardPairBatches(N, 5, 0, hard_pairs=hard_csv[0])


def planted(groups: int, size: int, dim: int = 64, seed: int = 0) -> np.ndarray:
    """``groups`` tight groups of ``size`` rows around random directions, in group order."""
    rng = np.random.default_rng(seed)
    centres = unit(rng.normal(size=(groups, dim)))
    return unit(np.repeat(centres, size, axis=0) + 0.05 * rng.normal(size=(groups * size, dim)))


def clusters(batch: list[int], sizes: list[int]) -> list[list[int]]:
    starts = np.cumsum([0, *sizes])
    return [batch[a:b] for a, b in zip(starts[:-1], starts[1:], strict=True)]


def test_p1_batches_are_clusters_of_planted_groups() -> None:
    # a cluster takes m - 1 of its pivot's m nearest unselected rows (s = 1); groups of 144 keep
    # at least m unselected groupmates for any pivot of a step (8 clusters of 16 across 2 ranks)
    embeddings = planted(4, 144)  # rows 144g..144g+143 form group g
    shares = []
    for rank in range(2):
        sampler = SimilarityClusterBatches(576, 64, 3, rank, 2, num_clusters=4)
        sampler.set_embeddings(0, embeddings)
        shares.append(sampler.batches(0))
    assert len(shares[0]) == len(RandomBatches(576, 64, 3, 0, 2)) == 4
    for step in zip(*shares, strict=True):
        assert len({i for batch in step for i in batch}) == 128  # ranks disjoint in a step
        for batch in step:
            for cluster in clusters(batch, [16] * 4):
                assert {i // 144 for i in cluster} == {cluster[0] // 144}


def full_scan_candidates(
    embeddings: np.ndarray, pivot: int, selected: set[int], wanted: int
) -> set[int]:
    """SimCLIP's rule, re-typed from sx-liu/SimCLIP ``models/data.py``,
    ``CLIPEmbeddingDataset.get_synthesis_batch`` (its path B, no k-NN table): top ``wanted`` by
    cosine, pivot, selected rows and duplicates (cosine >= max_sim = 1) excluded (every row tied
    with the last one kept, as tie order is not part of the rule)."""
    scores = embeddings @ embeddings[pivot]
    scores[scores >= 1 - 1e-6] = -2.0
    scores[list(selected | {pivot})] = -np.inf
    return set(np.flatnonzero(scores >= np.sort(scores)[::-1][wanted - 1] - 1e-6).tolist())


@pytest.mark.parametrize("num_samples", [256, 100])  # 2 steps; 1 step selecting 96 of 100 rows
def test_clusters_follow_simclip_full_scan(
    num_samples: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(5)
    embeddings = unit(rng.normal(size=(num_samples, 8)))
    embeddings[10:14] = embeddings[9]  # exact duplicates: never candidates while others remain
    scans = []
    scan = SimilarityClusterBatches._scan
    monkeypatch.setattr(
        SimilarityClusterBatches, "_scan", lambda self, *a: scans.append(a) or scan(self, *a)
    )
    shares = []
    for rank in range(2):
        sampler = SimilarityClusterBatches(
            num_samples, 48, 1, rank, 2, synthesis_prop=0.75, num_clusters=5, neighborhood=2
        )
        sampler.set_embeddings(0, embeddings)
        shares.append(sampler.batches(0))
    sizes = sampler.cluster_sizes(0)
    assert sizes == [8, 7, 7, 7, 7] and len(shares[0]) == num_samples // 96
    randoms: list[int] = []
    for step in zip(*shares, strict=True):
        selected: set[int] = set()
        for batch in step:  # the step's selection order: rank 0's clusters, its random, rank 1's
            assert len(batch) == 48 == len(set(batch))
            for cluster in clusters(batch, sizes):
                pivot, members = cluster[0], set(cluster[1:])
                assert pivot not in selected
                assert members <= full_scan_candidates(
                    embeddings, pivot, selected, 2 * len(cluster)
                )
                selected |= set(cluster)
            assert not selected & set(batch[36:])
            selected |= set(batch[36:])
            randoms += batch[36:]
    assert len(randoms) == len(set(randoms))  # the random parts share one shuffle of the epoch
    if num_samples == 100:  # the table ran short of unselected rows: the full scan took over
        assert scans


def test_warmup_doubles_p_and_keeps_cluster_size() -> None:
    sampler = SimilarityClusterBatches(
        512, 64, 0, synthesis_prop="1/16", cluster_size=4, warmup_prop=True, warmup_epochs=[2, 4, 5]
    )
    props = [sampler.synthesis_prop(e) for e in range(8)]
    assert (
        props
        == [Fraction(1, 16)] * 2
        + [Fraction(1, 8)] * 2
        + [Fraction(1, 4), Fraction(1, 2)]
        + [Fraction(1, 2)] * 2
    )
    assert [sampler.cluster_sizes(e) for e in (0, 2, 4, 5)] == [[4], [4, 4], [4] * 4, [4] * 8]
    sampler.set_embeddings(0, planted(8, 64))  # >= 4 free groupmates for each of 8 pivots
    for epoch, groups in ((0, 1), (2, 2), (5, 8)):
        for batch in sampler.batches(epoch):
            assert len(batch) == 64 == len(set(batch))
            for cluster in clusters(batch, [4] * groups):
                assert {i // 64 for i in cluster} == {cluster[0] // 64}
    default = SimilarityClusterBatches(
        2048, 512, 0, synthesis_prop="1/512", cluster_size=16, warmup_prop=True
    )
    assert [int(512 * default.synthesis_prop(e)) for e in (0, 3, 4, 6, 17, 18, 30)] == [
        1,
        1,
        2,
        4,
        128,
        256,
        256,
    ]
    assert default.cluster_sizes(18) == [16] * 16
    capped = SimilarityClusterBatches(
        512, 64, 0, synthesis_prop=0.75, cluster_size=16, warmup_prop=True
    )
    assert capped.synthesis_prop(4) == 1 and capped.cluster_sizes(4) == [16] * 4


def test_embeddings_are_required_and_named() -> None:
    offline = SimilarityClusterBatches(64, 16, 0, num_clusters=2)
    assert offline.requires_embeddings == "text" and not offline.refresh_embeddings
    with pytest.raises(RuntimeError, match="needs text embeddings: call set_embeddings"):
        offline.batches(0)
    offline.set_embeddings(0, planted(8, 8))
    assert offline.batches(3) == offline.batches(3) != offline.batches(4)
    online = SimilarityClusterBatches(64, 16, 0, num_clusters=2, online_sim="image")
    assert online.requires_embeddings == "image" and online.refresh_embeddings
    online.set_embeddings(0, planted(8, 8))
    with pytest.raises(
        RuntimeError, match="needs embeddings of epoch 1; the ones set are of epoch 0"
    ):
        online.batches(1)
    with pytest.raises(ValueError, match=r"expected \[64, D\] embeddings"):
        online.set_embeddings(1, planted(4, 8))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"num_clusters": 2, "cluster_size": 4}, "exactly one of num_clusters and cluster_size"),
        ({"warmup_prop": True, "num_clusters": 2}, "give only that"),
        ({"num_clusters": 2, "synthesis_prop": "1/0"}, "must be a number or a fraction"),
        ({"num_clusters": 2, "synthesis_prop": 1.5}, r"must be in \[0, 1\]"),
        ({"num_clusters": 9, "synthesis_prop": "1/2"}, "9 clusters cannot share 8"),
        ({"num_clusters": 2, "online_sim": "audio"}, "online_sim must be"),
    ],
)
def test_similarity_clusters_bad_params(params: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SimilarityClusterBatches(64, 16, 0, **params)
