"""Embeddings of captions or images by a model as it is now: L2-normalised float32 rows.

Shared by mining (HELIP's pair embeddings, ``clipflow.mining.embed``) and the samplers that rank
rows by similarity (``clipflow.sampling.epochs``). torch is imported where it is used, so mining
alone starts without it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from itertools import islice
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image
from tqdm import tqdm

if TYPE_CHECKING:
    import torch


def embed_texts(
    model: torch.nn.Module,
    tokenizer: Callable[[list[str]], torch.Tensor],
    captions: Sequence[str],
    batch_size: int = 256,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """L2-normalised float32 text embeddings, one row per caption (model put in eval mode)."""
    (text,) = embed_batches(
        model,
        lambda batch: (model.encode_text(tokenizer(list(batch)).to(device)),),
        captions,
        batch_size,
        len(captions),
        "embed texts",
    )
    return text


def embed_images(
    model: torch.nn.Module,
    preprocess: Callable[[Image.Image], torch.Tensor],
    images: Iterable[Image.Image],
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    total: int | None = None,
) -> np.ndarray:
    """L2-normalised float32 image embeddings, one row per image (model put in eval mode)."""
    import torch

    (image,) = embed_batches(
        model,
        lambda batch: (model.encode_image(torch.stack([preprocess(i) for i in batch]).to(device)),),
        images,
        batch_size,
        total,
        "embed images",
    )
    return image


def embed_batches(
    model: torch.nn.Module,
    encode: Callable[[list], tuple[torch.Tensor, ...]],
    items: Iterable,
    batch_size: int,
    total: int | None,
    desc: str,
) -> tuple[np.ndarray, ...]:
    """Run ``encode`` over ``items`` in batches; each output stream normalised and stacked."""
    import torch

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    model.eval()
    outputs: list[list[torch.Tensor]] = []
    items = iter(items)
    with torch.inference_mode(), tqdm(total=total, desc=desc, unit="row") as progress:
        while batch := list(islice(items, batch_size)):
            encoded = encode(batch)
            outputs = outputs or [[] for _ in encoded]
            for stream, features in zip(outputs, encoded, strict=True):
                stream.append(torch.nn.functional.normalize(features, dim=-1).float().cpu())
            progress.update(len(batch))
    if not outputs:
        raise ValueError(f"{desc}: nothing to embed")
    return tuple(torch.cat(stream).numpy() for stream in outputs)
