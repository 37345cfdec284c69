"""HELIP mining (docs/algorithms.md §2): exact search against a numpy reference, approximate recall,
near-duplicate rules, chunking; on isotropic noise and on clustered embeddings shaped like an
encoder's (shared topics, both modalities noisy views of them, in a cone)."""

from __future__ import annotations

import numpy as np
import pytest

from clipflow.mining import (
    MINING_INDEXES,
    hard_pair_scores,
    mine_hard_pairs,
    pair_scores,
    recall_at_k,
    search,
)
from clipflow.mining.search import cuda_available, negative_pair_bound


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def isotropic() -> tuple[np.ndarray, np.ndarray]:
    """N=2000 independent Gaussian directions per modality (no structure, signed cosines)."""
    rng = np.random.default_rng(0)
    return unit(rng.normal(size=(2000, 32))), unit(rng.normal(size=(2000, 32)))


@pytest.fixture(scope="module")
def clustered() -> tuple[np.ndarray, np.ndarray]:
    """N=2000 pairs from 50 shared topics, each modality a noisy view of its topic, in a cone."""
    rng = np.random.default_rng(1)
    topics = rng.normal(size=(50, 32))[rng.integers(0, 50, 2000)]
    base = topics + 0.7 * rng.normal(size=topics.shape)
    image = unit(base + 0.5 * rng.normal(size=base.shape) + 1.0)
    text = unit(base @ rng.normal(size=(32, 32)) / 6 + 0.5 * rng.normal(size=base.shape) + 1.0)
    return image, text


def reference(image: np.ndarray, text: np.ndarray, topk: int) -> tuple[np.ndarray, np.ndarray]:
    """The whole N × N score matrix with HELIP's rules, the anchor masked, sorted per row."""
    image_cos, text_cos = image @ image.T, text @ text.T
    scores = image_cos * text_cos
    scores[(text_cos > 0.98) | (image_cos > 0.98)] = 0.0
    scores[text_cos > 0.995] = -np.inf
    np.fill_diagonal(scores, -np.inf)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :topk]
    return order, np.take_along_axis(scores, order, axis=1)


def test_registry_names_the_three_indexes() -> None:
    assert MINING_INDEXES.names() == ["flat", "hnsw", "ivf"]
    with pytest.raises(KeyError, match="unknown mining index 'annoy'; known: flat, hnsw, ivf"):
        mine_hard_pairs(np.eye(3), np.eye(3), 1, index="annoy")


@pytest.mark.parametrize("data", ["isotropic", "clustered"])
def test_flat_equals_brute_force(data: str, request: pytest.FixtureRequest) -> None:
    image, text = request.getfixturevalue(data)
    expected, expected_scores = reference(image, text, 10)
    hard = mine_hard_pairs(image, text, 10, index="flat")
    assert hard.dtype == np.int64 and hard.shape == (2000, 10)
    scores = hard_pair_scores(image, text, hard)
    np.testing.assert_allclose(scores, expected_scores, atol=1e-5)  # same scores, best first
    assert np.mean(hard == expected) > 0.999  # and the same pairs, ties aside


def test_chunked_equals_unchunked(clustered: tuple[np.ndarray, np.ndarray]) -> None:
    image, text = (array[:800] for array in clustered)
    whole = mine_hard_pairs(image, text, 5, index="flat", chunk_size=4096, db_chunk_size=4096)
    chunked = mine_hard_pairs(image, text, 5, index="flat", chunk_size=97, db_chunk_size=251)
    np.testing.assert_array_equal(whole, chunked)
    # IVF builds the same index twice (seeded k-means); HNSW's threaded build need not
    ivf_whole = mine_hard_pairs(image, text, 5, index="ivf", chunk_size=4096)
    ivf_chunked = mine_hard_pairs(image, text, 5, index="ivf", chunk_size=97)
    np.testing.assert_array_equal(ivf_whole, ivf_chunked)


@pytest.mark.parametrize("index", ["ivf", "hnsw"])
def test_approximate_recall_with_defaults(
    index: str, clustered: tuple[np.ndarray, np.ndarray]
) -> None:
    image, text = clustered
    exact = mine_hard_pairs(image, text, 10, index="flat")
    assert recall_at_k(mine_hard_pairs(image, text, 10, index=index), exact) >= 0.95


def test_both_signs_find_pairs_whose_cosines_are_both_negative(
    isotropic: tuple[np.ndarray, np.ndarray],
) -> None:
    # cos·cos is also high when both cosines are very negative: HNSW searches z and -z for them
    image, text = isotropic
    exact = mine_hard_pairs(image, text, 10, index="flat")
    assert recall_at_k(mine_hard_pairs(image, text, 10, index="hnsw"), exact) >= 0.95
    one_sided = mine_hard_pairs(image, text, 10, index="hnsw", both_signs=False)
    assert recall_at_k(one_sided, exact) < 0.7


@pytest.mark.parametrize("index", ["flat", "ivf", "hnsw"])
def test_self_and_planted_duplicates_are_excluded(
    index: str, clustered: tuple[np.ndarray, np.ndarray]
) -> None:
    image, text = (array.copy() for array in clustered)
    rng = np.random.default_rng(3)
    # 0 <- 1: the same caption (text cos 1, excluded); 0 <- 2: a near-copy image (scored 0)
    text[1], image[1] = text[0], unit(image[0] + 0.3 * rng.normal(size=32))
    image[2], text[2] = unit(image[0] + 0.01 * rng.normal(size=32)), unit(text[0] + 0.4)
    scores = pair_scores(image[[0]] @ image[[1, 2]].T, text[[0]] @ text[[1, 2]].T)
    assert scores[0, 0] == -np.inf and scores[0, 1] == 0.0
    hard = mine_hard_pairs(image, text, 20, index=index)
    rows = np.arange(len(hard))[:, None]
    assert not (hard == rows).any()  # no anchor is its own hard pair
    assert 1 not in hard[0] and 0 not in hard[1] and 2 not in hard[0]


def test_pads_with_minus_one_when_candidates_run_out() -> None:
    rng = np.random.default_rng(4)
    image, text = unit(rng.normal(size=(6, 8))), unit(rng.normal(size=(6, 8)))
    text[1] = text[0]  # pairs 0 and 1 exclude each other
    for index in ("flat", "ivf", "hnsw"):
        hard = mine_hard_pairs(image, text, 8, index=index)
        assert hard.shape == (6, 8)
        assert (hard[0, :4] >= 0).all() and (hard[0, 4:] == -1).all()
        assert (hard[2, :5] >= 0).all() and (hard[2, 5:] == -1).all()
        assert np.isnan(hard_pair_scores(image, text, hard)[0, 4:]).all()


def test_queries_select_anchors(clustered: tuple[np.ndarray, np.ndarray]) -> None:
    image, text = clustered
    queries = np.array([5, 1999, 0])
    full = mine_hard_pairs(image, text, 7, index="flat")
    np.testing.assert_array_equal(mine_hard_pairs(image, text, 7, queries=queries), full[queries])


def test_recall_at_k_ignores_padding() -> None:
    exact = np.array([[1, 2, -1], [0, 2, 3]])
    assert recall_at_k(np.array([[2, 1, -1], [0, 9, 8]]), exact) == pytest.approx((1 + 1 / 3) / 2)
    assert recall_at_k(np.array([[2, 7, 7], [9, 9, 9]]), exact, k=1) == 0.0


def test_bad_input_names_the_field() -> None:
    with pytest.raises(ValueError, match="text embeddings: row 1 is zero"):
        mine_hard_pairs(np.ones((3, 4)), np.array([[1.0, 0], [0, 0], [0, 1]]), 1)
    with pytest.raises(ValueError, match="differ in length: 3 != 2"):
        mine_hard_pairs(np.ones((3, 4)), np.ones((2, 4)), 1)
    with pytest.raises(ValueError, match="'ivf' has no option.s. efSearch; known: nlist, nprobe"):
        mine_hard_pairs(np.eye(3), np.eye(3), 1, index="ivf", efSearch=3)


def test_gpu_option_fails_clearly_without_a_gpu(clustered: tuple[np.ndarray, np.ndarray]) -> None:
    if cuda_available():
        pytest.skip("torch sees a GPU here")
    with pytest.raises(ValueError, match="use_gpu: torch sees no CUDA device"):
        mine_hard_pairs(*clustered, 10, index="ivf", use_gpu=True)
    cpu = mine_hard_pairs(*clustered, 10, index="ivf", use_gpu=False)
    assert np.array_equal(cpu, mine_hard_pairs(*clustered, 10, index="ivf"))


@pytest.mark.gpu
def test_ivf_on_gpu_matches_exact_search(clustered: tuple[np.ndarray, np.ndarray]) -> None:
    if not cuda_available():
        pytest.skip("needs CUDA")
    exact = mine_hard_pairs(*clustered, 10, index="flat")
    on_gpu = mine_hard_pairs(*clustered, 10, index="ivf", use_gpu=True)
    assert recall_at_k(on_gpu, exact) >= 0.95
    on_cpu = mine_hard_pairs(*clustered, 10, index="ivf", use_gpu=False)
    assert np.mean(on_gpu == on_cpu) > 0.99  # the same lists, scored in another BLAS


def test_negative_pair_bound_covers_every_pair_with_two_negative_cosines(
    isotropic: tuple[np.ndarray, np.ndarray], clustered: tuple[np.ndarray, np.ndarray]
) -> None:
    for image, text in (isotropic, clustered):
        image_cos, text_cos = image @ image.T, text @ text.T
        both = (image_cos < 0) & (text_cos < 0)
        worst = np.where(both, image_cos * text_cos, -np.inf).max(axis=1)
        assert (worst <= negative_pair_bound(image, text)).all()


def test_negative_pair_bound_by_hand() -> None:
    # unit vectors at 0°, 60°, 120°: mean direction 60°, θ_max 60°; the 0° one is within
    # 60° + 60° of every other, so its cosines are >= cos 120° = -0.5 and products <= 0.25
    angles = np.radians([0.0, 60.0, 120.0])
    wide = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    bound = negative_pair_bound(wide, wide)
    np.testing.assert_allclose(bound, [0.25 + 1e-4, 1e-4, 0.25 + 1e-4], atol=1e-6)
    # within 20° of the mean: every cosine is >= cos 40° > 0, so no pair has two negative ones
    narrow = np.stack([np.cos(angles / 3), np.sin(angles / 3)], axis=1).astype(np.float32)
    np.testing.assert_allclose(negative_pair_bound(narrow, wide), 1e-4, atol=1e-6)


def test_ivf_scans_lists_exactly_and_gains_recall_with_more_probes(
    clustered: tuple[np.ndarray, np.ndarray],
) -> None:
    image, text = clustered
    exact = mine_hard_pairs(image, text, 10, index="flat")
    # every pair in one list: the scan is exhaustive, so ivf returns the exact pairs
    one_list = mine_hard_pairs(image, text, 10, index="ivf", nlist=1, pca_dim=None)
    np.testing.assert_array_equal(one_list, exact)
    few = recall_at_k(mine_hard_pairs(image, text, 10, index="ivf", nprobe=1), exact)
    more = recall_at_k(mine_hard_pairs(image, text, 10, index="ivf", nprobe=8), exact)
    assert few < more and more >= 0.99


def test_torch_list_scorer_matches_numpy(clustered: tuple[np.ndarray, np.ndarray]) -> None:
    # the use_gpu path's scorer, run on the CPU device
    image, text = clustered
    anchors, pairs = np.arange(0, 300), np.arange(100, 700)
    by_numpy = search._numpy_list_scorer(image, text)(anchors, pairs, 7)
    by_torch = search._torch_list_scorer(image, text, "cpu")(anchors, pairs, 7)
    numpy_scores = -np.sort(-by_numpy[1], axis=1)
    np.testing.assert_allclose(by_torch[1], numpy_scores, atol=1e-5)
    assert np.mean(np.sort(by_torch[0], axis=1) == np.sort(by_numpy[0], axis=1)) > 0.99


def test_normalise_keeps_unit_rows_without_a_copy(clustered: tuple[np.ndarray, np.ndarray]) -> None:
    image = np.ascontiguousarray(clustered[0])
    assert search.normalise(image, "image") is image  # 1M pairs: no second 2 GB copy
    scaled = search.normalise(3 * image, "image")
    np.testing.assert_allclose(scaled, image, atol=1e-6)
