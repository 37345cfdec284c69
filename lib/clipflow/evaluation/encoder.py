"""Batched, L2-normalised image and text embeddings, with an optional on-disk cache.

Every benchmark reduces to "embed these images, embed these texts, compare": this class owns
the batching, devices, autocast and normalisation once, so the benchmarks stay pure functions
of embeddings and their metrics can be tested with a stand-in model.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

from clipflow.evaluation.benchmark import BenchmarkDataError
from clipflow.io import write_npy

Box = tuple[float, float, float, float]
"""A crop as ``(x, y, width, height)`` in pixels (ARO's ``bbox_x/y/w/h``)."""


class _ImageFiles(Dataset):
    """Image files through the model's eval transform, read as RGB and optionally cropped."""

    def __init__(
        self,
        paths: Sequence[Path],
        preprocess: Callable[[Image.Image], Any],
        boxes: Sequence[Box] | None = None,
    ) -> None:
        self.paths = list(paths)
        self.preprocess = preprocess
        self.boxes = None if boxes is None else list(boxes)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Any:
        path = self.paths[index]
        try:
            with Image.open(path) as image:
                rgb = image.convert("RGB")
        except OSError as error:
            raise BenchmarkDataError(path, "image", f"cannot be read ({error})") from None
        if self.boxes is not None:
            x, y, width, height = self.boxes[index]
            rgb = rgb.crop((x, y, x + width, y + height))
        return self.preprocess(rgb)


class _Pixels(Dataset):
    """In-memory ``(N, H, W, 3)`` uint8 images (CIFAR's batches) through the eval transform."""

    def __init__(self, pixels: np.ndarray, preprocess: Callable[[Image.Image], Any]) -> None:
        self.pixels = pixels
        self.preprocess = preprocess

    def __len__(self) -> int:
        return len(self.pixels)

    def __getitem__(self, index: int) -> Any:
        return self.preprocess(Image.fromarray(self.pixels[index]))


class Encoder:
    """Embeds images and texts with a CLIP-like model (``encode_image`` / ``encode_text``).

    Outputs are float32 CPU tensors, one L2-normalised row per input, in input order; the
    model is moved to ``device`` and put in eval mode.
    ``amp`` turns on autocast (what CLIP_benchmark does by default; off here so CPU results
    are full precision). With ``cache_dir``, each embedding matrix is stored as ``.npy`` under
    a key hashing the model weights, the transform, ``amp`` and the inputs (image files by path
    and content), so re-running a benchmark on the same checkpoint skips the forward passes and
    a changed checkpoint or image never reads stale embeddings.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        preprocess: Callable[[Image.Image], Any],
        tokenizer: Callable[[list[str]], torch.Tensor],
        *,
        batch_size: int = 64,
        device: str | torch.device = "cpu",
        amp: bool = False,
        num_workers: int = 0,
        cache_dir: str | os.PathLike | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.model = model.to(device).eval()
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.amp = amp
        self.num_workers = num_workers
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._model_digest: str | None = None

    def encode_images(
        self, paths: Sequence[Path], boxes: Sequence[Box] | None = None
    ) -> torch.Tensor:
        """Embed the image files at ``paths``, each cropped to its box when ``boxes`` is given
        (the crop happens before the eval transform, as ARO's loaders do)."""
        keys: list[Any] = []
        if self.cache_dir is not None:
            # by content, not path alone: images replaced in place must not reuse old embeddings
            keys = [[str(Path(path).resolve()), _file_digest(path)] for path in paths]
            if boxes is not None:
                keys = [[key, list(box)] for key, box in zip(keys, boxes, strict=True)]
        return self._cached(
            "images", keys, lambda: self._run(_ImageFiles(paths, self.preprocess, boxes))
        )

    def encode_pixels(self, pixels: np.ndarray) -> torch.Tensor:
        """Embed in-memory ``(N, H, W, 3)`` uint8 images; cached under a hash of the pixels."""
        key = [hashlib.sha256(np.ascontiguousarray(pixels).tobytes()).hexdigest(), pixels.shape]
        return self._cached("pixels", key, lambda: self._run(_Pixels(pixels, self.preprocess)))

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """Embed ``texts``."""
        return self._cached("texts", list(texts), lambda: self._run_texts(texts))

    def _run(self, images: Dataset) -> torch.Tensor:
        loader = DataLoader(images, batch_size=self.batch_size, num_workers=self.num_workers)
        return self._embed(self.model.encode_image, loader)

    def _run_texts(self, texts: Sequence[str]) -> torch.Tensor:
        batches = (
            self.tokenizer(list(texts[start : start + self.batch_size]))
            for start in range(0, len(texts), self.batch_size)
        )
        return self._embed(self.model.encode_text, batches)

    def _embed(self, encode: Callable[[torch.Tensor], torch.Tensor], batches: Any) -> torch.Tensor:
        autocast = torch.autocast(self.device.type) if self.amp else nullcontext()
        outputs = []
        with torch.no_grad(), autocast:
            for batch in batches:
                features = encode(batch.to(self.device))
                outputs.append(F.normalize(features.float(), dim=-1).cpu())
        return torch.cat(outputs)

    def _cached(
        self, kind: str, inputs: list[Any], compute: Callable[[], torch.Tensor]
    ) -> torch.Tensor:
        if self.cache_dir is None:
            return compute()
        key = hashlib.sha256(
            json.dumps([kind, self._digest(), repr(self.preprocess), self.amp, inputs]).encode()
        ).hexdigest()[:24]
        path = self.cache_dir / f"{kind}-{key}.npy"
        if path.is_file():
            return torch.from_numpy(np.load(path))
        embeddings = compute()
        write_npy(path, embeddings.numpy())
        return embeddings

    def _digest(self) -> str:
        """Hash of the model's weights, computed once (what distinguishes two checkpoints)."""
        if self._model_digest is None:
            digest = hashlib.sha256()
            for name, tensor in self.model.state_dict().items():
                digest.update(name.encode())
                digest.update(tensor.detach().cpu().reshape(-1).view(torch.uint8).numpy())
            self._model_digest = digest.hexdigest()
        return self._model_digest


def _file_digest(path: str | os.PathLike) -> str:
    try:
        with open(path, "rb") as handle:
            return hashlib.file_digest(handle, "blake2b").hexdigest()
    except OSError as error:
        raise BenchmarkDataError(path, "image", f"cannot be read ({error})") from None


# (image, positive caption, negative caption): SugarCrepe, VALSE and VL-CheckList items
Triples = list[tuple[Path, str, str]]


def embed_triples(
    encoder: Encoder, data: Mapping[Any, Triples]
) -> dict[Any, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Per part of ``data``, the ``(image, positive, negative)`` embeddings of its triples, row by
    row; every distinct image and caption is embedded once across all parts."""
    images = sorted({t[0] for triples in data.values() for t in triples})
    texts = sorted({text for triples in data.values() for t in triples for text in t[1:]})
    image_rows = dict(zip(images, encoder.encode_images(images), strict=True))
    text_rows = dict(zip(texts, encoder.encode_texts(texts), strict=True))
    return {
        name: tuple(
            torch.stack([rows[t[column]] for t in triples])
            for column, rows in ((0, image_rows), (1, text_rows), (2, text_rows))
        )
        for name, triples in data.items()
    }
