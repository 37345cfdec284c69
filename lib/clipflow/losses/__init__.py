"""Contrastive image-text losses, chosen by name from config (``LOSSES`` / ``build_loss``).

Every loss is an ``nn.Module`` called as
``loss(image_features, text_features, logit_scale, **extras) -> dict[str, Tensor]``:
features are L2-normalised ``[B, D]`` embeddings of the clean pair, ``logit_scale`` is the
already exponentiated scalar 1/τ (open_clip style), and the returned named terms
(``contrastive_loss``, ``margin_loss``, ...) sum to the training loss (docs/algorithms.md,
notation).
Under an initialised ``torch.distributed`` process group each loss gathers the global batch
itself (``clipflow.losses.distributed``).

Trainer protocol
----------------
``loss.needs`` (a frozen :class:`LossNeeds`) is everything a trainer reads about a loss: what
to pass to the constructor (``dataset_size``: ``num_samples``; ``embed_dim``: the towers'
width; read from the class before building) and what to feed it (ids, views, negatives, an EMA
target model; the instance's, as its parameters set them, e.g. CL2L needs views only with
``num_augs > 0``). ``loss.needs.extras`` names the keyword extras that follow; a missing
required extra or an unexpected one fails with the names. A new loss declares its needs and
touches nothing outside ``losses/``. The extras a trainer may have to produce:

- ``ids``: ``LongTensor [B]`` dataset indices (per-sample state of the SogCLR family).
- ``negative_text_features``: ``[B, K, D]`` normalised embeddings of each caption's generated
  negatives; ``negative_mask``: ``bool [B, K]``, True where a negative exists (CE-CLIP).
- ``image_views`` / ``text_views``: lists of ``num_augs`` normalised ``[B, D]`` model
  embeddings of the augmented views (CL2L and the SSL variants); the loss applies its heads.
- ``target_image_features`` / ``target_text_features`` (and ``target_image_views`` /
  ``target_text_views`` with views): the same inputs embedded, under ``torch.no_grad()``, by
  an EMA copy of the model (BYOLIP). ``loss.needs.momentum_target`` says whether any are
  needed: keep ``target = heads.EMATarget(model, loss.needs.momentum_target)``, embed with
  ``target.module``, call ``target.update(model)`` after each optimizer step and checkpoint
  ``target.state_dict()``.

``loss.heads`` (an ``nn.ModuleDict``, empty for most losses) holds their trainable projectors,
predictors, prototypes and logit scales: move the loss to the device, add
``loss.heads.parameters()`` to the optimizer, and in multi-process runs wrap them in DDP with
the model or call
``distributed.average_gradients(loss.heads)`` before ``optimizer.step()``. After each optimizer
step call ``loss.on_train_step_end()`` (BYOLIP's EMA projectors update there). Per-sample state
(SogCLR family), CE-CLIP's thresholds and BYOLIP's EMA projectors live in
``loss.state_dict()``: checkpoint it and load it back to resume. Use ``loss.train()`` while
training; in ``eval()`` mode losses neither read nor update their state.

A training step, in short::

    loss_fn = build_loss(cfg.name, **cfg.params).to(device)
    optimizer = torch.optim.AdamW([*model.parameters(), *loss_fn.heads.parameters()])
    terms = loss_fn(image_features, text_features, model.logit_scale.exp(), **extras)
    sum(terms.values()).backward()
    optimizer.step()
    loss_fn.on_train_step_end()

As with open_clip's ``gather_with_grad=False``, each rank computes the global-batch loss and
only its own shard of the encoder outputs carries gradient.
"""

# Importing the loss modules registers their losses in LOSSES.
from clipflow.losses import ce_clip, cl2l, clip, sogclr, ssl  # noqa: F401
from clipflow.losses.base import LOSSES, ClipflowLoss, LossNeeds, build_loss, loss_parameters
from clipflow.losses.distributed import gather_features

__all__ = [
    "LOSSES",
    "ClipflowLoss",
    "LossNeeds",
    "build_loss",
    "gather_features",
    "loss_parameters",
]
