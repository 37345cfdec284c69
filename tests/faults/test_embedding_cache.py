"""Item 2: benchmark images replaced in place (same path, even the same modification time) are
embedded afresh, never read from the embedding cache of the old ones."""

import os

import torch
from PIL import Image

from clipflow.evaluation.encoder import Encoder


class MeanColour(torch.nn.Module):
    """Stand-in model: an image's embedding is its mean colour."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(1))

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return images.mean(dim=(2, 3)) * self.scale


def _to_tensor(image: Image.Image) -> torch.Tensor:
    return torch.tensor(list(image.getdata()), dtype=torch.float32).T.reshape(3, *image.size)


def test_replaced_images_are_embedded_again(tmp_path):
    paths = [tmp_path / "bench" / f"{i}.png" for i in range(3)]
    paths[0].parent.mkdir()
    for path, colour in zip(paths, [(255, 0, 0), (0, 255, 0), (0, 0, 255)], strict=True):
        Image.new("RGB", (4, 4), colour).save(path)
    encoder = Encoder(MeanColour(), _to_tensor, str.split, cache_dir=tmp_path / "cache")
    before = encoder.encode_images(paths)
    torch.testing.assert_close(before[0], torch.tensor([1.0, 0.0, 0.0]))

    stat = paths[0].stat()
    Image.new("RGB", (4, 4), (0, 255, 0)).save(paths[0])  # in place: now the second's colour
    os.utime(paths[0], ns=(stat.st_atime_ns, stat.st_mtime_ns))  # as `cp -p` would leave it
    after = encoder.encode_images(paths)
    torch.testing.assert_close(after[0], torch.tensor([0.0, 1.0, 0.0]))
    torch.testing.assert_close(after[1:], before[1:])
    assert len(list((tmp_path / "cache").glob("images-*.npy"))) == 2
    # the unchanged set still comes from the cache: the same file, not a third one
    torch.testing.assert_close(encoder.encode_images(paths), after)
    assert len(list((tmp_path / "cache").glob("images-*.npy"))) == 2
