"""clip-rocket's image augmentations for CL2L and its SSL variants (docs/algorithms.md §3).

As clip-rocket's ``datasets.get_train_dataset`` builds them for its CL2L models, with its
defaults: the clean image is a bicubic random crop of scale (0.5, 1) (``--weak-min-scale``),
and each augmented view a bicubic random crop of scale (0.08, 1), colour jitter
(0.4, 0.4, 0.4, 0.1) with probability 0.8, grayscale with probability 0.2, Gaussian blur
(σ uniform in [0.1, 2]) with probability 0.5, solarisation with probability 0 (``--solarize-prob``)
and a horizontal flip. The crop size and the final normalisation are the model's own (read from
its training transform): clip-rocket normalises with ImageNet statistics because it trains its
towers from scratch with them; a model here keeps the statistics it was built with.

Every random draw comes from torch's generator (clip-rocket's blur uses Python's ``random``),
which DataLoader seeds per worker and the trainer checkpoints.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from PIL import Image, ImageFilter, ImageOps
from torchvision import transforms

ImageTransform = Callable[[Image.Image], torch.Tensor]

CLEAN_CROP_SCALE = (0.5, 1.0)
VIEW_CROP_SCALE = (0.08, 1.0)
COLOR_JITTER = (0.4, 0.4, 0.4, 0.1)
COLOR_JITTER_PROB = 0.8
GRAYSCALE_PROB = 0.2
BLUR_PROB = 0.5
BLUR_SIGMA = (0.1, 2.0)
SOLARIZE_PROB = 0.0


class GaussianBlur:
    """PIL Gaussian blur with radius σ drawn uniformly from ``sigma`` (SimCLR / clip-rocket)."""

    def __init__(self, sigma: tuple[float, float] = BLUR_SIGMA) -> None:
        self.sigma = sigma

    def __call__(self, image: Image.Image) -> Image.Image:
        radius = torch.empty(()).uniform_(*self.sigma).item()
        return image.filter(ImageFilter.GaussianBlur(radius=radius))


class Solarize:
    """PIL solarisation at the default threshold 128."""

    def __call__(self, image: Image.Image) -> Image.Image:
        return ImageOps.solarize(image)


def _size_and_normalize(model_transform: object) -> tuple[object, transforms.Normalize]:
    steps = getattr(model_transform, "transforms", [])
    sizes = [
        step.size
        for step in steps
        if isinstance(step, transforms.RandomResizedCrop | transforms.CenterCrop)
    ]
    normalize = [step for step in steps if isinstance(step, transforms.Normalize)]
    if not sizes or not normalize:
        raise ValueError(
            "clip-rocket views need the model's training transform as a torchvision Compose "
            f"with a crop and a Normalize step; got {model_transform!r}"
        )
    return sizes[0], normalize[-1]


def rocket_transforms(model_transform: object) -> tuple[ImageTransform, ImageTransform]:
    """``(clean, view)``: clip-rocket's transforms for the clean image and for each view."""
    size, normalize = _size_and_normalize(model_transform)
    bicubic = transforms.InterpolationMode.BICUBIC
    clean = transforms.Compose(
        [
            transforms.RandomResizedCrop(size, scale=CLEAN_CROP_SCALE, interpolation=bicubic),
            transforms.ToTensor(),
            normalize,
        ]
    )
    view = transforms.Compose(
        [
            transforms.RandomResizedCrop(size, scale=VIEW_CROP_SCALE, interpolation=bicubic),
            transforms.RandomApply([transforms.ColorJitter(*COLOR_JITTER)], p=COLOR_JITTER_PROB),
            transforms.RandomGrayscale(p=GRAYSCALE_PROB),
            transforms.RandomApply([GaussianBlur()], p=BLUR_PROB),
            transforms.RandomApply([Solarize()], p=SOLARIZE_PROB),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            normalize,
        ]
    )
    return clean, view
