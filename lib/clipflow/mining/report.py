"""What a mining run produced: recall of the index against exact search, and the score spread.

§2 asks for the recall@k of an approximate index against exact search on a sample of anchors;
the exact search of a sample costs ``sample × N`` scores, unlike the N² of exact mining.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable, Mapping, Sequence
from itertools import zip_longest
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from PIL import Image

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


def plot_hard_pairs(
    hard: Mapping[int, Sequence[int]],
    pairs: pd.DataFrame,
    images: Callable[[tuple[str, str]], Image.Image],
    path: str | os.PathLike,
    anchors: int = 3,
    shown: int = 5,
) -> Path:
    """An image grid of mined hard pairs: a row per anchor (the first ``anchors`` with a hard
    pair, by index), the anchor's image and caption first, then its ``shown`` hardest pairs in
    rank order. ``pairs`` is the metadata table (``index``, ``caption``, ``shard``, ``key``);
    ``images[(shard, key)]`` reads an image (:class:`clipflow.data.shards.ShardImages`)."""
    by_index = pairs.set_index("index")
    rows = [(anchor, list(hard[anchor][:shown])) for anchor in sorted(hard) if hard[anchor]]
    rows = rows[:anchors]
    if not rows:
        raise ValueError("no anchor has a hard pair to show")
    columns = 1 + max(len(partners) for _, partners in rows)
    figure = Figure(figsize=(2.1 * columns, 2.6 * len(rows)), layout="constrained")
    grid = figure.subplots(len(rows), columns, squeeze=False)
    for axes, (anchor, partners) in zip(grid, rows, strict=True):
        for column, (axis, index) in enumerate(zip_longest(axes, [anchor, *partners])):
            axis.set_axis_off()
            if index is None:
                continue
            pair = by_index.loc[index]
            axis.imshow(images[(pair["shard"], pair["key"])])
            title = "anchor" if column == 0 else f"hard pair {column}"
            caption = textwrap.fill(str(pair["caption"]), 26, max_lines=3, placeholder=" …")
            axis.set_title(f"{title} (#{index})\n{caption}", fontsize=7, loc="left")
    figure.suptitle("anchors (first column) and their hardest mined pairs, in rank order")
    return write_with(path, lambda tmp: figure.savefig(tmp, format="png", dpi=100))
