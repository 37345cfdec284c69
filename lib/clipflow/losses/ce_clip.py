"""CE-CLIP's ``Clip_DALoss``: CLIP with hard negative captions, IMC and CMR (docs/algorithms.md
§4)."""

from __future__ import annotations

from typing import Literal

import torch
from torch.nn import functional as F

from clipflow.losses.base import LOSSES, ClipflowLoss, LossNeeds, check_choice
from clipflow.losses.distributed import gather_features, gather_tensor

THRESHOLD_RANGE = (0.0, 10.0)  # docs/algorithms.md §4: adaptive θ_k clamped to [0, 10]
IMC_FORMS = ("caption", "batch", "released")


@LOSSES.register("ce_clip")
class CeClipLoss(ClipflowLoss):
    """total = CLIP-with-negatives + ``imc_weight``·IMC + ``cmr_weight``·CMR.

    Extras: ``negative_text_features`` [B, K, D] (normalised embeddings of each caption's
    generated negatives, K = ``num_negatives`` slots, one per negative type) and optionally
    ``negative_mask`` [B, K] bool (True where the slot holds a real negative; default all True).
    The adaptive CMR thresholds θ_k live in the ``thresholds`` buffer, so checkpoints carry them.

    ``imc_form`` picks IMC's denominator (see :meth:`_imc`): ``"caption"`` (default, the paper's
    per-caption form), ``"batch"`` (the released denominator, every valid negative of the batch,
    with the paper's positive numerator) or ``"released"`` (the released code exactly, with its
    defect: label 0 makes the first caption's first negative every row's "positive").
    """

    def __init__(
        self,
        num_negatives: int = 4,
        imc_weight: float = 0.3,
        cmr_weight: float = 0.2,
        imc_form: Literal["caption", "batch", "released"] = "caption",
    ) -> None:
        super().__init__()
        check_choice("imc_form", imc_form, IMC_FORMS)
        self.imc_form = imc_form
        self.num_negatives = num_negatives
        self.needs = LossNeeds(negatives=num_negatives)
        self.imc_weight = imc_weight
        self.cmr_weight = cmr_weight
        self.register_buffer("thresholds", torch.zeros(num_negatives))

    def compute(
        self,
        image_features: torch.Tensor,
        text_features: torch.Tensor,
        logit_scale: torch.Tensor,
        negative_text_features: torch.Tensor,
        negative_mask: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        batch, slots = negative_text_features.shape[:2]
        if slots != self.num_negatives or batch != image_features.shape[0]:
            raise ValueError(
                f"negative_text_features must be [B={image_features.shape[0]}, "
                f"K={self.num_negatives}, D]; got {tuple(negative_text_features.shape)}"
            )
        if negative_mask is None:
            negative_mask = torch.ones(batch, slots, dtype=torch.bool, device=image_features.device)
        image_features, text_features = gather_features(image_features, text_features)
        negatives = gather_tensor(negative_text_features)
        mask = gather_tensor(negative_mask.bool())
        labels = torch.arange(image_features.shape[0], device=image_features.device)

        # i2t over the batch's captions plus every valid generated negative of the batch.
        candidates = torch.cat([text_features, negatives.flatten(0, 1)])
        logits_per_image = logit_scale * image_features @ candidates.T
        valid_columns = torch.cat([torch.ones_like(labels, dtype=torch.bool), mask.flatten()])
        logits_per_image = logits_per_image.masked_fill(~valid_columns, float("-inf"))
        logits_per_text = logit_scale * text_features @ image_features.T
        contrastive = 0.5 * (
            F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_text, labels)
        )

        positive = logit_scale * (image_features * text_features).sum(-1)  # s(I_i, T_i)/τ, [B]
        terms = {"contrastive_loss": contrastive}
        if self.imc_weight:
            terms["imc_loss"] = self.imc_weight * self._imc(
                positive, text_features, negatives, mask, logit_scale
            )
        if self.cmr_weight:
            image_negative = logit_scale * torch.einsum("bd,bkd->bk", image_features, negatives)
            terms["cmr_loss"] = self.cmr_weight * self._cmr(positive, image_negative, mask)
        return terms

    def _imc(
        self,
        positive: torch.Tensor,
        text_features: torch.Tensor,
        negatives: torch.Tensor,
        mask: torch.Tensor,
        logit_scale: torch.Tensor,
    ) -> torch.Tensor:
        """Intra-modal contrast over the caption embeddings and the generated negatives (§4).

        ``"caption"``: IMC_i = −log(e^{s(I_i,T_i)/τ} / (e^{s(I_i,T_i)/τ} + Σ_k e^{s(T_i,T_ik⁻)/τ})),
        valid negatives of caption i only, averaged over the anchors that have one (the paper).
        ``"batch"``: the same numerator over every valid negative of the batch, Σ_{j,k}
        e^{s(T_i,T_jk⁻)/τ}, the released code's denominator. ``"released"``: CE-CLIP's
        ``Clip_DALoss.get_imc_loss``, cross-entropy of the caption × all-negatives matrix
        s(T_i, T_jk⁻)/τ with label 0 for every row, no mask and no positive pair.
        """
        if self.imc_form == "released":
            logits = logit_scale * text_features @ negatives.flatten(0, 1).T
            labels = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
            return F.cross_entropy(logits, labels)
        if self.imc_form == "caption":
            text_negative = logit_scale * torch.einsum("bd,bkd->bk", text_features, negatives)
            valid = mask
        else:
            text_negative = logit_scale * text_features @ negatives.flatten(0, 1).T
            valid = mask.flatten()[None, :].expand_as(text_negative)
        logits = torch.cat([positive[:, None], text_negative.masked_fill(~valid, float("-inf"))], 1)
        per_anchor = -torch.log_softmax(logits, dim=1)[:, 0]
        has_negative = valid.any(dim=1)
        if not has_negative.any():
            return positive.new_zeros(())
        return per_anchor[has_negative].mean()

    def _cmr(
        self, positive: torch.Tensor, image_negative: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """CMR: relu(θ_k + s(I_i,T_ik⁻)/τ − s(I_i,T_i)/τ), mean over valid (i, k), §4.

        Uses the thresholds carried from the previous step, then (training only, no gradient)
        sets θ_k = mean_i s(I_i,T_i)/τ − mean_{valid i} s(I_i,T_ik⁻)/τ, clamped to [0, 10];
        a slot with no valid negative in the batch keeps its θ_k.
        """
        hinge = torch.relu(self.thresholds[None, :] + image_negative - positive[:, None])
        if not mask.any():
            return positive.new_zeros(())
        loss = hinge[mask].mean()
        if self.training:
            with torch.no_grad():
                counts = mask.sum(dim=0)
                negative_mean = (image_negative * mask).sum(dim=0) / counts.clamp(min=1)
                updated = (positive.mean() - negative_mean).clamp(*THRESHOLD_RANGE)
                self.thresholds.copy_(torch.where(counts > 0, updated, self.thresholds))
        return loss
