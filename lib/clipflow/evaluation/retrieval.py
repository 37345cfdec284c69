"""Zero-shot image-text retrieval on COCO / Flickr30k captions (Karpathy test splits).

Two annotation formats are read, told apart by their top level:

- Karpathy's ``dataset_coco.json`` / ``dataset_flickr30k.json``: ``{"images": [{filename,
  filepath (COCO only), split, sentences: [{raw}, ...]}, ...]}``; only ``split`` is kept and
  the image is ``image_root/filepath/filename``.
- BLIP/ALBEF lists (``coco_karpathy_test.json``, ``flickr30k_test.json``, iSogCLR's
  ``coco_val.json``): ``[{"image": relative path, "caption": [str, ...]}, ...]``; the file is
  already one split and the image is ``image_root/image``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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
from clipflow.evaluation.metrics import retrieval_metrics


def load_captions(
    annotation: Path, image_root: Path, split: str = "test"
) -> tuple[list[Path], list[list[str]]]:
    """Image paths and each image's captions from a Karpathy or BLIP-style annotation file."""
    data = read_json(annotation)
    if isinstance(data, dict):
        images, captions, fields = _karpathy(data, annotation, image_root, split)
    elif isinstance(data, list):
        images, captions, fields = _blip(data, annotation, image_root)
    else:
        raise BenchmarkDataError(annotation, "top level", "expected an object or a list")
    if not images:
        raise BenchmarkDataError(annotation, "images", f"no images in split {split!r}")
    check_images(images, fields, annotation)
    return images, captions


def _karpathy(
    data: dict[str, Any], path: Path, image_root: Path, split: str
) -> tuple[list[Path], list[list[str]], list[str]]:
    records = data.get("images")
    if not isinstance(records, list):
        raise BenchmarkDataError(path, "images", "missing or not a list")
    images, captions, fields = [], [], []
    for index, record in enumerate(records):
        where = f"images[{index}]"
        if require_str(record, "split", path, where) != split:
            continue
        filename = require_str(record, "filename", path, where)
        filepath = record.get("filepath", "")
        if not isinstance(filepath, str):
            raise BenchmarkDataError(path, f"{where}.filepath", "expected a string")
        sentences = record.get("sentences")
        if not isinstance(sentences, list) or not sentences:
            raise BenchmarkDataError(path, f"{where}.sentences", "missing or empty")
        captions.append(
            [
                require_str(s, "raw", path, f"{where}.sentences[{i}]")
                for i, s in enumerate(sentences)
            ]
        )
        images.append(image_root / filepath / filename)
        fields.append(f"{where}.filename")
    return images, captions, fields


def _blip(
    data: list[Any], path: Path, image_root: Path
) -> tuple[list[Path], list[list[str]], list[str]]:
    images, captions, fields = [], [], []
    for index, record in enumerate(data):
        where = f"[{index}]"
        images.append(image_root / require_str(record, "image", path, where))
        texts = record.get("caption")
        if not isinstance(texts, list) or not texts:
            raise BenchmarkDataError(path, f"{where}.caption", "expected a non-empty list")
        for i, text in enumerate(texts):
            if not isinstance(text, str) or not text:
                raise BenchmarkDataError(path, f"{where}.caption[{i}]", "expected a string")
        captions.append(texts)
        fields.append(f"{where}.image")
    return images, captions, fields


def caption_retrieval(
    encoder: Encoder,
    root: Path,
    *,
    annotation: str = "dataset_coco.json",
    split: str = "test",
    image_root: str | None = None,
    recall_k: Sequence[int] | str = (1, 5, 10),
) -> dict[str, float]:
    """Image- and text-retrieval recall@k on the captions in ``root/annotation``.

    ``image_root`` (relative to ``root``; default ``root``) is where image paths start.
    """
    images, captions = load_captions(root / annotation, root / (image_root or ""), split)
    texts = [text for texts in captions for text in texts]
    owners = torch.tensor([i for i, texts in enumerate(captions) for _ in texts])
    return retrieval_metrics(
        encoder.encode_texts(texts),
        encoder.encode_images(images),
        owners,
        [int(k) for k in as_list(recall_k)],
    )


BENCHMARKS.register("coco_retrieval")(Benchmark(task="zeroshot_retrieval", run=caption_retrieval))
BENCHMARKS.register("flickr30k_retrieval")(
    Benchmark(
        task="zeroshot_retrieval",
        run=functools.partial(caption_retrieval, annotation="dataset_flickr30k.json"),
    )
)
