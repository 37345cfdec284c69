"""The loss registry, build_loss's errors, extras checking, and a smoke run of every loss."""

from __future__ import annotations

import pytest
import torch

from clipflow.losses import LOSSES, ClipflowLoss, build_loss
from clipflow.registry import Registry

B, D, K = 6, 8, 2
SMALL_HEADS = {"embed_dim": D, "hidden_dim": 16, "proj_dim": 8}

# name -> (build params, extras needed beyond the clean pair)
CASES = {
    "clip": ({"label_smoothing": 0.1}, ()),
    "helip": ({"margin_weight": 0.5}, ()),
    "ce_clip": ({"num_negatives": K}, ("negatives",)),
    "sogclr": ({"num_samples": 10}, ("ids",)),
    "isogclr": ({"num_samples": 10}, ("ids",)),
    "infosogclr": ({"num_samples": 10}, ("ids",)),
    "hybridsogclr": ({"num_samples": 10}, ("ids",)),
    "cl2l": ({"embed_dim": D, "hidden_dim": 16}, ("views",)),
    "siamlip": (SMALL_HEADS, ("views",)),
    "byolip": (SMALL_HEADS, ("views", "targets")),
    "barlip": (SMALL_HEADS, ("views",)),
    "swalip": ({"embed_dim": D, "hidden_dim": 16}, ("views",)),
    "swalip_prototypes": ({**SMALL_HEADS, "num_prototypes": 5}, ("views",)),
}


def test_registry_holds_every_loss() -> None:
    assert isinstance(LOSSES, Registry)
    assert set(LOSSES.names()) == set(CASES)


def test_unknown_name_lists_known_losses() -> None:
    with pytest.raises(KeyError, match=r"unknown loss 'nope'; known: .*clip"):
        build_loss("nope")


def test_unknown_params_are_named() -> None:
    with pytest.raises(TypeError, match=r"'clip' got unknown parameter\(s\) \['bogus', 'tau'\]"):
        build_loss("clip", bogus=1, tau=0.1)


def test_missing_params_are_named() -> None:
    with pytest.raises(TypeError, match=r"'sogclr' needs parameter\(s\) \['num_samples'\]"):
        build_loss("sogclr")
    with pytest.raises(TypeError, match=r"'swalip' needs parameter\(s\) \['embed_dim'\]"):
        build_loss("swalip")


def test_missing_and_unexpected_extras_are_named(unit_features) -> None:
    x, y = unit_features(B, D, 0), unit_features(B, D, 1)
    scale = torch.tensor(10.0)
    with pytest.raises(ValueError, match=r"needs extra\(s\) \['ids'\]"):
        build_loss("sogclr", num_samples=B)(x, y, scale)
    with pytest.raises(ValueError, match=r"unexpected extra\(s\) \['ids'\]"):
        build_loss("clip")(x, y, scale, ids=torch.arange(B))
    with pytest.raises(ValueError, match="negative_text_features"):
        build_loss("ce_clip")(x, y, scale)


def _extras(needs: tuple[str, ...], unit_features) -> dict[str, object]:
    extras: dict[str, object] = {}
    if "negatives" in needs:
        negatives = unit_features(B * K, D, 7).reshape(B, K, D).float()
        extras["negative_text_features"] = negatives
        extras["negative_mask"] = torch.rand(B, K) > 0.3
    if "ids" in needs:
        extras["ids"] = torch.randperm(10)[:B]
    if "views" in needs:
        extras["image_views"] = [unit_features(B, D, 10 + v).float() for v in range(2)]
        extras["text_views"] = [unit_features(B, D, 20 + v).float() for v in range(2)]
    if "targets" in needs:
        extras["target_image_features"] = unit_features(B, D, 30).float()
        extras["target_text_features"] = unit_features(B, D, 31).float()
        extras["target_image_views"] = [unit_features(B, D, 40 + v).float() for v in range(2)]
        extras["target_text_views"] = [unit_features(B, D, 50 + v).float() for v in range(2)]
    return extras


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_loss_returns_finite_named_terms_with_gradients(name: str, unit_features) -> None:
    params, needs = CASES[name]
    loss_fn = build_loss(name, **params)
    assert isinstance(loss_fn, ClipflowLoss)
    assert set(loss_fn.needs.required_extras) <= set(_extras(needs, unit_features))
    assert (loss_fn.needs.momentum_target is not None) == (name == "byolip")
    x = unit_features(B, D, 0).float().requires_grad_()
    y = unit_features(B, D, 1).float().requires_grad_()
    terms = loss_fn(x, y, torch.tensor(10.0), **_extras(needs, unit_features))
    assert terms and all(key.endswith("_loss") for key in terms)
    total = sum(terms.values())
    assert torch.isfinite(total)
    total.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    for param in loss_fn.heads.parameters():
        assert param.grad is not None, f"{name}: a head got no gradient"
