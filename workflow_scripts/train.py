"""Train one run (resuming from its checkpoint directory when a previous attempt left one).

Run as one process, as ranks under ``python -m clipflow.launch --tasks N`` (srun or
torchrun), or with ``--launcher submitit``, which submits the run to SLURM and waits for it.
"""

import argparse
import json
import logging
import sys
from pathlib import Path

from clipflow.logging_setup import setup_logging
from clipflow.training import TrainConfig, TrainingPreempted, TrainOutputs
from clipflow.training.preemption import requeue_slurm_job
from clipflow.training.request import TrainingRequest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
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
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument(
        "--launcher",
        choices=["direct", "submitit"],
        default="direct",
        help="direct: train in this process (or rank); submitit: submit to SLURM and wait",
    )
    parser.add_argument(
        "--submitit-options", default="{}", help="JSON of SubmititOptions (--launcher submitit)"
    )
    args = parser.parse_args()
    setup_logging()
    settings = json.loads(args.run_config)
    settings.pop("negatives", None)  # a workflow switch: the table itself comes as --negatives
    cfg = TrainConfig(**settings, threads=args.threads, device=args.device)
    if args.hard_pairs:
        cfg.sampler_params = {**cfg.sampler_params, "hard_pairs": args.hard_pairs}
    request = TrainingRequest(
        cfg,
        Path(args.metadata),
        Path(args.shards),
        Path(args.checkpoint_dir),
        TrainOutputs(
            Path(args.model_init), Path(args.model_final), Path(args.log_csv), Path(args.log_jsonl)
        ),
        Path(args.negatives) if args.negatives else None,
    )
    if args.launcher == "submitit":
        from clipflow.training.submitit_launch import SubmititOptions, submit_and_wait

        summary = submit_and_wait(request, SubmititOptions(**json.loads(args.submitit_options)))
    else:
        try:
            summary = request.run(on_preempted=requeue_slurm_job)
        except TrainingPreempted as stopped:
            logging.warning("%s", stopped)
            sys.exit(stopped.exit_code)
    logging.info("done: %s", summary)


if __name__ == "__main__":
    main()
