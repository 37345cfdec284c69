"""Hard negative captions (docs/algorithms.md §4): a registry of generators and one entry point.

A generator is a callable ``(caption, rng) -> list[str] | None``: its candidate negatives in
order of preference, ``[]`` when the caption offers it no valid edit, ``None`` when the caption is
outside what it understands (e.g. not in the synthetic grammar). Each is registered under its own
name with one of CE-CLIP's kinds, the public vocabulary of negative types:
``relation``, ``attribute``, ``object``, ``action``, and in one *set*: ``synthetic`` (rules for
the synthetic grammar, the default) or ``english`` (spaCy + WordNet rules for real captions).
Several generators may share a kind; asking for a kind asks all of its generators of the set.
Generators made at run time (the fill-mask ones, which need a model path) are passed as objects.

:func:`generate` takes negatives round-robin: one per kind, within a kind one per generator,
within a generator in its order of preference. So the first negatives of a caption cover every
kind that has a valid edit, "one of each type where possible" (§4), and the remaining slots come
from the kinds that have more. The order of the kinds, and of the generators within a kind, is
shuffled per caption, so that neither the extra slots nor the first generator of a kind always
fall to the same one. Every random stream is seeded by (seed, caption, generator or kind): a
caption's negatives do not depend on the other captions or the table order, nor on the batch
size or the number of processes of :func:`generate_for_table`.

A generator may carry a ``prepare(captions, batch_size)`` hook (the English ones parse a chunk
with spaCy's ``nlp.pipe``): :func:`generate_for_table` calls each distinct hook once per chunk
before generating, and once with no captions before starting worker processes, so that models
loaded then are shared by the forked workers.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import random
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import pandas as pd
from tqdm import tqdm

from clipflow.io import read_parquet
from clipflow.registry import Registry

KINDS: tuple[str, ...] = ("relation", "attribute", "object", "action")  # CE-CLIP's types (§4)
NEGATIVE_COLUMNS = ["caption_index", "caption", "negative", "kind", "generator"]

DEFAULT_SET = "synthetic"  # the default workflow's captions come from the synthetic grammar

NegativeFn = Callable[[str, random.Random], list[str] | None]
PrepareFn = Callable[[Sequence[str], int], None]


@dataclass(frozen=True)
class NegativeGenerator:
    """A generator: its function, the CE-CLIP kind of negatives it makes, its set and hook."""

    name: str
    kind: str
    fn: NegativeFn
    family: str = DEFAULT_SET
    prepare: PrepareFn | None = None  # batch hook: prepare(chunk_of_captions, batch_size)

    def __call__(self, caption: str, rng: random.Random) -> list[str] | None:
        return self.fn(caption, rng)


NEGATIVE_GENERATORS: Registry[NegativeGenerator] = Registry("negative generator")


def check_kind(name: str, kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"negative generator {name!r}: kind {kind!r} is not one of {KINDS}")


def register_generator(
    name: str, kind: str, family: str = DEFAULT_SET, prepare: PrepareFn | None = None
) -> Callable[[NegativeFn], NegativeFn]:
    """Decorator: register ``fn`` as generator ``name`` of set ``family`` making ``kind``."""
    check_kind(name, kind)

    def decorator(fn: NegativeFn) -> NegativeFn:
        NEGATIVE_GENERATORS.register(name)(NegativeGenerator(name, kind, fn, family, prepare))
        return fn

    return decorator


def generator_sets() -> list[str]:
    """The names of the generator sets that have registered generators."""
    return sorted({NEGATIVE_GENERATORS.get(name).family for name in NEGATIVE_GENERATORS})


def generator_set(name: str) -> list[NegativeGenerator]:
    """The registered generators of set ``name`` (``synthetic``, ``english``)."""
    found = [NEGATIVE_GENERATORS.get(g) for g in NEGATIVE_GENERATORS.names()]
    found = [g for g in found if g.family == name]
    if not found:
        raise ValueError(
            f"unknown negative generator set {name!r}; known: {', '.join(generator_sets())}"
        )
    return found


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


GeneratorChoice = Sequence[str | NegativeGenerator] | None


def _selected(
    kinds: Sequence[str], generators: GeneratorChoice, family: str = DEFAULT_SET
) -> list[tuple[str, list[NegativeGenerator]]]:
    """``(kind, its chosen generators)`` per kind asked for (repeats dropped).

    ``generators`` are registered names or generator objects; None means set ``family``.
    """
    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown:
        raise ValueError(
            f"unknown negative kind(s) {', '.join(unknown)}; known: {', '.join(KINDS)}"
        )
    if generators is None:
        chosen = generator_set(family)
    else:
        chosen = [
            g if isinstance(g, NegativeGenerator) else NEGATIVE_GENERATORS.get(g)
            for g in generators
        ]
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
    generators: GeneratorChoice = None,
    generator_set: str = DEFAULT_SET,
) -> list[tuple[str, str]]:
    """Up to ``per_caption`` ``(negative, kind)`` for ``caption``, deterministic given ``seed``.

    Never the caption itself (compared case- and space-insensitively) and never a repeat; fewer,
    possibly none, when the caption offers no valid edit. ``generators`` picks generators by
    registered name or as objects (default: every generator of ``generator_set`` making one of
    the asked ``kinds``).
    """
    by_kind = _selected(kinds, generators, generator_set)
    return [(text, kind) for text, kind, _ in _negatives(caption, by_kind, per_caption, seed)]


Rows = list[tuple[int, str, str, str, str]]


def _hooks(by_kind: list[tuple[str, list[NegativeGenerator]]]) -> list[PrepareFn]:
    """The distinct prepare hooks of the chosen generators (the English ones share one)."""
    hooks = [g.prepare for _, generators in by_kind for g in generators if g.prepare]
    return list({id(hook): hook for hook in hooks}.values())


def _chunk_rows(
    task: tuple[list[tuple[int, str]], list[tuple[str, list[NegativeGenerator]]], int, int, int],
) -> Rows:
    """The rows of one chunk of (index, caption): its hooks first, then each caption."""
    chunk, by_kind, per_caption, seed, batch_size = task
    for hook in _hooks(by_kind):
        hook([caption for _, caption in chunk], batch_size)
    return [
        (index, caption, text, kind, name)
        for index, caption in chunk
        for text, kind, name in _negatives(caption, by_kind, per_caption, seed)
    ]


def _init_worker() -> None:
    """One torch thread per worker: the processes are the parallelism, and a forked child
    entering an OpenMP region that its parent's threads had started deadlocks (fill-mask)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


def _context() -> multiprocessing.context.BaseContext:
    # fork: workers inherit the models the parent loaded (spaCy, WordNet: seconds each to load);
    # elsewhere (no fork) each worker loads its own on its first chunk.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else None)


def generate_for_table(
    captions: pd.Series | Sequence[str],
    caption_index: Sequence[int] | None = None,
    kinds: Sequence[str] = KINDS,
    per_caption: int = 4,
    seed: int = 0,
    generators: GeneratorChoice = None,
    generator_set: str = DEFAULT_SET,
    n_process: int = 1,
    batch_size: int = 256,
    progress: bool = True,
) -> pd.DataFrame:
    """One row per negative: ``caption_index, caption, negative, kind, generator``.

    ``caption_index`` defaults to the Series' index (or positions for a plain sequence); each
    caption's negatives equal ``generate(caption, kinds, per_caption, seed, generators,
    generator_set)``. Captions go in chunks of ``batch_size`` (one ``nlp.pipe`` batch for the
    English set) to ``n_process`` worker processes; rows keep the captions' order. A tqdm bar
    counts captions unless ``progress`` is False.
    """
    if caption_index is None:
        caption_index = captions.index if isinstance(captions, pd.Series) else range(len(captions))
    if len(caption_index) != len(captions):
        raise ValueError(f"{len(caption_index)} caption indices for {len(captions)} captions")
    if n_process < 1 or batch_size < 1:
        raise ValueError(f"n_process and batch_size must be >= 1, got {n_process}, {batch_size}")
    if per_caption < 0:
        raise ValueError(f"per_caption must be >= 0, got {per_caption}")
    by_kind = _selected(kinds, generators, generator_set)
    pairs = [(int(i), str(c)) for i, c in zip(caption_index, captions, strict=True)]
    tasks = [
        (pairs[start : start + batch_size], by_kind, per_caption, seed, batch_size)
        for start in range(0, len(pairs), batch_size)
    ]
    rows: Rows = []

    def collect(results: Iterable[Rows]) -> None:
        with tqdm(total=len(pairs), desc="negatives", unit="caption", disable=not progress) as bar:
            for task, chunk_rows in zip(tasks, results, strict=True):
                rows.extend(chunk_rows)
                bar.update(len(task[0]))

    if n_process == 1 or len(tasks) <= 1:
        collect(map(_chunk_rows, tasks))
    else:
        for hook in _hooks(by_kind):
            hook([], batch_size)  # load models once, before the workers fork
        # Frozen objects are never scanned by a child's garbage collector, so the children
        # do not copy the parent's WordNet pages by touching them (measured: +20% captions/s
        # with 2 processes).
        gc.freeze()
        try:
            pool = _context().Pool(min(n_process, len(tasks)), initializer=_init_worker)
            with pool:  # leaving terminates the workers: idle once all is collected, or an error
                collect(pool.imap(_chunk_rows, tasks))
            pool.join()
        finally:
            gc.unfreeze()
    return pd.DataFrame(rows, columns=NEGATIVE_COLUMNS)


def read_captions(path: str | os.PathLike) -> pd.Series:
    """Captions of a pairs parquet (columns ``index``, ``caption``), as a Series by ``index``.

    Rows whose optional ``status`` is not ``success`` (failed downloads) are skipped, as the
    mining stage skips them.
    """
    frame = read_parquet(path)
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
