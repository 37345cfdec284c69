"""clip-rocket's CL2L loss: CLIP on the clean pair plus CLIP between augmented views (§3)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from itertools import product
from typing import Literal, NamedTuple

import torch
from torch.nn import functional as F

from clipflow.losses.base import LOSSES, ClipflowLoss, LossNeeds
from clipflow.losses.distributed import gather_features, gather_tensor
from clipflow.losses.heads import LogitScale, MLPHead

VIEW_LOGIT_SCALE_INIT = 1 / 0.1  # clip-rocket's l2l_logit_scale for separate projectors


class ProjectedViews(NamedTuple):
    """The views as CL2L's view term compares them (clip-rocket's h) and their logit scale."""

    image: list[torch.Tensor]
    text: list[torch.Tensor]
    scale: torch.Tensor


class GatheredBatch(NamedTuple):
    """The gathered global batch, its views as given and projected, and CL2L's terms."""

    image_features: torch.Tensor
    text_features: torch.Tensor
    image_views: list[torch.Tensor]
    text_views: list[torch.Tensor]
    projected: ProjectedViews
    terms: dict[str, torch.Tensor]


@LOSSES.register("cl2l")
class CL2LLoss(ClipflowLoss):
    """CL2L (docs/algorithms.md §3; clip-rocket ``CL2LLoss``).

    Global term: CLIP on the clean pair, no label smoothing. View term: CLIP with label
    smoothing between every augmented image view and every augmented text view (num_augs²
    pairs, averaged). Per direction the two are mixed (global + num_augs·views)/(1 + num_augs),
    the directions averaged, and ``loss_avg_or_sum="sum"`` doubles the result as the released
    code does. So ``num_augs=0`` with ``"avg"`` is exactly CLIP (and 2·CLIP with ``"sum"``).

    Extras (``num_augs > 0``): ``image_views`` and ``text_views``, lists of ``num_augs``
    normalised ``[B, D]`` model embeddings of the augmented views. With ``separate_proj`` they
    pass through the loss's own 3-layer MLP projectors (``embed_dim`` → ``hidden_dim`` →
    ``embed_dim``) and are compared at their own learnable logit scale (init 1/0.1); otherwise
    they are compared as given at the model's ``logit_scale``.
    """

    needs = LossNeeds(embed_dim=True)

    def __init__(
        self,
        num_augs: int = 2,
        label_smoothing: float = 0.1,
        loss_avg_or_sum: Literal["avg", "sum"] = "sum",
        separate_proj: bool = True,
        embed_dim: int | None = None,
        hidden_dim: int = 4096,
    ) -> None:
        super().__init__()
        if num_augs < 0:
            raise ValueError(f"num_augs must be >= 0, got {num_augs}")
        if loss_avg_or_sum not in ("avg", "sum"):
            raise ValueError(f"loss_avg_or_sum must be 'avg' or 'sum', got {loss_avg_or_sum!r}")
        self.num_augs = num_augs
        self.label_smoothing = label_smoothing
        self.scale_factor = 2.0 if loss_avg_or_sum == "sum" else 1.0
        self.separate_proj = separate_proj and num_augs > 0
        if num_augs > 0:
            self.needs = replace(self.needs, views=num_augs)
        if self.separate_proj:
            if embed_dim is None:
                raise ValueError("cl2l with separate_proj needs embed_dim (the model's output dim)")
            for name in ("image_view_projector", "text_view_projector"):
                self.heads[name] = MLPHead(embed_dim, hidden_dim, embed_dim, num_layers=3)
            self.heads["view_logit_scale"] = LogitScale(VIEW_LOGIT_SCALE_INIT)

    def compute(
        self,
        image_features: torch.Tensor,
        text_features: torch.Tensor,
        logit_scale: torch.Tensor,
        image_views: Sequence[torch.Tensor] = (),
        text_views: Sequence[torch.Tensor] = (),
    ) -> dict[str, torch.Tensor]:
        batch = self._gathered_terms(
            image_features, text_features, logit_scale, image_views, text_views
        )
        return {**batch.terms, **self._extra_terms(batch)}

    def _extra_terms(self, batch: GatheredBatch) -> dict[str, torch.Tensor]:
        """Terms a variant adds to CL2L's on the gathered batch (the SSL losses' ``ssl_loss``)."""
        return {}

    def _gathered_terms(
        self,
        image_features: torch.Tensor,
        text_features: torch.Tensor,
        logit_scale: torch.Tensor,
        image_views: Sequence[torch.Tensor],
        text_views: Sequence[torch.Tensor],
    ) -> GatheredBatch:
        """Gather the clean pair and the views, project the views, and compute CL2L's terms."""
        image_features, text_features = gather_features(image_features, text_features)
        image_views, text_views = self._gather_views(image_views, text_views, image_features)
        projected = ProjectedViews(*self._project_views(image_views, text_views, logit_scale))
        terms = self._contrastive_terms(image_features, text_features, logit_scale, *projected)
        return GatheredBatch(
            image_features, text_features, image_views, text_views, projected, terms
        )

    def _gather_views(
        self,
        image_views: Sequence[torch.Tensor],
        text_views: Sequence[torch.Tensor],
        reference: torch.Tensor,
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Check there are ``num_augs`` views per modality and gather them across ranks."""
        gathered = []
        for name, views in (("image_views", image_views), ("text_views", text_views)):
            if len(views) != self.num_augs:
                raise ValueError(
                    f"{name} must hold num_augs={self.num_augs} tensors, got {len(views)}"
                )
            views = [gather_tensor(view) for view in views]
            if any(view.shape != reference.shape for view in views):
                raise ValueError(f"every {name} tensor must be [B, D] = {tuple(reference.shape)}")
            gathered.append(views)
        return gathered[0], gathered[1]

    def _project_views(
        self,
        image_views: list[torch.Tensor],
        text_views: list[torch.Tensor],
        logit_scale: torch.Tensor,
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
        """The views as the view term compares them (clip-rocket's h) and their logit scale."""
        if not self.separate_proj:
            return image_views, text_views, logit_scale
        image_views = [
            F.normalize(self.heads["image_view_projector"](v), dim=-1) for v in image_views
        ]
        text_views = [F.normalize(self.heads["text_view_projector"](v), dim=-1) for v in text_views]
        return image_views, text_views, self.heads["view_logit_scale"]()

    def _contrastive_terms(
        self,
        image_features: torch.Tensor,
        text_features: torch.Tensor,
        logit_scale: torch.Tensor,
        image_views: list[torch.Tensor],
        text_views: list[torch.Tensor],
        view_scale: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """CL2L's global and view terms on the gathered batch; they sum to the CL2L loss.

        The views are already projected (:meth:`_project_views`), compared at ``view_scale``.
        """
        labels = torch.arange(image_features.shape[0], device=image_features.device)
        logits = logit_scale * image_features @ text_features.T
        global_loss = 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))
        mix = self.scale_factor / (1 + self.num_augs)
        terms = {"contrastive_loss": mix * global_loss}
        if self.num_augs == 0:
            return terms
        view_losses = []
        for image_view, text_view in product(image_views, text_views):
            view_logits = view_scale * image_view @ text_view.T
            view_losses.append(
                0.5
                * (
                    F.cross_entropy(view_logits, labels, label_smoothing=self.label_smoothing)
                    + F.cross_entropy(view_logits.T, labels, label_smoothing=self.label_smoothing)
                )
            )
        terms["view_contrastive_loss"] = mix * self.num_augs * torch.stack(view_losses).mean()
        return terms
