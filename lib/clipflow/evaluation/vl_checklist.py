"""VL-CheckList (om-ai-lab/VL-CheckList): objects, attributes and relations, each a positive
text against a negative one (benchmarks.md "VL-CheckList", formats/vl_checklist/SOURCE.md,
algorithms.md §7).

``root`` is the folder VL-CheckList's corpus configs are relative to: the annotations under
``root/data/`` (``annotations``) and the images of each source under its ``IMG_ROOT``,
``root/vg``, ``root/swig`` and ``root/hake`` (VAW's configs point at ``vg``; ``image_roots``
replaces any). Every ``.json`` below ``data/{Object,Attribute,Relation}/`` is scored; each is a
list of ``[image path, {"POS": [texts], "NEG": [texts]}]`` and, as in ``evaluate.py``'s ITC
task, only ``POS[0]`` and ``NEG[0]`` count. An item is right when the positive scores strictly
above the negative. The data has items whose two texts are the same: they tie and count as
wrong, and ``ties`` says how many items tied.

As ``data_loader.py`` does, items whose image file is missing are dropped (with a warning) and
each file keeps its first ``max_items`` (``int(MAX_NUM / 2)``, 1,000 with the default
``MAX_NUM``). Files holding ``[]`` (``swig_place_*``, which no corpus config names) are
skipped.

Metrics: each file's accuracy under its path below ``data/`` without ``.json`` (e.g.
``Attribute/vg/color``); each dimension's, the mean of its files (``Object/Location``,
``Object/Size``, ``Attribute/<action|color|material|size|state>``,
``Relation/<action|spatial>``, the paper's columns); each type's, the mean of its dimensions;
and ``acc``, the mean of the types.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from clipflow.evaluation.benchmark import BENCHMARKS, Benchmark, BenchmarkDataError, read_json
from clipflow.evaluation.encoder import Encoder, Triples, embed_triples
from clipflow.evaluation.metrics import pair_scores

log = logging.getLogger(__name__)

TYPES = ("Object", "Attribute", "Relation")
# Source (how a file's path names it) -> image folder below root (the corpus yamls' IMG_ROOT).
IMAGE_ROOTS: dict[str, str] = {"vg": "vg", "vaw": "vg", "swig": "swig", "hake": "hake"}


def _last_word(relative: PurePosixPath) -> str:
    return relative.stem.rsplit("_", 1)[-1]


# Type -> the dimension of one of its files, from the path below data/<Type>/... :
# Object/<Location|Size>/..., Attribute/<source>/<dimension>.json, and
# Relation/vg/<action|spatial>.json or Relation/<source>_action.json.
DIMENSION_OF: dict[str, Callable[[PurePosixPath], str]] = {
    "Object": lambda relative: relative.parts[1],
    "Attribute": _last_word,
    "Relation": _last_word,
}


def source_of(relative: PurePosixPath, path: Path) -> str:
    """The image source a file draws on: the first folder or file name below its type whose
    first ``_``-separated word is a known source (``vg_location``, ``vaw``, ``swig_action``)."""
    for part in relative.parts[1:]:
        word = PurePosixPath(part).stem.split("_", 1)[0]
        if word in IMAGE_ROOTS:
            return word
    raise BenchmarkDataError(path, "source", f"path names none of {sorted(IMAGE_ROOTS)}")


def _texts(record: Any, key: str, path: Path, where: str) -> str:
    texts = record.get(key)
    if not isinstance(texts, list) or not texts or not isinstance(texts[0], str):
        problem = "missing" if key not in record else f"expected a list of texts, got {texts!r}"
        raise BenchmarkDataError(path, f"{where}[1].{key}", problem)
    return texts[0]


def load_file(path: Path, image_root: Path, max_items: int | None) -> Triples:
    """``(image, POS[0], NEG[0])`` of the first ``max_items`` items whose image exists."""
    data = read_json(path)
    if not isinstance(data, list):
        raise BenchmarkDataError(path, "top level", "expected a list of [image, texts] items")
    records = []
    for index, record in enumerate(data):
        where = f"[{index}]"
        if (
            not isinstance(record, list)
            or len(record) != 2
            or not isinstance(record[0], str)
            or not record[0]
            or not isinstance(record[1], dict)
        ):
            raise BenchmarkDataError(
                path,
                where,
                f'expected [image path, {{"POS": [...], "NEG": [...]}}], got {record!r}',
            )
        pos = _texts(record[1], "POS", path, where)
        neg = _texts(record[1], "NEG", path, where)
        records.append((image_root / record[0], pos, neg))
    triples: Triples = []
    missing = 0
    for triple in records:
        if max_items is not None and len(triples) >= max_items:
            break
        if triple[0].is_file():
            triples.append(triple)
        else:
            missing += 1
    if records and not triples:
        raise BenchmarkDataError(path, "[*][0]", f"no item's image found under {image_root}")
    if missing:
        log.warning(
            "%s: %d items dropped, their images are not under %s", path, missing, image_root
        )
    return triples


def find_files(data_dir: Path) -> list[Path]:
    """Every annotation file below ``data_dir/<Type>/``, types in :data:`TYPES` order."""
    files = [path for kind in TYPES for path in sorted((data_dir / kind).rglob("*.json"))]
    if not files:
        raise BenchmarkDataError(data_dir, "annotations", f"no {'/'.join(TYPES)} .json files")
    return files


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def vl_checklist(
    encoder: Encoder,
    root: Path,
    *,
    annotations: str = "data",
    image_roots: Mapping[str, str] | None = None,
    max_items: int | None = 1000,
) -> dict[str, float]:
    """``acc``, per-type, per-dimension and per-file accuracy, and the number of ``ties``;
    ``image_roots`` maps sources (vg, vaw, swig, hake) to image folders (relative to ``root``,
    or absolute) replacing :data:`IMAGE_ROOTS`."""
    if max_items is not None and max_items < 1:
        raise ValueError(f"vl_checklist max_items must be positive or null, got {max_items}")
    if image_roots is not None and not isinstance(image_roots, Mapping):
        raise ValueError(f"vl_checklist image_roots must map sources to folders: {image_roots!r}")
    roots = {**IMAGE_ROOTS, **(image_roots or {})}
    unknown = sorted(set(roots) - set(IMAGE_ROOTS))
    if unknown:
        raise ValueError(f"vl_checklist image_roots for unknown sources {unknown}")
    data_dir = root / annotations
    data: dict[PurePosixPath, Triples] = {}
    for path in find_files(data_dir):
        relative = PurePosixPath(path.relative_to(data_dir).as_posix())
        triples = load_file(path, root / roots[source_of(relative, path)], max_items)
        if triples:
            data[relative.with_suffix("")] = triples
    if not data:
        raise BenchmarkDataError(data_dir, "annotations", "every file is empty")

    per_file: dict[str, float] = {}
    by_dimension: dict[str, list[float]] = defaultdict(list)
    ties = 0
    for relative, (image, positive_text, negative_text) in embed_triples(encoder, data).items():
        positive = pair_scores(image, positive_text)
        negative = pair_scores(image, negative_text)
        ties += int((positive == negative).sum())
        per_file[str(relative)] = (positive > negative).float().mean().item()
        kind = relative.parts[0]
        by_dimension[f"{kind}/{DIMENSION_OF[kind](relative)}"].append(per_file[str(relative)])
    per_dimension = {name: _mean(values) for name, values in by_dimension.items()}
    per_type = {
        kind: _mean([v for name, v in per_dimension.items() if name.startswith(f"{kind}/")])
        for kind in TYPES
        if any(name.startswith(f"{kind}/") for name in per_dimension)
    }
    return {
        "acc": _mean(list(per_type.values())),
        **per_type,
        **per_dimension,
        **per_file,
        "ties": float(ties),
    }


BENCHMARKS.register("vl_checklist")(Benchmark(task="image_caption_selection", run=vl_checklist))
