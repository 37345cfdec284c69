"""The loss contract: a loss with needs no registered loss has (ids and negatives together)
trains through the real trainer by declaring them in ``LossNeeds``, touching only ``losses/``."""

import pandas as pd
import pytest
import torch

from clipflow.losses import LOSSES, ClipflowLoss, LossNeeds
from clipflow.losses.base import clip_loss
from clipflow.negatives import generate_for_table
from clipflow.training import TrainConfig, TrainOutputs, train

K, MARGIN = 3, 0.2


class NegativesWithIdsLoss(ClipflowLoss):
    """CLIP plus a hinge between each pair and its caption's generated negatives; it keeps the
    extras it was given so the test can look at them."""

    received: list[dict[str, torch.Tensor]] = []

    def __init__(self, num_negatives: int = K) -> None:
        super().__init__()
        self.needs = LossNeeds(ids=True, negatives=num_negatives)

    def compute(
        self, image_features, text_features, logit_scale, ids, negative_text_features, negative_mask
    ):
        self.received.append(
            {"ids": ids, "negatives": negative_text_features.detach(), "mask": negative_mask}
        )
        positive = (image_features * text_features).sum(-1, keepdim=True)
        negative = torch.einsum("bd,bkd->bk", image_features, negative_text_features)
        hinge = (negative - positive + MARGIN).clamp(min=0)[negative_mask].mean()
        return {
            "contrastive_loss": clip_loss(image_features, text_features, logit_scale),
            "negative_margin_loss": hinge,
        }


@pytest.fixture
def toy_loss(monkeypatch):
    monkeypatch.setitem(LOSSES._entries, "negatives_with_ids", NegativesWithIdsLoss)
    monkeypatch.setattr(NegativesWithIdsLoss, "received", [])
    return NegativesWithIdsLoss


def test_a_new_loss_with_ids_and_negatives_trains_one_step(
    toy_loss, metadata, tiny_download, tmp_path
):
    pairs = metadata.head(16)  # one batch: one step
    negatives = generate_for_table(pairs["caption"], caption_index=pairs["index"], seed=0)
    cfg = TrainConfig(epochs=1, batch_size=16, warmup_steps=0, loss="negatives_with_ids", threads=1)
    outputs = TrainOutputs(*(tmp_path / f for f in ("init.pt", "final.pt", "log.csv", "log.jsonl")))
    train(cfg, pairs, tiny_download["shards"], tmp_path / "checkpoints", outputs, negatives)

    (extras,) = toy_loss.received
    assert sorted(extras["ids"].tolist()) == sorted(pairs["index"].tolist())
    assert extras["negatives"].shape[:2] == (16, K) and extras["mask"].dtype == torch.bool
    # a slot the mask leaves out is zeros; a filled one is a unit embedding of a negative caption
    norms = extras["negatives"].norm(dim=-1)
    assert torch.allclose(norms[extras["mask"]], torch.ones(int(extras["mask"].sum())), atol=1e-5)
    assert torch.all(norms[~extras["mask"]] == 0) and extras["mask"].any()
    log = pd.read_csv(outputs.log_csv)
    assert len(log) == 1 and log["negative_margin_loss"].gt(0).all()
    assert log["loss"].iloc[0] == pytest.approx(
        log["contrastive_loss"].iloc[0] + log["negative_margin_loss"].iloc[0], rel=1e-5
    )


def test_the_trainer_asks_for_the_negatives_the_loss_needs(
    toy_loss, metadata, tiny_download, tmp_path
):
    cfg = TrainConfig(epochs=1, batch_size=16, loss="negatives_with_ids", threads=1)
    outputs = TrainOutputs(*(tmp_path / f for f in ("init.pt", "final.pt", "log.csv", "log.jsonl")))
    with pytest.raises(ValueError, match="loss negatives_with_ids needs negatives"):
        train(cfg, metadata.head(16), tiny_download["shards"], tmp_path / "ckpt", outputs)
