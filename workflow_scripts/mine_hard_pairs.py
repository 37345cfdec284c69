"""Mine HELIP hard pairs from pair embeddings and write them in HELIP's formats (§2)."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from clipflow.io import write_json
from clipflow.logging_setup import setup_logging
from clipflow.mining import (
    MINING_INDEXES,
    load_embeddings,
    mine_hard_pairs,
    mining_report,
    plot_score_histogram,
    write_helip_outputs,
)

log = logging.getLogger("mine_hard_pairs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--embeddings", required=True, help=".npz with image, text, index")
    parser.add_argument("--topk", type=int, default=100, help="hard pairs per anchor (HELIP: 100)")
    parser.add_argument("--index", default="flat", choices=MINING_INDEXES.names())
    parser.add_argument(
        "--index-options",
        type=json.loads,
        default={},
        help="JSON options of the index, e.g. '{\"nprobe\": 32}'",
    )
    parser.add_argument("--chunk-size", type=int, default=1024, help="anchors per search block")
    parser.add_argument("--dataset-name", required=True, help="names the dataset in the report")
    parser.add_argument(
        "--recall-sample",
        type=int,
        default=1000,
        help="anchors searched exactly to measure the index's recall@k",
    )
    parser.add_argument("--seed", type=int, default=0, help="draws the recall sample")
    parser.add_argument("--output-csv", required=True, help="<name>_hard_sample.csv")
    parser.add_argument("--output-dict", required=True, help="<name>_hard_sample_dict.json")
    parser.add_argument("--output-report", required=True, help="JSON: recall, score histogram")
    parser.add_argument("--output-plot", required=True, help="PNG histogram of hard-pair scores")
    args = parser.parse_args()
    setup_logging()

    image, text, index = load_embeddings(args.embeddings)
    log.info("mining top-%d of %d pairs with %s", args.topk, len(index), args.index)
    hard = mine_hard_pairs(
        image, text, args.topk, index=args.index, chunk_size=args.chunk_size, **args.index_options
    )
    write_helip_outputs(hard, index, args.output_csv, args.output_dict)
    report = mining_report(
        image,
        text,
        hard,
        args.index,
        args.dataset_name,
        sample_size=args.recall_sample,
        seed=args.seed,
    )
    write_json(args.output_report, report)
    plot_score_histogram(report, args.output_plot)
    log.info(
        "recall@%d %.4f on %d anchors",
        args.topk,
        report["recall_at_k"],
        report["recall_sample_size"],
    )


if __name__ == "__main__":
    try:
        main()
    except (FileNotFoundError, KeyError, ValueError) as error:  # bad input: one line
        sys.exit(f"{log.name}: error: {error}")
