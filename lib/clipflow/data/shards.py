"""Random access to the images of webdataset shards, by sample key, without unpacking them.

Each tar is scanned once for member offsets; reads then seek straight to the bytes. This gives
map-style datasets (needed by index-based samplers such as HELIP's hard-pair batches) over the same
shards that streaming loaders read.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pandas as pd
import torch
from PIL import Image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


class ShardImages:
    """``images[(shard, key)]`` -> PIL image, reading only that member's bytes."""

    def __init__(self, shards_dir: str | Path, shards: list[str]) -> None:
        self.shards_dir = Path(shards_dir)
        self._offsets: dict[tuple[str, str], tuple[int, int]] = {}
        for shard in sorted(set(shards)):
            with tarfile.open(self.shards_dir / shard) as tar:
                for member in tar:
                    stem, suffix = (
                        member.name.rsplit(".", 1) if "." in member.name else (member.name, "")
                    )
                    if f".{suffix.lower()}" in IMAGE_SUFFIXES:
                        self._offsets[(shard, stem)] = (member.offset_data, member.size)

    def read_bytes(self, shard: str, key: str) -> bytes:
        try:
            offset, size = self._offsets[(shard, key)]
        except KeyError:
            raise KeyError(f"{self.shards_dir / shard}: no image for key {key!r}") from None
        with open(self.shards_dir / shard, "rb") as handle:
            handle.seek(offset)
            return handle.read(size)

    def __getitem__(self, shard_key: tuple[str, str]) -> Image.Image:
        return Image.open(io.BytesIO(self.read_bytes(*shard_key))).convert("RGB")


class PairsDataset(torch.utils.data.Dataset):
    """Map-style (image, tokens, index) over a metadata table; ``index`` is the url index."""

    def __init__(
        self, metadata: pd.DataFrame, shards_dir: str | Path, transform, tokenizer
    ) -> None:
        self.metadata = metadata.reset_index(drop=True)
        self.images = ShardImages(shards_dir, list(self.metadata["shard"]))
        self.transform = transform
        self.tokenizer = tokenizer

    def __len__(self) -> int:
        return len(self.metadata)

    def __getitem__(self, position: int) -> dict[str, torch.Tensor]:
        row = self.metadata.iloc[position]
        return {
            "image": self.transform(self.images[row["shard"], row["key"]]),
            "text": self.tokenizer([row["caption"]])[0],
            "index": torch.tensor(int(row["index"])),
        }
