"""ARO (mertyg/vision-language-models-are-bows): VG-Relation, VG-Attribution and the two
word-order tasks, read in their official formats.

- ``aro_vg_relation``: ``root/visual_genome_relation.json``, a list of ``{image_path,
  bbox_x, bbox_y, bbox_w, bbox_h, true_caption, false_caption, relation_name, ...}`` with the
  images in ``root/images/``. The image is cropped to the box before the eval transform; an
  item is right when the true caption scores strictly higher (ARO takes the argmax of
  ``[false, true]``, so a tie is wrong). The classes are ``relation_name``; the
  ``macro_accuracy`` is the unweighted mean of per-class accuracies once the symmetric
  relations the official notebook lists are dropped (``data/aro_symmetric_relations.txt``,
  copied from ``notebooks/Replicate ARO! VG-Relation, VG-Attribution.ipynb``).
- ``aro_vg_attribution``: ``root/visual_genome_attribution.json``, the same fields plus
  ``attributes`` (two strings); the classes are ``"{attributes[0]}_{attributes[1]}"`` and
  those with fewer than 25 items are dropped, as ``VG_Attribution.evaluate_scores`` does.
- ``micro_accuracy`` (both VG tasks) is the share of right items among those the macro
  average covers, so the two differ only by how classes are weighted.
- ``aro_coco_order`` / ``aro_flickr_order``: BLIP's Karpathy test lists
  (``coco_karpathy_test.json`` / ``flickr30k_test.json``: ``[{"image", "caption": [...]}]``,
  images at ``root/<image>``); every caption against its four seeded perturbations
  (:mod:`clipflow.evaluation.perturbations`), all through ARO's ``pre_caption``.
  ``Precision@1`` is the share of captions that score at least as high as every
  perturbation: ARO's ``argmax == 0`` gives a tie to the original, which happens when a
  perturbation leaves a short caption as it was.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from clipflow.evaluation.benchmark import (
    BENCHMARKS,
    Benchmark,
    BenchmarkDataError,
    check_images,
    packaged_lines,
    read_json,
    require_str,
)
from clipflow.evaluation.encoder import Box, Encoder
from clipflow.evaluation.metrics import first_option_correct, pair_scores, selection_correct
from clipflow.evaluation.perturbations import OrderPerturber, pre_caption
from clipflow.evaluation.retrieval import load_captions

SYMMETRIC_RELATIONS = "aro_symmetric_relations.txt"
BOX_FIELDS = ("bbox_x", "bbox_y", "bbox_w", "bbox_h")

ClassOf = Callable[[Any, Path, str], str]


@dataclass(frozen=True)
class VGItem:
    """One VG-Relation / VG-Attribution test case."""

    image: Path
    box: Box
    true_caption: str
    false_caption: str
    label: str


def relation_class(record: Any, path: Path, where: str) -> str:
    """VG-Relation's class: the record's ``relation_name``."""
    return require_str(record, "relation_name", path, where)


def attribute_class(record: Any, path: Path, where: str) -> str:
    """VG-Attribution's class: its two ``attributes`` joined by ``_``."""
    attributes = record.get("attributes")
    if (
        not isinstance(attributes, list)
        or len(attributes) != 2
        or not all(isinstance(a, str) and a for a in attributes)
    ):
        problem = (
            "missing" if "attributes" not in record else f"expected 2 strings, got {attributes!r}"
        )
        raise BenchmarkDataError(path, f"{where}.attributes", problem)
    return f"{attributes[0]}_{attributes[1]}"


def _box(record: dict[str, Any], path: Path, where: str) -> Box:
    """The crop: offsets >= 0, sizes > 0 (an empty crop has nothing to embed)."""
    values = []
    for key in BOX_FIELDS:
        value = record.get(key)
        size = key in ("bbox_w", "bbox_h")
        # bool is an int to Python, never a pixel count in the data.
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or (value <= 0 if size else value < 0):
            bound = "> 0" if size else ">= 0"
            problem = (
                "missing" if key not in record else f"expected a number {bound}, got {value!r}"
            )
            raise BenchmarkDataError(path, f"{where}.{key}", problem)
        values.append(value)
    x, y, width, height = values
    return (x, y, width, height)


def load_vg(path: Path, image_dir: Path, class_of: ClassOf) -> list[VGItem]:
    """The test cases of a VG-Relation or VG-Attribution annotation file."""
    data = read_json(path)
    if not isinstance(data, list) or not data:
        raise BenchmarkDataError(path, "top level", "expected a non-empty list of records")
    items = []
    for index, record in enumerate(data):
        where = f"[{index}]"
        image = image_dir / require_str(record, "image_path", path, where)
        items.append(
            VGItem(
                image=image,
                box=_box(record, path, where),
                true_caption=require_str(record, "true_caption", path, where),
                false_caption=require_str(record, "false_caption", path, where),
                label=class_of(record, path, where),
            )
        )
    check_images([i.image for i in items], [f"[{n}].image_path" for n in range(len(items))], path)
    return items


def vg_accuracies(
    encoder: Encoder,
    items: list[VGItem],
    excluded: frozenset[str],
    min_class_size: int,
    source: Path,
) -> dict[str, float]:
    """``macro_accuracy`` over the classes neither ``excluded`` nor smaller than
    ``min_class_size``, and ``micro_accuracy`` over their items."""
    # An (image, box) pair or a caption often recurs: each is embedded once.
    crops = sorted({(i.image, i.box) for i in items})
    crop_rows = dict(
        zip(crops, encoder.encode_images([c[0] for c in crops], [c[1] for c in crops]), strict=True)
    )
    texts = sorted({text for i in items for text in (i.true_caption, i.false_caption)})
    text_rows = dict(zip(texts, encoder.encode_texts(texts), strict=True))
    correct = selection_correct(
        torch.stack([crop_rows[(i.image, i.box)] for i in items]),
        torch.stack([text_rows[i.true_caption] for i in items]),
        torch.stack([text_rows[i.false_caption] for i in items]),
    )
    by_class: dict[str, list[bool]] = defaultdict(list)
    for item, right in zip(items, correct.tolist(), strict=True):
        by_class[item.label].append(right)
    kept = {
        label: rights
        for label, rights in by_class.items()
        if label not in excluded and len(rights) >= min_class_size
    }
    if not kept:
        raise BenchmarkDataError(
            source,
            "classes",
            f"none of {len(by_class)} is left with >= {min_class_size} items "
            f"after dropping {len(excluded & by_class.keys())} excluded",
        )
    per_class = [sum(rights) / len(rights) for rights in kept.values()]
    return {
        "macro_accuracy": sum(per_class) / len(per_class),
        "micro_accuracy": sum(map(sum, kept.values())) / sum(map(len, kept.values())),
    }


def aro_vg_relation(
    encoder: Encoder,
    root: Path,
    *,
    annotation: str = "visual_genome_relation.json",
    image_root: str = "images",
    exclude_symmetric: bool = True,
) -> dict[str, float]:
    """VG-Relation macro and micro accuracy (``exclude_symmetric=False`` keeps every relation,
    as ARO's ``evaluate_scores`` records do before the notebook filters them)."""
    path = root / annotation
    items = load_vg(path, root / image_root, relation_class)
    excluded = frozenset(packaged_lines(SYMMETRIC_RELATIONS)) if exclude_symmetric else frozenset()
    return vg_accuracies(encoder, items, excluded, 1, path)


def aro_vg_attribution(
    encoder: Encoder,
    root: Path,
    *,
    annotation: str = "visual_genome_attribution.json",
    image_root: str = "images",
    min_class_size: int = 25,
) -> dict[str, float]:
    """VG-Attribution macro and micro accuracy over attribute pairs with at least
    ``min_class_size`` items."""
    path = root / annotation
    items = load_vg(path, root / image_root, attribute_class)
    return vg_accuracies(encoder, items, frozenset(), min_class_size, path)


def aro_order(
    encoder: Encoder,
    root: Path,
    *,
    annotation: str = "coco_karpathy_test.json",
    image_root: str | None = None,
    split: str = "test",
    seed: int = 1,
    max_words: int = 30,
) -> dict[str, float]:
    """``Precision@1`` of each caption against its four perturbations. The annotation file is
    BLIP's list (or Karpathy's ``dataset_*.json``, then ``split`` picks its images);
    ``image_root`` (relative to ``root``, default ``root``) is where image paths start; ``seed``
    is ``main_aro.py``'s default."""
    images, captions = load_captions(root / annotation, root / (image_root or ""), split)
    flat = [caption for texts in captions for caption in texts]
    owners = torch.tensor([i for i, texts in enumerate(captions) for _ in texts])
    options = [
        [pre_caption(text, max_words) for text in (caption, *perturbed)]
        for caption, perturbed in zip(flat, OrderPerturber(seed).perturb(flat), strict=True)
    ]
    texts = sorted({text for row in options for text in row})
    text_rows = dict(zip(texts, encoder.encode_texts(texts), strict=True))
    image_rows = encoder.encode_images(images)[owners]
    scores = torch.stack(
        [
            pair_scores(image_rows, torch.stack([text_rows[row[k]] for row in options]))
            for k in range(len(options[0]))
        ],
        dim=1,
    )
    return {"Precision@1": first_option_correct(scores).float().mean().item()}


BENCHMARKS.register("aro_vg_relation")(
    Benchmark(task="image_caption_selection", run=aro_vg_relation)
)
BENCHMARKS.register("aro_vg_attribution")(
    Benchmark(task="image_caption_selection", run=aro_vg_attribution)
)
BENCHMARKS.register("aro_coco_order")(Benchmark(task="image_caption_selection", run=aro_order))
BENCHMARKS.register("aro_flickr_order")(
    Benchmark(
        task="image_caption_selection",
        run=functools.partial(aro_order, annotation="flickr30k_test.json"),
    )
)
