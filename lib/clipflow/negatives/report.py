"""A Markdown summary of generated negatives: how many of each kind, and a few examples."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]


def negatives_report(
    negatives: pd.DataFrame,
    num_captions: int,
    kinds: Sequence[str],
    per_caption: int,
    seed: int,
    examples: int = 5,
) -> str:
    """Counts per kind and per generator, coverage, and the negatives of the first captions.

    ``negatives`` is :func:`generate_for_table`'s frame; ``num_captions`` counts every caption
    asked for, so captions that got no negative (outside every generator's reach) show up.
    """
    covered = negatives["caption_index"].nunique()
    per_kind = negatives["kind"].value_counts()
    lines = [
        "# Hard negative captions",
        "",
        f"{len(negatives)} negatives for {num_captions} captions "
        f"(asked {per_caption} per caption, kinds {', '.join(kinds)}, seed {seed}); "
        f"{covered} captions got at least one, {num_captions - covered} got none.",
        "",
        "## Per kind",
        "",
        *_table(
            ["kind", "negatives", "per caption"],
            [
                (k, int(per_kind.get(k, 0)), f"{per_kind.get(k, 0) / max(num_captions, 1):.2f}")
                for k in kinds
            ],
        ),
        "",
        "## Per generator",
        "",
        *_table(
            ["generator", "kind", "negatives"],
            [
                (name, group["kind"].iloc[0], len(group))
                for name, group in negatives.groupby("generator", sort=True)
            ],
        ),
        "",
        "## Examples",
        "",
    ]
    first = negatives["caption_index"].drop_duplicates().head(examples)
    rows = negatives[negatives["caption_index"].isin(first)]
    lines += _table(
        ["caption", "negative", "kind"],
        rows[["caption", "negative", "kind"]].itertuples(index=False),
    )
    return "\n".join(lines) + "\n"
