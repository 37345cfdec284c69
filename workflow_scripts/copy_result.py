"""Copy a result JSON to another benchmark's name (its `dataset` field set to that name).

Benchmarks with the same kind, data and options are evaluated once per checkpoint
(`same_evaluation` in rules/common.smk); each of the others gets this copy.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from clipflow.io import write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--input", required=True, help="result JSON of the evaluated benchmark")
    parser.add_argument("--output", required=True, help="result JSON to write")
    parser.add_argument("--dataset-name", required=True, help="'dataset' field of the copy")
    args = parser.parse_args()
    record = json.loads(Path(args.input).read_text(encoding="utf-8"))
    write_json(args.output, {**record, "dataset": args.dataset_name})


if __name__ == "__main__":
    main()
