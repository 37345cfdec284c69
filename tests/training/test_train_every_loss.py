"""Every registered loss trains the tiny model through the real loop: finite terms, weights move."""

import pandas as pd
import pytest
import torch

from clipflow.losses import LOSSES
from clipflow.models import load_checkpoint
from clipflow.negatives import generate_for_table
from clipflow.training import TrainConfig, TrainOutputs, train

SMALL_HEADS = {"hidden_dim": 32, "proj_dim": 16}
LOSS_PARAMS = {
    "cl2l": {"hidden_dim": 32},
    "siamlip": SMALL_HEADS,
    "byolip": SMALL_HEADS,
    "barlip": SMALL_HEADS,
    "swalip": {"hidden_dim": 32},
    "swalip_prototypes": {**SMALL_HEADS, "num_prototypes": 8},
}


@pytest.fixture(scope="module")
def data(metadata):
    negatives = generate_for_table(metadata["caption"], caption_index=metadata["index"], seed=0)
    return metadata, negatives


@pytest.mark.parametrize("loss", LOSSES.names())
def test_loss_trains_through_the_loop(loss, data, tiny_download, tmp_path):
    metadata, negatives = data
    cfg = TrainConfig(
        epochs=1,
        batch_size=16,
        warmup_steps=1,
        lr=1e-3,
        loss=loss,
        loss_params=LOSS_PARAMS.get(loss, {}),
        threads=1,
    )
    outputs = TrainOutputs(
        *(tmp_path / name for name in ("init.pt", "final.pt", "log.csv", "log.jsonl"))
    )
    train(cfg, metadata, tiny_download["shards"], tmp_path / "checkpoints", outputs, negatives)
    log = pd.read_csv(outputs.log_csv)
    assert len(log) == 120 // 16 and log["loss"].notna().all()
    assert torch.isfinite(torch.tensor(log["loss"].to_numpy())).all()
    init = load_checkpoint(outputs.model_init)["state_dict"]
    final = load_checkpoint(outputs.model_final)["state_dict"]
    assert any(not torch.equal(init[k], final[k]) for k in init)
