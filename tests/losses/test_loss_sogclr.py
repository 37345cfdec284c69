"""The SogCLR family (docs/algorithms.md §5) against the finite-sum objective, a loop-by-loop
reference of the update rules, LibAUC's GCLoss, CLIP, and hand-worked HybridSogCLR terms."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from clipflow.losses import build_loss
from clipflow.losses.sogclr import difficulty_term, published_spread, vicreg_spread

TAU = 0.1
NO_SCALE = torch.tensor(1.0)  # the SogCLR family ignores the model's logit scale


class ReferenceSogCLR:
    """Plain-Python SogCLR/iSogCLR state machine written from the spec's formulas."""

    def __init__(self, gamma: float, tau: float, rho: float = 6.0, eta: float = 0.03) -> None:
        self.gamma, self.rho, self.eta, self.beta = gamma, rho, eta, 0.5
        self.state: dict[str, dict[int, float]] = {
            key: {} for key in ("s_I", "s_T", "b_I", "b_T", "u_I", "u_T")
        }
        self.tau = {"I": {}, "T": {}}
        self.default_tau = tau
        self.seen: set[int] = set()

    def step(self, sims: list[list[float]], ids: list[int], isogclr: bool = False) -> float:
        batch = len(ids)
        total = 0.0
        transposed = [[sims[i][j] for i in range(batch)] for j in range(batch)]
        for modality, rows in (("I", sims), ("T", transposed)):
            losses = []
            for a, sample in enumerate(ids):
                tau = self.tau[modality].get(sample, self.default_tau)
                d = [rows[a][j] - rows[a][a] for j in range(batch)]
                negatives = [j for j in range(batch) if j != a]
                b_old = self.state[f"b_{modality}"].get(sample, 0.0)
                b_new = max(b_old, max(v / tau for v in d))
                g = sum(math.exp(d[j] / tau - b_new) for j in negatives) / (batch - 1)
                if sample in self.seen:
                    s_old = self.state[f"s_{modality}"][sample]
                    s = (1 - self.gamma) * s_old * math.exp(b_old - b_new) + self.gamma * g
                else:
                    s = g
                self.state[f"b_{modality}"][sample] = b_new
                self.state[f"s_{modality}"][sample] = s
                w = {j: math.exp(d[j] / tau - b_new) / s for j in negatives}
                losses.append(sum(w[j] * d[j] for j in negatives) / (batch - 1))
                if isogclr:
                    grad = (
                        math.log(s)
                        + b_new
                        + self.rho
                        - sum(w[j] * d[j] / tau for j in negatives) / (batch - 1)
                    )
                    u_old = self.state[f"u_{modality}"].get(sample, 0.0)
                    u = (1 - self.beta) * u_old + self.beta * max(-5.0, min(5.0, grad))
                    self.state[f"u_{modality}"][sample] = u
                    self.tau[modality][sample] = min(0.05, max(0.005, tau - self.eta * u))
            total += sum(losses) / batch
        self.seen.update(ids)
        return total


def _assert_state_matches(loss_fn, reference: ReferenceSogCLR, keys: tuple[str, ...]) -> None:
    for key in keys:
        buffer = getattr(loss_fn, key)
        for sample, value in reference.state[key].items():
            assert buffer[sample].item() == pytest.approx(value, rel=1e-9), (key, sample)


# ---------------------------------------------------------------- SogCLR


def test_sogclr_gradient_equals_global_objective_on_one_batch_dataset(unit_features) -> None:
    x = unit_features(6, 4, 0).requires_grad_()
    y = unit_features(6, 4, 1).requires_grad_()
    loss_fn = build_loss("sogclr", num_samples=6, sogclr_gamma=1.0, tau_init=TAU).double()
    loss_fn(x, y, NO_SCALE, ids=torch.arange(6))["contrastive_loss"].backward()

    # Finite-sum objective τ·[mean_i log g_I(i) + mean_j log g_T(j)], g over the negatives.
    x2, y2 = x.detach().clone().requires_grad_(), y.detach().clone().requires_grad_()
    sims = x2 @ y2.T
    off = ~torch.eye(6, dtype=torch.bool)
    g_image = (torch.exp((sims - sims.diagonal()[:, None]) / TAU) * off).sum(1) / 5
    g_text = (torch.exp((sims - sims.diagonal()[None, :]) / TAU) * off).sum(0) / 5
    objective = TAU * (torch.log(g_image).mean() + torch.log(g_text).mean())
    objective.backward()
    torch.testing.assert_close(x.grad, x2.grad)
    torch.testing.assert_close(y.grad, y2.grad)


def test_sogclr_moving_averages_follow_the_update_rule_over_three_steps(unit_features) -> None:
    loss_fn = build_loss("sogclr", num_samples=5, sogclr_gamma=0.8, tau_init=TAU).double()
    reference = ReferenceSogCLR(gamma=0.8, tau=TAU)
    for step, ids in enumerate(([0, 1, 2], [2, 3, 4], [4, 0, 2])):
        x, y = unit_features(3, 4, 2 * step), unit_features(3, 4, 2 * step + 1)
        loss = loss_fn(x, y, NO_SCALE, ids=torch.tensor(ids))["contrastive_loss"]
        expected = reference.step((x @ y.T).tolist(), ids)
        assert loss.item() == pytest.approx(expected, rel=1e-9)
        _assert_state_matches(loss_fn, reference, ("s_I", "s_T", "b_I", "b_T"))
    assert loss_fn.seen.tolist() == [True] * 5


def test_sogclr_gradients_match_libauc_gcloss(unit_features) -> None:
    libauc_losses = pytest.importorskip("libauc.losses", reason="libauc is not installed")
    theirs = libauc_losses.GCLoss(mode="bimodal", N=8, tau=TAU, gamma=0.8)
    ours = build_loss("sogclr", num_samples=8, sogclr_gamma=0.8, tau_init=TAU)
    # LibAUC switches γ per batch (γ = 1 while a batch's state is all zero), so batches are
    # either all new or all seen, where that agrees with our per-sample first visit.
    for step, ids in enumerate(([0, 1, 2, 3], [4, 5, 6, 7], [0, 1, 2, 3], [4, 5, 6, 7])):
        x0, y0 = (
            unit_features(4, 6, step, torch.float32),
            unit_features(4, 6, 9 + step, torch.float32),
        )
        x1, y1 = x0.clone().requires_grad_(), y0.clone().requires_grad_()
        x2, y2 = x0.clone().requires_grad_(), y0.clone().requires_grad_()
        ours(x1, y1, NO_SCALE, ids=torch.tensor(ids))["contrastive_loss"].backward()
        loss = theirs(x2, y2, torch.tensor(ids))
        (loss[0] if isinstance(loss, tuple) else loss).backward()
        # LibAUC halves the modality sum and sums (not averages) over the B − 1 negatives.
        factor = (4 - 1) / 2
        torch.testing.assert_close(x1.grad * factor, x2.grad, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(y1.grad * factor, y2.grad, rtol=1e-4, atol=1e-6)


def test_sogclr_rejects_out_of_range_ids(unit_features) -> None:
    loss_fn = build_loss("sogclr", num_samples=3)
    x = unit_features(2, 4, 0)
    with pytest.raises(ValueError, match="num_samples=3"):
        loss_fn(x, x, NO_SCALE, ids=torch.tensor([0, 3]))


def test_sogclr_eval_mode_does_not_touch_state(unit_features) -> None:
    loss_fn = build_loss("sogclr", num_samples=4).double().eval()
    loss_fn(unit_features(4, 4, 0), unit_features(4, 4, 1), NO_SCALE, ids=torch.arange(4))
    assert not loss_fn.seen.any() and not loss_fn.s_I.any() and not loss_fn.b_T.any()


# ---------------------------------------------------------------- iSogCLR


def test_isogclr_temperatures_follow_the_spec_gradient(unit_features) -> None:
    tau_init = 2**-6  # exact in the float32 buffer the module starts from
    loss_fn = build_loss(
        "isogclr", num_samples=5, sogclr_gamma=0.8, tau_init=tau_init, eta_init=1e-3, rho_init=6.0
    ).double()
    reference = ReferenceSogCLR(gamma=0.8, tau=tau_init, eta=1e-3)
    free_moves = 0
    for step, ids in enumerate(([0, 1, 2], [2, 3, 4], [4, 0, 2])):
        x, y = unit_features(3, 4, 2 * step), unit_features(3, 4, 2 * step + 1)
        tau_before = loss_fn.tau_I.clone()
        u_before = loss_fn.u_I.clone()
        loss = loss_fn(x, y, NO_SCALE, ids=torch.tensor(ids))["contrastive_loss"]
        expected = reference.step((x @ y.T).tolist(), ids, isogclr=True)
        assert loss.item() == pytest.approx(expected, rel=1e-9)
        _assert_state_matches(loss_fn, reference, ("s_I", "s_T", "b_I", "b_T", "u_I", "u_T"))
        for modality in ("I", "T"):
            buffer = getattr(loss_fn, f"tau_{modality}")
            for sample, value in reference.tau[modality].items():
                assert buffer[sample].item() == pytest.approx(value, rel=1e-9)
        # τ moves against the (moving-average) gradient u, unless it sits on a bound.
        index = torch.tensor(ids)
        moved = loss_fn.tau_I[index] - tau_before[index]
        u = loss_fn.u_I[index]
        free = (loss_fn.tau_I[index] > 0.005) & (loss_fn.tau_I[index] < 0.05)
        assert (torch.sign(moved[free]) == -torch.sign(u[free])).all()
        assert not torch.equal(u, u_before[index])
        free_moves += int(free.sum())
    assert free_moves > 0


def test_isogclr_temperatures_stay_clamped(unit_features) -> None:
    loss_fn = build_loss("isogclr", num_samples=8, eta_init=10.0)
    for seed in range(3):
        ids = torch.randperm(8, generator=torch.Generator().manual_seed(seed))[:4]
        x, y = (
            unit_features(4, 5, seed, torch.float32),
            unit_features(4, 5, 50 + seed, torch.float32),
        )
        loss_fn(x, y, NO_SCALE, ids=ids)
        for tau in (loss_fn.tau_I, loss_fn.tau_T):
            assert ((tau >= 0.005) & (tau <= 0.05)).all()
    assert {round(v, 6) for v in loss_fn.tau_I.tolist()} <= {0.005, 0.01, 0.05}


def test_isogclr_state_survives_a_state_dict_round_trip(unit_features) -> None:
    first = build_loss("isogclr", num_samples=6).double()
    for step in range(2):
        first(
            unit_features(3, 4, step),
            unit_features(3, 4, 9 + step),
            NO_SCALE,
            ids=torch.arange(3) + step,
        )
    state = first.state_dict()
    assert {"s_I", "s_T", "b_I", "b_T", "tau_I", "tau_T", "u_I", "u_T", "seen"} <= set(state)
    second = build_loss("isogclr", num_samples=6).double()
    second.load_state_dict(state)
    x, y, ids = unit_features(3, 4, 20), unit_features(3, 4, 21), torch.tensor([1, 4, 5])
    torch.testing.assert_close(first(x, y, NO_SCALE, ids=ids), second(x, y, NO_SCALE, ids=ids))
    for key, value in first.state_dict().items():
        torch.testing.assert_close(second.state_dict()[key], value)


# ---------------------------------------------------------------- InfoSogCLR


def test_infosogclr_gradient_is_a_positive_multiple_of_clip(unit_features) -> None:
    x = unit_features(6, 4, 3).requires_grad_()
    y = unit_features(6, 4, 4).requires_grad_()
    loss_fn = build_loss("infosogclr", num_samples=6, sogclr_gamma=1.0, tau_init=TAU).double()
    loss_fn(x, y, NO_SCALE, ids=torch.arange(6))["contrastive_loss"].backward()

    x2, y2 = x.detach().clone().requires_grad_(), y.detach().clone().requires_grad_()
    logits = x2 @ y2.T / TAU
    labels = torch.arange(6)
    clip = 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))
    clip.backward()
    # τ·∇(CE_image + CE_text) = 2τ·∇CLIP.
    torch.testing.assert_close(x.grad, 2 * TAU * x2.grad)
    torch.testing.assert_close(y.grad, 2 * TAU * y2.grad)


# ---------------------------------------------------------------- HybridSogCLR


def test_hybrid_with_zero_weights_equals_sogclr(unit_features) -> None:
    hybrid = build_loss("hybridsogclr", num_samples=5, covariance_weight=0.0, difficulty_weight=0.0)
    sogclr = build_loss("sogclr", num_samples=5)
    for step, ids in enumerate(([0, 1, 2], [2, 3, 4])):
        x, y = (
            unit_features(3, 4, step, torch.float32),
            unit_features(3, 4, 7 + step, torch.float32),
        )
        ids = torch.tensor(ids)
        assert hybrid(x, y, NO_SCALE, ids=ids) == sogclr(x, y, NO_SCALE, ids=ids)
    for key, value in sogclr.state_dict().items():
        assert torch.equal(hybrid.state_dict()[key], value)


def test_difficulty_term_hand_worked() -> None:
    x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    y = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]], dtype=torch.float64)
    # Distances to the batch mean: images (√2/3, √2/3, 2√2/3), texts (2√2/3, √2/3, √2/3).
    # With p = e^{√2/3}, q = e^{2√2/3}: a = (p, p, q)/(2p+q), b = (q, p, p)/(2p+q).
    # S = [[1,0,0],[1,0,0],[0,1,1]], so Σ a_i b_j S_ij = (pq + pq + qp + qp)/(2p+q)².
    p, q = math.exp(math.sqrt(2) / 3), math.exp(2 * math.sqrt(2) / 3)
    expected = -(4 * p * q / (2 * p + q) ** 2) / (9 * TAU)
    assert difficulty_term(x, y, TAU).item() == pytest.approx(expected, rel=1e-12)


def test_spread_terms_hand_worked() -> None:
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]], dtype=torch.float64)
    # Per-dimension unbiased variance 0.25 for both dimensions; covariance −0.25.
    assert published_spread(x).item() == pytest.approx(0.25)
    # hinge mean(relu(1 − √(0.25 + 1e-4))) + 2·(−0.25)²/D with D = 2
    expected = (1 - math.sqrt(0.2501)) + 2 * 0.0625 / 2
    assert vicreg_spread(x).item() == pytest.approx(expected, rel=1e-12)

    # the published loss sums the two modalities' terms, the vicreg default averages them
    for spread_term, value in (("published", 2 * 0.25), ("vicreg", expected)):
        loss_fn = build_loss(
            "hybridsogclr",
            num_samples=3,
            covariance_weight=0.5,
            difficulty_weight=0.0,
            spread_term=spread_term,
        ).double()
        terms = loss_fn(x, x, NO_SCALE, ids=torch.arange(3))
        assert terms["spread_loss"].item() == pytest.approx(0.5 * value, rel=1e-12)


def test_published_spread_rewards_collapse_and_vicreg_penalises_it() -> None:
    generator = torch.Generator().manual_seed(0)
    centre = torch.randn(1, 16, generator=generator, dtype=torch.float64)
    noise = torch.randn(32, 16, generator=generator, dtype=torch.float64)
    spreads: dict[str, list[float]] = {"published": [], "vicreg": []}
    for alpha in (2.0, 0.5, 0.1):  # smaller alpha → embeddings collapse onto the centre
        features = F.normalize(centre + alpha * noise, dim=-1)
        for spread_term, values in spreads.items():
            loss_fn = build_loss(
                "hybridsogclr", num_samples=32, difficulty_weight=0.0, spread_term=spread_term
            ).double()
            values.append(
                loss_fn(features, features, NO_SCALE, ids=torch.arange(32))["spread_loss"].item()
            )
    assert spreads["published"] == sorted(spreads["published"], reverse=True)
    assert spreads["vicreg"] == sorted(spreads["vicreg"])


def test_hybrid_rejects_unknown_spread_term() -> None:
    with pytest.raises(ValueError, match="spread_term"):
        build_loss("hybridsogclr", num_samples=3, spread_term="variance")
