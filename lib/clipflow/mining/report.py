"""What a mining run produced: recall of the index against exact search, and the score spread.

§2 asks for the recall@k of an approximate index against exact search on a sample of anchors;
the exact search of a sample costs ``sample × N`` scores, unlike the N² of exact mining.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from clipflow.io import write_with
from clipflow.mining.search import hard_pair_scores, mine_hard_pairs, recall_at_k


def mining_report(
    image_emb: np.ndarray,
    text_emb: np.ndarray,
    hard: np.ndarray,
    index: str,
    dataset_name: str,
    sample_size: int = 1000,
    seed: int = 0,
    bins: int = 20,
) -> dict:
    """Summary of ``hard`` ([N, k], all anchors) as a JSON-ready dict.

    ``recall_at_k`` compares ``hard`` with exact search on ``sample_size`` anchors drawn with
    ``seed`` (1.0 without a comparison when ``index`` is already exact); the histogram counts
    the scores of every filled slot.
    """
    n, topk = hard.shape
    if index == "flat":
        recall, sample = 1.0, 0
    else:
        rng = np.random.default_rng(seed)
        queries = np.sort(rng.choice(n, size=min(sample_size, n), replace=False))
        exact = mine_hard_pairs(image_emb, text_emb, topk, index="flat", queries=queries)
        recall, sample = recall_at_k(hard[queries], exact), len(queries)
    scores = hard_pair_scores(image_emb, text_emb, hard)
    filled = scores[np.isfinite(scores)]
    counts, edges = np.histogram(filled, bins=bins) if filled.size else (np.zeros(0), np.zeros(0))
    return {
        "dataset": dataset_name,
        "index": index,
        "num_pairs": int(n),
        "topk": int(topk),
        "recall_at_k": float(recall),
        "recall_sample_size": int(sample),
        "filled_fraction": float(filled.size / hard.size) if hard.size else 0.0,
        "near_duplicate_fraction": float(np.mean(filled == 0)) if filled.size else 0.0,
        "score_mean": float(filled.mean()) if filled.size else None,
        "hardest_score_mean": float(np.nanmean(scores[:, 0])) if filled.size else None,
        "score_histogram": {"edges": edges.tolist(), "counts": counts.astype(int).tolist()},
    }


def plot_score_histogram(report: dict, path: str | os.PathLike) -> Path:
    """A PNG bar chart of ``report["score_histogram"]`` (matplotlib, headless backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    edges = np.asarray(report["score_histogram"]["edges"])
    counts = np.asarray(report["score_histogram"]["counts"])
    figure, axes = plt.subplots(figsize=(6, 4))
    if counts.size:
        axes.bar(edges[:-1], counts, width=np.diff(edges), align="edge", edgecolor="black")
    axes.set_xlabel("hard-pair score  cos(img)·cos(txt)")
    axes.set_ylabel("(anchor, hard pair) slots")
    axes.set_title(
        f"{report['dataset']}: top-{report['topk']} scores ({report['index']}, "
        f"recall@k {report['recall_at_k']:.3f})"
    )
    figure.tight_layout()
    try:
        return write_with(path, lambda tmp: figure.savefig(tmp, format="png", dpi=100))
    finally:
        plt.close(figure)
