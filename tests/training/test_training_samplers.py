"""The trainer draws its batches from the configured sampler (docs/algorithms.md §2, §6).

HELIP's CSV holds url indices, which skip the pairs that failed to download; the trainer must map
them to dataset positions. SimCLIP's online mode must embed with the model of each epoch.
"""

import numpy as np
import pandas as pd
import pytest
import torch

from clipflow.encode import embed_texts
from clipflow.mining import write_helip_outputs
from clipflow.models import create_model
from clipflow.sampling import epochs as run_epochs
from clipflow.sampling.samplers import HardPairBatches
from clipflow.training import TrainConfig, TrainOutputs, train

BATCH = 16


@pytest.fixture
def recorded(monkeypatch):
    """Every epoch's batches (dataset positions) as the trainer received them."""
    epochs: list[list[list[int]]] = []
    original = run_epochs.EpochBatches.__call__

    def record(self, epoch):
        epochs.append(original(self, epoch))
        return epochs[-1]

    monkeypatch.setattr(run_epochs.EpochBatches, "__call__", record)
    return epochs


def _outputs(tmp_path):
    return TrainOutputs(*(tmp_path / n for n in ("init.pt", "final.pt", "log.csv", "log.jsonl")))


def test_hard_pair_batches_reach_the_trainer(metadata, tiny_download, tmp_path, recorded):
    """Pairs mined over all 120 url indices; the run trains on a subset, so positions != urls."""
    subset = metadata[metadata["index"] % 7 != 3].reset_index(drop=True)
    urls = subset["index"].to_numpy()
    rng = np.random.default_rng(0)
    all_urls = metadata["index"].to_numpy()
    hard = np.stack([rng.permutation(np.delete(all_urls, i))[:30] for i in range(len(all_urls))])
    csv = tmp_path / "tiny_hard_sample.csv"
    write_helip_outputs(hard, all_urls, csv, tmp_path / "tiny_hard_sample_dict.json")
    partners = {int(a): set(map(int, row)) for a, row in zip(all_urls, hard, strict=True)}

    cfg = TrainConfig(
        epochs=2,
        batch_size=BATCH,
        warmup_steps=1,
        sampler="hard_pairs",
        sampler_params={"hard_pairs": str(csv), "partners_topk": 30},
        threads=1,
    )
    train(cfg, subset, tiny_download["shards"], tmp_path / "ckpt", _outputs(tmp_path))

    position = {int(u): p for p, u in enumerate(urls)}
    reference = HardPairBatches(
        len(subset), BATCH, cfg.seed, hard_pairs=csv, partners_topk=30, index_to_position=position
    )
    assert recorded == [reference.batches(0), reference.batches(1)]
    slots = [
        (int(urls[b[i]]), int(urls[b[i + 1]]))
        for e in recorded
        for b in e
        for i in range(0, BATCH, 2)
    ]
    # late in an epoch an anchor's 30 partners may all be taken (then a random row stands in)
    assert np.mean([p in partners[a] for a, p in slots]) > 0.8
    assert len(pd.read_csv(tmp_path / "log.csv")) == 2 * (len(subset) // BATCH)


def test_online_clusters_follow_the_current_model(
    metadata, tiny_download, tmp_path, recorded, monkeypatch
):
    """p = 1: each batch is clusters of nearest texts by the embeddings of the epoch's start,
    which the trainer recomputes with the model being trained."""
    embedded = []
    original = run_epochs.embed_rows

    def record(*args, **kwargs):
        embedded.append(original(*args, **kwargs))
        return embedded[-1]

    monkeypatch.setattr(run_epochs, "embed_rows", record)
    cfg = TrainConfig(
        epochs=2,
        batch_size=BATCH,
        warmup_steps=1,
        lr=5e-3,
        sampler="similarity_clusters",
        sampler_params={"synthesis_prop": 1, "cluster_size": 4, "online_sim": "text"},
        threads=1,
    )
    train(cfg, metadata, tiny_download["shards"], tmp_path / "ckpt", _outputs(tmp_path))

    bundle = create_model(cfg.model, seed=cfg.seed)
    initial = embed_texts(bundle.model, bundle.tokenizer, list(metadata["caption"]))
    assert len(embedded) == 2
    np.testing.assert_allclose(embedded[0], initial, atol=1e-5)
    assert not np.allclose(embedded[1], initial, atol=1e-3), "epoch 2 must use the trained model"
    for embeddings, epoch in zip(embedded, recorded, strict=True):
        for batch in epoch:
            assert len(set(batch)) == BATCH
            for start in range(0, BATCH, 4):
                pivot, members = batch[start], batch[start + 1 : start + 4]
                cos = embeddings @ embeddings[pivot]
                others = cos[(cos < 1 - 1e-6) & (np.arange(len(cos)) != pivot)]
                # drawn from the pivot's 4 nearest rows not yet in the step's batch: at most
                # 12 taken before the last cluster, so every member ranks in the top 15
                ranks = [int((others > cos[m]).sum()) for m in members]
                assert max(ranks) < BATCH - 1, (pivot, members, ranks)
    assert not (tmp_path / "ckpt" / run_epochs.OFFLINE_EMBEDDINGS).exists()


def test_offline_embeddings_are_kept_for_resume(metadata, tiny_download, tmp_path):
    cfg = TrainConfig(
        epochs=1,
        batch_size=BATCH,
        warmup_steps=1,
        sampler="similarity_clusters",
        sampler_params={"synthesis_prop": 0.5, "num_clusters": 2},
        threads=1,
    )
    train(cfg, metadata, tiny_download["shards"], tmp_path / "ckpt", _outputs(tmp_path))
    cached = np.load(tmp_path / "ckpt" / run_epochs.OFFLINE_EMBEDDINGS)
    assert cached.shape[0] == len(metadata)
    np.testing.assert_allclose(np.linalg.norm(cached, axis=1), 1.0, atol=1e-5)


def test_changed_settings_start_over(metadata, tiny_download, tmp_path, caplog):
    cfg = TrainConfig(epochs=1, batch_size=BATCH, warmup_steps=1, threads=1)
    checkpoints = tmp_path / "ckpt"
    train(cfg, metadata, tiny_download["shards"], checkpoints, _outputs(tmp_path))
    first = pd.read_csv(tmp_path / "log.csv")
    # as if stopped after its last epoch, before the final weights (which retire the state)
    (checkpoints / "finished.pt").replace(checkpoints / "latest.pt")
    cfg.lr = 5e-4
    train(cfg, metadata, tiny_download["shards"], checkpoints, _outputs(tmp_path))
    assert (checkpoints / "latest.pt.stale").exists()
    assert "differs in lr:" in caplog.text
    second = pd.read_csv(tmp_path / "log.csv")
    assert len(second) == len(first) and second["lr"].max() < first["lr"].max()
    assert torch.load(checkpoints / "finished.pt", weights_only=True)["config"]["lr"] == 5e-4

    cfg.threads = 2  # how it runs, not what it computes: the stopped run is resumed
    (checkpoints / "finished.pt").replace(checkpoints / "latest.pt")
    (checkpoints / "latest.pt.stale").unlink()
    train(cfg, metadata, tiny_download["shards"], checkpoints, _outputs(tmp_path))
    assert not (checkpoints / "latest.pt.stale").exists()
    assert pd.read_csv(tmp_path / "log.csv").equals(second)
