"""CLIP's symmetric InfoNCE (docs/algorithms.md §1) and HELIP's hard negative margin loss (§2)."""

from __future__ import annotations

from typing import Literal

import torch

from clipflow.losses.base import LOSSES, ClipflowLoss, check_choice, clip_loss
from clipflow.losses.distributed import gather_features


@LOSSES.register("clip")
class ClipLoss(ClipflowLoss):
    """Symmetric cross-entropy over the (globally gathered) batch, optional label smoothing.

    With ``label_smoothing=0`` it equals ``open_clip.loss.ClipLoss`` (docs/algorithms.md §1);
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


HNML_NORMALISATIONS = ("negatives", "anchors")
HNML_REFERENCES = ("batch_min", "own_positive")


def hard_negative_margin_loss(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    normalisation: Literal["negatives", "anchors"] = "negatives",
    reference: Literal["batch_min", "own_positive"] = "own_positive",
) -> torch.Tensor:
    """HNML as this project reads the HELIP paper (docs/algorithms.md §2), on raw cosines.

    The released HELIP code has no margin loss. The paper's wording, taken literally, asks every
    negative pair to score below the least similar positive pair of the batch,
    hinge_ij = max(0, s_ij − min_k s_kk) for j ≠ i (``reference="batch_min"``, selectable).

    ``normalisation="negatives"`` (default) averages the hinges over the B(B−1) negative pairs,
    so a batch of the same similarity distribution gives the same value at any B and
    ``margin_weight`` means the same at batch 64 and 3,360. ``"anchors"`` is the earlier
    (1/B)·Σ_i Σ_{j≠i}, which sums over each anchor's B−1 negatives and so grows about linearly
    with B (kept to reproduce runs made with it).

    The batch minimum is itself an order statistic that falls as B grows, so with spread
    positive similarities the paper's term still rises with B (4x to 11x from batch 8 to 512)
    and its weight would mean something else at every batch size. The default
    ``reference="own_positive"`` therefore compares each negative with its own row's positive,
    max(0, s_ij − s_ii): the usual margin form, whose mean does not depend on B. It is this
    project's correction, not the paper's equation (docs/losses.md, "CLIP and HELIP").
    """
    if normalisation not in HNML_NORMALISATIONS:
        raise ValueError(
            f"normalisation must be one of {HNML_NORMALISATIONS}, got {normalisation!r}"
        )
    if reference not in HNML_REFERENCES:
        raise ValueError(f"reference must be one of {HNML_REFERENCES}, got {reference!r}")
    sims = image_features @ text_features.T
    batch = sims.shape[0]
    positives = sims.diagonal()
    threshold = positives.min() if reference == "batch_min" else positives[:, None]
    off_diagonal = ~torch.eye(batch, dtype=torch.bool, device=sims.device)
    violations = torch.relu(sims - threshold) * off_diagonal
    pairs = batch * (batch - 1) if normalisation == "negatives" else batch
    return violations.sum() / max(pairs, 1)


@LOSSES.register("helip")
class HelipLoss(ClipLoss):
    """CLIP loss + γ·HNML (``margin_weight``), for batches built from HELIP's hard pairs (§2).

    ``margin_normalisation`` and ``margin_reference`` are passed to
    :func:`hard_negative_margin_loss`; the defaults compare each negative with its own row's
    positive and average over the negative pairs, so the weight means the same at any batch size
    (``margin_reference: batch_min`` is the paper's batch-minimum reading).
    """

    def __init__(
        self,
        margin_weight: float = 1.0,
        label_smoothing: float = 0.0,
        margin_normalisation: Literal["negatives", "anchors"] = "negatives",
        margin_reference: Literal["batch_min", "own_positive"] = "own_positive",
    ) -> None:
        super().__init__(label_smoothing=label_smoothing)
        check_choice("margin_normalisation", margin_normalisation, HNML_NORMALISATIONS)
        check_choice("margin_reference", margin_reference, HNML_REFERENCES)
        self.margin_weight = margin_weight
        self.margin_normalisation = margin_normalisation
        self.margin_reference = margin_reference

    def compute(
        self,
        image_features: torch.Tensor,
        text_features: torch.Tensor,
        logit_scale: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        image_features, text_features = gather_features(image_features, text_features)
        margin = hard_negative_margin_loss(
            image_features, text_features, self.margin_normalisation, self.margin_reference
        )
        return {
            "contrastive_loss": clip_loss(
                image_features, text_features, logit_scale, self.label_smoothing
            ),
            "margin_loss": self.margin_weight * margin,
        }
