"""build_extras / dataset_options_for: the extras each loss declares, from a tiny batch."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from clipflow.losses import build_loss
from clipflow.losses.heads import EMATarget
from clipflow.models import create_model
from clipflow.training.extras import build_extras, dataset_options_for

B, A, K, D = 4, 2, 3, 64  # batch, views, negative slots, the tiny model's embed dim
SMALL_HEADS = {"embed_dim": D, "hidden_dim": 16, "proj_dim": 8}
CAPTIONS = ["a red circle", "a blue square", "a green triangle", "a yellow star"]
MASK = torch.tensor(
    [[True, True, True], [True, False, False], [False, False, False], [True, True, False]]
)


@pytest.fixture(scope="module")
def bundle():
    return create_model("clipflow-tiny-vit", seed=0)


@pytest.fixture
def model():
    return create_model("clipflow-tiny-vit", seed=0).model.train()


@pytest.fixture(scope="module")
def batch(bundle) -> dict[str, torch.Tensor]:
    """A collated PairsDataset batch with views and negatives (shapes as the dataset makes)."""
    generator = torch.Generator().manual_seed(0)
    tokens = bundle.tokenizer
    negatives = torch.stack(
        [tokens([f"not {caption} {k}" for k in range(K)]) for caption in CAPTIONS]
    )
    return {
        "image": torch.randn(B, 3, 64, 64, generator=generator),
        "text": tokens(CAPTIONS),
        "index": torch.tensor([10, 11, 12, 13]),
        "image_views": torch.randn(B, A, 3, 64, 64, generator=generator),
        "text_views": torch.stack([tokens([c, c.split()[-1]]) for c in CAPTIONS]),
        "negative_texts": negatives * MASK[..., None],  # padded slots are zero tokens
        "negative_mask": MASK,
    }


LOSSES = {
    "ce_clip": {"num_negatives": K},
    "cl2l": {"num_augs": A, "embed_dim": D, "hidden_dim": 16},
    "byolip": {**SMALL_HEADS, "num_augs": A},
    "sogclr": {"num_samples": 20},
    "clip": {},
}


@pytest.mark.parametrize("name", ["ce_clip", "cl2l", "byolip"])
def test_loss_trains_through_the_extras(name, model, batch) -> None:
    loss = build_loss(name, **LOSSES[name]).train()
    target = EMATarget(model) if loss.needs.momentum_target is not None else None
    image_features, text_features, logit_scale = model(batch["image"], batch["text"])[:3]
    extras = build_extras(loss, model, batch, "cpu", target=target)
    assert set(extras) == set(loss.needs.extras)
    terms = loss(image_features, text_features, logit_scale, **extras)
    total = sum(terms.values())
    assert torch.isfinite(total)
    total.backward()
    for tower in (model.visual, model.transformer):
        grads = [p.grad for p in tower.parameters() if p.grad is not None]
        assert grads and any(g.abs().sum() > 0 for g in grads)
    if target is not None:
        assert all(p.grad is None for p in target.parameters())


def test_negative_features_follow_the_mask(model, batch) -> None:
    loss = build_loss("ce_clip", num_negatives=K)
    extras = build_extras(loss, model, batch, "cpu")
    features, mask = extras["negative_text_features"], extras["negative_mask"]
    assert features.shape == (B, K, D)
    assert torch.equal(mask, MASK)
    assert torch.allclose(features[MASK].norm(dim=-1), torch.ones(int(MASK.sum())))
    assert not features[~MASK].any()
    expected = F.normalize(model.encode_text(batch["negative_texts"][0]), dim=-1)
    assert torch.allclose(features[0], expected, atol=1e-6)
    assert features.requires_grad


def test_views_and_targets(model, batch) -> None:
    loss = build_loss("byolip", **LOSSES["byolip"])
    target = EMATarget(model)
    extras = build_extras(loss, model, batch, "cpu", target=target)
    assert len(extras["image_views"]) == len(extras["text_views"]) == A
    for a in range(A):
        image = F.normalize(model.encode_image(batch["image_views"][:, a]), dim=-1)
        assert torch.allclose(extras["image_views"][a], image, atol=1e-6)
        assert extras["image_views"][a].requires_grad and extras["text_views"][a].requires_grad
    targets = [extras["target_image_features"], extras["target_text_features"]]
    targets += [*extras["target_image_views"], *extras["target_text_views"]]
    assert len(targets) == 2 + 2 * A
    assert not any(t.requires_grad for t in targets)
    # the EMA copy starts equal to the model
    assert torch.allclose(
        extras["target_text_features"],
        F.normalize(model.encode_text(batch["text"]), dim=-1),
        atol=1e-6,
    )


def test_ids_and_nothing_else(model, batch) -> None:
    extras = build_extras(build_loss("sogclr", **LOSSES["sogclr"]), model, batch, "cpu")
    assert set(extras) == {"ids"} and torch.equal(extras["ids"], batch["index"])
    assert build_extras(build_loss("clip"), model, batch, "cpu") == {}


def test_missing_inputs_say_what_to_set(model, batch) -> None:
    plain = {key: batch[key] for key in ("image", "text", "index")}
    with pytest.raises(
        ValueError, match="loss ce_clip needs negatives: set negatives for this run"
    ):
        build_extras(build_loss("ce_clip", num_negatives=K), model, plain, "cpu")
    with pytest.raises(ValueError, match="loss cl2l needs augmented views: set num_augs=2"):
        build_extras(build_loss("cl2l", **LOSSES["cl2l"]), model, plain, "cpu")
    three_views = build_loss("cl2l", **{**LOSSES["cl2l"], "num_augs": 3})
    with pytest.raises(ValueError, match="num_augs=3 but the batch holds 2 image and 2 text"):
        build_extras(three_views, model, batch, "cpu")
    with pytest.raises(ValueError, match="loss byolip needs an EMA target model"):
        build_extras(build_loss("byolip", **LOSSES["byolip"]), model, batch, "cpu")


def test_dataset_options_for() -> None:
    assert dataset_options_for(build_loss("clip").needs) == {}
    assert dataset_options_for(build_loss("sogclr", **LOSSES["sogclr"]).needs) == {}
    assert dataset_options_for(build_loss("ce_clip", num_negatives=K).needs) == {"num_negatives": K}
    assert dataset_options_for(build_loss("cl2l", **LOSSES["cl2l"]).needs) == {"num_augs": A}
    assert dataset_options_for(build_loss("cl2l", num_augs=0).needs) == {}
    assert dataset_options_for(build_loss("byolip", **LOSSES["byolip"]).needs) == {"num_augs": A}
