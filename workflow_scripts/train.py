"""Train one run (resuming from its checkpoint directory when a previous attempt left one)."""

import argparse
import json
import logging
import sys
from pathlib import Path

from clipflow.data.metadata import read_metadata
from clipflow.io import read_parquet
from clipflow.logging_setup import setup_logging
from clipflow.training import TrainConfig, TrainingPreempted, TrainOutputs, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--metadata", required=True, help="pairs parquet (metadata stage)")
    parser.add_argument("--shards", required=True, help="folder of webdataset shards")
    parser.add_argument("--run-config", required=True, help="the run's settings as JSON")
    parser.add_argument("--checkpoint-dir", required=True, help="resumable state (not an output)")
    parser.add_argument("--model-init", required=True)
    parser.add_argument("--model-final", required=True)
    parser.add_argument("--log-csv", required=True)
    parser.add_argument("--log-jsonl", required=True)
    parser.add_argument("--negatives", help="negatives parquet, for losses that need them")
    parser.add_argument("--hard-pairs", help="HELIP hard-pair csv, for the hard_pairs sampler")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    args = parser.parse_args()
    setup_logging()
    settings = json.loads(args.run_config)
    settings.pop("negatives", None)  # a workflow switch: the table itself comes as --negatives
    cfg = TrainConfig(**settings, threads=args.threads, device=args.device)
    if args.hard_pairs:
        cfg.sampler_params = {**cfg.sampler_params, "hard_pairs": args.hard_pairs}
    negatives = read_parquet(args.negatives) if args.negatives else None
    outputs = TrainOutputs(
        Path(args.model_init), Path(args.model_final), Path(args.log_csv), Path(args.log_jsonl)
    )
    try:
        summary = train(
            cfg, read_metadata(args.metadata), args.shards, args.checkpoint_dir, outputs, negatives
        )
    except TrainingPreempted as stopped:
        logging.warning("%s", stopped)
        sys.exit(stopped.exit_code)
    logging.info("done: %s", summary)


if __name__ == "__main__":
    main()
