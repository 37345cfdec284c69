"""The SogCLR family: global contrastive losses with per-sample state (docs/algorithms.md §5).

State is indexed by dataset id (extra ``ids``, LongTensor [B]) and kept in buffers sized by
``num_samples``, so ``state_dict()`` saves and restores it with the checkpoint. Every rank
gathers features *and* ids and applies the same update, so the state stays identical across
ranks. The temperature is fixed (``tau_init``, per sample for iSogCLR): the model's
``logit_scale`` is not used by these losses and receives no gradient from them.

"First epoch" in the released code (s ← g) is generalised to "first visit of this id", tracked
by the ``seen`` buffer, which is also correct after resuming and for samples that a hard-pair
sampler repeats. In eval mode the losses neither read nor write the state (s = g, b from the
batch), so validation batches leave training state untouched.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch

from clipflow.losses.base import LOSSES, ClipflowLoss, LossNeeds, check_choice
from clipflow.losses.distributed import gather_features, gather_tensor


def _floor(values: torch.Tensor) -> torch.Tensor:
    """Floor at the dtype's smallest normal number: only guards an underflow to exactly 0.

    The released code floors at 1e-14 or 1e-8, which biases the weights whenever every negative
    is far below the positive (s ≈ e^{-40} is common at τ = 0.01); this only avoids 0/0.
    """
    return values.clamp(min=torch.finfo(values.dtype).tiny)


class AnchorStats(NamedTuple):
    """Per-anchor results of one modality's SogCLR estimator (rows = anchors)."""

    loss: torch.Tensor  # [B], differentiable
    s: torch.Tensor  # [B] moving average of g after this step
    b: torch.Tensor  # [B] log-sum-exp shift after this step
    weights: torch.Tensor  # [B, B] exp(d/τ − b)/s, detached, zero where masked
    scaled_diffs: torch.Tensor  # [B, B] d/τ, detached


@LOSSES.register("sogclr")
class SogCLRLoss(ClipflowLoss):
    """SogCLR (§5): moving-average estimator of the global contrastive objective τ·log g.

    For image anchor i, d_ij = s_ij − s_ii; g_i = (1/(B−1)) Σ_{j≠i} exp(d_ij/τ − b_i);
    s_I[i] ← (1−γ)·s_I[i]·exp(b_old − b_new) + γ·g_i (s_I[i] = g_i on first visit);
    loss_i = (1/(B−1)) Σ_{j≠i} [exp(d_ij/τ − b_i)/s_I[i]]·d_ij (weight detached). The same for
    text anchors over images; total = mean image loss + mean text loss.
    """

    needs = LossNeeds(dataset_size=True, ids=True)
    #: Whether the positive pair's term exp(d_ii/τ − b_i) = exp(−b_i) is part of g_i.
    include_positive = False
    #: Divide g_i by the B − 1 negatives (SogCLR, iSogCLR) or by all B columns (InfoSogCLR).
    partition_divisor: Literal["negatives", "batch"] = "negatives"
    #: s = g on an id's first visit (SogCLR's first epoch); False: s starts at 0 and follows the
    #: moving average from the first step, as the official iSogCLR ``sogclr_dro`` does.
    initialise_average = True

    def __init__(self, num_samples: int, sogclr_gamma: float = 0.8, tau_init: float = 0.01) -> None:
        super().__init__()
        if num_samples < 1:
            raise ValueError(f"num_samples must be positive, got {num_samples}")
        if not 0.0 < sogclr_gamma <= 1.0:
            raise ValueError(f"sogclr_gamma must be in (0, 1], got {sogclr_gamma}")
        if tau_init <= 0:
            raise ValueError(f"tau_init must be positive, got {tau_init}")
        self.num_samples = num_samples
        self.gamma = sogclr_gamma
        self.tau_init = tau_init
        for name in ("s_I", "s_T", "b_I", "b_T"):
            self.register_buffer(name, torch.zeros(num_samples))
        self.register_buffer("seen", torch.zeros(num_samples, dtype=torch.bool))

    def compute(
        self,
        image_features: torch.Tensor,
        text_features: torch.Tensor,
        logit_scale: torch.Tensor,
        ids: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        image_features, text_features = gather_features(image_features, text_features)
        ids = gather_tensor(ids.to(self.seen.device, torch.long))
        if ids.shape != image_features.shape[:1]:
            raise ValueError(f"ids must be [B]={image_features.shape[0]}, got {tuple(ids.shape)}")
        if ids.min() < 0 or ids.max() >= self.num_samples:
            raise ValueError(
                f"ids must lie in [0, num_samples={self.num_samples}); "
                f"got min {int(ids.min())}, max {int(ids.max())}"
            )
        return self._terms(image_features, text_features, ids)

    def _terms(
        self, image_features: torch.Tensor, text_features: torch.Tensor, ids: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """The named terms on the gathered batch; subclasses add their own."""
        # The estimator runs in the state's precision (float32) even under autocast.
        sims = (image_features @ text_features.T).to(self.s_I.dtype)
        seen = self.seen[ids] if self.training else torch.zeros_like(ids, dtype=torch.bool)
        image = self._anchor_stats(sims, ids, "I", seen)
        text = self._anchor_stats(sims.T, ids, "T", seen)
        if self.training:
            self.seen[ids] = True
        return {"contrastive_loss": image.loss.mean() + text.loss.mean()}

    def _temperature(self, modality: Literal["I", "T"], ids: torch.Tensor) -> torch.Tensor | float:
        """τ for each anchor: fixed for SogCLR, per sample for iSogCLR."""
        return self.tau_init

    def _weight_denominator(self, s: torch.Tensor, count: int) -> torch.Tensor:
        """The moving average s (a mean over ``count`` terms) as it divides the weights."""
        return _floor(s)

    def _anchor_stats(
        self,
        sims: torch.Tensor,
        ids: torch.Tensor,
        modality: Literal["I", "T"],
        seen: torch.Tensor,
    ) -> AnchorStats:
        """One modality's estimator; ``sims`` rows are its anchors (sims.T for text anchors)."""
        batch = sims.shape[0]
        diffs = sims - sims.diagonal()[:, None]  # d_ij = s_ij − s_ii
        scaled = (diffs / self._temperature(modality, ids)).detach()
        mask = torch.ones_like(scaled)
        if not self.include_positive:
            mask.fill_diagonal_(0.0)
        count = batch if self.partition_divisor == "batch" else batch - 1
        s_state = getattr(self, f"s_{modality}")
        b_state = getattr(self, f"b_{modality}")
        if self.training:
            b_old, s_old = b_state[ids], s_state[ids]
        else:
            b_old, s_old = torch.zeros_like(scaled[:, 0]), torch.zeros_like(scaled[:, 0])
        # Overflow guard: b_i ← max(b_i, max_j d_ij/τ), old average rescaled by exp(b_old − b_new).
        b_new = torch.maximum(b_old, scaled.max(dim=1).values)
        exp_diffs = torch.exp(scaled - b_new[:, None]) * mask
        g = exp_diffs.sum(dim=1) / count
        s_new = (1.0 - self.gamma) * s_old * torch.exp(b_old - b_new) + self.gamma * g
        if self.initialise_average:
            s_new = torch.where(seen, s_new, g)
        if self.training:
            s_state[ids] = s_new
            b_state[ids] = b_new
        weights = exp_diffs / self._weight_denominator(s_new, count)[:, None]
        loss = (weights * diffs).sum(dim=1) / count
        return AnchorStats(loss, s_new, b_new, weights, scaled)


class ISogCLRPreset(NamedTuple):
    """The temperature-update settings of one released iSogCLR variant."""

    rho_init: float
    eta_init: float
    beta_u: float
    tau_min: float
    tau_max: float
    include_positive: bool
    initialise_average: bool
    #: the released guard on s: ``clamp`` max(s, eps) in the weights and log s; ``add`` s + eps
    #: in the weights only
    eps_mode: Literal["clamp", "add"]
    eps: float


ISOGCLR_PRESETS = {
    # The seed fork's ``iSogCLR_New_Loss`` (ita_type isogclr_new, use_temp_net off): η is
    # hard-coded 1e-5 (its --eta_init is not read), ρ is --rho_I/--rho_T (default 8.0; the
    # seed's --rho_init 6.0 is not read either), β_u 0.5, τ ∈ [0.005, 0.05], the positive is
    # masked out of g, s = g in the first epoch.
    "isogclr_new": ISogCLRPreset(8.0, 1e-5, 0.5, 0.005, 0.05, False, True, "clamp", 1e-14),
    # The official iSogCLR ``SogCLR_DRO_Loss`` (ita_type sogclr_dro) as its run_sogclrdro.sh
    # runs it: ρ 6.0, η 0.03 (--eta_sched const), β_u 0.9 (clip.py default), τ ∈ [0.005, 1.0],
    # the positive's exp(−b_i) left in g (still divided by B − 1), s starts at 0.
    "sogclr_dro": ISogCLRPreset(6.0, 0.03, 0.9, 0.005, 1.0, True, False, "add", 1e-10),
}


@LOSSES.register("isogclr")
class ISogCLRLoss(SogCLRLoss):
    """iSogCLR (§5): SogCLR with per-sample τ by DRO, as one of the released variants.

    After each training step, for every anchor: grad_i = log s_i + b_i + ρ − Σ_j w_ij·d_ij/τ_i
    (s_i the mean over j, so w_ij = exp(d_ij/τ_i − b_i)/s_i averaged over j — the exact
    derivative of τ·(log mean_j exp(d_ij/τ) + ρ) in τ); u_i ← (1−β)·u_i + β·clip(grad_i, ±5);
    τ_i ← clamp(τ_i − η·u_i, τ_min, τ_max). No autograd through τ.

    ``preset`` names the released variant whose settings (``ISOGCLR_PRESETS``) fill every
    parameter left at None: ``"isogclr_new"`` (default; the seed fork's loss, which its
    published runs used) or ``"sogclr_dro"`` (the official iSogCLR loss). An explicit value
    overrides the preset's. ``released_eps=True`` also guards s as the released code does
    (max(s, 1e-14), or s + 1e-10 in the weights): when every negative lies far below the
    positive, s ≈ e^{-40} and that guard drives the weights, and with them the loss, to 0; by
    default s is only kept off an exact 0.

    Since log mean_j exp(x_j) − Σ_j softmax(x)_j·x_j ∈ [−log(B−1), 0], grad_i ≥ ρ − log(B−1):
    with ρ above log(B−1) every τ falls at first. With the seed's η = 1e-5 a step moves τ by at
    most 2.5e-5; the official η = 0.03 with β_u 0.9 takes τ from 0.01 to τ_min in the first step
    once ρ − log(B−1) > 0.19, which is the released behaviour.
    """

    def __init__(
        self,
        num_samples: int,
        sogclr_gamma: float = 0.8,
        tau_init: float = 0.01,
        preset: Literal["isogclr_new", "sogclr_dro"] = "isogclr_new",
        rho_init: float | None = None,
        eta_init: float | None = None,
        beta_u: float | None = None,
        tau_min: float | None = None,
        tau_max: float | None = None,
        grad_clip: float = 5.0,
        released_eps: bool = False,
    ) -> None:
        super().__init__(num_samples, sogclr_gamma, tau_init)
        check_choice("preset", preset, ISOGCLR_PRESETS)
        settings = ISOGCLR_PRESETS[preset]
        self.preset = preset
        self.released_eps = released_eps
        self.settings = settings
        self.rho = settings.rho_init if rho_init is None else rho_init
        self.eta = settings.eta_init if eta_init is None else eta_init
        self.beta_u = settings.beta_u if beta_u is None else beta_u
        self.tau_min = settings.tau_min if tau_min is None else tau_min
        self.tau_max = settings.tau_max if tau_max is None else tau_max
        self.include_positive = settings.include_positive
        self.initialise_average = settings.initialise_average
        if not self.tau_min <= tau_init <= self.tau_max:
            raise ValueError(
                f"tau_init {tau_init} must lie in [tau_min, tau_max] = "
                f"[{self.tau_min}, {self.tau_max}]"
            )
        self.grad_clip = grad_clip
        for modality in ("I", "T"):
            self.register_buffer(f"tau_{modality}", torch.full((num_samples,), tau_init))
            self.register_buffer(f"u_{modality}", torch.zeros(num_samples))

    def _temperature(self, modality: Literal["I", "T"], ids: torch.Tensor) -> torch.Tensor:
        return getattr(self, f"tau_{modality}")[ids][:, None]

    def _weight_denominator(self, s: torch.Tensor, count: int) -> torch.Tensor:
        if not self.released_eps:
            return _floor(s)
        if self.settings.eps_mode == "add":
            return s + self.settings.eps
        # the seed fork clamps the sum over j, which is count times this mean
        return s.clamp(min=self.settings.eps / count)

    def _log_s(self, s: torch.Tensor, count: int) -> torch.Tensor:
        if self.released_eps and self.settings.eps_mode == "clamp":
            return torch.log(s.clamp(min=self.settings.eps / count))
        return torch.log(_floor(s))

    def _anchor_stats(
        self,
        sims: torch.Tensor,
        ids: torch.Tensor,
        modality: Literal["I", "T"],
        seen: torch.Tensor,
    ) -> AnchorStats:
        stats = super()._anchor_stats(sims, ids, modality, seen)
        if self.training:
            tau_state = getattr(self, f"tau_{modality}")
            u_state = getattr(self, f"u_{modality}")
            count = sims.shape[0] - 1
            grad = (
                self._log_s(stats.s, count)
                + stats.b
                + self.rho
                - (stats.weights * stats.scaled_diffs).sum(dim=1) / count
            )
            u_new = (1.0 - self.beta_u) * u_state[ids] + self.beta_u * grad.clamp(
                -self.grad_clip, self.grad_clip
            )
            u_state[ids] = u_new
            tau_state[ids] = (tau_state[ids] - self.eta * u_new).clamp(self.tau_min, self.tau_max)
        return stats


@LOSSES.register("infosogclr")
class InfoSogCLRLoss(SogCLRLoss):
    """InfoSogCLR (§5, ``sogclr_mine``): this project's definition, as no public code exists.

    The SogCLR estimator applied to the InfoNCE objective: the positive pair is part of the
    partition function (g_i = (1/B) Σ_j exp(d_ij/τ − b_i), j = i included with d_ii = 0),
    moving averages as in SogCLR. With γ = 1 its gradient is 2τ times the mini-batch CLIP
    loss gradient at logit scale 1/τ.
    """

    include_positive = True
    partition_divisor = "batch"


def vicreg_spread(features: torch.Tensor) -> torch.Tensor:
    """VICReg variance hinge mean(relu(1 − std)) + off-diagonal covariance² / D (seed 003 [4])."""
    batch, dim = features.shape
    centred = features - features.mean(dim=0)
    std = torch.sqrt(centred.var(dim=0) + 1e-4)
    covariance = centred.T @ centred / (batch - 1)
    off_diagonal = covariance - torch.diag(covariance.diagonal())
    return torch.relu(1.0 - std).mean() + off_diagonal.pow(2).sum() / dim


def published_spread(features: torch.Tensor) -> torch.Tensor:
    """The released HybridSogCLR term: mean per-dimension variance of the centred embeddings."""
    return (features - features.mean(dim=0)).var(dim=0).mean()


def difficulty_term(
    image_features: torch.Tensor, text_features: torch.Tensor, tau: float | torch.Tensor
) -> torch.Tensor:
    """−mean_ij(a_i·b_j·S_ij/τ); a, b = batch softmax of distances to the batch mean (no grad)."""
    with torch.no_grad():
        a = torch.softmax((image_features - image_features.mean(dim=0)).norm(dim=1), dim=0)
        b = torch.softmax((text_features - text_features.mean(dim=0)).norm(dim=1), dim=0)
    sims = image_features @ text_features.T
    return -(a[:, None] * b[None, :] * sims / tau).mean()


SPREAD_TERMS = ("vicreg", "published")


#: The released HybridSogCLR keeps its statistics in a bank of min(memory_bank_size, 8192) slots
#: (model_clip.py's ``safe_bank_size``) and clamps every id into it.
PUBLISHED_BANK_SIZE = 8192
PUBLISHED_EPS = 1e-8  # HybridSogCLR_Loss's eps, added to s
PUBLISHED_CLAMP = 1e3  # its clamp on the scaled differences and on their exponentials


@LOSSES.register("hybridsogclr")
class HybridSogCLRLoss(SogCLRLoss):
    """HybridSogCLR (§5, ``hybrid``): SogCLR + weighted feature-spread and difficulty terms.

    ``spread_term="vicreg"`` (default, this project's correction): the SogCLR loss, plus
    ``covariance_weight`` times VICReg's variance hinge and covariance penalty averaged over the
    two modalities, plus ``difficulty_weight`` times the difficulty term at τ = ``tau_init``.
    With both weights 0 it equals SogCLR exactly.

    ``spread_term="published"``: the released ``HybridSogCLR_Loss`` as ``model_clip.py`` builds
    it for ita_type hybrid (``use_adaptive_temp=True``, bank of 8192 slots), see
    :meth:`_published_terms`. Its spread term, the mean per-dimension variance *added* to the
    loss, rewards collapse.
    """

    def __init__(
        self,
        num_samples: int,
        sogclr_gamma: float = 0.8,
        tau_init: float = 0.01,
        covariance_weight: float = 0.1,
        difficulty_weight: float = 0.1,
        spread_term: Literal["vicreg", "published"] = "vicreg",
        published_bank_size: int = PUBLISHED_BANK_SIZE,
    ) -> None:
        super().__init__(num_samples, sogclr_gamma, tau_init)
        check_choice("spread_term", spread_term, SPREAD_TERMS)
        self.covariance_weight = covariance_weight
        self.difficulty_weight = difficulty_weight
        self.spread_term = spread_term
        self.published_bank_size = min(num_samples, published_bank_size)

    def _terms(
        self, image_features: torch.Tensor, text_features: torch.Tensor, ids: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        if self.spread_term == "published":
            return self._published_terms(image_features, text_features, ids)
        terms = super()._terms(image_features, text_features, ids)
        if self.covariance_weight:
            terms["spread_loss"] = (
                self.covariance_weight
                * 0.5
                * (vicreg_spread(image_features) + vicreg_spread(text_features))
            )
        if self.difficulty_weight:
            terms["difficulty_loss"] = self.difficulty_weight * difficulty_term(
                image_features, text_features, self.tau_init
            )
        return terms

    def _published_terms(
        self, image_features: torch.Tensor, text_features: torch.Tensor, ids: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """The released loss (hahayun3325/HybridSogCLR ``models/losses.py``).

        - adaptive temperature τ = τ_init·(1 + tanh(std of the B×B cosines)), no gradient;
        - ids clamped into the bank of min(num_samples, ``published_bank_size``) slots, so every
          id past it shares the last slot's s;
        - on S/τ: d_ij = S_ij/τ − S_ii/τ clamped to ±1000 (its gradient flows; the loss is in
          units of 1/τ), e_ij = min(exp(d_ij), 1000) with no log-sum-exp shift and the positive
          (e_ii = 1) kept in g_i = Σ_j e_ij/(B − 1);
          s ← (1 − γ)·s + γ·g (s = g on an id's first visit: the released "epoch 0");
          loss = mean over all B² entries of e_ij/(s_i + 1e-8)·d_ij, the image and text losses
          averaged;
        - spread: per modality the mean over dimensions of the unbiased variance, image and text
          *summed*; difficulty: −mean_ij(a_i·b_j·S_ij/τ) at the adaptive τ.
        """
        raw = (image_features @ text_features.T).to(self.s_I.dtype)
        with torch.no_grad():
            tau = self.tau_init * (1.0 + torch.tanh(raw.std()))
        sims = raw / tau
        slots = ids.clamp(max=self.published_bank_size - 1)
        seen = self.seen[slots] if self.training else torch.zeros_like(slots, dtype=torch.bool)
        image_loss = self._published_anchor_loss(sims, slots, "I", seen)
        text_loss = self._published_anchor_loss(sims.T, slots, "T", seen)
        if self.training:
            self.seen[slots] = True
        terms = {"contrastive_loss": 0.5 * (image_loss + text_loss)}
        if self.covariance_weight:
            terms["spread_loss"] = self.covariance_weight * (
                published_spread(image_features) + published_spread(text_features)
            )
        if self.difficulty_weight:
            terms["difficulty_loss"] = self.difficulty_weight * difficulty_term(
                image_features, text_features, tau
            )
        return terms

    def _published_anchor_loss(
        self,
        sims: torch.Tensor,
        slots: torch.Tensor,
        modality: Literal["I", "T"],
        seen: torch.Tensor,
    ) -> torch.Tensor:
        """The released ``compute_base_loss`` for one modality (rows of ``sims`` = anchors)."""
        diffs = (sims - sims.diagonal()[:, None]).clamp(-PUBLISHED_CLAMP, PUBLISHED_CLAMP)
        s_state = getattr(self, f"s_{modality}")
        with torch.no_grad():
            exp_diffs = torch.exp(diffs).clamp(max=PUBLISHED_CLAMP)
            g = exp_diffs.sum(dim=1) / max(sims.shape[0] - 1, 1)
            s_old = s_state[slots] if self.training else torch.zeros_like(g)
            s_new = torch.where(seen, (1.0 - self.gamma) * s_old + self.gamma * g, g)
            if self.training:
                s_state[slots] = s_new
        weights = exp_diffs / (s_new[:, None] + PUBLISHED_EPS)
        return (weights * diffs).mean()
