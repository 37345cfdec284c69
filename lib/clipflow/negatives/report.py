"""A Markdown summary of generated negatives: counts per kind and generator, how many each
caption got, and examples: those of the first captions, then a few of each kind."""

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
    generator_set: str = "synthetic",
) -> str:
    """Counts per kind and per generator, coverage, and examples.

    ``negatives`` is :func:`generate_for_table`'s frame; ``num_captions`` counts every caption
    asked for, so captions that got no negative (outside every generator's reach) show up.
    Examples: the negatives of the first ``examples`` captions, then up to ``examples`` of
    each kind (from different captions where possible).
    """
    covered = negatives["caption_index"].nunique()
    per_kind = negatives["kind"].value_counts()
    counts = negatives.groupby("caption_index").size().value_counts()
    counts[0] = num_captions - covered
    lines = [
        "# Hard negative captions",
        "",
        f"{len(negatives)} negatives for {num_captions} captions "
        f"(asked {per_caption} per caption, kinds {', '.join(kinds)}, seed {seed}, "
        f"generator set {generator_set}); "
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
        "## Negatives per caption",
        "",
        *_table(
            ["negatives", "captions"],
            [(n, int(counts.get(n, 0))) for n in range(per_caption + 1) if counts.get(n, 0)],
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
    lines += ["", "## Examples per kind", ""]
    # one per caption first, so that a kind's examples show different captions
    spread = negatives.drop_duplicates(["kind", "caption_index"])
    lines += _table(
        ["kind", "generator", "caption", "negative"],
        [
            row
            for kind in kinds
            for row in spread[spread["kind"] == kind][["kind", "generator", "caption", "negative"]]
            .head(examples)
            .itertuples(index=False)
        ],
    )
    return "\n".join(lines) + "\n"


def negatives_by_kind(negatives: pd.DataFrame, captions: int = 12) -> pd.DataFrame:
    """The first ``captions`` captions that got a negative, one row each: the caption, then per
    kind (in order of first appearance) its negatives of that caption joined by `` / ``
    (blank where the kind made none)."""
    kinds = list(dict.fromkeys(negatives["kind"]))
    first = negatives["caption_index"].drop_duplicates().head(captions)
    chosen = negatives[negatives["caption_index"].isin(first)]
    table = chosen.groupby(["caption_index", "caption"], sort=False)
    rows = [
        {
            "caption": caption,
            **{kind: " / ".join(group.loc[group["kind"] == kind, "negative"]) for kind in kinds},
        }
        for (_, caption), group in table
    ]
    return pd.DataFrame(rows, columns=["caption", *kinds])
