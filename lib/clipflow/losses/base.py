"""The loss registry, ``build_loss`` and the base class every registered loss derives from."""

from __future__ import annotations

import inspect
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from clipflow.registry import Registry

# An extra a loss accepts but can do without: CE-CLIP treats every negative slot as filled.
OPTIONAL_EXTRAS = ("negative_mask",)


@dataclass(frozen=True)
class LossNeeds:
    """What a loss needs from the data and the model beyond the clean pair's features.

    The trainer reads only this (``clipflow.training.extras``). Two fields are read before the
    loss is built, from the class attribute ``needs``: ``dataset_size`` (the constructor takes
    ``num_samples``, the number of url indices, for per-sample state) and ``embed_dim`` (it
    takes the towers' output width, for its heads). The others are the built loss's, as its
    parameters set them: ``ids`` (the batch's url indices), ``views`` (augmented views per
    modality, 0: none), ``negatives`` (generated negative slots per caption, 0: none) and
    ``momentum_target`` (the momentum of an EMA copy of the model that embeds the same inputs;
    None: no copy).
    """

    dataset_size: bool = False
    embed_dim: bool = False
    ids: bool = False
    views: int = 0
    negatives: int = 0
    momentum_target: float | None = None

    @property
    def extras(self) -> tuple[str, ...]:
        """The keyword extras the loss accepts, as ``clipflow.losses`` describes them."""
        names = ["ids"] if self.ids else []
        if self.negatives:
            names += ["negative_text_features", "negative_mask"]
        if self.views:
            names += ["image_views", "text_views"]
        if self.momentum_target is not None:
            names += ["target_image_features", "target_text_features"]
            if self.views:
                names += ["target_image_views", "target_text_views"]
        return tuple(names)

    @property
    def run_parameters(self) -> tuple[str, ...]:
        """The constructor parameters the trainer fills from the run (``dataset_size``,
        ``embed_dim``), so a config need not set them."""
        return ("num_samples",) * self.dataset_size + ("embed_dim",) * self.embed_dim

    @property
    def required_extras(self) -> tuple[str, ...]:
        return tuple(name for name in self.extras if name not in OPTIONAL_EXTRAS)


class ClipflowLoss(nn.Module):
    """Base class: validates extras, then delegates to :meth:`compute`.

    Subclasses declare what they need in ``needs`` (:class:`LossNeeds`; per instance where it
    depends on the parameters), may put trainable modules in ``self.heads`` and may override
    :meth:`on_train_step_end`. The trainer protocol is described in ``clipflow.losses``.
    """

    needs: LossNeeds = LossNeeds()

    def __init__(self) -> None:
        super().__init__()
        # Trainable modules owned by the loss; the trainer adds their parameters to the optimizer.
        self.heads = nn.ModuleDict()

    def forward(
        self,
        image_features: torch.Tensor,
        text_features: torch.Tensor,
        logit_scale: torch.Tensor,
        **extras: Any,
    ) -> dict[str, torch.Tensor]:
        """Return the named loss terms; their sum is the training loss."""
        self._check_extras(extras)
        return self.compute(image_features, text_features, logit_scale, **extras)

    def compute(
        self,
        image_features: torch.Tensor,
        text_features: torch.Tensor,
        logit_scale: torch.Tensor,
        **extras: Any,
    ) -> dict[str, torch.Tensor]:
        """The loss itself, called with extras already validated."""
        raise NotImplementedError

    def on_train_step_end(self) -> None:
        """Hook the trainer calls after each optimizer step (EMA targets update here)."""

    def _check_extras(self, extras: Mapping[str, Any]) -> None:
        name = type(self).__name__
        missing = [key for key in self.needs.required_extras if key not in extras]
        if missing:
            raise ValueError(f"{name} needs extra(s) {missing}; got {sorted(extras)}")
        allowed = set(self.needs.extras)
        unexpected = sorted(set(extras) - allowed)
        if unexpected:
            raise ValueError(
                f"{name} got unexpected extra(s) {unexpected}; it accepts {sorted(allowed)}"
            )


LOSSES: Registry[type[ClipflowLoss]] = Registry("loss")


def check_choice(name: str, value: object, choices: Collection[object]) -> None:
    """Fail with one line naming the parameter when ``value`` is not one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(map(str, choices))}, got {value!r}")


def loss_parameters(name: str) -> list[inspect.Parameter]:
    """The keyword parameters of the loss registered as ``name``, in constructor order."""
    return [
        p
        for p in inspect.signature(LOSSES.get(name).__init__).parameters.values()
        if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]


def build_loss(name: str, **params: Any) -> ClipflowLoss:
    """Instantiate the loss registered as ``name``; unknown names or parameters fail loudly."""
    signature = loss_parameters(name)
    accepted = [p.name for p in signature]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise TypeError(f"loss {name!r} got unknown parameter(s) {unknown}; accepted: {accepted}")
    missing = [p.name for p in signature if p.default is p.empty and p.name not in params]
    if missing:
        raise TypeError(f"loss {name!r} needs parameter(s) {missing}")
    return LOSSES.get(name)(**params)


def clip_loss(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    logit_scale: torch.Tensor,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Symmetric InfoNCE over the given (already gathered) batch (docs/algorithms.md §1)."""
    logits_per_image = logit_scale * image_features @ text_features.T
    labels = torch.arange(logits_per_image.shape[0], device=logits_per_image.device)
    return 0.5 * (
        F.cross_entropy(logits_per_image, labels, label_smoothing=label_smoothing)
        + F.cross_entropy(logits_per_image.T, labels, label_smoothing=label_smoothing)
    )
