"""Draw mined hard pairs for the report: a few anchors' images and captions beside those of
their hardest pairs, read from the shards."""

from __future__ import annotations

import argparse

from clipflow.data.metadata import read_metadata
from clipflow.data.shards import ShardImages
from clipflow.mining import read_hard_sample_csv
from clipflow.mining.report import plot_hard_pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hard-pairs", required=True, help="<name>_hard_sample.csv")
    parser.add_argument("--pairs", required=True, help="metadata parquet (index, caption, shard)")
    parser.add_argument("--shards", required=True, help="folder of the webdataset shards")
    parser.add_argument("--anchors", type=int, default=3, help="anchors shown, one per row")
    parser.add_argument("--shown", type=int, default=5, help="hard pairs shown per anchor")
    parser.add_argument("--output", required=True, help="PNG image grid")
    args = parser.parse_args()
    pairs = read_metadata(args.pairs)
    images = ShardImages(args.shards, list(pairs["shard"]))
    hard = read_hard_sample_csv(args.hard_pairs)
    plot_hard_pairs(hard, pairs, images, args.output, args.anchors, args.shown)


if __name__ == "__main__":
    main()
