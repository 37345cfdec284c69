"""Score one checkpoint on one benchmark and write a CLIP_benchmark-style result JSON."""

from __future__ import annotations

import argparse
import logging

from clipflow.evaluation import BENCHMARKS, evaluate_checkpoint, parse_options
from clipflow.io import write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--benchmark", required=True, help=f"one of: {', '.join(BENCHMARKS)}")
    parser.add_argument("--data-root", required=True, help="benchmark data in its official format")
    parser.add_argument("--model", required=True, help="open_clip/clipflow architecture name")
    parser.add_argument("--pretrained", help="checkpoint file; omitted: seeded random init")
    parser.add_argument("--output", required=True, help="result JSON to write")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="benchmark option, repeatable (e.g. split=test, subsets=add_att,swap_obj, amp=true, "
        "num_workers=4, embedding_cache=DIR); values that parse as JSON are JSON",
    )
    parser.add_argument("--dataset-name", help="'dataset' field of the result (default: benchmark)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    try:
        result = evaluate_checkpoint(
            args.benchmark,
            args.data_root,
            args.model,
            pretrained=args.pretrained,
            batch_size=args.batch_size,
            device=args.device,
            dataset_name=args.dataset_name,
            **parse_options(args.option),
        )
    except (ValueError, OSError) as error:
        parser.exit(1, f"evaluate.py: error: {error}\n")
    logging.info("%s on %s: %s", args.model, args.benchmark, result["metrics"])
    write_json(args.output, result)


if __name__ == "__main__":
    main()
