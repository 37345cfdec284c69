"""SugarCrepe (RAIVNLab/sugar-crepe): does the image prefer its caption to a hard negative?

``root`` holds the official subset files ``<subset>.json``, each ``{id: {filename, caption,
negative_caption}}`` (ids are not always contiguous), and the images (COCO val2017) live in
``image_root``, by default ``root/val2017`` as CLIP_benchmark's ``sugar_crepe/<subset>``
datasets lay them out, so a root downloaded for CLIP_benchmark is read as it is. Per subset the
metric is ``main_eval.py``'s accuracy (strict ``>``); ``acc`` is the unweighted mean over the
subsets scored, and ``add`` / ``replace`` / ``swap`` the category means that papers (e.g.
CE-CLIP) report. All seven subsets are scored unless ``subsets`` lists some: a subset file
missing from ``root`` is an error, never a mean over fewer subsets; the result record names
the subsets scored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

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
from clipflow.evaluation.encoder import Encoder, Triples, embed_triples
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


def sugarcrepe(
    encoder: Encoder,
    root: Path,
    *,
    image_root: str = "val2017",
    subsets: Sequence[str] | str | None = None,
) -> Scores:
    """Per-subset, per-category and mean accuracy; images and texts are embedded once each.
    ``image_root`` is relative to ``root`` (or absolute)."""
    names = parts_to_score(
        root, subsets, {name: f"{name}.json" for name in SUBSETS}, "sugarcrepe", "subsets"
    )
    data = {name: load_subset(root / f"{name}.json", root / image_root) for name in names}
    metrics = triple_accuracies(encoder, data)
    for category in CATEGORIES:
        scores = [value for name, value in metrics.items() if name.startswith(f"{category}_")]
        if scores:
            metrics[category] = sum(scores) / len(scores)
    metrics["acc"] = sum(metrics[name] for name in names) / len(names)
    return Scores(metrics, parts=names)


def triple_accuracies(encoder: Encoder, data: Mapping[str, Triples]) -> dict[str, float]:
    """Accuracy per part of ``(image, positive caption, negative caption)`` triples: how often
    the positive scores above the negative (ties wrong). Each image and text embedded once."""
    return {
        name: selection_accuracy(*embedded)
        for name, embedded in embed_triples(encoder, data).items()
    }


BENCHMARKS.register("sugarcrepe")(Benchmark(task="image_caption_selection", run=sugarcrepe))
