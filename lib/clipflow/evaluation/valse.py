"""VALSE (Heidelberg-NLP/VALSE): does the image prefer its caption to a foil that changes one
linguistic phenomenon?

``root`` is VALSE's ``data/`` folder: one JSON per piece (:data:`PIECES`), each ``{id:
{image_file, caption, foil, mturk: {caption, foil, other}, ...}}``, with ``image_file`` a bare
file name in the piece's own image folder. The folders default to the layout of VALSE's
``config.py`` below ``root`` (:data:`IMAGE_DIRS`, e.g. ``visual7w/images`` for existence and
counting) and ``image_dirs`` replaces any of them. ``caption`` is a string in the released
files; a list (as some descriptions of the format have it) is read too and its first entry used.

As in ``lxmert_valse_eval.py``, only items that at least two of three annotators validated
(``mturk.caption >= 2``) are scored; items without ``mturk`` votes are kept, and
``mturk_filter=False`` scores all 8,782. Per piece the metric is ``acc_r``, the share of items
whose caption scores strictly above the foil; ``acc_r`` itself is the unweighted mean over the
pieces scored, which is how the VALSE paper's "Avg." column comes out (CLIP ViT-B/32: 64.0).
All eleven pieces are scored unless ``pieces`` lists some: a piece file missing from ``root``
is an error, never a mean over fewer pieces; the result record names the pieces scored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from clipflow.evaluation.benchmark import (
    BENCHMARKS,
    Benchmark,
    BenchmarkDataError,
    Scores,
    check_images,
    parts_to_score,
    read_json,
    require_str,
)
from clipflow.evaluation.encoder import Encoder, Triples
from clipflow.evaluation.sugarcrepe import triple_accuracies

# Piece name (the metric key) -> its file in VALSE's data/. relations.json is the released
# name; VALSE's config.py says relation.json, which does not exist.
PIECES: dict[str, str] = {
    "existence": "existence.json",
    "plurals": "plurals.json",
    "counting_hard": "counting-hard.json",
    "counting_small": "counting-small-quant.json",
    "counting_adversarial": "counting-adversarial.json",
    "relations": "relations.json",
    "action_replacement": "action-replacement.json",
    "actant_swap": "actant-swap.json",
    "coreference_standard": "coreference-standard.json",
    "coreference_hard": "coreference-hard.json",
    "foil_it": "foil-it.json",
}
# Piece -> image folder relative to root, after VALSE's config.py (foil-it's COCO val2014,
# /scratch/COCO/val2014 there, is put under root like the others).
IMAGE_DIRS: dict[str, str] = {
    "existence": "visual7w/images",
    "plurals": "plurals/test_images",
    "counting_hard": "visual7w/images",
    "counting_small": "visual7w/images",
    "counting_adversarial": "visual7w/images",
    "relations": "relations/test_images",
    "action_replacement": "actions/images_512",
    "actant_swap": "actions/images_512",
    "coreference_standard": "coref/release_too_many_is_this_in_color/images",
    "coreference_hard": "coref/release_v18/test_images",
    "foil_it": "coco/val2014",
}
MIN_VALID_VOTES = 2


def _caption(record: dict[str, Any], path: Path, where: str) -> str:
    caption = record.get("caption")
    if isinstance(caption, list):
        if not caption or not isinstance(caption[0], str) or not caption[0]:
            raise BenchmarkDataError(
                path, f"{where}.caption", f"expected a string or a list of them, got {caption!r}"
            )
        return caption[0]
    return require_str(record, "caption", path, where)


def _valid(record: dict[str, Any], path: Path, where: str) -> bool:
    """Whether at least two annotators chose the caption and not the foil."""
    if "mturk" not in record:
        return True
    votes = record["mturk"].get("caption") if isinstance(record["mturk"], dict) else None
    if isinstance(votes, bool) or not isinstance(votes, int):
        raise BenchmarkDataError(path, f"{where}.mturk.caption", f"expected a count, got {votes!r}")
    return votes >= MIN_VALID_VOTES


def load_piece(path: Path, image_dir: Path, mturk_filter: bool) -> Triples:
    """``(image, caption, foil)`` of each item of one piece that passes the mturk filter."""
    data = read_json(path)
    if not isinstance(data, dict) or not data:
        raise BenchmarkDataError(path, "top level", "expected a non-empty object of records")
    triples, fields = [], []
    for key, record in data.items():
        where = f"[{key!r}]"
        image = image_dir / require_str(record, "image_file", path, where)
        caption = _caption(record, path, where)
        foil = require_str(record, "foil", path, where)
        if mturk_filter and not _valid(record, path, where):
            continue
        triples.append((image, caption, foil))
        fields.append(f"{where}.image_file")
    if not triples:
        raise BenchmarkDataError(path, "mturk", f"no item has mturk.caption >= {MIN_VALID_VOTES}")
    check_images([t[0] for t in triples], fields, path)
    return triples


def valse(
    encoder: Encoder,
    root: Path,
    *,
    pieces: Sequence[str] | str | None = None,
    image_dirs: Mapping[str, str] | None = None,
    mturk_filter: bool = True,
) -> Scores:
    """``acc_r`` (mean over pieces) and each piece's ``acc_r``; ``image_dirs`` maps piece
    names to image folders (relative to ``root``, or absolute) replacing :data:`IMAGE_DIRS`."""
    if image_dirs is not None and not isinstance(image_dirs, Mapping):
        raise ValueError(f"valse image_dirs must map piece names to folders, got {image_dirs!r}")
    dirs = {**IMAGE_DIRS, **(image_dirs or {})}
    unknown = sorted(set(dirs) - set(PIECES))
    if unknown:
        raise ValueError(f"valse image_dirs for unknown pieces {unknown}; known: {list(PIECES)}")
    names = parts_to_score(root, pieces, PIECES, "valse", "pieces")
    data = {
        name: load_piece(root / PIECES[name], root / dirs[name], mturk_filter) for name in names
    }
    per_piece = triple_accuracies(encoder, data)
    return Scores({"acc_r": sum(per_piece.values()) / len(per_piece), **per_piece}, parts=names)


BENCHMARKS.register("valse")(Benchmark(task="image_caption_selection", run=valse))
