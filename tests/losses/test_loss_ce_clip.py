"""CE-CLIP (docs/algorithms.md §4): i2t with negatives, IMC and CMR against loop-by-loop values."""

from __future__ import annotations

import math

import pytest
import torch

from clipflow.losses import build_loss

B, K, D = 3, 2, 4
SCALE = 5.0
# Row 0 has both negatives, row 1 only its first, row 2 none (captions with fewer negatives).
MASK = torch.tensor([[True, True], [True, False], [False, False]])


def _inputs(unit_features):
    x, y = unit_features(B, D, 0), unit_features(B, D, 1)
    negatives = unit_features(B * K, D, 2).reshape(B, K, D)
    return x, y, negatives


def _dot(a: torch.Tensor, b: torch.Tensor) -> float:
    return SCALE * float(a @ b)


def _nll(logits: list[float], target: int) -> float:
    return math.log(sum(math.exp(v) for v in logits)) - logits[target]


def _valid() -> list[tuple[int, int]]:
    return [(i, k) for i in range(B) for k in range(K) if MASK[i, k]]


def test_i2t_with_negatives_imc_and_cmr_match_loops(unit_features) -> None:
    x, y, negatives = _inputs(unit_features)
    loss_fn = build_loss("ce_clip", num_negatives=K, imc_weight=0.3, cmr_weight=0.2)
    terms = loss_fn(x, y, torch.tensor(SCALE), negative_text_features=negatives, negative_mask=MASK)

    # i2t over the 3 captions + the batch's 3 valid negatives; t2i over the 3 images.
    candidates = [y[j] for j in range(B)] + [negatives[i, k] for i, k in _valid()]
    i2t = sum(_nll([_dot(x[i], c) for c in candidates], i) for i in range(B)) / B
    t2i = sum(_nll([_dot(y[j], x[i]) for i in range(B)], j) for j in range(B)) / B
    assert terms["contrastive_loss"].item() == pytest.approx(0.5 * (i2t + t2i), rel=1e-10)

    # IMC over anchors 0 and 1 (anchor 2 has no negative).
    imc = []
    for i in (0, 1):
        positive = math.exp(_dot(x[i], y[i]))
        intra = sum(math.exp(_dot(y[i], negatives[i, k])) for k in range(K) if MASK[i, k])
        imc.append(-math.log(positive / (positive + intra)))
    assert terms["imc_loss"].item() == pytest.approx(0.3 * sum(imc) / 2, rel=1e-10)

    # CMR with the initial thresholds θ = 0, mean over the 3 valid (i, k).
    cmr = [max(0.0, _dot(x[i], negatives[i, k]) - _dot(x[i], y[i])) for i, k in _valid()]
    assert terms["cmr_loss"].item() == pytest.approx(0.2 * sum(cmr) / 3, rel=1e-10)


def test_thresholds_follow_batch_means_and_carry_to_next_step(unit_features) -> None:
    x, y, negatives = _inputs(unit_features)
    loss_fn = build_loss("ce_clip", num_negatives=K, imc_weight=0.0, cmr_weight=1.0).double()
    scale = torch.tensor(SCALE)
    loss_fn(x, y, scale, negative_text_features=negatives, negative_mask=MASK)

    # θ_k = mean_i s(I_i, T_i) − mean over the valid i of s(I_i, T_ik⁻), clamped to [0, 10].
    mean_positive = sum(_dot(x[i], y[i]) for i in range(B)) / B
    slot0 = (_dot(x[0], negatives[0, 0]) + _dot(x[1], negatives[1, 0])) / 2
    slot1 = _dot(x[0], negatives[0, 1])
    theta = [min(10.0, max(0.0, mean_positive - slot)) for slot in (slot0, slot1)]
    assert loss_fn.thresholds.tolist() == pytest.approx(theta, rel=1e-10)

    # The next step's CMR uses the carried θ.
    x2, y2 = unit_features(B, D, 5), unit_features(B, D, 6)
    terms = loss_fn(x2, y2, scale, negative_text_features=negatives, negative_mask=MASK)
    cmr = [
        max(0.0, theta[k] + SCALE * float(x2[i] @ negatives[i, k]) - SCALE * float(x2[i] @ y2[i]))
        for i, k in _valid()
    ]
    assert terms["cmr_loss"].item() == pytest.approx(sum(cmr) / 3, rel=1e-10)
    assert "thresholds" in loss_fn.state_dict()


def test_thresholds_are_clamped_to_0_10_and_skip_empty_slots(unit_features) -> None:
    y = unit_features(B, D, 1)
    loss_fn = build_loss("ce_clip", num_negatives=K)
    negatives = torch.stack([-y, y], dim=1)  # slot 0: opposite caption, slot 1: the caption itself
    mask = torch.tensor([[True, False]] * B)
    loss_fn(y, y, torch.tensor(100.0), negative_text_features=negatives, negative_mask=mask)
    # slot 0: 100·(1 − (−1)) = 200 → 10; slot 1 had no valid negative → stays 0.
    assert loss_fn.thresholds.tolist() == [10.0, 0.0]

    mask = torch.ones(B, K, dtype=torch.bool)
    negatives = torch.stack([y, y], dim=1)
    loss_fn(-y, y, torch.tensor(100.0), negative_text_features=negatives, negative_mask=mask)
    assert loss_fn.thresholds.tolist() == [0.0, 0.0]  # negatives as close as positives → 0

    for seed in range(5):
        x, y = unit_features(B, D, 10 * seed), unit_features(B, D, 10 * seed + 1)
        negatives = unit_features(B * K, D, 10 * seed + 2).reshape(B, K, D)
        loss_fn(x, y, torch.tensor(30.0), negative_text_features=negatives)
        assert ((loss_fn.thresholds >= 0) & (loss_fn.thresholds <= 10)).all()


def test_eval_mode_leaves_thresholds_alone(unit_features) -> None:
    x, y, negatives = _inputs(unit_features)
    loss_fn = build_loss("ce_clip", num_negatives=K).eval()
    loss_fn(x, y, torch.tensor(SCALE), negative_text_features=negatives)
    assert loss_fn.thresholds.tolist() == [0.0, 0.0]


def test_wrong_number_of_negative_slots_is_reported(unit_features) -> None:
    x, y, negatives = _inputs(unit_features)
    with pytest.raises(ValueError, match="K=4"):
        build_loss("ce_clip")(x, y, torch.tensor(SCALE), negative_text_features=negatives)


def _imc_term(unit_features, form: str):
    x, y, negatives = _inputs(unit_features)
    x, y, negatives = (t.clone().requires_grad_() for t in (x, y, negatives))
    loss_fn = build_loss("ce_clip", num_negatives=K, imc_weight=1.0, cmr_weight=0.0, imc_form=form)
    terms = loss_fn(x, y, torch.tensor(SCALE), negative_text_features=negatives, negative_mask=MASK)
    terms["imc_loss"].backward()
    return terms["imc_loss"], (x, y, negatives)


def test_imc_released_form_equals_clip_daloss_get_imc_loss(unit_features) -> None:
    """``imc_form="released"`` against CE-CLIP's released IMC, re-typed from
    lezhang7/Enhance-FineGrained ``src/open_clip/loss.py``, ``Clip_DALoss.forward`` (single
    process: ``text_embedding_matrix = logit_scale * gt_text_features @ da_text_features.T``,
    negatives caption-major as its CMR reshape implies) and ``Clip_DALoss.get_imc_loss``
    (``F.cross_entropy(matrix, zeros)``): value and gradients, no negative mask."""
    loss, (x, y, negatives) = _imc_term(unit_features, "released")
    ref_y = y.detach().clone().requires_grad_()
    ref_negatives = negatives.detach().clone().requires_grad_()
    da_text_features = ref_negatives.reshape(B * K, D)
    text_embedding_matrix = SCALE * ref_y @ da_text_features.T
    labels = torch.zeros(text_embedding_matrix.shape[0], dtype=torch.long)
    expected = torch.nn.functional.cross_entropy(text_embedding_matrix, labels)
    expected.backward()
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(y.grad, ref_y.grad)
    torch.testing.assert_close(negatives.grad, ref_negatives.grad)
    assert x.grad is None or torch.count_nonzero(x.grad) == 0


def test_imc_batch_form_puts_every_valid_batch_negative_in_the_denominator(
    unit_features,
) -> None:
    """``imc_form="batch"``: the paper's positive over the released denominator (loop values)."""
    loss, _ = _imc_term(unit_features, "batch")
    x, y, negatives = _inputs(unit_features)
    imc = []
    for i in range(B):  # every anchor has the batch's 3 valid negatives
        positive = math.exp(_dot(x[i], y[i]))
        intra = sum(math.exp(_dot(y[i], negatives[j, k])) for j, k in _valid())
        imc.append(-math.log(positive / (positive + intra)))
    assert loss.item() == pytest.approx(sum(imc) / B, rel=1e-10)
