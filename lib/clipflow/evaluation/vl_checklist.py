"""VL-CheckList (om-ai-lab/VL-CheckList): objects, attributes and relations, each a positive
text against a negative one.

``root`` is the folder VL-CheckList's corpus configs are relative to: the annotations under
``root/data/`` (``annotations``) and the images of each source under its ``IMG_ROOT``,
``root/vg``, ``root/swig`` and ``root/hake`` (VAW's configs point at ``vg``; ``image_roots``
replaces any). The files scored are the 56 of the official corpus definition (``corpus.json``
with the ``ANNO_PATH`` of each ``corpus/v1`` config, shipped as
``data/vl_checklist_corpus.json``); a file it defines that ``root`` lacks is an error naming
every missing one, unless ``files`` lists the files to score. Each file is a list of ``[image
path, {"POS": [texts], "NEG": [texts]}]`` and, as in ``evaluate.py``'s ITC task, only
``POS[0]`` and ``NEG[0]`` count. An item is right when the positive scores strictly above the
negative. The data has items whose two texts are the same: they tie and count as wrong; the
number of ties is a count, not a metric, and the result record carries it under ``counts``.

As ``data_loader.py`` does, items whose image file is missing are dropped (with a warning) and
each file keeps its first ``max_items`` (``int(MAX_NUM / 2)``, 1,000 with the default
``MAX_NUM``).

Metrics, aggregated as ``radar.py`` does with the corpus definition: each file's accuracy under
its path below ``data/`` without ``.json`` (e.g. ``Attribute/vg/color``); each of radar's 13
axes (``Object/Size/<large|medium|small>``, ``Object/Location/<center|mid|margin>``,
``Attribute/<color|material|action|size|state>``, ``Relation/<action|spatial>``) as the mean
over its sources of each source's mean over its files, so a source with many files (SWiG's
four roles) weighs as much as one with one. Beyond radar, which stops at the axes: the
dimensions ``Object/Size`` and ``Object/Location`` are the means of their three axes (the other
dimensions are axes themselves), each type the mean of its dimensions (the paper's columns),
and ``acc`` the mean of the three types.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from clipflow.evaluation.benchmark import (
    BENCHMARKS,
    Benchmark,
    BenchmarkDataError,
    Scores,
    parts_to_score,
    read_json,
)
from clipflow.evaluation.encoder import Encoder, Triples, embed_triples
from clipflow.evaluation.metrics import pair_scores

log = logging.getLogger(__name__)

TYPES = ("Object", "Attribute", "Relation")
CORPUS = "vl_checklist_corpus.json"
# Source (the corpus definition's key) -> image folder below root (the configs' IMG_ROOT).
IMAGE_ROOTS: dict[str, str] = {"vg": "vg", "vaw": "vg", "swig": "swig", "hake": "hake"}

# Axis -> source -> files (below data/, without .json), in radar.py's order.
Corpus = dict[str, dict[str, list[str]]]


def corpus() -> Corpus:
    """The official corpus definition: radar's axes, each source's annotation files."""
    text = resources.files("clipflow.evaluation").joinpath("data", CORPUS).read_text()
    return json.loads(text)


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
    if not triples:
        raise BenchmarkDataError(path, "[*][0]", f"no item with its image under {image_root}")
    if missing:
        log.warning(
            "%s: %d items dropped, their images are not under %s", path, missing, image_root
        )
    return triples


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values)


def radar_means(per_file: Mapping[str, float], definition: Corpus) -> dict[str, float]:
    """Each axis's accuracy as ``radar.py`` computes it: per source the mean of its files, then
    the mean of the sources; files not in ``per_file`` (not scored) and sources left without
    files are left out."""
    axes = {}
    for axis, sources in definition.items():
        source_means = [
            _mean(per_file[file] for file in files if file in per_file)
            for files in sources.values()
            if any(file in per_file for file in files)
        ]
        if source_means:
            axes[axis] = _mean(source_means)
    return axes


def _group_means(values: Mapping[str, float], depth: int) -> dict[str, float]:
    """Means of ``values`` grouped by their key's first ``depth`` ``/``-separated parts."""
    groups: dict[str, list[float]] = defaultdict(list)
    for name, value in values.items():
        groups["/".join(name.split("/")[:depth])].append(value)
    return {name: _mean(group) for name, group in groups.items()}


def vl_checklist(
    encoder: Encoder,
    root: Path,
    *,
    annotations: str = "data",
    image_roots: Mapping[str, str] | None = None,
    max_items: int | None = 1000,
    files: Sequence[str] | str | None = None,
) -> Scores:
    """``acc``, per-type, per-dimension, per-axis and per-file accuracy (ties counted apart);
    ``image_roots`` maps sources (vg, vaw, swig, hake) to image folders (relative to ``root``,
    or absolute) replacing :data:`IMAGE_ROOTS`; ``files`` lists the corpus files to score (paths
    below ``annotations`` without ``.json``), all 56 by default."""
    if max_items is not None and max_items < 1:
        raise ValueError(f"vl_checklist max_items must be positive or null, got {max_items}")
    if image_roots is not None and not isinstance(image_roots, Mapping):
        raise ValueError(f"vl_checklist image_roots must map sources to folders: {image_roots!r}")
    roots = {**IMAGE_ROOTS, **(image_roots or {})}
    unknown = sorted(set(roots) - set(IMAGE_ROOTS))
    if unknown:
        raise ValueError(f"vl_checklist image_roots for unknown sources {unknown}")
    definition = corpus()
    source_of = {
        file: source
        for sources in definition.values()
        for source, source_files in sources.items()
        for file in source_files
    }
    data_dir = root / annotations
    names = parts_to_score(
        data_dir, files, {file: f"{file}.json" for file in source_of}, "vl_checklist", "files"
    )
    data = {
        name: load_file(data_dir / f"{name}.json", root / roots[source_of[name]], max_items)
        for name in names
    }
    per_file: dict[str, float] = {}
    ties = 0
    for name, (image, positive_text, negative_text) in embed_triples(encoder, data).items():
        positive = pair_scores(image, positive_text)
        negative = pair_scores(image, negative_text)
        ties += int((positive == negative).sum())
        per_file[name] = (positive > negative).float().mean().item()
    per_axis = radar_means(per_file, definition)
    per_dimension = _group_means(per_axis, 2)
    per_type = _group_means(per_dimension, 1)
    metrics = {
        "acc": _mean(per_type.values()),
        **per_type,
        **{name: value for name, value in per_dimension.items() if name not in per_axis},
        **per_axis,
        **{name: per_file[name] for name in sorted(per_file)},
    }
    return Scores(metrics, parts=names, counts={"ties": ties})


BENCHMARKS.register("vl_checklist")(Benchmark(task="image_caption_selection", run=vl_checklist))
