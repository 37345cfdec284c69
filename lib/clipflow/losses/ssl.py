"""clip-rocket's non-contrastive terms on top of CL2L: SiamLIP, BYOLIP, BarLIP, SwALIP (§3).

Each loss is CL2L (same parameters and extras) plus ``ssl_weight``·``ssl_loss``, where
``ssl_loss`` averages a symmetric image/text pair term over the clean pair and every
(image view, text view) pair, as clip-rocket does. The heads take the model's normalised
embeddings (see ``clipflow.losses.heads``); ``embed_dim`` is the model's output dimension.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from itertools import product
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from clipflow.losses.base import LOSSES
from clipflow.losses.cl2l import CL2LLoss, GatheredBatch
from clipflow.losses.distributed import gather_features, gather_tensor
from clipflow.losses.heads import EMATarget, MLPHead, Prototypes

PROJECTORS = ("image_projector", "text_projector")


class SSLLoss(CL2LLoss):
    """CL2L + ``ssl_weight`` · mean over image/text pairs of :meth:`pair_loss`."""

    def __init__(
        self,
        embed_dim: int,
        ssl_weight: float = 1.0,
        proj_dim: int = 256,
        hidden_dim: int = 4096,
        num_augs: int = 2,
        label_smoothing: float = 0.1,
        loss_avg_or_sum: Literal["avg", "sum"] = "sum",
        separate_proj: bool = True,
    ) -> None:
        super().__init__(
            num_augs, label_smoothing, loss_avg_or_sum, separate_proj, embed_dim, hidden_dim
        )
        self.ssl_weight = ssl_weight

    def _extra_terms(self, batch: GatheredBatch) -> dict[str, torch.Tensor]:
        pairs = [
            (batch.image_features, batch.text_features),
            *product(batch.image_views, batch.text_views),
        ]
        pair_losses = [self.pair_loss(image, text) for image, text in pairs]
        return {"ssl_loss": self.ssl_weight * torch.stack(pair_losses).mean()}

    def pair_loss(self, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """The symmetric SSL term between one image embedding batch and one text batch."""
        raise NotImplementedError


def negative_cosine(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """2 − 2·mean cos(prediction, stopgrad(target)) (SimSiam / BYOL regression loss)."""
    cosine = F.cosine_similarity(prediction, target.detach(), dim=-1)
    return 2.0 - 2.0 * cosine.mean()


@LOSSES.register("siamlip")
class SiamLIPLoss(SSLLoss):
    """SiamLIP: projectors v(·), cross-modal predictors p(·); pair term
    ½[D(p_I(v_I(x)), sg(v_T(y))) + D(p_T(v_T(y)), sg(v_I(x)))], D = 2 − 2 cos (§3).

    Heads as in clip-rocket: projector Linear-BN-ReLU-Linear-BN(no affine), predictor
    Linear-BN-ReLU-Linear.
    """

    def __init__(
        self,
        embed_dim: int,
        ssl_weight: float = 1.0,
        proj_dim: int = 256,
        hidden_dim: int = 4096,
        num_augs: int = 2,
        label_smoothing: float = 0.1,
        loss_avg_or_sum: Literal["avg", "sum"] = "sum",
        separate_proj: bool = True,
    ) -> None:
        super().__init__(
            embed_dim,
            ssl_weight,
            proj_dim,
            hidden_dim,
            num_augs,
            label_smoothing,
            loss_avg_or_sum,
            separate_proj,
        )
        for name in PROJECTORS:
            self.heads[name] = MLPHead(embed_dim, hidden_dim, proj_dim, last_bn=True)
        for name in ("image_predictor", "text_predictor"):
            self.heads[name] = MLPHead(proj_dim, hidden_dim, proj_dim)

    def _predictive_loss(
        self,
        image_projection: torch.Tensor,
        text_projection: torch.Tensor,
        image_target: torch.Tensor,
        text_target: torch.Tensor,
    ) -> torch.Tensor:
        """Each modality's prediction regresses the other modality's (stop-grad) target."""
        image_prediction = self.heads["image_predictor"](image_projection)
        text_prediction = self.heads["text_predictor"](text_projection)
        return 0.5 * (
            negative_cosine(image_prediction, text_target)
            + negative_cosine(text_prediction, image_target)
        )

    def pair_loss(self, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        image_projection = self.heads["image_projector"](image)
        text_projection = self.heads["text_projector"](text)
        return self._predictive_loss(
            image_projection, text_projection, image_projection, text_projection
        )


@LOSSES.register("byolip")
class BYOLIPLoss(SiamLIPLoss):
    """BYOLIP: SiamLIP whose targets come from a momentum (EMA) network instead of stop-grad.

    The target of a pair is the EMA copy of the projectors (kept here, updated in
    :meth:`on_train_step_end`) applied to the same inputs embedded by the EMA copy of the model,
    which the trainer keeps with ``heads.EMATarget`` and passes as ``target_image_features``,
    ``target_text_features`` (and ``target_image_views`` / ``target_text_views`` with views).
    """

    def __init__(
        self,
        embed_dim: int,
        momentum: float = 0.99,
        ssl_weight: float = 1.0,
        proj_dim: int = 256,
        hidden_dim: int = 4096,
        num_augs: int = 2,
        label_smoothing: float = 0.1,
        loss_avg_or_sum: Literal["avg", "sum"] = "sum",
        separate_proj: bool = True,
    ) -> None:
        super().__init__(
            embed_dim,
            ssl_weight,
            proj_dim,
            hidden_dim,
            num_augs,
            label_smoothing,
            loss_avg_or_sum,
            separate_proj,
        )
        self.needs = replace(self.needs, momentum_target=momentum)
        self.target_projectors = EMATarget(self._online_projectors(), momentum)

    def _online_projectors(self) -> nn.ModuleDict:
        return nn.ModuleDict({name: self.heads[name] for name in PROJECTORS})

    def on_train_step_end(self) -> None:
        self.target_projectors.update(self._online_projectors())

    def compute(
        self,
        image_features: torch.Tensor,
        text_features: torch.Tensor,
        logit_scale: torch.Tensor,
        target_image_features: torch.Tensor,
        target_text_features: torch.Tensor,
        image_views: Sequence[torch.Tensor] = (),
        text_views: Sequence[torch.Tensor] = (),
        target_image_views: Sequence[torch.Tensor] = (),
        target_text_views: Sequence[torch.Tensor] = (),
    ) -> dict[str, torch.Tensor]:
        image_features, text_features = gather_features(image_features, text_features)
        image_views, text_views = self._gather_views(image_views, text_views, image_features)
        target_image_views, target_text_views = self._gather_views(
            target_image_views, target_text_views, image_features
        )
        projected = self._project_views(image_views, text_views, logit_scale)
        terms = self._contrastive_terms(image_features, text_features, logit_scale, *projected)
        online = [(image_features, text_features), *product(image_views, text_views)]
        targets = [
            (gather_tensor(target_image_features), gather_tensor(target_text_features)),
            *product(target_image_views, target_text_views),
        ]
        target_heads = self.target_projectors.module
        pair_losses = []
        for (image, text), (target_image, target_text) in zip(online, targets, strict=True):
            with torch.no_grad():
                image_target = target_heads["image_projector"](target_image.detach())
                text_target = target_heads["text_projector"](target_text.detach())
            pair_losses.append(
                self._predictive_loss(
                    self.heads["image_projector"](image),
                    self.heads["text_projector"](text),
                    image_target,
                    text_target,
                )
            )
        terms["ssl_loss"] = self.ssl_weight * torch.stack(pair_losses).mean()
        return terms


def batch_standardise(z: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Per-dimension (z − mean)/sqrt(var + eps) over the batch, biased variance (as BatchNorm)."""
    centred = z - z.mean(dim=0)
    return centred / torch.sqrt(centred.pow(2).mean(dim=0) + eps)


def barlow_twins_loss(
    z1: torch.Tensor, z2: torch.Tensor, scale_loss: float = 0.025, lambd: float = 0.005
) -> torch.Tensor:
    """scale·[Σ_i (1 − C_ii)² + λ Σ_{i≠j} C_ij²], C the cross-correlation of standardised z (§3)."""
    correlation = batch_standardise(z1).T @ batch_standardise(z2) / z1.shape[0]
    on_diagonal = (1.0 - correlation.diagonal()).pow(2).sum()
    off_diagonal = correlation.pow(2).sum() - correlation.diagonal().pow(2).sum()
    return scale_loss * (on_diagonal + lambd * off_diagonal)


@LOSSES.register("barlip")
class BarLIPLoss(SSLLoss):
    """BarLIP: Barlow Twins between image and text projections (3-layer MLP projectors, §3)."""

    def __init__(
        self,
        embed_dim: int,
        scale_loss: float = 0.025,
        lambd: float = 0.005,
        ssl_weight: float = 1.0,
        proj_dim: int = 256,
        hidden_dim: int = 4096,
        num_augs: int = 2,
        label_smoothing: float = 0.1,
        loss_avg_or_sum: Literal["avg", "sum"] = "sum",
        separate_proj: bool = True,
    ) -> None:
        super().__init__(
            embed_dim,
            ssl_weight,
            proj_dim,
            hidden_dim,
            num_augs,
            label_smoothing,
            loss_avg_or_sum,
            separate_proj,
        )
        self.scale_loss = scale_loss
        self.lambd = lambd
        for name in PROJECTORS:
            self.heads[name] = MLPHead(embed_dim, hidden_dim, proj_dim, num_layers=3)

    def pair_loss(self, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        return barlow_twins_loss(
            self.heads["image_projector"](image),
            self.heads["text_projector"](text),
            self.scale_loss,
            self.lambd,
        )


@torch.no_grad()
def sinkhorn_knopp(
    scores: torch.Tensor, epsilon: float = 0.05, iterations: int = 3
) -> torch.Tensor:
    """SwAV codes for ``scores`` [B, K]: rows sum to 1, each prototype gets ≈ B/K in total.

    Alternates prototype (row of Qᵀ) and sample normalisation on exp(scores/ε), ending with the
    sample step so every code is an exact distribution (clip-rocket / SwAV).
    """
    q = torch.exp((scores - scores.max()) / epsilon).T  # [K, B]; shift cancels in the sums
    num_prototypes, batch = q.shape
    q /= q.sum()
    for _ in range(iterations):
        q /= q.sum(dim=1, keepdim=True) * num_prototypes
        q /= q.sum(dim=0, keepdim=True) * batch
    return (q * batch).T


@LOSSES.register("swalip")
class SwALIPLoss(CL2LLoss):
    """SwALIP as clip-rocket releases it and its published runs use (``losses.py``,
    ``SwALIPLoss``): CL2L + ``ssl_weight`` (0.2) · swapped prediction between the views.

    No prototypes: each image view's scores are its cosines with the other modality's views of
    the batch, h_I[a]·h_T[b]ᵀ (the view projectors' normalised outputs, ``_project_views``).
    For every pair (a, b) of view indices the target is the Sinkhorn-Knopp code (ε 0.05,
    3 iterations, no gradient) of the *swapped* pair (a', b'), a' = (a + 1) mod num_augs (the
    released code's 1 − a for its two views), and the term is
    ½[CE(s·h_I[a]h_T[b]ᵀ, SK(h_I[a']h_T[b']ᵀ)) + CE(s·h_T[a]h_I[b]ᵀ, SK(h_T[a']h_I[b']ᵀ))]
    at the views' logit scale s, averaged over the num_augs² pairs. Needs views
    (``num_augs >= 1``); clip-rocket asserts no label smoothing for it.
    """

    def __init__(
        self,
        embed_dim: int,
        epsilon: float = 0.05,
        sinkhorn_iterations: int = 3,
        ssl_weight: float = 0.2,
        hidden_dim: int = 4096,
        num_augs: int = 2,
        label_smoothing: float = 0.0,
        loss_avg_or_sum: Literal["avg", "sum"] = "sum",
        separate_proj: bool = True,
    ) -> None:
        if num_augs < 1:
            raise ValueError(
                f"swalip compares augmented views: num_augs must be >= 1, got {num_augs}"
            )
        super().__init__(
            num_augs, label_smoothing, loss_avg_or_sum, separate_proj, embed_dim, hidden_dim
        )
        self.epsilon = epsilon
        self.sinkhorn_iterations = sinkhorn_iterations
        self.ssl_weight = ssl_weight

    def _extra_terms(self, batch: GatheredBatch) -> dict[str, torch.Tensor]:
        image_views, text_views, view_scale = batch.projected
        pair_terms = []
        for a, b in product(range(self.num_augs), repeat=2):
            swap_a, swap_b = (a + 1) % self.num_augs, (b + 1) % self.num_augs
            image_codes = sinkhorn_knopp(
                image_views[swap_a] @ text_views[swap_b].T, self.epsilon, self.sinkhorn_iterations
            )
            text_codes = sinkhorn_knopp(
                text_views[swap_a] @ image_views[swap_b].T, self.epsilon, self.sinkhorn_iterations
            )
            pair_terms.append(
                0.5
                * (
                    soft_cross_entropy(view_scale * image_views[a] @ text_views[b].T, image_codes)
                    + soft_cross_entropy(view_scale * text_views[a] @ image_views[b].T, text_codes)
                )
            )
        return {"ssl_loss": self.ssl_weight * torch.stack(pair_terms).mean()}


@LOSSES.register("swalip_prototypes")
class SwALIPPrototypesLoss(SSLLoss):
    """SwALIP with SwAV prototypes, this project's earlier reading of the paper (§3).

    Projections are scored against shared prototypes; Sinkhorn-Knopp codes (ε 0.05, 3
    iterations) of one modality are the targets of the other's softmax at temperature 0.1:
    pair term ½[CE(P_I/T, Q_T) + CE(P_T/T, Q_I)]; weight 0.2. clip-rocket asserts no label
    smoothing for SwALIP, hence the 0.0 default.
    """

    def __init__(
        self,
        embed_dim: int,
        num_prototypes: int = 3000,
        temperature: float = 0.1,
        epsilon: float = 0.05,
        sinkhorn_iterations: int = 3,
        ssl_weight: float = 0.2,
        proj_dim: int = 256,
        hidden_dim: int = 4096,
        num_augs: int = 2,
        label_smoothing: float = 0.0,
        loss_avg_or_sum: Literal["avg", "sum"] = "sum",
        separate_proj: bool = True,
    ) -> None:
        super().__init__(
            embed_dim,
            ssl_weight,
            proj_dim,
            hidden_dim,
            num_augs,
            label_smoothing,
            loss_avg_or_sum,
            separate_proj,
        )
        self.temperature = temperature
        self.epsilon = epsilon
        self.sinkhorn_iterations = sinkhorn_iterations
        for name in PROJECTORS:
            self.heads[name] = MLPHead(embed_dim, hidden_dim, proj_dim)
        self.heads["prototypes"] = Prototypes(proj_dim, num_prototypes)

    def pair_loss(self, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        image_scores = self.heads["prototypes"](self.heads["image_projector"](image))
        text_scores = self.heads["prototypes"](self.heads["text_projector"](text))
        image_codes = sinkhorn_knopp(image_scores.detach(), self.epsilon, self.sinkhorn_iterations)
        text_codes = sinkhorn_knopp(text_scores.detach(), self.epsilon, self.sinkhorn_iterations)
        return 0.5 * (
            soft_cross_entropy(image_scores / self.temperature, text_codes)
            + soft_cross_entropy(text_scores / self.temperature, image_codes)
        )


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over rows of −Σ_k targets_k·log softmax(logits)_k."""
    return -(targets * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()
