"""StreamingPairs: shards split by rank and worker, resampling, epoch length, the same samples."""

from __future__ import annotations

import io
import tarfile
from collections import Counter, defaultdict

import pandas as pd
import pytest
import torch

from clipflow.data.metadata import build_metadata
from clipflow.data.shards import PairsDataset
from clipflow.data.streaming import StreamingPairs, batches_per_epoch
from clipflow.models import create_model
from clipflow.training.config import TrainConfig, check_data_loader

SHARDS, PER_SHARD = 8, 15  # the tiny download's 120 pairs, re-cut into equal shards


@pytest.fixture(scope="module")
def bundle():
    return create_model("clipflow-tiny-vit", seed=0)


@pytest.fixture(scope="module")
def even_shards(tiny_download, tmp_path_factory):
    """The tiny download in 8 shards of 15 pairs, and a table of 14 of each shard's pairs (the
    last of each stands for a pair the metadata does not hold, e.g. a repeated url)."""
    members: dict[str, dict[str, bytes]] = defaultdict(dict)
    for path in sorted(tiny_download["shards"].glob("*.tar")):
        with tarfile.open(path) as tar:
            for member in tar.getmembers():
                key, suffix = member.name.split(".", 1)
                members[key][suffix] = tar.extractfile(member).read()
    keys = sorted(key for key, files in members.items() if "jpg" in files)
    assert len(keys) == SHARDS * PER_SHARD
    root = tmp_path_factory.mktemp("even_shards")
    for shard in range(SHARDS):
        with tarfile.open(root / f"{shard:05d}.tar", "w") as tar:
            for key in keys[shard * PER_SHARD : (shard + 1) * PER_SHARD]:
                for suffix, data in members[key].items():
                    info = tarfile.TarInfo(f"{key}.{suffix}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    full = build_metadata(root)
    left_out = full.groupby("shard").tail(1)
    metadata = full.drop(left_out.index).reset_index(drop=True)
    return metadata, root, set(left_out["index"])


def _stream(bundle, metadata, root, **options) -> StreamingPairs:
    return StreamingPairs(
        metadata, root, bundle.preprocess_train, bundle.tokenizer, seed=1, **options
    )


def _epoch(stream: StreamingPairs, epoch: int, num_workers: int) -> list[int]:
    """The url indices of this rank's batches of ``epoch``, in order."""
    batches = stream.loader(epoch, stream.batches_per_epoch, num_workers)
    return [int(i) for batch in batches for i in batch["index"]]


def test_one_epoch_of_two_ranks_and_two_workers_reads_every_pair_once(bundle, even_shards):
    metadata, root, left_out = even_shards
    ranks = [
        _stream(bundle, metadata, root, batch_size=7, rank=rank, world_size=2) for rank in (0, 1)
    ]
    # 112 pairs // (7 x 2 ranks) = 8 batches per rank; each of the 4 workers reads 2 shards of
    # 14 pairs = 4 batches, and DataLoader takes the two workers' batches in turn
    assert [stream.batches_per_epoch for stream in ranks] == [8, 8]
    seen = [_epoch(stream, epoch=0, num_workers=2) for stream in ranks]
    assert [len(s) for s in seen] == [56, 56]
    assert not set(seen[0]) & set(seen[1])
    assert sorted(seen[0] + seen[1]) == sorted(metadata["index"])
    assert not left_out & set(seen[0] + seen[1])
    shares = [
        {url for worker in (0, 1) for url in stream.shard_share(0, worker, 2)} for stream in ranks
    ]
    assert len(shares[0]) == len(shares[1]) == 4 and not shares[0] & shares[1]
    # a worker's batches come from its own two shards
    shard_of = dict(zip(metadata["index"], metadata["shard"], strict=True))
    first_batch_shards = {shard_of[i] for i in seen[0][:7]}
    share = {url.rsplit("/", 1)[1] for url in ranks[0].shard_share(0, 0, 2)}
    assert first_batch_shards <= share


def test_the_stream_is_a_function_of_seed_and_epoch(bundle, even_shards):
    metadata, root, _ = even_shards
    stream = _stream(bundle, metadata, root, batch_size=7, rank=1, world_size=2)
    epoch_0 = _epoch(stream, epoch=0, num_workers=2)
    assert _epoch(stream, epoch=0, num_workers=2) == epoch_0
    epoch_1 = _epoch(stream, epoch=1, num_workers=2)
    assert epoch_1 != epoch_0 and len(set(epoch_1)) == 56


def test_a_short_share_is_read_again_before_the_epoch_ends(bundle, even_shards):
    metadata, root, _ = even_shards
    # one rank, no workers: 112 pairs, an epoch of 150 samples = 10 batches of 15
    stream = _stream(bundle, metadata, root, batch_size=15, num_samples=150)
    seen = _epoch(stream, epoch=0, num_workers=0)
    assert len(seen) == 150
    # the first pass yields every pair once before any comes again
    assert sorted(seen[:112]) == sorted(metadata["index"])
    assert Counter(seen[112:]).most_common(1)[0][1] == 1


def test_resampled_epochs_hold_train_num_samples_with_repeats(bundle, even_shards):
    metadata, root, _ = even_shards
    few = metadata[metadata["shard"].isin(["00000.tar", "00001.tar", "00002.tar"])]
    ranks = [
        _stream(
            bundle,
            few,
            root,
            batch_size=5,
            num_samples=100,
            rank=rank,
            world_size=2,
            resampled=True,
        )
        for rank in (0, 1)
    ]
    # 3 shards for 2 ranks x 2 workers: only resampling can serve that
    seen = [_epoch(stream, epoch=0, num_workers=2) for stream in ranks]
    assert [len(s) for s in seen] == [50, 50]  # 100 // (5 x 2) = 10 batches of 5 per rank
    assert set(seen[0] + seen[1]) <= set(few["index"])
    assert max(Counter(seen[0] + seen[1]).values()) > 1  # 100 draws from 42 pairs
    assert seen[0] != seen[1]
    with pytest.raises(ValueError, match="3 shard.s. cannot give each of 2 rank.s. x 2 worker"):
        _stream(bundle, few, root, batch_size=5, rank=0, world_size=2).loader(0, 1, 2)


def test_samples_are_those_of_the_indexed_dataset(bundle, even_shards):
    metadata, root, _ = even_shards
    negatives = pd.DataFrame(
        {"caption_index": metadata["index"], "negative": "not " + metadata["caption"]}
    )
    options = {"negatives": negatives, "num_negatives": 2}
    stream = _stream(bundle, metadata, root, batch_size=1, **options)
    indexed = PairsDataset(metadata, root, bundle.preprocess_train, bundle.tokenizer, **options)
    torch.manual_seed(0)
    streamed = next(iter(stream))
    position = metadata.index[metadata["index"] == int(streamed["index"])][0]
    torch.manual_seed(0)
    expected = indexed[position]
    assert (
        set(streamed)
        == set(expected)
        == {
            "image",
            "text",
            "index",
            "negative_texts",
            "negative_mask",
        }
    )
    for key, value in expected.items():
        assert torch.equal(streamed[key], value), key
    assert streamed["negative_mask"].tolist() == [True, False]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"data_loader": "streaming", "sampler": "hard_pairs"},
            "data_loader: streaming reads pairs in shard order and serves sampler: random only, "
            "not 'hard_pairs'; use data_loader: indexed",
        ),
        ({"data_loader": "webdataset"}, "data_loader: 'webdataset' is not one of indexed, stream"),
        (
            {"train_num_samples": 1000},
            "train_num_samples applies to data_loader: streaming only, this run's is indexed",
        ),
        ({"dataset_resampled": True}, "dataset_resampled applies to data_loader: streaming only"),
    ],
)
def test_bad_settings_fail_in_one_line(settings, message):
    with pytest.raises(ValueError) as error:
        check_data_loader(TrainConfig(**settings))
    assert str(error.value).startswith(message) and "\n" not in str(error.value)
    check_data_loader(TrainConfig(data_loader="streaming", train_num_samples=1000))


def test_an_epoch_must_fill_a_batch_on_every_rank(bundle, even_shards, tmp_path):
    assert batches_per_epoch(112, 7, 2) == 8
    with pytest.raises(ValueError, match="train_num_samples: 13 samples cannot fill a batch of 7"):
        batches_per_epoch(13, 7, 2)
    metadata, _, _ = even_shards
    with pytest.raises(FileNotFoundError, match="no shard 00000.tar"):
        _stream(bundle, metadata, tmp_path, batch_size=7)
