"""Embed every image-text pair with a frozen CLIP, the first step of HELIP mining (§2).

Any frozen encoder is acceptable (§2); here it is an open_clip model (``clipflow.models``), the
model being trained or a checkpoint of it. Embeddings are stored as one ``.npz`` with ``image``
and ``text`` (float32, L2-normalised, row i = pair i) and ``index`` (int64 url index of row i).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from clipflow.data.metadata import read_metadata
from clipflow.io import write_with

if TYPE_CHECKING:  # torch is imported where it is used, so mining alone starts without it
    import torch

EMBEDDINGS_KEYS = ("image", "text", "index")


def embed_pairs(
    model: torch.nn.Module,
    preprocess: Callable[[Image.Image], torch.Tensor],
    tokenizer: Callable[[list[str]], torch.Tensor],
    samples: Iterable[tuple[Image.Image, str]],
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    total: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """L2-normalised float32 ``(image_emb, text_emb)``, one row per ``(image, caption)`` sample.

    ``model`` needs open_clip's ``encode_image``/``encode_text`` and must already be on
    ``device``; it is put in eval mode. ``total`` only sizes the progress bar.
    """
    import torch

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    model.eval()
    images, texts = [], []
    samples = iter(samples)
    with torch.inference_mode(), tqdm(total=total, desc="embed pairs", unit="pair") as progress:
        while batch := list(islice(samples, batch_size)):
            pixels = torch.stack([preprocess(image) for image, _ in batch]).to(device)
            tokens = tokenizer([caption for _, caption in batch]).to(device)
            images.append(torch.nn.functional.normalize(model.encode_image(pixels), dim=-1).cpu())
            texts.append(torch.nn.functional.normalize(model.encode_text(tokens), dim=-1).cpu())
            progress.update(len(batch))
    if not images:
        raise ValueError("embed_pairs: no samples to embed")
    return (torch.cat(images).float().numpy(), torch.cat(texts).float().numpy())


def read_pairs(path: str | os.PathLike) -> pd.DataFrame:
    """The metadata table (``clipflow.data.metadata``) of the pairs to embed, in url-index order.

    Rows whose ``status`` is not ``success`` have no image in the shards and are dropped.
    """
    frame = read_metadata(path)
    frame = frame[frame["status"] == "success"]
    if frame.empty:
        raise ValueError(f"{path}: no successful pairs")
    if frame["index"].duplicated().any():
        raise ValueError(f"{path}: column index has repeated values")
    return frame.reset_index(drop=True)


def iter_shard_samples(
    pairs: pd.DataFrame, shards_dir: str | os.PathLike
) -> Iterator[tuple[Image.Image, str]]:
    """``(RGB image, caption)`` per row of ``pairs``, the image read from its shard by key."""
    from clipflow.data.shards import ShardImages  # imports torch

    images = ShardImages(shards_dir, list(pairs["shard"]))
    for row in pairs.itertuples(index=False):
        try:
            image = images[row.shard, row.key]
        except KeyError as error:  # a KeyError's message would print quoted
            raise ValueError(f"{error.args[0]} (pairs columns shard, key)") from None
        yield image, str(row.caption)


def save_embeddings(
    path: str | os.PathLike, image: np.ndarray, text: np.ndarray, index: np.ndarray
) -> Path:
    """Write the embeddings ``.npz`` atomically (keys ``image``, ``text``, ``index``)."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:  # a handle, so numpy does not append ".npz"
            np.savez(
                handle,
                image=image.astype(np.float32),
                text=text.astype(np.float32),
                index=np.asarray(index, dtype=np.int64),
            )

    return write_with(path, write)


def load_embeddings(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(image, text, index)`` from an embeddings ``.npz``, checked for keys and shapes."""
    with np.load(path, allow_pickle=False) as data:
        missing = [key for key in EMBEDDINGS_KEYS if key not in data.files]
        if missing:
            raise ValueError(f"{path}: missing array(s) {', '.join(missing)}")
        image, text, index = (data[key] for key in EMBEDDINGS_KEYS)
    if image.ndim != 2 or text.ndim != 2 or image.shape[0] != text.shape[0]:
        raise ValueError(
            f"{path}: image {image.shape} and text {text.shape} must be [N, D] with the same N"
        )
    if index.shape != (image.shape[0],):
        raise ValueError(f"{path}: index has shape {index.shape}, expected ({image.shape[0]},)")
    return image, text, index
