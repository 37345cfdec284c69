"""HELIP hard pair mining: for every pair, the pairs most similar to it in both modalities.

Score of pairs p, q (docs/algorithms.md §2):
``score(p, q) = cos(img_p, img_q) · cos(txt_p, txt_q)``,
with HELIP's near-duplicate rules applied to the cosines first:

- text cosine > 0.995: the pair itself or a caption duplicate; excluded, never a hard pair (the
  released code gives it a sentinel score and then overwrites column 0 with the anchor);
- text cosine > 0.98 or image cosine > 0.98: a near-duplicate; its score is 0, so it only fills
  slots when fewer than ``topk`` pairs score above 0.

The anchor is always excluded; rows are ordered hardest first (equal scores by ascending index)
and padded with -1 where fewer than ``topk`` candidates exist.

Search strategies live in :data:`MINING_INDEXES`:

- ``flat`` is exact. The product score is not an inner product of the d-dimensional embeddings
  (it is one of their d²-dimensional Kronecker products, too wide to index), so a faiss
  ``IndexFlatIP`` cannot rank by it. Instead the exact score is computed block by block with BLAS
  (``chunk_size`` anchors × ``db_chunk_size`` pairs, never N × N), merging a running top-k per
  anchor. Plain numpy on purpose: merging with faiss's ``ResultHeap`` interleaved its OpenMP
  threads with BLAS's and ran eight times slower on a 2-core machine.
- ``ivf`` and ``hnsw`` are approximate. Candidates come from one faiss inner-product index over the
  concatenated vectors ``z = [img, txt] / √2`` (so ``z_p·z_q`` is the mean of the two cosines),
  then they are rescored exactly with the product score. The mean is a sound proxy: by AM–GM,
  ``√score ≤ mean`` when both cosines are positive, so a high product needs a high mean. Two
  negative cosines also give a positive product, so by default the index is searched with ``-z``
  as well (``both_signs``); on real encoders, whose embeddings lie in a cone, that second search
  finds nothing hard and can be switched off to halve the search cost. One index over ``z``
  rather than one per modality: a hard pair must be close in both, which one search of the mean
  captures, at the memory of one index.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Protocol

import faiss
import numpy as np

from clipflow.registry import Registry

# docs/algorithms.md §2, HELIP's hard_pair_mining.py thresholds
DUPLICATE_TEXT_COS = 0.995
NEAR_DUPLICATE_COS = 0.98

_RESCORE_FLOATS = 1 << 24  # gathered candidate vectors per rescoring block (64 MiB of float32)


def default_candidates(topk: int) -> int:
    """Index candidates per sign that approximate searches rescore: 2·topk + 1.

    Rescoring (gathering each candidate's vectors) costs most of an approximate search; at N =
    30k (benchmarks/mining_speed.py) 2·topk + 1 and 4·topk + 1 both reached recall@10 1.0000,
    and the smaller took 16% less time.
    """
    return 2 * topk + 1


class HardPairSearch(Protocol):
    """``(image, text, topk, queries, chunk_size, **opts) -> (indices, scores)``, both [Q, topk]."""

    def __call__(
        self,
        image: np.ndarray,
        text: np.ndarray,
        topk: int,
        queries: np.ndarray,
        chunk_size: int,
        **opts: object,
    ) -> tuple[np.ndarray, np.ndarray]: ...


MINING_INDEXES: Registry[HardPairSearch] = Registry("mining index")


def pair_scores(image_cos: np.ndarray, text_cos: np.ndarray) -> np.ndarray:
    """HELIP's pair score from the two cosines, with its near-duplicate rules (§2).

    Excluded pairs (text cosine > 0.995) score ``-inf``; near-duplicates score 0.
    """
    scores = image_cos * text_cos
    scores[(text_cos > NEAR_DUPLICATE_COS) | (image_cos > NEAR_DUPLICATE_COS)] = 0.0
    scores[text_cos > DUPLICATE_TEXT_COS] = -np.inf
    return scores


def normalise(embeddings: np.ndarray, name: str) -> np.ndarray:
    """Rows scaled to unit length as C-contiguous float32; zero or non-finite rows are an error."""
    array = np.asarray(embeddings, dtype=np.float32)
    if array.ndim != 2 or array.shape[0] == 0:
        raise ValueError(f"{name}: expected a non-empty [N, D] array, got shape {array.shape}")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    bad = ~np.isfinite(norms[:, 0]) | (norms[:, 0] == 0)
    if bad.any():
        raise ValueError(f"{name}: row {int(np.flatnonzero(bad)[0])} is zero or not finite")
    return np.ascontiguousarray(array / norms)


def mine_hard_pairs(
    image_emb: np.ndarray,
    text_emb: np.ndarray,
    topk: int,
    index: str = "flat",
    chunk_size: int = 1024,
    queries: np.ndarray | None = None,
    **opts: object,
) -> np.ndarray:
    """Hard-pair indices ``int64 [Q, topk]`` per anchor, hardest first, -1 padded (§2).

    ``image_emb``/``text_emb`` are [N, D] (normalised here, so raw encoder outputs work);
    ``queries`` selects the anchors (positions, default all N), ``index`` names a strategy in
    :data:`MINING_INDEXES` and ``opts`` are its options. Anchors are processed ``chunk_size`` at a
    time so memory stays linear in N.
    """
    image = normalise(image_emb, "image embeddings")
    text = normalise(text_emb, "text embeddings")
    if image.shape[0] != text.shape[0]:
        raise ValueError(
            f"image and text embeddings differ in length: {image.shape[0]} != {text.shape[0]}"
        )
    if topk < 1 or chunk_size < 1:
        raise ValueError(f"topk and chunk_size must be >= 1, got {topk} and {chunk_size}")
    queries = _queries(queries, image.shape[0])
    search = MINING_INDEXES.get(index)
    known = list(inspect.signature(search).parameters)[5:]  # after the five common arguments
    unknown = sorted(set(opts) - set(known))
    if unknown:
        raise ValueError(
            f"mining index {index!r} has no option(s) {', '.join(unknown)}; "
            f"known: {', '.join(known)}"
        )
    indices, _ = search(image, text, topk, queries, chunk_size, **opts)
    return indices


def hard_pair_scores(
    image_emb: np.ndarray, text_emb: np.ndarray, hard: np.ndarray, queries: np.ndarray | None = None
) -> np.ndarray:
    """The score of every (anchor, hard pair) in ``hard`` ([Q, k]); ``nan`` where padded."""
    image = normalise(image_emb, "image embeddings")
    text = normalise(text_emb, "text embeddings")
    queries = _queries(queries, image.shape[0])
    scores = _rescore(image, text, queries, np.asarray(hard, dtype=np.int64))
    return np.where(np.asarray(hard) < 0, np.nan, scores)


def recall_at_k(approx: np.ndarray, exact: np.ndarray, k: int | None = None) -> float:
    """Mean over anchors of |approx top-k ∩ exact top-k| / |exact top-k|, padding (-1) ignored."""
    approx, exact = np.asarray(approx), np.asarray(exact)
    if approx.shape[0] != exact.shape[0]:
        raise ValueError(
            f"recall_at_k: {approx.shape[0]} approximate rows, {exact.shape[0]} exact rows"
        )
    k = exact.shape[1] if k is None else k
    recalls = []
    for found, truth in zip(approx[:, :k], exact[:, :k], strict=True):
        truth = set(truth[truth >= 0].tolist())
        if truth:
            recalls.append(len(truth.intersection(found.tolist())) / len(truth))
    return float(np.mean(recalls)) if recalls else 1.0


def _queries(queries: np.ndarray | None, n: int) -> np.ndarray:
    if queries is None:
        return np.arange(n, dtype=np.int64)
    queries = np.asarray(queries, dtype=np.int64)
    if queries.ndim != 1 or (queries.size and (queries.min() < 0 or queries.max() >= n)):
        raise ValueError(f"queries must be positions in [0, {n}), got shape {queries.shape}")
    return queries


def _rescore(
    image: np.ndarray, text: np.ndarray, queries: np.ndarray, candidates: np.ndarray
) -> np.ndarray:
    """Exact scores of ``candidates`` [Q, C] for each query (-inf for -1 and the anchor itself)."""
    scores = np.full(candidates.shape, -np.inf, dtype=np.float32)
    rows = max(1, _RESCORE_FLOATS // max(1, candidates.shape[1] * image.shape[1]))
    for start in range(0, len(queries), rows):
        q = queries[start : start + rows]
        cand = candidates[start : start + rows]
        safe = np.where(cand >= 0, cand, 0)
        image_cos = np.einsum("qd,qcd->qc", image[q], image[safe])
        text_cos = np.einsum("qd,qcd->qc", text[q], text[safe])
        block = pair_scores(image_cos, text_cos)
        block[(cand < 0) | (cand == q[:, None])] = -np.inf
        scores[start : start + rows] = block
    return scores


def _best_first(
    indices: np.ndarray, scores: np.ndarray, topk: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: drop repeated and invalid candidates, keep the top-k by score then index, pad -1."""
    by_index = np.argsort(indices, axis=1, kind="stable")
    indices = np.take_along_axis(indices, by_index, axis=1)
    scores = np.take_along_axis(scores, by_index, axis=1)
    scores[:, 1:][indices[:, 1:] == indices[:, :-1]] = -np.inf
    order = np.argsort(-scores, axis=1, kind="stable")[:, :topk]  # stable: ties by index
    indices = np.take_along_axis(indices, order, axis=1)
    scores = np.take_along_axis(scores, order, axis=1)
    invalid = ~np.isfinite(scores)
    indices[invalid] = -1
    if indices.shape[1] < topk:
        pad = topk - indices.shape[1]
        indices = np.pad(indices, ((0, 0), (0, pad)), constant_values=-1)
        scores = np.pad(scores, ((0, 0), (0, pad)), constant_values=-np.inf)
    return indices, scores


@MINING_INDEXES.register("flat")
def exact_search(
    image: np.ndarray,
    text: np.ndarray,
    topk: int,
    queries: np.ndarray,
    chunk_size: int,
    db_chunk_size: int = 16384,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by the product score, in [chunk_size × db_chunk_size] blocks (module doc)."""
    n = image.shape[0]
    out_indices = np.full((len(queries), topk), -1, dtype=np.int64)
    out_scores = np.full((len(queries), topk), -np.inf, dtype=np.float32)
    for start in range(0, len(queries), chunk_size):
        q = queries[start : start + chunk_size]
        best_indices = np.full((len(q), 0), -1, dtype=np.int64)
        best_scores = np.full((len(q), 0), -np.inf, dtype=np.float32)
        for db_start in range(0, n, db_chunk_size):
            db = np.arange(db_start, min(n, db_start + db_chunk_size), dtype=np.int64)
            block = pair_scores(image[q] @ image[db].T, text[q] @ text[db].T)
            block[q[:, None] == db[None, :]] = -np.inf
            scores = np.hstack([best_scores, block])
            indices = np.hstack([best_indices, np.broadcast_to(db, block.shape)])
            if scores.shape[1] > topk:  # keep k per row: memory stays chunk × (k + db_chunk)
                keep = np.argpartition(-scores, topk - 1, axis=1)[:, :topk]
                scores = np.take_along_axis(scores, keep, axis=1)
                indices = np.take_along_axis(indices, keep, axis=1)
            best_scores, best_indices = scores, indices
        indices, scores = _best_first(best_indices, best_scores, topk)
        out_indices[start : start + len(q)] = indices
        out_scores[start : start + len(q)] = scores
    return out_indices, out_scores


def _joint(image: np.ndarray, text: np.ndarray) -> np.ndarray:
    """``z = [img, txt] / √2``: unit vectors whose inner product is the mean of the two cosines."""
    return np.ascontiguousarray(np.hstack([image, text]) / np.sqrt(2.0), dtype=np.float32)


def _approximate_search(
    build: Callable[[np.ndarray], faiss.Index],
    image: np.ndarray,
    text: np.ndarray,
    topk: int,
    queries: np.ndarray,
    chunk_size: int,
    candidates: int | None,
    both_signs: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Candidates from an index over ``z = [img, txt]/√2``, rescored exactly (module doc)."""
    index = build(_joint(image, text))  # the full z lives only while the index is built
    n = image.shape[0]
    per_sign = min(n, candidates if candidates is not None else default_candidates(topk))
    out_indices = np.full((len(queries), topk), -1, dtype=np.int64)
    out_scores = np.full((len(queries), topk), -np.inf, dtype=np.float32)
    for start in range(0, len(queries), chunk_size):
        q = queries[start : start + chunk_size]
        z = _joint(image[q], text[q])
        found = [index.search(z, per_sign)[1]]
        if both_signs:
            found.append(index.search(-z, per_sign)[1])
        cand = np.hstack(found).astype(np.int64)
        indices, scores = _best_first(cand, _rescore(image, text, q, cand), topk)
        out_indices[start : start + len(q)] = indices
        out_scores[start : start + len(q)] = scores
    return out_indices, out_scores


def faiss_gpus() -> int:
    """GPUs faiss can use: 0 with the faiss-cpu wheel or without CUDA devices."""
    return faiss.get_num_gpus() if hasattr(faiss, "StandardGpuResources") else 0


@MINING_INDEXES.register("ivf")
def ivf_search(
    image: np.ndarray,
    text: np.ndarray,
    topk: int,
    queries: np.ndarray,
    chunk_size: int,
    nlist: int | None = None,
    nprobe: int = 3,
    candidates: int | None = None,
    both_signs: bool = True,
    use_gpu: bool | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Approximate search with a faiss ``IndexIVFFlat`` (inner product) over ``z``.

    ``use_gpu`` (default: whenever faiss sees a GPU, i.e. the faiss-gpu build on a CUDA machine)
    trains and searches the index on GPU 0; the exact rescoring stays on the CPU.

    ``nlist`` defaults to 4·√N, capped so k-means has 39 points per list (faiss's minimum);
    ``candidates`` (per sign) to 2·topk + 1. IVF relies on cluster structure, which encoder
    embeddings have; on structureless (isotropic) vectors raise ``nprobe`` towards ``nlist``.
    Defaults measured with benchmarks/mining_speed.py (clustered 512-d pairs, top-20, one thread;
    results in benchmarks/results/mining_speed.100k-defaults.*): at N = 100k, ``nprobe`` 3 with
    2·topk + 1 candidates ran 7.0× faster than ``flat`` at recall@10 0.9997 (``nprobe`` 4: 5.8×
    at 0.9998; the earlier 4 with 4·topk + 1 candidates: 4.9–5.3× at 0.9998).
    """

    def build(z: np.ndarray) -> faiss.Index:
        n, dim = z.shape
        lists = nlist or max(1, min(int(4 * np.sqrt(n)), n // 39))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, lists, faiss.METRIC_INNER_PRODUCT)
        gpus = faiss_gpus()
        if use_gpu and not gpus:
            raise ValueError(
                "mining option use_gpu: faiss sees no GPU (faiss-cpu build or no CUDA)"
            )
        if gpus and use_gpu is not False:
            resources = faiss.StandardGpuResources()
            index = faiss.index_cpu_to_gpu(resources, 0, index)
            index.referenced_objects = [resources]  # faiss's idiom: keep them alive with it
        index.train(z)
        index.add(z)
        index.nprobe = min(nprobe, lists)
        return index

    return _approximate_search(
        build, image, text, topk, queries, chunk_size, candidates, both_signs
    )


@MINING_INDEXES.register("hnsw")
def hnsw_search(
    image: np.ndarray,
    text: np.ndarray,
    topk: int,
    queries: np.ndarray,
    chunk_size: int,
    m: int = 32,
    ef_construction: int = 80,
    ef_search: int | None = None,
    candidates: int | None = None,
    both_signs: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Approximate search with a faiss ``IndexHNSWFlat`` (inner product) over ``z``.

    ``ef_search`` defaults to max(candidates, 64), the least that can return ``candidates``
    neighbours reliably; ``candidates`` (per sign) to 2·topk + 1.
    """
    per_sign = candidates if candidates is not None else default_candidates(topk)

    def build(z: np.ndarray) -> faiss.Index:
        index = faiss.IndexHNSWFlat(z.shape[1], m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
        index.add(z)
        index.hnsw.efSearch = ef_search or max(per_sign, 64)
        return index

    return _approximate_search(build, image, text, topk, queries, chunk_size, per_sign, both_signs)
