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

Search strategies live in :data:`MINING_INDEXES` (docs/mining.md has the measurements):

- ``flat`` is exact. The product score is not an inner product of the d-dimensional embeddings
  (it is one of their d²-dimensional Kronecker products, too wide to index), so a faiss
  ``IndexFlatIP`` cannot rank by it. Instead the two cosine blocks are computed with BLAS
  (``chunk_size`` anchors × ``db_chunk_size`` pairs, never N × N) and only the pairs at or above
  each anchor's running k-th best are scored with the rules and merged, so the two matmuls are
  most of its time.
- ``ivf`` is approximate in which pairs an anchor meets, exact in how it ranks them: pairs are
  grouped in inverted lists by spherical k-means over ``z = [img, txt] / √2`` (``z_p·z_q`` is the
  mean of the two cosines; by AM–GM ``√score ≤ mean`` when both are positive, so a high product
  needs a high mean) reduced by PCA, and each anchor's ``nprobe`` nearest lists are scanned with
  the exact score, list by list, by matrix products.
- ``hnsw`` takes candidates from a faiss HNSW index over ``z`` and rescores them exactly.

Two negative cosines also give a positive product, so the approximate indexes also search
``-z`` (``both_signs``), but only for the anchors :func:`negative_pair_bound` does not clear: on
encoder embeddings, which lie in a cone, almost none.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import faiss
import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from clipflow.registry import Registry

# docs/algorithms.md §2, HELIP's hard_pair_mining.py thresholds
DUPLICATE_TEXT_COS = 0.995
NEAR_DUPLICATE_COS = 0.98

_RESCORE_QUERIES = 16384  # anchors whose vectors are copied at once when rescoring
_PCA_SAMPLE = 20000  # pairs whose second moments give the ivf index's PCA directions
_BLOCK_SCORES = 1 << 22  # (anchor, pair) scores a list scan holds at once
_UNIT_TOLERANCE = 1e-5  # |norm - 1| under which a float32 row counts as unit already
_BOUND_MARGIN = 1e-4  # on negative_pair_bound, for the rounding of its cosines


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
    """Rows scaled to unit length as C-contiguous float32; zero or non-finite rows are an error.

    Returns ``embeddings`` itself when it already is that (so at 1M pairs no second copy).
    """
    array = np.asarray(embeddings, dtype=np.float32)
    if array.ndim != 2 or array.shape[0] == 0:
        raise ValueError(f"{name}: expected a non-empty [N, D] array, got shape {array.shape}")
    norms = np.empty((array.shape[0], 1), dtype=np.float32)
    for start in range(0, len(array), _RESCORE_QUERIES):  # no [N, D] temporary
        block = array[start : start + _RESCORE_QUERIES]
        norms[start : start + len(block), 0] = np.sqrt(np.einsum("nd,nd->n", block, block))
    bad = ~np.isfinite(norms[:, 0]) | (norms[:, 0] == 0)
    if bad.any():
        raise ValueError(f"{name}: row {int(np.flatnonzero(bad)[0])} is zero or not finite")
    if array.flags.c_contiguous and np.all(np.abs(norms - 1) < _UNIT_TOLERANCE):
        return array  # already unit rows (saved embeddings are): no copy of [N, D]
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


def _inner_products(queries: np.ndarray, vectors: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """``queries[i] · vectors[candidates[i, j]]`` ([Q, C]; -inf where the candidate is -1).

    faiss's threaded ``fvec_inner_products_by_idx`` reads each candidate row in place, where a
    numpy gather copies it first (5x slower at 100k pairs, 512-d).
    """
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    candidates = np.ascontiguousarray(candidates, dtype=np.int64)
    out = np.empty(candidates.shape, dtype=np.float32)
    faiss.fvec_inner_products_by_idx(
        faiss.swig_ptr(out),
        faiss.swig_ptr(queries),
        faiss.swig_ptr(vectors),
        faiss.swig_ptr(candidates),
        vectors.shape[1],
        candidates.shape[0],
        candidates.shape[1],
    )
    return out


def _rescore(
    image: np.ndarray, text: np.ndarray, queries: np.ndarray, candidates: np.ndarray
) -> np.ndarray:
    """Exact scores of ``candidates`` [Q, C] for each query (-inf for -1 and the anchor itself)."""
    candidates = np.asarray(candidates, dtype=np.int64)
    scores = np.empty(candidates.shape, dtype=np.float32)
    for start in range(0, len(queries), _RESCORE_QUERIES):
        q = queries[start : start + _RESCORE_QUERIES]
        cand = candidates[start : start + _RESCORE_QUERIES]
        block = pair_scores(
            _inner_products(image[q], image, cand), _inner_products(text[q], text, cand)
        )
        block[(cand < 0) | (cand == q[:, None])] = -np.inf
        scores[start : start + len(q)] = block
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
    """Exact top-k by the product score, in [chunk_size × db_chunk_size] blocks (module doc).

    Only the two matmuls touch every (anchor, pair): a block's scores are compared with each
    anchor's current k-th best and only the few above it are scored with HELIP's rules and merged.
    The product can only rise under the rules (a near-duplicate's negative product becomes 0)
    when the k-th best is negative, so only those anchors also take their near-duplicates.
    """
    n = image.shape[0]
    out_indices = np.full((len(queries), topk), -1, dtype=np.int64)
    out_scores = np.full((len(queries), topk), -np.inf, dtype=np.float32)
    for start in range(0, len(queries), chunk_size):
        q = queries[start : start + chunk_size]
        query_image, query_text = image[q], text[q]
        best_indices = np.full((len(q), topk), -1, dtype=np.int64)
        best_scores = np.full((len(q), topk), -np.inf, dtype=np.float32)
        for db_start in range(0, n, db_chunk_size):
            db_stop = min(n, db_start + db_chunk_size)
            image_cos = query_image @ image[db_start:db_stop].T
            text_cos = query_text @ text[db_start:db_stop].T
            product = image_cos * text_cos
            bar = best_scores[:, -1].copy()
            unfilled = np.flatnonzero(bar == -np.inf)
            if len(unfilled) and product.shape[1] > topk:  # k-th best of this block instead
                scored = pair_scores(image_cos[unfilled], text_cos[unfilled])
                bar[unfilled] = np.partition(scored, -topk, axis=1)[:, -topk]
            take = product >= bar[:, None]
            below_zero = np.flatnonzero(bar < 0)
            if len(below_zero):
                take[below_zero] |= (image_cos[below_zero] > NEAR_DUPLICATE_COS) | (
                    text_cos[below_zero] > NEAR_DUPLICATE_COS
                )
            rows, cols = np.nonzero(take)
            scores = pair_scores(image_cos[rows, cols], text_cos[rows, cols])
            cols += db_start
            scores[cols == q[rows]] = -np.inf
            best_indices, best_scores = _merge_top(
                best_indices, best_scores, rows, cols, scores, topk
            )
        out_indices[start : start + len(q)] = best_indices
        out_scores[start : start + len(q)] = best_scores
    return out_indices, out_scores


def _merge_top(
    best_indices: np.ndarray,
    best_scores: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    scores: np.ndarray,
    topk: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's top-k of its current best and the new (row, col, score) entries, best first
    (equal scores by ascending index), -1/-inf padded; -inf entries never enter."""
    held = np.isfinite(best_scores)
    held_rows = np.broadcast_to(np.arange(len(best_scores))[:, None], best_scores.shape)[held]
    fresh = np.isfinite(scores)
    all_rows = np.concatenate([held_rows, rows[fresh]])
    all_cols = np.concatenate([best_indices[held], cols[fresh]])
    all_scores = np.concatenate([best_scores[held], scores[fresh]])
    order = np.lexsort((all_cols, -all_scores, all_rows))
    all_rows, all_cols, all_scores = all_rows[order], all_cols[order], all_scores[order]
    rank = np.arange(len(all_rows)) - np.searchsorted(all_rows, all_rows)
    kept = rank < topk
    merged_indices = np.full(best_indices.shape, -1, dtype=np.int64)
    merged_scores = np.full(best_scores.shape, -np.inf, dtype=np.float32)
    merged_indices[all_rows[kept], rank[kept]] = all_cols[kept]
    merged_scores[all_rows[kept], rank[kept]] = all_scores[kept]
    return merged_indices, merged_scores


def _joint(image: np.ndarray, text: np.ndarray) -> np.ndarray:
    """``z = [img, txt] / √2``: unit vectors whose inner product is the mean of the two cosines."""
    return np.ascontiguousarray(np.hstack([image, text]) / np.sqrt(2.0), dtype=np.float32)


def _principal_directions(
    image: np.ndarray, text: np.ndarray, dim: int, sample: int, seed: int
) -> np.ndarray:
    """``[2D, dim]``: the top eigenvectors of ``E[z zᵀ]`` over ``sample`` pairs drawn with ``seed``.

    Uncentred on purpose: projecting on them keeps inner products ``z_p·z_q``, not distances.
    By subspace iteration (four products with a [2D, 2·dim] block, then a small eigh): a full
    2D × 2D eigh took 1-5 s of LAPACK on this project's 2 busy cores.
    """
    n = image.shape[0]
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, size=min(n, sample), replace=False))
    z = _joint(image[rows], text[rows])
    moments = z.T @ z
    width = min(moments.shape[0], 2 * dim)
    block = rng.standard_normal((moments.shape[0], width)).astype(np.float32)
    for _ in range(4):
        block, _ = np.linalg.qr(moments @ block)
    values, vectors = np.linalg.eigh((block.T @ moments @ block).astype(np.float64))
    top = vectors[:, np.argsort(values)[::-1][:dim]]
    return np.ascontiguousarray(block @ top.astype(np.float32))


def _project(
    image: np.ndarray, text: np.ndarray, rows: np.ndarray, basis: np.ndarray | None
) -> np.ndarray:
    """``z`` of ``rows``, projected on ``basis`` unless it is None (then ``z`` itself)."""
    if basis is None:
        return _joint(image[rows], text[rows])
    half = image.shape[1]
    projected = image[rows] @ basis[:half] + text[rows] @ basis[half:]
    return np.ascontiguousarray(projected / np.sqrt(2.0), dtype=np.float32)


def _project_all(
    image: np.ndarray, text: np.ndarray, basis: np.ndarray | None, workers: int = 1
) -> np.ndarray:
    """``_project`` of every pair, a block at a time so only the projection is held in full."""
    n = image.shape[0]
    width = 2 * image.shape[1] if basis is None else basis.shape[1]
    out = np.empty((n, width), dtype=np.float32)

    def project(start: int) -> None:
        rows = np.arange(start, min(n, start + _RESCORE_QUERIES))
        out[rows] = _project(image, text, rows, basis)

    _map(project, range(0, n, _RESCORE_QUERIES), workers)
    return out


def _map(function: Callable[[int], None], items: Iterable[int], workers: int) -> None:
    """``function`` on every item, on ``workers`` threads (numpy's BLAS and sorts drop the GIL)."""
    if workers <= 1:
        for item in items:
            function(item)
        return
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(function, items))


def _blas_threads() -> int:
    return max(1, max((pool["num_threads"] for pool in threadpool_info()), default=1))


def negative_pair_bound(image: np.ndarray, text: np.ndarray) -> np.ndarray:
    """Per pair p, an upper bound on ``score(p, q)`` over every q with both cosines negative.

    Each modality's vectors lie within ``θ_max`` of their mean direction; p lies at ``θ_p``, so
    ``cos(p, q) ≥ cos(θ_p + θ_max)`` for every q. Where both lower bounds are negative, a product
    of two negative cosines is at most their product; where either is not, no such q exists (0).
    An anchor whose k-th best score found so far exceeds its bound needs no ``-z`` search: the
    true k-th best is at least as high. (A small margin covers rounding.)
    """
    lower = []
    for vectors in (image, text):
        centre = vectors.sum(axis=0, dtype=np.float64)
        centre /= np.linalg.norm(centre) or 1.0
        angle = np.arccos(np.clip(vectors @ centre.astype(np.float32), -1.0, 1.0))
        lower.append(np.cos(np.minimum(np.pi, angle + angle.max())))
    both_negative = (lower[0] < 0) & (lower[1] < 0)
    return np.where(both_negative, lower[0] * lower[1], 0.0) + _BOUND_MARGIN


def _approximate_search(
    index: faiss.Index,
    vectors: Callable[[np.ndarray], np.ndarray],
    image: np.ndarray,
    text: np.ndarray,
    topk: int,
    queries: np.ndarray,
    chunk_size: int,
    per_sign: int,
    both_signs: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Candidates of each anchor from ``index`` (searched with ``vectors(anchors)``), rescored
    exactly; with ``both_signs``, the anchors not ruled out by :func:`negative_pair_bound` are
    searched with the negated vectors too (module doc)."""
    per_sign = min(index.ntotal, per_sign)
    bound = negative_pair_bound(image, text) if both_signs else None
    out_indices = np.full((len(queries), topk), -1, dtype=np.int64)
    out_scores = np.full((len(queries), topk), -np.inf, dtype=np.float32)
    for start in range(0, len(queries), chunk_size):
        q = queries[start : start + chunk_size]
        x = vectors(q)
        cand = index.search(x, per_sign)[1]
        indices, scores = _best_first(cand, _rescore(image, text, q, cand), topk)
        if bound is not None:
            open_rows = np.flatnonzero(~(scores[:, -1] > bound[q]))
            if len(open_rows):
                more = np.hstack([cand[open_rows], index.search(-x[open_rows], per_sign)[1]])
                rescored = _rescore(image, text, q[open_rows], more)
                indices[open_rows], scores[open_rows] = _best_first(more, rescored, topk)
        out_indices[start : start + len(q)] = indices
        out_scores[start : start + len(q)] = scores
    return out_indices, out_scores


def _unit_rows(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def _nearest_lists(
    x: np.ndarray, centroids: np.ndarray, count: int, workers: int = 1
) -> np.ndarray:
    """``int64 [len(x), count]``: the ``count`` centroids of highest inner product per row, best
    first."""
    out = np.empty((len(x), count), dtype=np.int64)
    step = max(1, _BLOCK_SCORES // len(centroids))  # at 1M pairs a larger block cost 1.5 GB

    def nearest(start: int) -> None:
        sims = x[start : start + step] @ centroids.T
        if count == 1:
            out[start : start + len(sims), 0] = sims.argmax(axis=1)
        else:
            top = np.argpartition(-sims, count - 1, axis=1)[:, :count]
            order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1, kind="stable")
            out[start : start + len(sims)] = np.take_along_axis(top, order, axis=1)

    _map(nearest, range(0, len(x), step), workers)
    return out


def _spherical_kmeans(
    x: np.ndarray, lists: int, niter: int, seed: int, workers: int = 1
) -> np.ndarray:
    """``[lists, p]`` unit centroids: spherical k-means on ``x`` from ``lists`` random rows.

    numpy rather than ``faiss.Kmeans``: on this project's 2-core machine faiss's assignment
    step ran 4x slower than the same product through numpy's BLAS.
    """
    rng = np.random.default_rng(seed)
    centroids = _unit_rows(x[rng.choice(len(x), size=lists, replace=False)])
    for _ in range(niter):
        assign = _nearest_lists(x, centroids, 1, workers)[:, 0]
        counts = np.bincount(assign, minlength=lists)
        filled = counts > 0
        starts = (np.cumsum(counts) - counts)[filled]
        sums = np.add.reduceat(x[np.argsort(assign, kind="stable")], starts, axis=0)
        centroids[filled] = _unit_rows(sums)
    return centroids


class _ListScorer(Protocol):
    """Exact top-k of ``anchors`` among ``pairs`` (positions): ``(columns into pairs, scores)``."""

    def __call__(
        self, anchors: np.ndarray, pairs: np.ndarray, topk: int
    ) -> tuple[np.ndarray, np.ndarray]: ...


def _numpy_list_scorer(image: np.ndarray, text: np.ndarray) -> _ListScorer:
    def score(anchors: np.ndarray, pairs: np.ndarray, topk: int) -> tuple[np.ndarray, np.ndarray]:
        block = pair_scores(image[anchors] @ image[pairs].T, text[anchors] @ text[pairs].T)
        block[anchors[:, None] == pairs[None, :]] = -np.inf
        if block.shape[1] <= topk:
            columns = np.broadcast_to(np.arange(block.shape[1]), block.shape)
            return columns, block
        columns = np.argpartition(-block, topk - 1, axis=1)[:, :topk]
        return columns, np.take_along_axis(block, columns, axis=1)

    return score


def _torch_list_scorer(image: np.ndarray, text: np.ndarray, device: str) -> _ListScorer:
    """The same on a torch device (the vectors are copied there once)."""
    import torch

    image_t = torch.from_numpy(image).to(device)
    text_t = torch.from_numpy(text).to(device)

    def score(anchors: np.ndarray, pairs: np.ndarray, topk: int) -> tuple[np.ndarray, np.ndarray]:
        a = torch.from_numpy(anchors).to(device)
        p = torch.from_numpy(pairs).to(device)
        image_cos, text_cos = image_t[a] @ image_t[p].T, text_t[a] @ text_t[p].T
        block = image_cos * text_cos
        block[(image_cos > NEAR_DUPLICATE_COS) | (text_cos > NEAR_DUPLICATE_COS)] = 0.0
        block[(text_cos > DUPLICATE_TEXT_COS) | (a[:, None] == p[None, :])] = -torch.inf
        scores, columns = torch.topk(block, min(topk, block.shape[1]), dim=1)
        return columns.cpu().numpy(), scores.cpu().numpy()

    return score


def _scan_lists(
    score: _ListScorer,
    topk: int,
    queries: np.ndarray,
    probe: np.ndarray,
    members: list[np.ndarray],
    workers: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Each anchor's exact top-k within each list it probes: ``[Q, probes·topk]`` (unsorted).

    Lists are scanned one at a time against all the anchors that probe them, so the work is
    a few matrix products per list (BLAS-sized), not one small scan per anchor.
    """
    rows_count, probes = probe.shape
    index_type = np.int32 if sum(len(m) for m in members) < 2**31 else np.int64
    found = np.full((rows_count, probes, topk), -1, dtype=index_type)
    found_scores = np.full((rows_count, probes, topk), -np.inf, dtype=np.float32)
    flat = probe.ravel()
    by_list = np.argsort(flat, kind="stable")
    bounds = np.searchsorted(flat[by_list], np.arange(len(members) + 1))

    def scan(number: int) -> None:  # each (anchor, slot) is one list's: no two scans write it
        pairs = members[number]
        hits = by_list[bounds[number] : bounds[number + 1]]
        if not len(pairs):
            return
        step = max(1, _BLOCK_SCORES // len(pairs))
        for start in range(0, len(hits), step):
            rows, slots = np.divmod(hits[start : start + step], probes)
            columns, scores = score(queries[rows], pairs, topk)
            width = columns.shape[1]
            found[rows, slots, :width] = pairs[columns]
            found_scores[rows, slots, :width] = scores

    _map(scan, np.flatnonzero(np.diff(bounds)), workers)
    return found.reshape(rows_count, -1), found_scores.reshape(rows_count, -1)


@MINING_INDEXES.register("ivf")
def ivf_search(
    image: np.ndarray,
    text: np.ndarray,
    topk: int,
    queries: np.ndarray,
    chunk_size: int,
    nlist: int | None = None,
    nprobe: int = 3,
    both_signs: bool = True,
    pca_dim: int | None = 128,
    train_per_list: int = 32,
    niter: int = 10,
    use_gpu: bool | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Inverted lists over ``z``, scanned with the exact score: approximate only in which pairs
    an anchor meets (those of its ``nprobe`` lists), exact in how it ranks them.

    - The pairs are grouped in ``nlist`` lists (default 4·√N, capped at N/39) by spherical k-means
      (``niter`` iterations, on ``train_per_list``·nlist pairs drawn at random) on ``z``
      projected to its top ``pca_dim`` principal directions (:func:`_principal_directions`, from
      20k pairs; ``None`` keeps all 2D). Each pair lives in its nearest list; each anchor probes
      its ``nprobe`` nearest lists, and every pair in them is scored exactly, list by list, by
      matrix products (:func:`_scan_lists`).
    - ``both_signs``: anchors that :func:`negative_pair_bound` does not clear also probe the
      ``nprobe`` lists farthest from them (``-z``), where pairs with two negative cosines lie.
    - ``use_gpu`` (default: whenever torch sees CUDA) scores the lists on ``cuda:0`` with torch;
      clustering and assignment stay on the CPU.

    IVF relies on cluster structure, which encoder embeddings have; on structureless (isotropic)
    vectors raise ``nprobe`` towards ``nlist``. Defaults measured with
    benchmarks/mining_speed.py (benchmarks/results/mining_speed.100k.*; docs/mining.md).
    """
    cuda = cuda_available()
    if use_gpu and not cuda:
        raise ValueError("mining option use_gpu: torch sees no CUDA device")
    # One thread per block of work, each with single-threaded BLAS: a list's products are small
    # and threaded BLAS/LAPACK mostly waited on its own threads (3-10x slower on 2 busy cores).
    workers = _blas_threads()
    with threadpool_limits(1, user_api="blas"):
        return _ivf(
            image,
            text,
            topk,
            queries,
            chunk_size,
            nlist,
            nprobe,
            both_signs,
            pca_dim,
            train_per_list,
            niter,
            cuda and use_gpu is not False,
            workers,
        )


def _ivf(
    image: np.ndarray,
    text: np.ndarray,
    topk: int,
    queries: np.ndarray,
    chunk_size: int,
    nlist: int | None,
    nprobe: int,
    both_signs: bool,
    pca_dim: int | None,
    train_per_list: int,
    niter: int,
    on_gpu: bool,
    workers: int,
) -> tuple[np.ndarray, np.ndarray]:
    n = image.shape[0]
    reduce = pca_dim is not None and pca_dim < 2 * image.shape[1]
    basis = _principal_directions(image, text, pca_dim, _PCA_SAMPLE, 0) if reduce else None
    x = _project_all(image, text, basis, workers)
    lists = nlist or max(1, min(int(4 * np.sqrt(n)), n // 39))
    rng = np.random.default_rng(0)
    train = np.sort(rng.choice(n, size=min(n, train_per_list * lists), replace=False))
    centroids = _spherical_kmeans(x[train], min(lists, len(train)), niter, 0, workers)
    probes = min(nprobe, len(centroids))
    nearest = _nearest_lists(x, centroids, probes, workers)  # the first is the pair's own list
    home = nearest[:, 0]
    by_home = np.argsort(home, kind="stable")
    members = np.split(by_home, np.cumsum(np.bincount(home, minlength=len(centroids)))[:-1])
    score = _torch_list_scorer(image, text, "cuda:0") if on_gpu else _numpy_list_scorer(image, text)
    found, found_scores = _scan_lists(score, topk, queries, nearest[queries], members, workers)
    indices, scores = _best_first_chunked(found, found_scores, topk, chunk_size)
    if both_signs:
        open_rows = np.flatnonzero(~(scores[:, -1] > negative_pair_bound(image, text)[queries]))
        if len(open_rows):
            far = _nearest_lists(-x[queries[open_rows]], centroids, probes, workers)
            more, more_scores = _scan_lists(score, topk, queries[open_rows], far, members, workers)
            indices[open_rows], scores[open_rows] = _best_first_chunked(
                np.hstack([indices[open_rows], more]),
                np.hstack([scores[open_rows], more_scores]),
                topk,
                chunk_size,
            )
    return indices, scores


def _best_first_chunked(
    indices: np.ndarray, scores: np.ndarray, topk: int, chunk_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_best_first` ``chunk_size`` rows at a time (its sorts copy their rows)."""
    out_indices = np.full((len(indices), topk), -1, dtype=np.int64)
    out_scores = np.full((len(indices), topk), -np.inf, dtype=np.float32)
    for start in range(0, len(indices), chunk_size):
        stop = start + chunk_size
        block = indices[start:stop].astype(np.int64)
        out_indices[start:stop], out_scores[start:stop] = _best_first(
            block, scores[start:stop].copy(), topk
        )
    return out_indices, out_scores


def cuda_available() -> bool:
    """Whether torch sees a CUDA device (the ``ivf`` index's ``use_gpu``)."""
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


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
    index = faiss.IndexHNSWFlat(2 * image.shape[1], m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = ef_construction
    index.add(_project_all(image, text, None))
    index.hnsw.efSearch = ef_search or max(per_sign, 64)
    return _approximate_search(
        index,
        lambda rows: _project(image, text, rows, None),
        image,
        text,
        topk,
        queries,
        chunk_size,
        per_sign,
        both_signs,
    )
