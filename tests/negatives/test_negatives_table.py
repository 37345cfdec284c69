"""The report's negatives table: a row per caption, its negatives under their kind."""

from __future__ import annotations

import pandas as pd

from clipflow.negatives.report import negatives_by_kind


def test_each_caption_lists_its_negatives_per_kind() -> None:
    negatives = pd.DataFrame(
        [
            (4, "a red cube left of a ball", "a blue cube left of a ball", "attribute", "g1"),
            (4, "a red cube left of a ball", "a red cube right of a ball", "relation", "g2"),
            (4, "a red cube left of a ball", "a green cube left of a ball", "attribute", "g1"),
            (1, "a dog on a mat", "a cat on a mat", "object", "g3"),
            (7, "a third caption", "a fourth caption", "object", "g3"),
        ],
        columns=["caption_index", "caption", "negative", "kind", "generator"],
    )
    table = negatives_by_kind(negatives, captions=2)
    assert list(table.columns) == ["caption", "attribute", "relation", "object"]
    assert table.to_dict("records") == [
        {
            "caption": "a red cube left of a ball",
            "attribute": "a blue cube left of a ball / a green cube left of a ball",
            "relation": "a red cube right of a ball",
            "object": "",
        },
        {"caption": "a dog on a mat", "attribute": "", "relation": "", "object": "a cat on a mat"},
    ]
