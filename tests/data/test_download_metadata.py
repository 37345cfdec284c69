"""img2dataset really downloads the served synthetic set; failures are counted, never fatal."""

import json

from clipflow.data.metadata import METADATA_COLUMNS, build_metadata
from clipflow.data.shards import ShardImages
from clipflow.helip_formats import url_index
from clipflow.sampling.samplers import RandomBatches


def test_stats_report_broken_urls_and_corrupt_image(tiny_download):
    stats = tiny_download["stats"]
    assert stats["count"] == 123 and stats["successes"] == 120 and stats["failed"] == 3
    reasons = stats["failure_reasons"]
    assert sum(n for r, n in reasons.items() if "404" in r) == 2
    assert sum(n for r, n in reasons.items() if "decod" in r.lower()) == 1
    failed_urls = {f["url"].rsplit("/", 1)[1] for f in stats["failures"]}
    assert failed_urls == {"missing_0.png", "missing_1.png", "corrupt_0.png"}


def test_metadata_holds_only_successful_pairs(tiny_download):
    metadata = build_metadata(tiny_download["shards"])
    assert list(metadata.columns) == METADATA_COLUMNS
    assert len(metadata) == 120 and (metadata["status"] == "success").all()
    assert list(metadata["index"]) == list(range(120))
    manifest = tiny_download["manifest"]
    good = manifest[manifest.expected == "ok"]
    assert set(metadata["caption"]) <= set(good["caption"])
    assert not metadata["url"].str.contains("missing|corrupt").any()
    index = url_index(metadata)
    assert json.loads(json.dumps(index)) == dict(zip(metadata["url"], range(120), strict=True))
    images = ShardImages(tiny_download["shards"], list(metadata["shard"]))
    row = metadata.iloc[7]
    assert images[row["shard"], row["key"]].size == (64, 64)


def test_random_batches_partition_each_epoch_across_ranks():
    ranks = [RandomBatches(100, 8, seed=0, rank=r, world_size=2) for r in range(2)]
    epoch = [set(i for batch in sampler.batches(3) for i in batch) for sampler in ranks]
    assert not epoch[0] & epoch[1] and len(epoch[0] | epoch[1]) == 96
    assert ranks[0].batches(3) == ranks[0].batches(3) != ranks[0].batches(4)
