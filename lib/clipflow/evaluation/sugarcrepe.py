"""SugarCrepe (RAIVNLab/sugar-crepe): does the image prefer its caption to a hard negative?

``root`` holds the official subset files ``<subset>.json``, each ``{id: {filename, caption,
negative_caption}}`` (ids are not always contiguous), and the images (COCO val2017) live in
``image_root``. Per subset the metric is ``main_eval.py``'s accuracy (strict ``>``); ``acc``
is the unweighted mean over the subsets evaluated, and ``add`` / ``replace`` / ``swap`` the
category means that papers (e.g. CE-CLIP) report.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from clipflow.evaluation.benchmark import (
    BENCHMARKS,
    Benchmark,
    BenchmarkDataError,
    as_list,
    check_images,
    read_json,
    require_str,
)
from clipflow.evaluation.encoder import Encoder
from clipflow.evaluation.metrics import selection_accuracy

SUBSETS = (
    "add_att",
    "add_obj",
    "replace_att",
    "replace_obj",
    "replace_rel",
    "swap_att",
    "swap_obj",
)
CATEGORIES = ("add", "replace", "swap")

Triples = list[tuple[Path, str, str]]


def load_subset(path: Path, image_root: Path) -> Triples:
    """``(image, caption, negative_caption)`` for each record of one subset file."""
    data = read_json(path)
    if not isinstance(data, dict) or not data:
        raise BenchmarkDataError(path, "top level", "expected a non-empty object of records")
    triples = [
        (
            image_root / require_str(record, "filename", path, f"[{key!r}]"),
            require_str(record, "caption", path, f"[{key!r}]"),
            require_str(record, "negative_caption", path, f"[{key!r}]"),
        )
        for key, record in data.items()
    ]
    check_images([t[0] for t in triples], [f"[{key!r}].filename" for key in data], path)
    return triples


def present_subsets(root: Path, subsets: Sequence[str] | str | None) -> list[str]:
    """The subsets to evaluate: those asked for (each must exist) or every one found."""
    if subsets is None:
        found = [name for name in SUBSETS if (root / f"{name}.json").is_file()]
        if not found:
            raise BenchmarkDataError(root, "subsets", f"no {'/'.join(SUBSETS)} .json file found")
        return found
    names = as_list(subsets)
    unknown = sorted(set(names) - set(SUBSETS))
    if unknown or not names:
        raise ValueError(f"sugarcrepe subsets {unknown or names} unknown; known: {list(SUBSETS)}")
    return names


def sugarcrepe(
    encoder: Encoder,
    root: Path,
    *,
    image_root: str = "images",
    subsets: Sequence[str] | str | None = None,
) -> dict[str, float]:
    """Per-subset, per-category and mean accuracy; images and texts are embedded once each."""
    names = present_subsets(root, subsets)
    data = {name: load_subset(root / f"{name}.json", root / image_root) for name in names}
    images = sorted({t[0] for triples in data.values() for t in triples})
    texts = sorted({text for triples in data.values() for t in triples for text in t[1:]})
    image_rows = dict(zip(images, encoder.encode_images(images), strict=True))
    text_rows = dict(zip(texts, encoder.encode_texts(texts), strict=True))

    metrics = {
        name: selection_accuracy(
            torch.stack([image_rows[t[0]] for t in triples]),
            torch.stack([text_rows[t[1]] for t in triples]),
            torch.stack([text_rows[t[2]] for t in triples]),
        )
        for name, triples in data.items()
    }
    for category in CATEGORIES:
        scores = [value for name, value in metrics.items() if name.startswith(f"{category}_")]
        if scores:
            metrics[category] = sum(scores) / len(scores)
    metrics["acc"] = sum(metrics[name] for name in names) / len(names)
    return metrics


BENCHMARKS.register("sugarcrepe")(Benchmark(task="image_caption_selection", run=sugarcrepe))
