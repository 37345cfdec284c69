"""SwALIP and CL2L against clip-rocket's released losses, re-typed here (issue 14, item 4).

``released_cl2l`` and ``released_swalip`` re-type facebookresearch/clip-rocket ``losses.py``,
``CL2LLoss.forward`` and ``SwALIPLoss.forward`` / ``SwALIPLoss.sinkhorn_knopp`` for one
process (``utils.all_gather_batch`` is then the identity, labels ``arange(B)``), logging and
accuracies dropped. The view embeddings ``h`` are passed as the loss's views with
``separate_proj=False``, so the loss compares them as given at ``logit_scale`` = h_logit_scale.
"""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from clipflow.losses import build_loss

B, D, A = 5, 6, 2
SCALE, EPSILON, ITERS, WEIGHT = 7.0, 0.05, 3, 0.2


def released_cl2l(z_image, z_text, h_image, h_text, logit_scale, h_logit_scale, smoothing):
    labels = torch.arange(z_image.shape[0])
    num_augs = len(h_image)
    z_image_global, z_text_global = F.normalize(z_image), F.normalize(z_text)
    h_image_local = [F.normalize(z) for z in h_image]
    h_text_local = [F.normalize(z) for z in h_text]
    image_global_logits = logit_scale * z_image_global @ z_text_global.t()
    text_global_logits = logit_scale * z_text_global @ z_image_global.t()
    clip_loss_image_global = F.cross_entropy(image_global_logits, labels)
    clip_loss_text_global = F.cross_entropy(text_global_logits, labels)
    image_local_logits, text_local_logits = [], []
    for i in range(num_augs):
        image_local_logits += [h_logit_scale * h @ h_text_local[i].t() for h in h_image_local]
        text_local_logits += [h_logit_scale * h @ h_image_local[i].t() for h in h_text_local]
    clip_loss_image_local = sum(
        F.cross_entropy(logits, labels, label_smoothing=smoothing) for logits in image_local_logits
    ) / len(image_local_logits)
    clip_loss_text_local = sum(
        F.cross_entropy(logits, labels, label_smoothing=smoothing) for logits in text_local_logits
    ) / len(text_local_logits)
    clip_loss_image = (clip_loss_image_global + clip_loss_image_local * num_augs) / (1 + num_augs)
    clip_loss_text = (clip_loss_text_global + clip_loss_text_local * num_augs) / (1 + num_augs)
    return (clip_loss_image + clip_loss_text) / 2 * 2  # loss_avg_or_sum == "sum"


@torch.no_grad()
def released_sinkhorn_knopp(Q: torch.Tensor) -> torch.Tensor:
    Q = torch.exp(Q / EPSILON).t()
    B = Q.shape[1]
    K = Q.shape[0]
    Q /= torch.sum(Q)
    for _ in range(ITERS):
        Q /= torch.sum(Q, dim=1, keepdim=True)
        Q /= K
        Q /= torch.sum(Q, dim=0, keepdim=True)
        Q /= B
    Q *= B
    return Q.t()


def released_swalip(z_image, z_text, h_image, h_text, logit_scale, h_logit_scale):
    loss = released_cl2l(z_image, z_text, h_image, h_text, logit_scale, h_logit_scale, 0.0)
    h_image_local = [F.normalize(h) for h in h_image]
    h_text_local = [F.normalize(h) for h in h_text]
    num_augs = len(h_image_local)
    logits_per_image_local = [[h @ h_all.t() for h_all in h_text_local] for h in h_image_local]
    logits_per_text_local = [[h @ h_all.t() for h_all in h_image_local] for h in h_text_local]
    with torch.no_grad():
        targets_per_image_local = [
            [released_sinkhorn_knopp(t.detach()) for t in i] for i in logits_per_image_local
        ]
        targets_per_text_local = [
            [released_sinkhorn_knopp(i.detach()) for i in t] for t in logits_per_text_local
        ]

    def cross_entropy(logits, targets):
        return -torch.mean(torch.sum(targets * torch.log_softmax(logits, dim=1), dim=1))

    swalip_loss = 0
    for l1 in range(2):
        for l2 in range(2):
            t1, t2 = abs(l1 - 1), abs(l2 - 1)
            swalip_loss += (
                cross_entropy(
                    logits_per_image_local[l1][l2] * h_logit_scale, targets_per_image_local[t1][t2]
                )
                + cross_entropy(
                    logits_per_text_local[l1][l2] * h_logit_scale, targets_per_text_local[t1][t2]
                )
            ) / 2
    swalip_loss /= num_augs**2
    return WEIGHT * swalip_loss + loss


def _inputs(unit_features):
    z_image, z_text = unit_features(B, D, 0), unit_features(B, D, 1)
    h_image = [unit_features(B, D, 2 + a) for a in range(A)]
    h_text = [unit_features(B, D, 4 + a) for a in range(A)]
    return [z_image, z_text, *h_image, *h_text]


@pytest.mark.parametrize("name", ["cl2l", "swalip"])
def test_loss_equals_clip_rocket_release(unit_features, name: str) -> None:
    leaves = [t.requires_grad_() for t in _inputs(unit_features)]
    smoothing = 0.1 if name == "cl2l" else 0.0
    loss_fn = build_loss(
        name, num_augs=A, separate_proj=False, embed_dim=D, label_smoothing=smoothing
    ).double()
    scale = torch.tensor(SCALE, dtype=torch.float64)
    z_image, z_text, *views = leaves
    terms = loss_fn(z_image, z_text, scale, image_views=views[:A], text_views=views[A:])
    total = sum(terms.values())
    ours = torch.autograd.grad(total, leaves)

    reference = [t.detach().clone().requires_grad_() for t in leaves]
    ri, rt, *rviews = reference
    if name == "cl2l":
        expected = released_cl2l(ri, rt, rviews[:A], rviews[A:], SCALE, SCALE, smoothing)
    else:
        expected = released_swalip(ri, rt, rviews[:A], rviews[A:], SCALE, SCALE)
    torch.testing.assert_close(total, expected, rtol=1e-10, atol=1e-12)
    # the released loss normalises its (unit) inputs again: compare tangent gradients
    for leaf, grad, ref_grad in zip(
        leaves, ours, torch.autograd.grad(expected, reference), strict=True
    ):
        tangent = grad - (grad * leaf).sum(-1, keepdim=True) * leaf
        torch.testing.assert_close(tangent, ref_grad, rtol=1e-8, atol=1e-10)


def test_released_sinkhorn_equals_ours() -> None:
    from clipflow.losses.ssl import sinkhorn_knopp

    generator = torch.Generator().manual_seed(3)
    scores = F.normalize(torch.randn(7, 4, generator=generator, dtype=torch.float64), dim=-1)
    scores = scores @ scores[:5].T  # 7 samples against 5 "prototypes" (another batch's views)
    torch.testing.assert_close(
        sinkhorn_knopp(scores, EPSILON, ITERS), released_sinkhorn_knopp(scores.clone())
    )


def test_swalip_needs_views() -> None:
    with pytest.raises(ValueError, match="num_augs must be >= 1"):
        build_loss("swalip", embed_dim=D, num_augs=0)
