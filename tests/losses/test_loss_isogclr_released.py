"""iSogCLR presets against the released losses, re-typed here on CPU (issue 14, item 1).

``released_isogclr_new`` is ``iSogCLR_New_Loss.forward`` of the seed's fork
(zhqiu/contrastive-learning-iSogCLR before commit 98aca98, ``bimodal_exps/models/losses.py``;
the same class is in hahayun3325/HybridSogCLR ``models/losses.py``) with ``use_temp_net`` off.
``released_sogclr_dro`` is ``SogCLR_DRO_Loss.forward`` of the official iSogCLR code
(zhqiu/contrastive-learning-iSogCLR HEAD, ``bimodal_exps/models/losses.py``) with
``eta_sched='const'``. Only ``.cuda()`` and the logging outputs are dropped.
"""

from __future__ import annotations

import math

import pytest
import torch

from clipflow.losses import build_loss

N, B, D = 6, 3, 4
NO_SCALE = torch.tensor(1.0)


def _state(tau_init: float) -> dict[str, torch.Tensor]:
    state = {k: torch.zeros(N, dtype=torch.float64) for k in ("s_I", "s_T", "b_I", "b_T")}
    state |= {k: torch.zeros(N, dtype=torch.float64) for k in ("u_I", "u_T")}
    state |= {k: torch.full((N,), tau_init, dtype=torch.float64) for k in ("tau_I", "tau_T")}
    return state


def released_isogclr_new(st, image_features, text_features, image_ids, text_ids, epoch, rho=8.0):
    gamma, eps, tau_min, tau_max = 0.8, 1e-14, 0.005, 0.05
    eta_init, beta_u, grad_clip = 1e-5, 0.5, 5.0
    sim = torch.einsum("i d, j d -> i j", image_features, text_features)
    diag_sim = torch.diagonal(sim)
    batch_size = sim.shape[0]
    mask_neg = 1.0 - torch.eye(batch_size, dtype=sim.dtype)
    tau_image, tau_text = st["tau_I"][image_ids], st["tau_T"][text_ids]
    image_diffs = sim - diag_sim[:, None]
    text_diffs = sim - diag_sim[None, :]
    image_diffs_d_temps = (image_diffs / tau_image[:, None]).detach()
    text_diffs_d_temps = (text_diffs / tau_text[None, :]).detach()
    old_b_I = st["b_I"][image_ids]
    new_b_I = torch.max(image_diffs_d_temps, old_b_I[:, None].tile(1, batch_size))
    st["b_I"][image_ids] = torch.max(new_b_I, dim=1)[0]
    old_b_T = st["b_T"][text_ids]
    new_b_T = torch.max(text_diffs_d_temps, old_b_T[None, :].tile(batch_size, 1))
    st["b_T"][text_ids] = torch.max(new_b_T, dim=0)[0]
    exp_image_diffs = torch.exp(image_diffs_d_temps - st["b_I"][image_ids][:, None]) * mask_neg
    exp_text_diffs = torch.exp(text_diffs_d_temps - st["b_T"][text_ids][None, :]) * mask_neg
    g_I = torch.sum(exp_image_diffs, dim=1, keepdim=True)
    g_T = torch.sum(exp_text_diffs, dim=0, keepdim=True)
    if epoch == 0:
        s_I, s_T = g_I, g_T
    else:
        s_I = (1.0 - gamma) * st["s_I"][image_ids] * torch.exp(
            old_b_I - st["b_I"][image_ids]
        ) + gamma * g_I.squeeze()
        s_T = (1.0 - gamma) * st["s_T"][text_ids] * torch.exp(
            old_b_T - st["b_T"][text_ids]
        ) + gamma * g_T.squeeze()
        s_I, s_T = s_I.reshape(g_I.shape), s_T.reshape(g_T.shape)
    st["s_I"][image_ids] = s_I.squeeze()
    st["s_T"][text_ids] = s_T.squeeze()
    s_I, s_T = s_I.clamp(min=eps), s_T.clamp(min=eps)
    weights_image, weights_text = exp_image_diffs / s_I, exp_text_diffs / s_T
    image_loss = torch.sum(weights_image * image_diffs, dim=1, keepdim=True)
    text_loss = torch.sum(weights_text * text_diffs, dim=0, keepdim=True)
    total_loss = image_loss.mean() + text_loss.mean()
    temp_weight_image = (
        torch.log(s_I / (batch_size - 1))
        + st["b_I"][image_ids][:, None]
        + rho
        - torch.sum(weights_image * image_diffs_d_temps, dim=1, keepdim=True)
    )
    temp_weight_text = (
        torch.log(s_T / (batch_size - 1))
        + st["b_T"][text_ids][None, :]
        + rho
        - torch.sum(weights_text * text_diffs_d_temps, dim=0, keepdim=True)
    )
    st["u_I"][image_ids] = (1.0 - beta_u) * st["u_I"][image_ids] + beta_u * (
        temp_weight_image.squeeze().clamp_(min=-grad_clip, max=grad_clip)
    )
    st["u_T"][text_ids] = (1.0 - beta_u) * st["u_T"][text_ids] + beta_u * (
        temp_weight_text.squeeze().clamp_(min=-grad_clip, max=grad_clip)
    )
    st["tau_I"][image_ids] = (tau_image - eta_init * st["u_I"][image_ids]).clamp_(tau_min, tau_max)
    st["tau_T"][text_ids] = (tau_text - eta_init * st["u_T"][text_ids]).clamp_(tau_min, tau_max)
    return total_loss


def released_sogclr_dro(st, image_features, text_features, image_ids, text_ids):
    gamma, tau_min, tau_max, rho, eps = 0.8, 5e-3, 1.0, 6.0, 1e-10
    eta_cur, beta_u, grad_clip = 0.03, 0.9, 5.0
    sim = torch.einsum("i d, j d -> i j", image_features, text_features)
    diag_sim = torch.diagonal(sim)
    batch_size = sim.shape[0]
    tau_image, tau_text = st["tau_I"][image_ids], st["tau_T"][text_ids]
    image_diffs = sim - diag_sim[:, None]
    text_diffs = sim - diag_sim[None, :]
    image_diffs_d_temps = (image_diffs / tau_image[:, None]).clone().detach_()
    text_diffs_d_temps = (text_diffs / tau_text[None, :]).clone().detach_()
    old_b_I = st["b_I"][image_ids]
    new_b_I = torch.max(image_diffs_d_temps, old_b_I[:, None].tile(1, batch_size))
    st["b_I"][image_ids] = torch.max(new_b_I, dim=1)[0]
    old_b_T = st["b_T"][text_ids]
    new_b_T = torch.max(text_diffs_d_temps, old_b_T[None, :].tile(batch_size, 1))
    st["b_T"][text_ids] = torch.max(new_b_T, dim=0)[0]
    exp_image_diffs = torch.exp(image_diffs_d_temps - st["b_I"][image_ids][:, None])
    exp_text_diffs = torch.exp(text_diffs_d_temps - st["b_T"][text_ids][None, :])
    g_I = torch.sum(exp_image_diffs, dim=1, keepdim=True) / (batch_size - 1)
    g_T = torch.sum(exp_text_diffs, dim=0, keepdim=True) / (batch_size - 1)
    st["s_I"][image_ids] = (1.0 - gamma) * st["s_I"][image_ids] * torch.exp(
        old_b_I - st["b_I"][image_ids]
    ) + gamma * g_I.squeeze()
    st["s_T"][text_ids] = (1.0 - gamma) * st["s_T"][text_ids] * torch.exp(
        old_b_T - st["b_T"][text_ids]
    ) + gamma * g_T.squeeze()
    s_I = st["s_I"][image_ids].reshape(g_I.shape)
    s_T = st["s_T"][text_ids].reshape(g_T.shape)
    weights_image = exp_image_diffs / (s_I + eps)
    weights_text = exp_text_diffs / (s_T + eps)
    image_loss = torch.sum(weights_image * image_diffs, dim=1, keepdim=True) / (batch_size - 1)
    text_loss = torch.sum(weights_text * text_diffs, dim=0, keepdim=True) / (batch_size - 1)
    total_loss = image_loss.mean() + text_loss.mean()
    grad_tau_image = (
        torch.log(s_I)
        + st["b_I"][image_ids][:, None]
        + rho
        - torch.sum(weights_image * image_diffs_d_temps, dim=1, keepdim=True) / (batch_size - 1)
    )
    grad_tau_text = (
        torch.log(s_T)
        + st["b_T"][text_ids][None, :]
        + rho
        - torch.sum(weights_text * text_diffs_d_temps, dim=0, keepdim=True) / (batch_size - 1)
    )
    st["u_I"][image_ids] = (1.0 - beta_u) * st["u_I"][image_ids] + beta_u * (
        grad_tau_image.squeeze().clamp_(min=-grad_clip, max=grad_clip)
    )
    st["u_T"][text_ids] = (1.0 - beta_u) * st["u_T"][text_ids] + beta_u * (
        grad_tau_text.squeeze().clamp_(min=-grad_clip, max=grad_clip)
    )
    st["tau_I"][image_ids] = (tau_image - eta_cur * st["u_I"][image_ids]).clamp_(tau_min, tau_max)
    st["tau_T"][text_ids] = (tau_text - eta_cur * st["u_T"][text_ids]).clamp_(tau_min, tau_max)
    return total_loss


# Epoch 0 visits every id once (steps 0, 1), epoch 1 revisits them in another order, so the
# seed fork's "s = g when epoch == 0" and this project's "s = g on an id's first visit" agree.
SCHEDULE = [(0, [0, 1, 2]), (0, [3, 4, 5]), (1, [4, 0, 2]), (1, [5, 1, 3])]


@pytest.mark.parametrize("preset", ["isogclr_new", "sogclr_dro"])
def test_isogclr_preset_equals_the_released_loss(unit_features, preset: str) -> None:
    tau_init = 2**-7  # exact in the float32 buffer the module starts from
    ours = build_loss(
        "isogclr", num_samples=N, tau_init=tau_init, preset=preset, released_eps=True
    ).double()
    reference = _state(tau_init)
    for step, (epoch, ids) in enumerate(SCHEDULE):
        x = unit_features(B, D, 2 * step).requires_grad_()
        y = unit_features(B, D, 2 * step + 1).requires_grad_()
        loss = ours(x, y, NO_SCALE, ids=torch.tensor(ids))["contrastive_loss"]
        loss.backward()
        rx, ry = (t.detach().clone().requires_grad_() for t in (x, y))
        index = torch.tensor(ids)
        if preset == "isogclr_new":
            expected = released_isogclr_new(reference, rx, ry, index, index, epoch)
        else:
            expected = released_sogclr_dro(reference, rx, ry, index, index)
        expected.backward()
        torch.testing.assert_close(loss, expected, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(x.grad, rx.grad, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(y.grad, ry.grad, rtol=1e-9, atol=1e-12)
        for key, value in reference.items():
            if preset == "isogclr_new" and key.startswith("s_"):
                value = value / (B - 1)  # the seed fork keeps the sum over j, this the mean
            torch.testing.assert_close(
                getattr(ours, key).double(), value, rtol=1e-6, atol=1e-12, msg=f"{step} {key}"
            )


def test_seed_preset_keeps_temperatures_off_the_bounds_at_the_first_step(unit_features) -> None:
    """ρ = 8 > log(B − 1): every τ falls, by at most η·β_u·5 = 2.5e-5 with the seed's η, while
    the mix the recipe used before (η 0.03 from the official code, β_u 0.5 and τ_max 0.05 from
    the seed's) slams every τ from 0.01 into τ_min = 0.005 at the first step."""
    batch = 32
    assert math.log(batch - 1) < 8.0
    x, y = unit_features(batch, 16, 0), unit_features(batch, 16, 1)
    ids = torch.arange(batch)
    seed = build_loss("isogclr", num_samples=batch, tau_init=0.01).double()
    seed(x, y, NO_SCALE, ids=ids)
    for tau in (seed.tau_I, seed.tau_T):
        assert (tau < 0.01).all() and (tau >= 0.01 - 2.5e-5 - 1e-9).all()
    mixed = build_loss(
        "isogclr", num_samples=batch, tau_init=0.01, rho_init=6.0, eta_init=0.03
    ).double()
    mixed(x, y, NO_SCALE, ids=ids)
    assert torch.all(mixed.tau_I == 0.005) and torch.all(mixed.tau_T == 0.005)


def test_unknown_preset_is_reported() -> None:
    with pytest.raises(ValueError, match="preset must be one of"):
        build_loss("isogclr", num_samples=3, preset="isogclr")


def test_default_eps_keeps_the_loss_of_an_anchor_whose_negatives_all_lie_far_below(
    unit_features,
) -> None:
    """Text anchor 0 of this batch has s ≈ 1.5e-32 < 1e-14: the seed fork's clamp zeroes its
    weights (loss ≈ 0), the default floor keeps the softmax-weighted mean of its d_ij."""
    x, y = unit_features(B, D, 0), unit_features(B, D, 1)
    ids = torch.arange(B)
    released = build_loss("isogclr", num_samples=N, released_eps=True).double()
    corrected = build_loss("isogclr", num_samples=N).double()
    sims = x @ y.T
    seen = torch.zeros(B, dtype=torch.bool)
    text_released = released._anchor_stats(sims.T, ids, "T", seen).loss
    text_corrected = corrected._anchor_stats(sims.T, ids, "T", seen).loss
    d = sims[:, 0] - sims[0, 0]
    weights = torch.softmax(d[1:] / 0.01, dim=0)
    assert abs(text_released[0].item()) < 1e-15
    assert text_corrected[0].item() == pytest.approx((weights * d[1:]).sum().item(), rel=1e-6)
