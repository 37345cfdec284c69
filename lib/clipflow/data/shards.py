"""Random access to the images of webdataset shards, by sample key, without unpacking them, and
the training sample every loader yields.

Each tar is scanned once for member offsets; reads then seek straight to the bytes. This gives
map-style datasets (needed by index-based samplers such as HELIP's hard-pair batches) over the same
shards that the streaming loader (``clipflow.data.streaming``) reads; both build their samples
with :class:`PairSamples`.
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import torch
from PIL import Image

from clipflow.data.text_augment import EDA
from clipflow.data.view_augment import rocket_transforms
from clipflow.errors import InputError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


class ShardError(InputError):
    """A shard that cannot be read (truncated, not a tar) or lacks a sample; names the shard."""


class MissingSample(ShardError, KeyError):
    """A key that the shard has no image for (a ``KeyError`` too, as a lookup by key)."""

    def __str__(self) -> str:  # a KeyError would print its message quoted
        return str(self.args[0])


def shard_members(tar_path: str | Path) -> Iterator[tuple[tarfile.TarFile, tarfile.TarInfo]]:
    """The members of one webdataset tar, with the open archive to read them from.

    A truncated shard fails with a :class:`ShardError` naming it, whether the cut falls inside
    a member (tarfile's "unexpected end of data") or between members (tarfile then just stops:
    the end-of-archive blocks that every complete tar ends with are what is missing).
    """
    size = os.path.getsize(tar_path)
    try:
        with tarfile.open(tar_path) as tar:
            for member in tar:
                if member.offset_data + member.size > size:
                    raise tarfile.ReadError(f"member {member.name} runs past the end of the file")
                yield tar, member
            if tar.offset + 2 * tarfile.BLOCKSIZE > size:
                raise tarfile.ReadError("no end-of-archive marker")
    except (tarfile.TarError, EOFError) as error:
        raise ShardError(f"{tar_path}: truncated or unreadable shard ({error})") from None


class ShardImages:
    """``images[(shard, key)]`` -> PIL image, reading only that member's bytes."""

    def __init__(self, shards_dir: str | Path, shards: list[str]) -> None:
        self.shards_dir = Path(shards_dir)
        self._offsets: dict[tuple[str, str], tuple[int, int]] = {}
        for shard in sorted(set(shards)):
            for _, member in shard_members(self.shards_dir / shard):
                stem, suffix = (
                    member.name.rsplit(".", 1) if "." in member.name else (member.name, "")
                )
                if f".{suffix.lower()}" in IMAGE_SUFFIXES:
                    self._offsets[(shard, stem)] = (member.offset_data, member.size)

        self._descriptors: dict[str, int] = {}

    def read_bytes(self, shard: str, key: str) -> bytes:
        try:
            offset, size = self._offsets[(shard, key)]
        except KeyError:
            raise MissingSample(f"{self.shards_dir / shard}: no image for key {key!r}") from None
        # One descriptor per shard, read with pread: no open() per sample, and no shared file
        # position, so DataLoader workers forked with the descriptors cannot disturb each other.
        if shard not in self._descriptors:
            self._descriptors[shard] = os.open(self.shards_dir / shard, os.O_RDONLY)
        return os.pread(self._descriptors[shard], size, offset)

    def __getstate__(self) -> dict:
        # descriptors do not survive pickling (spawned workers): each process opens its own
        return {**self.__dict__, "_descriptors": {}}

    def __del__(self) -> None:
        for descriptor in getattr(self, "_descriptors", {}).values():
            os.close(descriptor)

    def __getitem__(self, shard_key: tuple[str, str]) -> Image.Image:
        return decode_image(self.read_bytes(*shard_key))


def decode_image(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


class PairSamples:
    """``samples(caption, index, image)`` -> one training sample: ``{"image", "text", "index"}``
    and the extras the run's loss needs. ``index`` is the pair's url index.

    Options for the losses' extras (all off by default, and then the samples are exactly
    ``{"image", "text", "index"}``); every added tensor has a fixed shape, so the default collate
    batches them:

    - ``num_augs`` = A > 0 (CL2L and its SSL variants, docs/algorithms.md §3) switches to
      clip-rocket's augmentations (``clipflow.data.view_augment``, ``text_augment``): the clean
      image gets its weak crop and the caption its weak augmentation (``EDA.weak``), and it
      adds ``image_views`` ``[A, 3, H, W]``, A applications of the view transform, and
      ``text_views`` ``[A, L]``, A EDA views of the caption, tokenised. Every draw comes from
      torch's default generator, which DataLoader seeds per worker and the trainer
      checkpoints, in this order: clean image, image views, clean caption, caption views.
    - ``negatives`` (the negatives table: ``caption_index``, ``negative``, ...) with
      ``num_negatives`` = K > 0 (CE-CLIP, docs/algorithms.md §4) adds ``negative_texts`` ``[K, L]``,
      the first K negatives of the pair's caption (``caption_index`` == its url ``index``, in
      table order) tokenised and zero-padded, and ``negative_mask`` ``[K]`` (bool, True where a
      negative exists).
    """

    def __init__(
        self,
        transform: Callable[[Image.Image], torch.Tensor],
        tokenizer: Callable[[list[str]], torch.Tensor],
        num_augs: int = 0,
        negatives: pd.DataFrame | None = None,
        num_negatives: int = 0,
    ) -> None:
        if num_augs < 0 or num_negatives < 0:
            raise ValueError(
                f"num_augs and num_negatives must be >= 0, got {num_augs}, {num_negatives}"
            )
        if (negatives is None) != (num_negatives == 0):
            raise ValueError(
                "negatives and num_negatives go together: pass the negatives table and K > 0, "
                f"or neither (got a table: {negatives is not None}, num_negatives={num_negatives})"
            )
        self.transform = transform
        self.tokenizer = tokenizer
        self.num_augs = num_augs
        self.text_augment = EDA() if num_augs else None
        if num_augs:
            self.clean_transform, self.view_transform = rocket_transforms(transform)
        self.num_negatives = num_negatives
        self.negatives: dict[int, list[str]] = {}
        if negatives is not None:
            missing = {"caption_index", "negative"} - set(negatives.columns)
            if missing:
                raise ValueError(f"negatives table lacks column(s) {', '.join(sorted(missing))}")
            grouped = negatives.groupby("caption_index", sort=False)["negative"]
            self.negatives = {int(i): list(texts)[:num_negatives] for i, texts in grouped}

    def __call__(self, caption: str, index: int, image: Image.Image) -> dict[str, torch.Tensor]:
        if self.text_augment is None:
            sample = {
                "image": self.transform(image),
                "text": self.tokenizer([caption])[0],
                "index": torch.tensor(index),
            }
        else:
            clean_image = self.clean_transform(image)
            views = torch.stack([self.view_transform(image) for _ in range(self.num_augs)])
            rng = torch.default_generator
            captions = [
                self.text_augment.weak(caption, rng),
                *(self.text_augment(caption, rng) for _ in range(self.num_augs)),
            ]
            tokens = self.tokenizer(captions)
            sample = {
                "image": clean_image,
                "text": tokens[0],
                "index": torch.tensor(index),
                "image_views": views,
                "text_views": tokens[1:],
            }
        if self.num_negatives:
            found = self.negatives.get(index, [])
            texts = torch.zeros(self.num_negatives, sample["text"].shape[-1], dtype=torch.long)
            if found:
                texts[: len(found)] = self.tokenizer(found)
            mask = torch.zeros(self.num_negatives, dtype=torch.bool)
            mask[: len(found)] = True
            sample["negative_texts"], sample["negative_mask"] = texts, mask
        return sample


class PairsDataset(torch.utils.data.Dataset):
    """Map-style samples (:class:`PairSamples`, with its options) over a metadata table."""

    def __init__(
        self,
        metadata: pd.DataFrame,
        shards_dir: str | Path,
        transform: Callable[[Image.Image], torch.Tensor],
        tokenizer: Callable[[list[str]], torch.Tensor],
        num_augs: int = 0,
        negatives: pd.DataFrame | None = None,
        num_negatives: int = 0,
    ) -> None:
        self.samples = PairSamples(transform, tokenizer, num_augs, negatives, num_negatives)
        self.metadata = metadata.reset_index(drop=True)
        self.images = ShardImages(shards_dir, list(self.metadata["shard"]))
        # plain tuples: a DataFrame row lookup per sample cost more than its tokenization
        self._rows = list(
            zip(
                self.metadata["shard"],
                self.metadata["key"],
                self.metadata["caption"].astype(str),
                self.metadata["index"].astype(int),
                strict=True,
            )
        )

    def __len__(self) -> int:
        return len(self.metadata)

    def __getitem__(self, position: int) -> dict[str, torch.Tensor]:
        shard, key, caption, index = self._rows[position]
        return self.samples(caption, int(index), self.images[shard, key])
