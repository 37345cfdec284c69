"""clip-rocket's image and caption augmentations (issue 14, item 4), against its release:
facebookresearch/clip-rocket ``datasets.py`` ``get_train_dataset`` (``train_transform`` and
``augment`` with main.py's defaults: --weak-min-scale 0.5, --multicrop-max-scale 1.0,
--grayscale-prob 0.2, --blur-prob 0.5, --solarize-prob 0.0) and ``tokenizer.py``
``SimpleTokenizer.weak_augment`` (--remove-stopwords-prob 0.8 after --clean-before-augment)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter
from torchvision import transforms

from clipflow.data.text_augment import EDA, STOP_WORDS
from clipflow.data.view_augment import GaussianBlur, Solarize, rocket_transforms
from clipflow.models import create_model


@pytest.fixture(scope="module")
def model_transform():
    return create_model("clipflow-tiny-vit", seed=0).preprocess_train


def test_transforms_carry_clip_rockets_parameters(model_transform) -> None:
    clean, view = rocket_transforms(model_transform)
    crop, _, normalize = clean.transforms
    assert isinstance(crop, transforms.RandomResizedCrop)
    assert crop.scale == (0.5, 1.0) and crop.size == (64, 64)
    assert crop.interpolation == transforms.InterpolationMode.BICUBIC
    assert normalize is model_transform.transforms[-1]
    (crop, jitter, gray, blur, solarize, flip, _, normalize) = view.transforms
    assert crop.scale == (0.08, 1.0) and crop.size == (64, 64)
    assert crop.interpolation == transforms.InterpolationMode.BICUBIC
    assert jitter.p == 0.8
    colour = jitter.transforms[0]
    assert (colour.brightness, colour.contrast, colour.saturation, colour.hue) == (
        (0.6, 1.4),
        (0.6, 1.4),
        (0.6, 1.4),
        (-0.1, 0.1),
    )
    assert isinstance(gray, transforms.RandomGrayscale) and gray.p == 0.2
    assert blur.p == 0.5 and isinstance(blur.transforms[0], GaussianBlur)
    assert blur.transforms[0].sigma == (0.1, 2.0)
    assert solarize.p == 0.0 and isinstance(solarize.transforms[0], Solarize)
    assert isinstance(flip, transforms.RandomHorizontalFlip) and flip.p == 0.5
    assert normalize is model_transform.transforms[-1]


def test_solarize_and_blur_act_like_pil() -> None:
    pixels = np.arange(48, dtype=np.uint8).reshape(4, 4, 3) * 5
    image = Image.fromarray(pixels)
    solarized = np.asarray(Solarize()(image))
    np.testing.assert_array_equal(solarized, np.where(pixels >= 128, 255 - pixels, pixels))
    torch.manual_seed(0)
    radius = torch.empty(()).uniform_(0.1, 2.0).item()
    torch.manual_seed(0)
    np.testing.assert_array_equal(
        np.asarray(GaussianBlur()(image)),
        np.asarray(image.filter(ImageFilter.GaussianBlur(radius=radius))),
    )


def test_transforms_need_a_crop_and_normalize() -> None:
    with pytest.raises(ValueError, match="crop and a Normalize"):
        rocket_transforms(transforms.Compose([transforms.ToTensor()]))


def test_weak_caption_only_cleans_and_drops_stop_words() -> None:
    caption = "A dog is running on THE beach!"
    always = EDA(remove_stopwords_prob=1.0)
    never = EDA(remove_stopwords_prob=0.0)
    assert never.weak(caption, 0) == "a dog is running on the beach"
    assert always.weak(caption, 0) == "dog running beach"
    assert all(word not in STOP_WORDS for word in always.weak(caption, 0).split())
    assert always.weak("the a an", 0) == "the a an"  # never all words
