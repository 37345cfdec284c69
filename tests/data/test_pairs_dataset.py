"""PairsDataset: the default samples, and the views / negatives options for the losses' extras."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from clipflow.data.shards import PairsDataset
from clipflow.data.text_augment import EDA
from clipflow.data.view_augment import rocket_transforms
from clipflow.losses import build_loss
from clipflow.models import create_model
from clipflow.training.extras import build_extras, dataset_options_for

CAPTIONS = [
    "a red circle left of a blue square",
    "a small green triangle above a yellow circle",
    "two blue squares on a white background",
]
URL_INDICES = [4, 7, 9]  # url indices need not be positions
NEGATIVES = pd.DataFrame(
    [
        (4, CAPTIONS[0], "a blue circle left of a red square", "attribute", "g"),
        (4, CAPTIONS[0], "a red square left of a blue circle", "relation", "g"),
        (4, CAPTIONS[0], "a red circle right of a blue square", "relation", "g"),
        (7, CAPTIONS[1], "a small green triangle below a yellow circle", "relation", "g"),
        (99, "not in this split", "not in this split either", "object", "g"),
    ],
    columns=["caption_index", "caption", "negative", "kind", "generator"],
)
K = 2


@pytest.fixture(scope="module")
def bundle():
    return create_model("clipflow-tiny-vit", seed=0)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> tuple[pd.DataFrame, Path]:
    """A one-shard set of three noise images and its metadata table."""
    root = tmp_path_factory.mktemp("pairs")
    keys = [f"{i:09d}" for i in range(len(CAPTIONS))]
    with tarfile.open(root / "00000.tar", "w") as tar:
        for seed, key in enumerate(keys):
            pixels = np.random.default_rng(seed).integers(0, 256, (72, 80, 3), dtype=np.uint8)
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, format="PNG")
            info = tarfile.TarInfo(f"{key}.png")
            info.size = buffer.tell()
            buffer.seek(0)
            tar.addfile(info, buffer)
    metadata = pd.DataFrame(
        {"index": URL_INDICES, "key": keys, "caption": CAPTIONS, "shard": "00000.tar"}
    )
    return metadata, root


def _dataset(bundle, pairs, **options) -> PairsDataset:
    metadata, root = pairs
    return PairsDataset(metadata, root, bundle.preprocess_train, bundle.tokenizer, **options)


def test_default_samples_are_unchanged(bundle, pairs) -> None:
    dataset = _dataset(bundle, pairs)
    torch.manual_seed(0)
    sample = dataset[1]
    assert set(sample) == {"image", "text", "index"}
    torch.manual_seed(0)
    image = bundle.preprocess_train(dataset.images["00000.tar", "000000001"])
    assert torch.equal(sample["image"], image)
    assert torch.equal(sample["text"], bundle.tokenizer([CAPTIONS[1]])[0])
    assert sample["index"].item() == URL_INDICES[1]


def test_views_are_rocket_transforms_and_eda_captions_from_torch_rng(bundle, pairs) -> None:
    dataset = _dataset(bundle, pairs, num_augs=2)
    torch.manual_seed(3)
    sample = dataset[0]
    assert sample["image"].shape == (3, 64, 64)
    assert sample["image_views"].shape == (2, 3, 64, 64)
    assert sample["text_views"].shape == (2, 32)
    assert sample["text_views"].dtype == torch.long
    # Replaying the same torch RNG stream gives the same sample: the clean crop, the two view
    # transforms, then the weak caption and two EDA captions.
    torch.manual_seed(3)
    image = dataset.images["00000.tar", "000000000"]
    clean, view = rocket_transforms(bundle.preprocess_train)
    expected_image = clean(image)
    expected_views = [view(image) for _ in range(2)]
    eda = EDA()
    weak = eda.weak(CAPTIONS[0], torch.default_generator)
    captions = [eda(CAPTIONS[0], torch.default_generator) for _ in range(2)]
    assert torch.equal(sample["image"], expected_image)
    assert torch.equal(sample["image_views"], torch.stack(expected_views))
    assert torch.equal(sample["text"], bundle.tokenizer([weak])[0])
    assert torch.equal(sample["text_views"], bundle.tokenizer(captions))
    assert not torch.equal(sample["image_views"][0], sample["image_views"][1])


def test_negatives_are_padded_to_k_with_a_mask(bundle, pairs) -> None:
    dataset = _dataset(bundle, pairs, negatives=NEGATIVES, num_negatives=K)
    full, short, none = dataset[0], dataset[1], dataset[2]
    assert set(full) == {"image", "text", "index", "negative_texts", "negative_mask"}
    assert full["negative_mask"].tolist() == [True, True]
    first_two = NEGATIVES["negative"].iloc[:2].tolist()  # the table's order, first K
    assert torch.equal(full["negative_texts"], bundle.tokenizer(first_two))
    assert short["negative_mask"].tolist() == [True, False]
    assert torch.equal(short["negative_texts"][0], bundle.tokenizer([NEGATIVES["negative"][3]])[0])
    assert not short["negative_texts"][1].any()
    assert none["negative_mask"].tolist() == [False, False]
    assert none["negative_texts"].shape == (K, 32) and not none["negative_texts"].any()


def test_options_collate_with_the_default_collate(bundle, pairs) -> None:
    dataset = _dataset(bundle, pairs, num_augs=2, negatives=NEGATIVES, num_negatives=K)
    batch = next(iter(torch.utils.data.DataLoader(dataset, batch_size=3)))
    assert batch["image"].shape == (3, 3, 64, 64)
    assert batch["image_views"].shape == (3, 2, 3, 64, 64)
    assert batch["text_views"].shape == (3, 2, 32)
    assert batch["negative_texts"].shape == (3, K, 32)
    assert batch["negative_mask"].dtype == torch.bool
    assert batch["negative_mask"].tolist() == [[True, True], [True, False], [False, False]]
    assert batch["index"].tolist() == URL_INDICES


def test_negatives_and_k_go_together(bundle, pairs) -> None:
    with pytest.raises(ValueError, match="negatives and num_negatives go together"):
        _dataset(bundle, pairs, negatives=NEGATIVES)
    with pytest.raises(ValueError, match="negatives and num_negatives go together"):
        _dataset(bundle, pairs, num_negatives=K)
    with pytest.raises(ValueError, match="lacks column"):
        _dataset(bundle, pairs, negatives=NEGATIVES.drop(columns="negative"), num_negatives=K)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("ce_clip", {"num_negatives": K}),
        ("cl2l", {"num_augs": 2, "embed_dim": 64, "hidden_dim": 8}),
    ],
)
def test_a_loss_trains_on_the_batches_its_options_ask_for(bundle, pairs, name, params) -> None:
    loss = build_loss(name, **params)
    options = dataset_options_for(loss.needs)
    table = {"negatives": NEGATIVES} if "num_negatives" in options else {}
    dataset = _dataset(bundle, pairs, **options, **table)
    batch = next(iter(torch.utils.data.DataLoader(dataset, batch_size=3)))
    model = bundle.model.train()
    image_features, text_features, logit_scale = model(batch["image"], batch["text"])[:3]
    extras = build_extras(loss, model, batch, "cpu")
    total = sum(loss(image_features, text_features, logit_scale, **extras).values())
    assert torch.isfinite(total)
    model.zero_grad()
    total.backward()
    assert model.visual.conv1.weight.grad.abs().sum() > 0
