"""Train one run (resuming from its checkpoint directory when a previous attempt left one)."""

import argparse
import json
import logging
from pathlib import Path

from clipflow.data.metadata import read_metadata
from clipflow.logging_setup import setup_logging
from clipflow.training import TrainConfig, TrainOutputs, train


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
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    args = parser.parse_args()
    setup_logging()
    cfg = TrainConfig(**json.loads(args.run_config), threads=args.threads, device=args.device)
    outputs = TrainOutputs(
        Path(args.model_init), Path(args.model_final), Path(args.log_csv), Path(args.log_jsonl)
    )
    summary = train(cfg, read_metadata(args.metadata), args.shards, args.checkpoint_dir, outputs)
    logging.info("done: %s", summary)


if __name__ == "__main__":
    main()
