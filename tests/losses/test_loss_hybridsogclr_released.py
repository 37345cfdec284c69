"""HybridSogCLR ``spread_term="published"`` against the released loss, re-typed (issue 14, 3).

``ReleasedHybrid`` re-types hahayun3325/HybridSogCLR ``models/losses.py``,
``HybridSogCLR_Loss`` (``forward``'s id clamp, ``compute_similarity_matrix``,
``compute_adaptive_temperature``, ``compute_base_loss``, ``compute_covariance_loss``,
``compute_difficulty_loss``) with the arguments ``models/model_clip.py`` passes for ita_type
hybrid (``use_adaptive_temp=True``, eps 1e-8). Dropped: ``.cuda()``, chunking (same values),
autocast (CUDA only), the feature banks and loss-scale buffers (updated but never read).
"""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from clipflow.losses import build_loss

N, BANK, B, D = 6, 4, 3, 5
TAU, GAMMA, COV_W, DIFF_W = 0.05, 0.8, 0.1, 0.1
NO_SCALE = torch.tensor(1.0)


class ReleasedHybrid:
    def __init__(self) -> None:
        self.memory_bank_size = BANK
        self.s_I = torch.zeros(BANK, dtype=torch.float64)
        self.s_T = torch.zeros(BANK, dtype=torch.float64)
        self.base_temperature, self.gamma, self.eps, self.batch_size = TAU, GAMMA, 1e-8, B

    def compute_covariance_loss(self, image_features, text_features):
        def compute_cov(features):
            mean = features.mean(dim=0, keepdim=True)
            features = features - mean
            batch_size = features.size(0)
            cov_diag = (features.pow(2)).sum(0)
            cov_diag = cov_diag / (batch_size - 1)
            return cov_diag.mean()

        return compute_cov(image_features) + compute_cov(text_features)

    def compute_adaptive_temperature(self, sim_matrix):
        with torch.no_grad():
            sim_std = sim_matrix.std()
            return self.base_temperature * (1 + torch.tanh(sim_std))

    def compute_base_loss(self, sim_matrix, image_ids, text_ids, epoch):
        diag_sim = torch.diagonal(sim_matrix)
        image_diffs = (sim_matrix - diag_sim[:, None]).clamp(min=-1e3, max=1e3)
        text_diffs = (sim_matrix - diag_sim[None, :]).clamp(min=-1e3, max=1e3)
        with torch.no_grad():
            exp_image_diffs = torch.exp(image_diffs).clamp(max=1e3)
            exp_text_diffs = torch.exp(text_diffs).clamp(max=1e3)
            g_I = torch.sum(exp_image_diffs, dim=1) / max(self.batch_size - 1, 1)
            g_T = torch.sum(exp_text_diffs, dim=0) / max(self.batch_size - 1, 1)
            if epoch == 0:
                s_I, s_T = g_I, g_T
            else:
                s_I = (1 - self.gamma) * self.s_I[image_ids] + self.gamma * g_I
                s_T = (1 - self.gamma) * self.s_T[text_ids] + self.gamma * g_T
            self.s_I[image_ids] = s_I
            self.s_T[text_ids] = s_T
        weights_image = exp_image_diffs / (s_I.unsqueeze(1) + self.eps)
        weights_text = exp_text_diffs / (s_T.unsqueeze(0) + self.eps)
        image_loss = torch.mean(weights_image * image_diffs)
        text_loss = torch.mean(weights_text * text_diffs)
        return (image_loss + text_loss) / 2

    def compute_difficulty_loss(self, image_features, text_features, sim_matrix):
        with torch.no_grad():
            image_mean = image_features.mean(0, keepdim=True)
            text_mean = text_features.mean(0, keepdim=True)
            image_weights = F.softmax(torch.norm(image_features - image_mean, dim=1), dim=0)
            text_weights = F.softmax(torch.norm(text_features - text_mean, dim=1), dim=0)
        weighted_sim = sim_matrix * image_weights[:, None] * text_weights[None, :]
        return -torch.mean(weighted_sim)

    def forward(self, image_features, text_features, image_ids, text_ids, epoch):
        image_features = F.normalize(image_features, dim=-1)
        text_features = F.normalize(text_features, dim=-1)
        max_id = self.memory_bank_size - 1
        image_ids = torch.clamp(image_ids, 0, max_id)
        text_ids = torch.clamp(text_ids, 0, max_id)
        sim = torch.matmul(image_features, text_features.T)
        sim_matrix = sim / self.compute_adaptive_temperature(sim)
        base_loss = self.compute_base_loss(sim_matrix, image_ids, text_ids, epoch)
        cov_loss = self.compute_covariance_loss(image_features, text_features)
        diff_loss = self.compute_difficulty_loss(image_features, text_features, sim_matrix)
        return base_loss + COV_W * cov_loss + DIFF_W * diff_loss


# Epoch 0 sees every bank slot first (ids 3, 4, 5 all clamp into slot 3, within one batch),
# epoch 1 revisits them: the released "epoch == 0" and this project's "first visit" agree.
SCHEDULE = [(0, [0, 1, 2]), (0, [3, 4, 5]), (1, [4, 0, 2]), (1, [5, 1, 3])]


def test_published_hybrid_equals_the_released_loss(unit_features) -> None:
    ours = build_loss(
        "hybridsogclr",
        num_samples=N,
        sogclr_gamma=GAMMA,
        tau_init=TAU,
        covariance_weight=COV_W,
        difficulty_weight=DIFF_W,
        spread_term="published",
        published_bank_size=BANK,
    ).double()
    released = ReleasedHybrid()
    for step, (epoch, ids) in enumerate(SCHEDULE):
        x = unit_features(B, D, 2 * step).requires_grad_()
        y = unit_features(B, D, 2 * step + 1).requires_grad_()
        # The released loss normalises its (already unit) inputs again; the model's own
        # normalisation, here F.normalize, gives ours the same Jacobian.
        terms = ours(
            F.normalize(x, dim=-1), F.normalize(y, dim=-1), NO_SCALE, ids=torch.tensor(ids)
        )
        total = sum(terms.values())
        total.backward()
        rx, ry = (t.detach().clone().requires_grad_() for t in (x, y))
        expected = released.forward(rx, ry, torch.tensor(ids), torch.tensor(ids), epoch)
        expected.backward()
        torch.testing.assert_close(total, expected, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(x.grad, rx.grad, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(y.grad, ry.grad, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(ours.s_I[:BANK], released.s_I, msg=f"step {step}")
        torch.testing.assert_close(ours.s_T[:BANK], released.s_T, msg=f"step {step}")
    assert ours.s_I[BANK:].eq(0).all()  # ids past the bank never get their own slot


def test_published_and_vicreg_hybrids_differ_in_their_base_loss(unit_features) -> None:
    x, y, ids = unit_features(B, D, 0), unit_features(B, D, 1), torch.arange(B)
    common = {"num_samples": N, "covariance_weight": 0.0, "difficulty_weight": 0.0}
    published = build_loss("hybridsogclr", spread_term="published", **common).double()
    corrected = build_loss("hybridsogclr", **common).double()
    sogclr = build_loss("sogclr", num_samples=N).double()
    assert corrected(x, y, NO_SCALE, ids=ids) == sogclr(x, y, NO_SCALE, ids=ids)
    published_value = published(x, y, NO_SCALE, ids=ids)["contrastive_loss"].item()
    assert published_value != pytest.approx(
        corrected(x, y, NO_SCALE, ids=ids)["contrastive_loss"].item(), rel=1e-3
    )
