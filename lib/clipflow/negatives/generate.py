"""Hard negative captions (algorithms.md §4): a registry of generators and one entry point.

A generator is a callable ``(caption, rng) -> list[str] | None``: its candidate negatives in
order of preference, ``[]`` when the caption offers it no valid edit, ``None`` when the caption is
outside what it understands (e.g. not in the synthetic grammar). Each is registered under its own
name with one of CE-CLIP's kinds, the public vocabulary of negative types:
``relation``, ``attribute``, ``object``, ``action``. Several generators may share a kind (the
synthetic-grammar rules now, spaCy/WordNet rules for real English later); asking for a kind asks
all of its generators.

:func:`generate` takes negatives round-robin: one per kind, within a kind one per generator,
within a generator in its order of preference. So the first negatives of a caption cover every
kind that has a valid edit, "one of each type where possible" (§4), and the remaining slots come
from the kinds that have more. The order of the kinds, and of the generators within a kind, is
shuffled per caption, so that neither the extra slots nor the first generator of a kind always
fall to the same one. Every random stream is seeded by (seed, caption, generator or kind): a
caption's negatives do not depend on the other captions or the table order.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import pandas as pd
from tqdm import tqdm

from clipflow.registry import Registry

KINDS: tuple[str, ...] = ("relation", "attribute", "object", "action")  # CE-CLIP's types (§4)
NEGATIVE_COLUMNS = ["caption_index", "caption", "negative", "kind", "generator"]

NegativeFn = Callable[[str, random.Random], list[str] | None]


@dataclass(frozen=True)
class NegativeGenerator:
    """A registered generator: its function and the CE-CLIP kind of negatives it makes."""

    name: str
    kind: str
    fn: NegativeFn

    def __call__(self, caption: str, rng: random.Random) -> list[str] | None:
        return self.fn(caption, rng)


NEGATIVE_GENERATORS: Registry[NegativeGenerator] = Registry("negative generator")


def register_generator(name: str, kind: str) -> Callable[[NegativeFn], NegativeFn]:
    """Decorator: register ``fn`` as generator ``name`` making negatives of ``kind``."""
    if kind not in KINDS:
        raise ValueError(f"negative generator {name!r}: kind {kind!r} is not one of {KINDS}")

    def decorator(fn: NegativeFn) -> NegativeFn:
        NEGATIVE_GENERATORS.register(name)(NegativeGenerator(name, kind, fn))
        return fn

    return decorator


def _normalised(text: str) -> str:
    return " ".join(text.casefold().split())


def _round_robin(
    iterables: Iterable[Iterable[tuple[str, str, str]]],
) -> Iterator[tuple[str, str, str]]:
    iterators = [iter(it) for it in iterables]
    while iterators:
        alive = []
        for iterator in iterators:
            item = next(iterator, None)
            if item is not None:
                alive.append(iterator)
                yield item
        iterators = alive


def _selected(
    kinds: Sequence[str], generators: Sequence[str] | None
) -> list[tuple[str, list[NegativeGenerator]]]:
    """``(kind, its chosen generators)`` per kind asked for (repeats dropped)."""
    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown:
        raise ValueError(
            f"unknown negative kind(s) {', '.join(unknown)}; known: {', '.join(KINDS)}"
        )
    chosen = [NEGATIVE_GENERATORS.get(name) for name in (generators or NEGATIVE_GENERATORS.names())]
    return [(kind, [g for g in chosen if g.kind == kind]) for kind in dict.fromkeys(kinds)]


def _negatives(
    caption: str, by_kind: list[tuple[str, list[NegativeGenerator]]], per_caption: int, seed: int
) -> list[tuple[str, str, str]]:
    """Up to ``per_caption`` (negative, kind, generator), distinct and unlike the caption."""
    if per_caption < 0:
        raise ValueError(f"per_caption must be >= 0, got {per_caption}")

    def stream(generator: NegativeGenerator) -> list[tuple[str, str, str]]:
        found = generator(caption, random.Random(f"{seed}\0{generator.name}\0{caption}")) or []
        return [
            (text, generator.kind, generator.name)
            for text in found
            if isinstance(text, str) and text.strip()
        ]

    def shuffled(items: Iterable, name: str) -> list:
        order = list(items)
        random.Random(f"{seed}\0order:{name}\0{caption}").shuffle(order)
        return order

    kind_streams = [
        _round_robin(stream(g) for g in shuffled(generators, kind)) for kind, generators in by_kind
    ]
    seen = {_normalised(caption)}
    picked = []
    for text, kind, name in _round_robin(shuffled(kind_streams, "kinds")):
        if len(picked) == per_caption:
            break
        if _normalised(text) not in seen:
            seen.add(_normalised(text))
            picked.append((text, kind, name))
    return picked


def generate(
    caption: str,
    kinds: Sequence[str] = KINDS,
    per_caption: int = 4,
    seed: int = 0,
    generators: Sequence[str] | None = None,
) -> list[tuple[str, str]]:
    """Up to ``per_caption`` ``(negative, kind)`` for ``caption``, deterministic given ``seed``.

    Never the caption itself (compared case- and space-insensitively) and never a repeat; fewer,
    possibly none, when the caption offers no valid edit. ``generators`` restricts the registered
    generators by name (default: all of the asked ``kinds``).
    """
    return [
        (text, kind)
        for text, kind, _ in _negatives(caption, _selected(kinds, generators), per_caption, seed)
    ]


def generate_for_table(
    captions: pd.Series | Sequence[str],
    caption_index: Sequence[int] | None = None,
    kinds: Sequence[str] = KINDS,
    per_caption: int = 4,
    seed: int = 0,
    generators: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per negative: ``caption_index, caption, negative, kind, generator``.

    ``caption_index`` defaults to the Series' index (or positions for a plain sequence); each
    caption's negatives equal ``generate(caption, kinds, per_caption, seed, generators)``.
    """
    if caption_index is None:
        caption_index = captions.index if isinstance(captions, pd.Series) else range(len(captions))
    if len(caption_index) != len(captions):
        raise ValueError(f"{len(caption_index)} caption indices for {len(captions)} captions")
    by_kind = _selected(kinds, generators)
    rows = [
        (int(index), caption, text, kind, name)
        for index, caption in tqdm(
            zip(caption_index, captions, strict=True),
            total=len(captions),
            desc="negatives",
            unit="caption",
        )
        for text, kind, name in _negatives(str(caption), by_kind, per_caption, seed)
    ]
    return pd.DataFrame(rows, columns=NEGATIVE_COLUMNS)


def read_captions(path: str | os.PathLike) -> pd.Series:
    """Captions of a pairs parquet (columns ``index``, ``caption``), as a Series by ``index``.

    Rows whose optional ``status`` is not ``success`` (failed downloads) are skipped, as the
    mining stage skips them.
    """
    frame = pd.read_parquet(path)
    missing = [column for column in ("index", "caption") if column not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
    if "status" in frame.columns:
        frame = frame[frame["status"] == "success"]
    if frame["caption"].isna().any():
        raise ValueError(f"{path}: column caption has empty values")
    return pd.Series(
        frame["caption"].astype(str).to_numpy(), index=frame["index"].to_numpy(), name="caption"
    )
