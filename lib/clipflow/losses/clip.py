"""CLIP's symmetric InfoNCE (algorithms.md §1) and HELIP's hard negative margin loss (§2)."""

from __future__ import annotations

import torch

from clipflow.losses.base import LOSSES, ClipflowLoss, clip_loss
from clipflow.losses.distributed import gather_features


@LOSSES.register("clip")
class ClipLoss(ClipflowLoss):
    """Symmetric cross-entropy over the (globally gathered) batch, optional label smoothing.

    With ``label_smoothing=0`` it equals ``open_clip.loss.ClipLoss`` (algorithms.md §1);
    clip-rocket's recipe uses 0.1.
    """

    def __init__(self, label_smoothing: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = label_smoothing

    def compute(
        self,
        image_features: torch.Tensor,
        text_features: torch.Tensor,
        logit_scale: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        image_features, text_features = gather_features(image_features, text_features)
        loss = clip_loss(image_features, text_features, logit_scale, self.label_smoothing)
        return {"contrastive_loss": loss}


def hard_negative_margin_loss(
    image_features: torch.Tensor, text_features: torch.Tensor
) -> torch.Tensor:
    """HNML as this project reads the HELIP paper (algorithms.md §2).

    The released HELIP code has no margin loss, so the paper's wording is taken literally:
    every negative pair must score below the least similar positive pair of the batch,
    ℓ = (1/B) Σ_i Σ_{j≠i} max(0, s_ij − min_k s_kk), on raw cosines (no logit scale).
    """
    sims = image_features @ text_features.T
    hardest_positive = sims.diagonal().min()
    off_diagonal = ~torch.eye(sims.shape[0], dtype=torch.bool, device=sims.device)
    violations = torch.relu(sims - hardest_positive) * off_diagonal
    return violations.sum() / sims.shape[0]


@LOSSES.register("helip")
class HelipLoss(ClipLoss):
    """CLIP loss + γ·HNML (``margin_weight``), for batches built from HELIP's hard pairs (§2)."""

    def __init__(self, margin_weight: float = 1.0, label_smoothing: float = 0.0) -> None:
        super().__init__(label_smoothing=label_smoothing)
        self.margin_weight = margin_weight

    def compute(
        self,
        image_features: torch.Tensor,
        text_features: torch.Tensor,
        logit_scale: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        image_features, text_features = gather_features(image_features, text_features)
        return {
            "contrastive_loss": clip_loss(
                image_features, text_features, logit_scale, self.label_smoothing
            ),
            "margin_loss": self.margin_weight
            * hard_negative_margin_loss(image_features, text_features),
        }
