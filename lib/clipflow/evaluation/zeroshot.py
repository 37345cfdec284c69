"""Zero-shot classification on an ImageNet-style folder tree (``root/<class>/<image>``).

Classes and images are enumerated the way ``torchvision.datasets.ImageFolder`` does (sorted
folder names, files with an image extension anywhere below each), so labels match
CLIP_benchmark's; hidden folders such as ``.cache`` are not classes. Class names come from a
class-names file when there is one (one per line, in sorted-folder order); else, when the
folders are exactly ImageNet-1k's 1,000 WordNet ids, from CLIP_benchmark's curated ImageNet
class names (``en_classnames.json``'s ``imagenet1k``, shipped with each wnid as
``data/imagenet_classnames.txt``); else they are the folder names with ``_`` read as a space.
Folders named like wnids (``n01440764``) that are not those 1,000 and have no class-names file
are an error: prompts such as "a photo of a n01440764." would score near chance without a
warning.
Templates use ``{c}`` (or CLIP's ``{}``) for the class name; the default is CLIP's 80
ImageNet templates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torchvision.datasets.folder import IMG_EXTENSIONS

from clipflow.evaluation.benchmark import (
    BENCHMARKS,
    Benchmark,
    BenchmarkDataError,
    packaged_lines,
)
from clipflow.evaluation.encoder import Encoder
from clipflow.evaluation.metrics import class_embeddings, classification_metrics

DEFAULT_TEMPLATES = "imagenet_templates.txt"
IMAGENET_CLASSNAMES = "imagenet_classnames.txt"
WNID = re.compile(r"n\d{8}")


@dataclass(frozen=True)
class ImageFolderData:
    """Images with integer labels, and the class names and templates to build the classifier."""

    images: list[Path]
    labels: list[int]
    classnames: list[str]
    templates: list[str]


def default_templates() -> list[str]:
    """CLIP's 80 ImageNet prompt templates (CLIP_benchmark's ``imagenet1k`` list, same order)."""
    return packaged_lines(DEFAULT_TEMPLATES)


def imagenet_classnames() -> dict[str, str]:
    """ImageNet-1k's wnid -> CLIP_benchmark's curated class name, in class-index order."""
    rows = (line.split("\t") for line in packaged_lines(IMAGENET_CLASSNAMES))
    return {wnid: name for wnid, name in rows}


def folder_classnames(root: Path, folders: list[str]) -> list[str]:
    """Class names when no class-names file gives them: ImageNet-1k's curated ones for its
    1,000 wnid folders, else the folder names with ``_`` as a space; other wnid folders fail."""
    imagenet = imagenet_classnames()
    if folders == list(imagenet):
        return list(imagenet.values())
    wnids = [folder for folder in folders if WNID.fullmatch(folder)]
    if wnids:
        raise BenchmarkDataError(
            root,
            "class names",
            f"{len(wnids)} of {len(folders)} class folders are WordNet ids (e.g. {wnids[0]}) "
            "but they are not ImageNet-1k's 1,000 and no class-names file gives their names: "
            "add classnames.txt (one name per line, in sorted-folder order)",
        )
    return [folder.replace("_", " ") for folder in folders]


def read_lines(path: Path) -> list[str]:
    """Non-empty lines of a text file, stripped of surrounding whitespace."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip()]


def read_templates(path: Path) -> list[str]:
    """Templates from ``path``; each must contain the ``{c}`` or ``{}`` placeholder."""
    templates = read_lines(path)
    if not templates:
        raise BenchmarkDataError(path, "templates", "file has no templates")
    for number, template in enumerate(templates, start=1):
        if "{c}" not in template and "{}" not in template:
            raise BenchmarkDataError(path, f"line {number}", f"no {{c}} placeholder: {template!r}")
    return templates


def fill(template: str, classname: str) -> str:
    """The prompt for ``classname`` from ``template``."""
    return template.replace("{c}", classname).replace("{}", classname)


def load_imagefolder(
    root: Path, classnames: str | None = None, templates: str | None = None
) -> ImageFolderData:
    """Read the class folders under ``root``.

    ``classnames`` / ``templates`` name files relative to ``root``; by default
    ``root/classnames.txt`` and ``root/templates.txt`` are used when present.
    """
    if not root.is_dir():
        raise BenchmarkDataError(root, "data root", "not a directory")
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise BenchmarkDataError(root, "class folders", "none found")
    images: list[Path] = []
    labels: list[int] = []
    for label, folder in enumerate(folders):
        files = sorted(
            p
            for p in (root / folder).rglob("*")
            if p.suffix.lower() in IMG_EXTENSIONS and p.is_file()
        )
        if not files:
            raise BenchmarkDataError(root / folder, "images", "class folder has no image files")
        images.extend(files)
        labels.extend([label] * len(files))

    names_file = root / (classnames or "classnames.txt")
    if names_file.is_file():
        names = read_lines(names_file)
        if len(names) != len(folders):
            raise BenchmarkDataError(
                names_file, "class names", f"{len(names)} lines for {len(folders)} class folders"
            )
    elif classnames is not None:
        raise BenchmarkDataError(names_file, "classnames", "file not found")
    else:
        names = folder_classnames(root, folders)

    templates_file = root / (templates or "templates.txt")
    if templates_file.is_file():
        prompts = read_templates(templates_file)
    elif templates is not None:
        raise BenchmarkDataError(templates_file, "templates", "file not found")
    else:
        prompts = default_templates()
    return ImageFolderData(images, labels, names, prompts)


def imagefolder_zeroshot(
    encoder: Encoder,
    root: Path,
    *,
    classnames: str | None = None,
    templates: str | None = None,
) -> dict[str, float]:
    """Zero-shot ``acc1``, ``acc5`` and ``mean_per_class_recall`` on the folder tree at ``root``."""
    data = load_imagefolder(root, classnames, templates)
    prompts = [fill(t, name) for name in data.classnames for t in data.templates]
    text = encoder.encode_texts(prompts).view(len(data.classnames), len(data.templates), -1)
    logits = encoder.encode_images(data.images) @ class_embeddings(text).T
    return classification_metrics(logits, torch.tensor(data.labels))


BENCHMARKS.register("imagefolder_zeroshot")(
    Benchmark(task="zeroshot_classification", run=imagefolder_zeroshot)
)
