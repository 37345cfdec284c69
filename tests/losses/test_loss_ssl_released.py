"""BarLIP and SiamLIP terms against clip-rocket's released formulas, re-typed (issue 14, 8).

From facebookresearch/clip-rocket ``losses.py``: ``BarLIPLoss.barlip_loss`` / ``forward`` and
``SiamLIPLoss.negative_cosine_similarity`` / ``forward`` (one process), on the head outputs
v (projectors) and p (predictors) the loss computes from the clean pair and A = 2 views. The
released BarLIP projector ends with a BatchNorm, here the loss standardises over the batch:
the re-typed formula gets ``F.batch_norm`` in training mode (the released BN at its initial
affine weights). Heads map the model's embeddings here (docs/losses.md); the formulas are the
released ones, applied to the same head outputs.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from clipflow.losses import build_loss

B, D, A = 8, 6, 2
SCALE = torch.tensor(12.0, dtype=torch.float64)
HEADS = {"embed_dim": D, "hidden_dim": 16, "proj_dim": 5, "num_augs": A}


def released_barlip_loss(z1, z2, lamb=5e-3, scale_loss=0.025):
    N, D = z1.size()
    corr = torch.einsum("bi, bj -> ij", z1, z2) / N
    diag = torch.eye(D, dtype=corr.dtype)
    cdif = (corr - diag).pow(2)
    cdif[~diag.bool()] *= lamb
    return scale_loss * cdif.sum()


def released_negative_cosine_similarity(p, v):
    p = F.normalize(p, dim=-1)
    v = F.normalize(v, dim=-1)
    return 2 - 2 * (p * v.detach()).sum(dim=1).mean()


def _inputs(unit_features):
    tensors = [unit_features(B, D, seed) for seed in range(2 + 2 * A)]
    return [t.requires_grad_() for t in tensors]


def _terms(loss_fn, leaves):
    x, y, *views = leaves
    return loss_fn(x, y, SCALE, image_views=views[:A], text_views=views[A:])


def test_barlip_term_equals_released(unit_features) -> None:
    torch.manual_seed(0)
    loss_fn = build_loss("barlip", **HEADS).double()
    leaves = _inputs(unit_features)
    ours = _terms(loss_fn, leaves)["ssl_loss"]
    grads = torch.autograd.grad(ours, leaves)

    heads = loss_fn.heads
    x, y, *views = (t.detach().clone().requires_grad_() for t in leaves)

    def v(name, z):
        return F.batch_norm(heads[name](z), None, None, training=True, eps=1e-5)

    num_losses = 1
    barlip_loss = released_barlip_loss(v("image_projector", x), v("text_projector", y))
    for v_image in [v("image_projector", z) for z in views[:A]]:
        for v_text in [v("text_projector", z) for z in views[A:]]:
            barlip_loss += released_barlip_loss(v_image, v_text)
            num_losses += 1
    barlip_loss /= num_losses
    torch.testing.assert_close(ours, barlip_loss)
    for grad, ref in zip(grads, torch.autograd.grad(barlip_loss, [x, y, *views]), strict=True):
        torch.testing.assert_close(grad, ref)


def test_siamlip_term_equals_released(unit_features) -> None:
    torch.manual_seed(0)
    loss_fn = build_loss("siamlip", **HEADS).double()
    leaves = _inputs(unit_features)
    ours = _terms(loss_fn, leaves)["ssl_loss"]
    grads = torch.autograd.grad(ours, leaves)

    heads = loss_fn.heads
    x, y, *views = (t.detach().clone().requires_grad_() for t in leaves)
    v_image, v_text = heads["image_projector"](x), heads["text_projector"](y)
    p_image, p_text = heads["image_predictor"](v_image), heads["text_predictor"](v_text)
    v_image_local = [heads["image_projector"](z) for z in views[:A]]
    v_text_local = [heads["text_projector"](z) for z in views[A:]]
    p_image_local = [heads["image_predictor"](v) for v in v_image_local]
    p_text_local = [heads["text_predictor"](v) for v in v_text_local]
    num_losses = 2
    siamlip_loss = released_negative_cosine_similarity(
        p_image, v_text.detach()
    ) + released_negative_cosine_similarity(p_text, v_image.detach())
    for p in p_image_local:
        for v in v_text_local:
            siamlip_loss += released_negative_cosine_similarity(p, v.detach())
            num_losses += 1
    for p in p_text_local:
        for v in v_image_local:
            siamlip_loss += released_negative_cosine_similarity(p, v.detach())
            num_losses += 1
    siamlip_loss /= num_losses
    torch.testing.assert_close(ours, siamlip_loss)
    for grad, ref in zip(grads, torch.autograd.grad(siamlip_loss, [x, y, *views]), strict=True):
        torch.testing.assert_close(grad, ref)
