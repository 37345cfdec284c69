"""The trainer's side of the loss contract (``clipflow.losses.LossNeeds``): data options, extras.

:func:`dataset_options_for` turns a loss's needs into ``PairsDataset`` options (augmented views
for CL2L and its SSL variants, docs/algorithms.md §3; generated negatives for CE-CLIP, §4), and
:func:`build_extras` turns a batch of that dataset into exactly the keyword extras it needs. Both
read only ``loss.needs``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from clipflow.losses import LOSSES, ClipflowLoss, LossNeeds
from clipflow.losses.heads import EMATarget


def _loss_name(loss: ClipflowLoss) -> str:
    """The name ``loss`` is registered under (for messages), else its class name."""
    names = [name for name in LOSSES if type(loss) is LOSSES.get(name)]
    return names[0] if names else type(loss).__name__


def dataset_options_for(needs: LossNeeds) -> dict[str, int]:
    """The ``PairsDataset`` options a loss with ``needs`` asks for: ``num_augs`` and/or
    ``num_negatives``.

    Empty when it needs neither. A ``num_negatives`` entry means that the run also needs the
    negatives table (``PairsDataset(..., negatives=table, num_negatives=K)``).
    """
    options = {}
    if needs.views:
        options["num_augs"] = needs.views
    if needs.negatives:
        options["num_negatives"] = needs.negatives
    return options


def _check_batch(loss: ClipflowLoss, batch: Mapping[str, torch.Tensor]) -> None:
    """Fail with what to set when ``batch`` lacks the inputs ``loss`` needs."""
    needs, name = loss.needs, _loss_name(loss)
    if needs.negatives and not {"negative_texts", "negative_mask"} <= batch.keys():
        raise ValueError(
            f"loss {name} needs negatives: set negatives for this run "
            "(the batch has no negative_texts / negative_mask)"
        )
    if needs.views:
        if not {"image_views", "text_views"} <= batch.keys():
            raise ValueError(
                f"loss {name} needs augmented views: set num_augs={needs.views} for this run "
                "(the batch has no image_views / text_views)"
            )
        counts = (batch["image_views"].shape[1], batch["text_views"].shape[1])
        if counts != (needs.views, needs.views):
            raise ValueError(
                f"loss {name} has num_augs={needs.views} but the batch holds {counts[0]} image "
                f"and {counts[1]} text views: set num_augs={needs.views} for this run"
            )


def _embed(model: nn.Module, tower: str, inputs: torch.Tensor) -> torch.Tensor:
    """L2-normalised ``model.encode_image`` / ``model.encode_text`` of ``inputs``."""
    return F.normalize(getattr(model, tower)(inputs), dim=-1)


def _embed_views(model: nn.Module, tower: str, views: torch.Tensor) -> list[torch.Tensor]:
    """One normalised ``[B, D]`` embedding per view of a ``[B, A, ...]`` batch of views."""
    return [_embed(model, tower, view) for view in views.unbind(1)]


def build_extras(
    loss: ClipflowLoss,
    model: nn.Module,
    batch: Mapping[str, torch.Tensor],
    device: torch.device | str,
    target: EMATarget | None = None,
) -> dict[str, Any]:
    """Exactly the extras ``loss`` declares, computed from a ``PairsDataset`` batch.

    - ``ids``: the batch's url indices.
    - ``negative_text_features``: normalised ``model.encode_text`` of ``negative_texts`` as
      ``[B, K, D]``; only the slots that ``negative_mask`` marks are encoded, the others are
      zeros. ``negative_mask``: ``bool [B, K]``.
    - ``image_views`` / ``text_views``: one normalised ``[B, D]`` embedding per view, each view
      encoded on its own, with gradient.
    - ``target_*``: the clean pair (and the views) embedded by ``target.module`` under
      ``torch.no_grad()`` (BYOLIP).

    ``model`` is the bare model (under DDP, its ``.module``). A batch without what the loss
    needs, or a missing ``target``, fails with what to set for the run.
    """
    _check_batch(loss, batch)
    needs = loss.needs
    if needs.momentum_target is not None and target is None:
        raise ValueError(
            f"loss {_loss_name(loss)} needs an EMA target model: "
            "pass target=heads.EMATarget(model, loss.needs.momentum_target)"
        )

    def get(key: str) -> torch.Tensor:
        return batch[key].to(device, non_blocking=True)

    extras: dict[str, Any] = {}
    if needs.ids:
        extras["ids"] = get("index")
    if needs.negatives:
        mask = get("negative_mask").bool()
        encoded = _embed(model, "encode_text", get("negative_texts")[mask])
        features = encoded.new_zeros(*mask.shape, encoded.shape[-1])
        features[mask] = encoded
        extras["negative_text_features"] = features
        extras["negative_mask"] = mask
    if needs.views:
        extras["image_views"] = _embed_views(model, "encode_image", get("image_views"))
        extras["text_views"] = _embed_views(model, "encode_text", get("text_views"))
    if needs.momentum_target is not None:
        with torch.no_grad():
            extras["target_image_features"] = _embed(target.module, "encode_image", get("image"))
            extras["target_text_features"] = _embed(target.module, "encode_text", get("text"))
            if needs.views:
                extras["target_image_views"] = _embed_views(
                    target.module, "encode_image", get("image_views")
                )
                extras["target_text_views"] = _embed_views(
                    target.module, "encode_text", get("text_views")
                )
    return extras
