"""Builders for evaluation tests: benchmark data in the official formats, and a stand-in model.

``LookupModel`` makes every metric hand-computable: an image's embedding is chosen by the id
painted into its red channel (``write_id_image``), a text's embedding is looked up by its string.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ID_STEP = 40  # red-channel spacing between image ids; survives JPEG rounding


def write_id_image(path: Path, image_id: int) -> Path:
    """A small solid JPEG whose red channel encodes ``image_id`` (0..6)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (image_id * ID_STEP, 128, 128)).save(path, "JPEG")
    return path


def write_id_strips(path: Path, image_ids: Sequence[int], width: int = 16) -> Path:
    """A JPEG of side-by-side ``width``-pixel strips, strip ``k`` encoding ``image_ids[k]``, so a
    crop's embedding says which strip it starts in. Strips are whole 8x8 JPEG blocks and chroma
    is not subsampled, so each strip decodes to its own colour."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", (width * len(image_ids), width))
    for k, image_id in enumerate(image_ids):
        image.paste((image_id * ID_STEP, 128, 128), (k * width, 0, (k + 1) * width, width))
    image.save(path, "JPEG", quality=95, subsampling=0)
    return path


def write_noise_image(path: Path, seed: int, size: int = 40) -> Path:
    """A random-noise JPEG, distinct per ``seed`` (for real, randomly initialised models)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, "JPEG")
    return path


def id_preprocess(image: Image.Image) -> torch.Tensor:
    """The eval transform of ``LookupModel``: a tensor filled with the image's id."""
    return torch.full((3, 2, 2), float(round(image.getpixel((0, 0))[0] / ID_STEP)))


class LookupModel(torch.nn.Module):
    """CLIP stand-in whose embeddings are given: per image id, and per text string.

    With ``default_text``, a text not in ``text_vectors`` embeds to it (texts a benchmark makes
    up, such as ARO's perturbations); without, an unknown text is a ``KeyError``.
    """

    def __init__(
        self,
        image_vectors: Sequence[Sequence[float]],
        text_vectors: Mapping[str, Sequence[float]],
        default_text: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        rows = [*text_vectors.values(), *([default_text] if default_text is not None else [])]
        self.register_buffer("image_table", torch.tensor(image_vectors, dtype=torch.float32))
        self.register_buffer("text_table", torch.tensor(rows, dtype=torch.float32))
        self.text_ids = {text: index for index, text in enumerate(text_vectors)}
        self.default_id = len(text_vectors) if default_text is not None else None

    def tokenizer(self, texts: list[str]) -> torch.Tensor:
        if self.default_id is None:
            return torch.tensor([[self.text_ids[text]] for text in texts])
        return torch.tensor([[self.text_ids.get(text, self.default_id)] for text in texts])

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return self.image_table[images[:, 0, 0, 0].round().long()]

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.text_table[tokens[:, 0]]


def write_json(path: Path, obj: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=4), encoding="utf-8")
    return path


def karpathy_record(filepath: str, filename: str, split: str, captions: list[str]) -> dict:
    """One image of ``dataset_coco.json``, keys in the official order."""
    return {
        "filepath": filepath,
        "sentids": list(range(len(captions))),
        "filename": filename,
        "imgid": 0,
        "split": split,
        "sentences": [
            {"tokens": c.lower().split(), "raw": c, "imgid": 0, "sentid": i}
            for i, c in enumerate(captions)
        ],
        "cocoid": 0,
    }
