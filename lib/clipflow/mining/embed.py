"""Embed every image-text pair with a frozen CLIP, the first step of HELIP mining (§2).

Any frozen encoder is acceptable (§2); here it is an open_clip model (``clipflow.models``), the
model being trained or a checkpoint of it. Embeddings are stored as one ``.npz`` with ``image``
and ``text`` (float32, L2-normalised, row i = pair i) and ``index`` (int64 url index of row i).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from PIL import Image

from clipflow.data.metadata import read_metadata
from clipflow.encode import embed_batches
from clipflow.io import write_npy, write_with

if TYPE_CHECKING:  # torch is imported where it is used, so mining alone starts without it
    import torch

EMBEDDINGS_KEYS = ("image", "text", "index")
log = logging.getLogger(__name__)


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

    def encode(batch: list[tuple[Image.Image, str]]) -> tuple[torch.Tensor, torch.Tensor]:
        pixels = torch.stack([preprocess(image) for image, _ in batch]).to(device)
        tokens = tokenizer([caption for _, caption in batch]).to(device)
        return model.encode_image(pixels), model.encode_text(tokens)

    image, text = embed_batches(model, encode, samples, batch_size, total, "embed pairs")
    return image, text


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


def embed_shards(
    model: torch.nn.Module,
    preprocess: Callable[[Image.Image], torch.Tensor],
    tokenizer: Callable[[list[str]], torch.Tensor],
    pairs: pd.DataFrame,
    shards_dir: str | os.PathLike,
    cache_dir: str | os.PathLike,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`embed_pairs` over ``pairs`` one shard at a time, each shard's embeddings cached.

    ``cache_dir`` (one per encoder: see :func:`clipflow.io.encoder_fingerprint`) holds
    ``<shard>.{image,text,index}.npy`` per shard; a shard whose cache holds exactly its rows'
    url indices is read back instead of embedded, so a killed job resumes at the first shard it
    had not finished, and new shards cost only themselves. Rows come back in ``pairs`` order.
    """
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    image = text = None
    shards = list(dict.fromkeys(pairs["shard"]))
    for number, shard in enumerate(shards, 1):
        rows = np.flatnonzero((pairs["shard"] == shard).to_numpy())
        index = pairs["index"].to_numpy()[rows].astype(np.int64)
        cached = _read_shard_cache(cache_dir, shard, index)
        if cached is None:
            log.info("shard %d/%d %s: embedding %d pairs", number, len(shards), shard, len(rows))
            cached = embed_pairs(
                model,
                preprocess,
                tokenizer,
                iter_shard_samples(pairs.iloc[rows], shards_dir),
                batch_size,
                device,
                total=len(rows),
            )
            _write_shard_cache(cache_dir, shard, index, *cached)
        else:
            log.info(
                "shard %d/%d %s: %d pairs from the cache", number, len(shards), shard, len(rows)
            )
        if image is None:
            image = np.empty((len(pairs), cached[0].shape[1]), dtype=np.float32)
            text = np.empty((len(pairs), cached[1].shape[1]), dtype=np.float32)
        image[rows], text[rows] = cached
    if image is None:
        raise ValueError("embed_shards: no pairs to embed")
    return image, text


def _shard_cache_paths(cache_dir: Path, shard: str) -> dict[str, Path]:
    stem = Path(shard).name.removesuffix(".tar")
    return {key: cache_dir / f"{stem}.{key}.npy" for key in EMBEDDINGS_KEYS}


def _read_shard_cache(
    cache_dir: Path, shard: str, index: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """The shard's cached ``(image, text)``, or None when absent or not for these rows."""
    paths = _shard_cache_paths(cache_dir, shard)
    if not all(path.exists() for path in paths.values()):
        return None
    try:
        arrays = {key: np.load(path, allow_pickle=False) for key, path in paths.items()}
    except ValueError:  # a truncated or foreign file: embed again
        return None
    image, text = arrays["image"], arrays["text"]
    if not np.array_equal(arrays["index"], index) or not len(image) == len(index) == len(text):
        return None
    return image, text


def _write_shard_cache(
    cache_dir: Path, shard: str, index: np.ndarray, image: np.ndarray, text: np.ndarray
) -> None:
    # index last: a cache is complete only once it matches, so a kill between writes is harmless
    paths = _shard_cache_paths(cache_dir, shard)
    for key, array in (("image", image), ("text", text), ("index", index)):
        write_npy(paths[key], array)
