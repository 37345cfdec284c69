"""Zero-shot CIFAR-10 / CIFAR-100 in torchvision's on-disk format.

``root`` is what ``torchvision.datasets.CIFAR10/100(root)`` takes: it holds
``cifar-10-batches-py/`` (``data_batch_1`` … ``data_batch_5``, ``test_batch``,
``batches.meta``) or ``cifar-100-python/`` (``train``, ``test``, ``meta``). Each batch is a
pickled dict with ``data`` (``N x 3072`` uint8: the red, green and blue 32x32 planes of each
image) and ``labels`` (CIFAR-10) or ``fine_labels`` (CIFAR-100); the meta file's
``label_names`` / ``fine_label_names`` are the class names.

The batches are read here rather than through torchvision, whose reader refuses any file but
the released ones (it checks their MD5 sums); the unpickler accepts only the numpy array
reconstructors those pickles contain, so a doctored file cannot run code.

Class names and templates are CLIP_benchmark's: the meta file's names as written (CIFAR-100's
``aquarium_fish`` keeps its underscore, as torchvision hands it over) and CLIP's 18 CIFAR
templates (``data/cifar_templates.txt``, CLIP_benchmark's ``cifar10``/``cifar100`` entries in
``en_zeroshot_classification_templates.json``, identical for both). Metrics are
imagefolder_zeroshot's.
"""

from __future__ import annotations

import functools
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from clipflow.evaluation.benchmark import (
    BENCHMARKS,
    Benchmark,
    BenchmarkDataError,
    packaged_lines,
)
from clipflow.evaluation.encoder import Encoder
from clipflow.evaluation.metrics import class_embeddings, classification_metrics
from clipflow.evaluation.zeroshot import fill, read_lines, read_templates

CIFAR_TEMPLATES = "cifar_templates.txt"
SIDE = 32

# Globals a CIFAR pickle may name: numpy's array reconstructor (the released files were
# written under numpy 1.x, which called its module numpy.core; numpy 2 writes numpy._core),
# and the codec a Python 3 protocol-2 pickle uses for bytes.
_ALLOWED_GLOBALS = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }
)


@dataclass(frozen=True)
class CifarLayout:
    """Where one CIFAR variant keeps its batches, and the keys naming labels and classes."""

    folder: str
    splits: Mapping[str, tuple[str, ...]]
    meta: str
    names_key: str
    labels_key: str


LAYOUTS: dict[str, CifarLayout] = {
    "cifar10": CifarLayout(
        folder="cifar-10-batches-py",
        splits={
            "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
            "test": ("test_batch",),
        },
        meta="batches.meta",
        names_key="label_names",
        labels_key="labels",
    ),
    "cifar100": CifarLayout(
        folder="cifar-100-python",
        splits={"train": ("train",), "test": ("test",)},
        meta="meta",
        names_key="fine_label_names",
        labels_key="fine_labels",
    ),
}


class _ArrayUnpickler(pickle.Unpickler):
    """An unpickler that resolves only ``_ALLOWED_GLOBALS``."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        return super().find_class(module, name)


def read_pickle(path: Path) -> dict[str, Any]:
    """One CIFAR pickle (a dict), decoded as torchvision does (``encoding="latin1"``, which
    turns the Python 2 strings of the released files into ``str``)."""
    if not path.is_file():
        raise BenchmarkDataError(path, "file", "not found")
    try:
        with path.open("rb") as handle:
            data = _ArrayUnpickler(handle, encoding="latin1").load()
    except Exception as error:  # malformed pickle bytes can raise almost any exception type
        raise BenchmarkDataError(path, "pickle", f"cannot be read ({error})") from None
    if not isinstance(data, dict):
        raise BenchmarkDataError(path, "top level", f"expected a dict, got {type(data).__name__}")
    return data


def _field(data: dict[str, Any], key: str, path: Path) -> Any:
    if key not in data:
        raise BenchmarkDataError(path, key, "missing")
    return data[key]


def read_classnames(path: Path, key: str) -> list[str]:
    """Class names from a meta file."""
    names = _field(read_pickle(path), key, path)
    if not isinstance(names, list) or not names:
        raise BenchmarkDataError(path, key, "expected a non-empty list of names")
    for index, name in enumerate(names):
        if not isinstance(name, str) or not name:
            raise BenchmarkDataError(path, f"{key}[{index}]", f"expected a name, got {name!r}")
    return names


def read_batch(path: Path, labels_key: str, num_classes: int) -> tuple[np.ndarray, list[int]]:
    """``(N, 32, 32, 3)`` uint8 images and their labels from one batch file."""
    data = read_pickle(path)
    pixels = _field(data, "data", path)
    if (
        not isinstance(pixels, np.ndarray)
        or pixels.dtype != np.uint8
        or pixels.ndim != 2
        or pixels.shape[1] != 3 * SIDE * SIDE
    ):
        got = f"{pixels.dtype} {pixels.shape}" if isinstance(pixels, np.ndarray) else pixels
        raise BenchmarkDataError(path, "data", f"expected an N x 3072 uint8 array, got {got!r}")
    labels = _field(data, labels_key, path)
    if not isinstance(labels, list) or len(labels) != len(pixels):
        raise BenchmarkDataError(path, labels_key, f"expected a list of {len(pixels)} labels")
    for index, label in enumerate(labels):
        if not isinstance(label, int) or not 0 <= label < num_classes:
            raise BenchmarkDataError(
                path, f"{labels_key}[{index}]", f"expected a class index below {num_classes}"
            )
    # Rows are channel-major (all red, then green, then blue); PIL wants height, width, channel.
    images = pixels.reshape(-1, 3, SIDE, SIDE).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def cifar_zeroshot(
    layout: CifarLayout,
    encoder: Encoder,
    root: Path,
    *,
    split: str = "test",
    classnames: str | None = None,
    templates: str | None = None,
) -> dict[str, float]:
    """Zero-shot ``acc1``, ``acc5`` and ``mean_per_class_recall`` on one split of a CIFAR
    variant. ``classnames`` / ``templates`` name files relative to ``root`` (one entry a line)
    replacing the meta file's names and CLIP's CIFAR templates."""
    if split not in layout.splits:
        raise ValueError(f"{layout.folder} has no split {split!r}; known: {list(layout.splits)}")
    folder = root / layout.folder
    names = read_classnames(folder / layout.meta, layout.names_key)
    if classnames is not None:
        names_file = root / classnames
        if not names_file.is_file():
            raise BenchmarkDataError(names_file, "classnames", "file not found")
        given = read_lines(names_file)
        if len(given) != len(names):
            raise BenchmarkDataError(
                names_file, "class names", f"{len(given)} lines for {len(names)} classes"
            )
        names = given
    if templates is None:
        prompts = packaged_lines(CIFAR_TEMPLATES)
    elif (root / templates).is_file():
        prompts = read_templates(root / templates)
    else:
        raise BenchmarkDataError(root / templates, "templates", "file not found")

    batches = [
        read_batch(folder / name, layout.labels_key, len(names)) for name in layout.splits[split]
    ]
    pixels = np.concatenate([images for images, _ in batches])
    labels = torch.tensor([label for _, batch_labels in batches for label in batch_labels])
    texts = [fill(template, name) for name in names for template in prompts]
    text = encoder.encode_texts(texts).view(len(names), len(prompts), -1)
    logits = encoder.encode_pixels(pixels) @ class_embeddings(text).T
    return classification_metrics(logits, labels)


# The layout is bound first, so each registered function is ``run(encoder, root, **options)``.
BENCHMARKS.register("cifar10")(
    Benchmark(
        task="zeroshot_classification",
        run=functools.partial(cifar_zeroshot, LAYOUTS["cifar10"]),
    )
)
BENCHMARKS.register("cifar100")(
    Benchmark(
        task="zeroshot_classification",
        run=functools.partial(cifar_zeroshot, LAYOUTS["cifar100"]),
    )
)
