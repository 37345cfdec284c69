"""The report's hard-pairs grid: each anchor's row shows its own image and caption, then those of
its hardest pairs in rank order."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from PIL import Image

from clipflow.mining import report


def test_rows_show_anchor_then_its_hard_pairs_in_rank_order(monkeypatch, tmp_path) -> None:
    pairs = pd.DataFrame(
        {
            "index": range(6),
            "caption": [f"caption number {i}" for i in range(6)],
            "shard": "00000.tar",
            "key": [f"{i:09d}" for i in range(6)],
        }
    )
    # each image is a flat grey whose level is its pair's index, so a panel names its pair
    images = {
        ("00000.tar", f"{i:09d}"): Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8))
        for i in range(6)
    }
    hard = {5: [], 3: [0, 4], 1: [2, 0, 3]}
    drawn: list[Figure] = []
    monkeypatch.setattr(report, "write_with", lambda path, write: drawn.append(write) or path)
    monkeypatch.setattr(Figure, "savefig", lambda self, *a, **k: drawn.append(self))
    report.plot_hard_pairs(hard, pairs, images, tmp_path / "grid.png", anchors=2, shown=2)
    drawn[0](tmp_path / "grid.png")
    figure = drawn[-1]
    axes = np.asarray(figure.axes).reshape(2, 3)
    expected = [[1, 2, 0], [3, 0, 4]]  # anchors 1 and 3 (5 has none); the top 2 of each
    for row, indices in zip(axes, expected, strict=True):
        for column, (axis, index) in enumerate(zip(row, indices, strict=True)):
            assert axis.get_images()[0].get_array()[0, 0, 0] == 40 * index
            title = axis.get_title(loc="left")
            assert title.startswith("anchor" if column == 0 else f"hard pair {column}")
            assert f"(#{index})" in title and f"caption number {index}" in title


def test_writes_a_png(tmp_path) -> None:
    pairs = pd.DataFrame({"index": [0, 1], "caption": ["a", "b"], "shard": "s", "key": ["0", "1"]})
    images = {("s", k): Image.new("RGB", (4, 4)) for k in ("0", "1")}
    path = report.plot_hard_pairs({0: [1]}, pairs, images, tmp_path / "grid.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
