"""CL2L and the SSL variants (docs/algorithms.md §3) and the heads they own."""

from __future__ import annotations

import math
from itertools import product

import pytest
import torch
from torch.nn import functional as F

from clipflow.losses import build_loss
from clipflow.losses.heads import EMATarget, LogitScale, Prototypes
from clipflow.losses.ssl import barlow_twins_loss, negative_cosine, sinkhorn_knopp

B, D = 8, 6
SCALE = torch.tensor(12.0, dtype=torch.float64)
HEADS = {"embed_dim": D, "hidden_dim": 16, "proj_dim": 5}


def _views(unit_features, seed: int, count: int = 2) -> list[torch.Tensor]:
    return [unit_features(B, D, seed + v) for v in range(count)]


def _ce(logits: torch.Tensor, smoothing: float = 0.0) -> float:
    labels = torch.arange(logits.shape[0])
    return F.cross_entropy(logits, labels, label_smoothing=smoothing).item()


# ---------------------------------------------------------------- CL2L


def test_cl2l_without_augmentations_is_clip(unit_features) -> None:
    x, y = unit_features(B, D, 0), unit_features(B, D, 1)
    clip = build_loss("clip")(x, y, SCALE)["contrastive_loss"]
    avg = build_loss("cl2l", num_augs=0, label_smoothing=0.1, loss_avg_or_sum="avg")(x, y, SCALE)
    assert avg == {"contrastive_loss": clip}
    total = build_loss("cl2l", num_augs=0, loss_avg_or_sum="sum")(x, y, SCALE)
    torch.testing.assert_close(total["contrastive_loss"], 2 * clip)  # released "sum" convention


def test_cl2l_views_match_released_mixing(unit_features) -> None:
    x, y = unit_features(B, D, 0), unit_features(B, D, 1)
    image_views, text_views = _views(unit_features, 10), _views(unit_features, 20)
    loss_fn = build_loss("cl2l", num_augs=2, label_smoothing=0.1, separate_proj=False)
    terms = loss_fn(x, y, SCALE, image_views=image_views, text_views=text_views)

    # clip-rocket CL2LLoss: per direction (global + n·mean over the n² view pairs)/(1 + n),
    # directions averaged, doubled for "sum"; smoothing only on the view pairs.
    logits = SCALE * x @ y.T
    image_local = [_ce(SCALE * i @ t.T, 0.1) for i, t in product(image_views, text_views)]
    text_local = [_ce(SCALE * t @ i.T, 0.1) for i, t in product(image_views, text_views)]
    image = (_ce(logits) + 2 * sum(image_local) / 4) / 3
    text = (_ce(logits.T) + 2 * sum(text_local) / 4) / 3
    assert sum(terms.values()).item() == pytest.approx(2 * (image + text) / 2, rel=1e-10)


def test_cl2l_separate_projectors_are_trained_heads(unit_features) -> None:
    loss_fn = build_loss("cl2l", num_augs=2, embed_dim=D, hidden_dim=16).double()
    assert set(loss_fn.heads) == {"image_view_projector", "text_view_projector", "view_logit_scale"}
    assert loss_fn.heads["view_logit_scale"]().item() == pytest.approx(10.0)
    x, y = unit_features(B, D, 0), unit_features(B, D, 1)
    extras = {"image_views": _views(unit_features, 10), "text_views": _views(unit_features, 20)}
    sum(loss_fn(x, y, SCALE, **extras).values()).backward()
    assert all(p.grad is not None for p in loss_fn.heads.parameters())


def test_cl2l_checks_views(unit_features) -> None:
    x = unit_features(B, D, 0)
    loss_fn = build_loss("cl2l", num_augs=2, separate_proj=False)
    with pytest.raises(ValueError, match=r"needs extra\(s\) \['image_views', 'text_views'\]"):
        loss_fn(x, x, SCALE)
    with pytest.raises(ValueError, match="num_augs=2"):
        loss_fn(x, x, SCALE, image_views=[x], text_views=[x, x])
    with pytest.raises(ValueError, match="embed_dim"):
        build_loss("cl2l", num_augs=2)


# ---------------------------------------------------------------- BarLIP


def test_barlow_twins_loss_matches_formula() -> None:
    generator = torch.Generator().manual_seed(0)
    z1 = torch.randn(10, 4, generator=generator, dtype=torch.float64)
    z2 = torch.randn(10, 4, generator=generator, dtype=torch.float64)
    n1 = F.batch_norm(z1, None, None, training=True, eps=1e-5)  # batch-standardised
    n2 = F.batch_norm(z2, None, None, training=True, eps=1e-5)
    expected = 0.0
    for i in range(4):
        for j in range(4):
            c_ij = sum(n1[b, i] * n2[b, j] for b in range(10)).item() / 10
            expected += (1 - c_ij) ** 2 if i == j else 0.005 * c_ij**2
    assert barlow_twins_loss(z1, z2).item() == pytest.approx(0.025 * expected, rel=1e-10)


def test_barlip_adds_mean_pair_term_to_cl2l(unit_features) -> None:
    torch.manual_seed(0)
    loss_fn = build_loss("barlip", num_augs=0, **HEADS).double()
    x, y = unit_features(B, D, 0), unit_features(B, D, 1)
    terms = loss_fn(x, y, SCALE)
    cl2l = build_loss("cl2l", num_augs=0)(x, y, SCALE)["contrastive_loss"]
    torch.testing.assert_close(terms["contrastive_loss"], cl2l)
    heads = loss_fn.heads
    expected = barlow_twins_loss(heads["image_projector"](x), heads["text_projector"](y))
    torch.testing.assert_close(terms["ssl_loss"], expected)


# ---------------------------------------------------------------- SiamLIP / BYOLIP


def test_negative_cosine_is_2_minus_2cos_with_stop_grad() -> None:
    p = torch.tensor([[1.0, 0.0], [0.0, 2.0]], requires_grad=True)
    z = torch.tensor([[1.0, 1.0], [0.0, -1.0]], requires_grad=True)
    loss = negative_cosine(p, z)
    # cos = (1/√2, −1) → 2 − 2·mean = 2 − (1/√2 − 1)
    assert loss.item() == pytest.approx(2 - (1 / math.sqrt(2) - 1))
    loss.backward()
    assert p.grad is not None and z.grad is None


def test_siamlip_targets_get_no_gradient(unit_features) -> None:
    torch.manual_seed(0)
    loss_fn = build_loss("siamlip", num_augs=0, **HEADS).double()
    heads = loss_fn.heads
    x = unit_features(B, D, 0).requires_grad_()
    y = unit_features(B, D, 1)
    loss_fn(x, y, SCALE)["ssl_loss"].backward()

    # Only the image *prediction* path may reach x: the text prediction regresses sg(v_I(x)).
    x2 = x.detach().clone().requires_grad_()
    v_image, v_text = heads["image_projector"](x2), heads["text_projector"](y)
    expected = 0.5 * (
        negative_cosine(heads["image_predictor"](v_image), v_text)
        + negative_cosine(heads["text_predictor"](v_text), v_image)
    )
    torch.autograd.backward(0.5 * negative_cosine(heads["image_predictor"](v_image), v_text))
    torch.testing.assert_close(x.grad, x2.grad)
    with torch.no_grad():
        torch.testing.assert_close(loss_fn(x, y, SCALE)["ssl_loss"], expected)


def test_byolip_uses_ema_targets_without_gradient(unit_features) -> None:
    torch.manual_seed(0)
    loss_fn = build_loss("byolip", num_augs=0, momentum=0.9, **HEADS).double()
    assert loss_fn.needs.required_extras == ("target_image_features", "target_text_features")
    assert loss_fn.needs.momentum_target == 0.9
    x, y = unit_features(B, D, 0).requires_grad_(), unit_features(B, D, 1).requires_grad_()
    tx, ty = unit_features(B, D, 2).requires_grad_(), unit_features(B, D, 3).requires_grad_()
    terms = loss_fn(x, y, SCALE, target_image_features=tx, target_text_features=ty)
    terms["ssl_loss"].backward()
    assert x.grad is not None and y.grad is not None
    assert tx.grad is None and ty.grad is None
    assert all(p.grad is None for p in loss_fn.target_projectors.parameters())

    # 2 − 2cos against the target projector applied to the target embeddings.
    target = loss_fn.target_projectors.module
    heads = loss_fn.heads
    with torch.no_grad():
        expected = 0.5 * (
            negative_cosine(
                heads["image_predictor"](heads["image_projector"](x)), target["text_projector"](ty)
            )
            + negative_cosine(
                heads["text_predictor"](heads["text_projector"](y)), target["image_projector"](tx)
            )
        )
    torch.testing.assert_close(terms["ssl_loss"], expected)

    # EMA step: target ← 0.9·target + 0.1·online.
    online = heads["image_projector"][0].weight
    before = target["image_projector"][0].weight.clone()
    with torch.no_grad():
        online.add_(1.0)
    loss_fn.on_train_step_end()
    torch.testing.assert_close(target["image_projector"][0].weight, 0.9 * before + 0.1 * online)


def test_ema_target_follows_online_module() -> None:
    online = torch.nn.Linear(3, 2)
    target = EMATarget(online, momentum=0.99)
    assert not any(p.requires_grad for p in target.parameters())
    start = target.module.weight.clone()
    with torch.no_grad():
        online.weight.add_(1.0)
    target.update(online)
    torch.testing.assert_close(target.module.weight, 0.99 * start + 0.01 * online.weight)
    assert not target(torch.ones(1, 3)).requires_grad


# ---------------------------------------------------------------- SwALIP


def test_sinkhorn_codes_have_the_right_marginals() -> None:
    generator = torch.Generator().manual_seed(0)
    scores = F.normalize(torch.randn(12, 4, generator=generator, dtype=torch.float64), dim=-1)
    for epsilon, iterations in ((0.05, 3), (0.5, 200)):
        codes = sinkhorn_knopp(scores, epsilon=epsilon, iterations=iterations)
        assert codes.shape == (12, 4) and (codes >= 0).all()
        torch.testing.assert_close(codes.sum(dim=1), torch.ones(12, dtype=torch.float64))
    # At convergence (fast with a softer ε) every prototype receives B/K of the mass.
    torch.testing.assert_close(
        codes.sum(dim=0), torch.full((4,), 3.0, dtype=torch.float64), atol=1e-6, rtol=0
    )
    few = sinkhorn_knopp(scores, iterations=3).sum(dim=0)
    raw = torch.softmax(scores / 0.05, dim=1).sum(dim=0)
    assert (few - 3).abs().max() < (raw - 3).abs().max()  # 3 iterations already balance


def test_swalip_prototypes_swapped_prediction(unit_features) -> None:
    torch.manual_seed(0)
    loss_fn = build_loss("swalip_prototypes", num_augs=0, num_prototypes=4, **HEADS).double()
    x, y = unit_features(B, D, 0), unit_features(B, D, 1)
    terms = loss_fn(x, y, SCALE)
    heads = loss_fn.heads
    with torch.no_grad():
        image_scores = heads["prototypes"](heads["image_projector"](x))
        text_scores = heads["prototypes"](heads["text_projector"](y))
        q_image, q_text = sinkhorn_knopp(image_scores), sinkhorn_knopp(text_scores)
        expected = 0.5 * (
            -(q_text * torch.log_softmax(image_scores / 0.1, 1)).sum(1).mean()
            - (q_image * torch.log_softmax(text_scores / 0.1, 1)).sum(1).mean()
        )
    torch.testing.assert_close(terms["ssl_loss"], 0.2 * expected)


def test_prototypes_and_logit_scale_heads() -> None:
    prototypes = Prototypes(3, 5)
    scores = prototypes(torch.randn(4, 3))
    assert scores.shape == (4, 5) and scores.abs().max() <= 1 + 1e-6  # cosines
    scale = LogitScale(1000.0)
    assert scale().item() == pytest.approx(100.0)  # capped like open_clip's clamp
