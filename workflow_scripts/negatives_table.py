"""Tabulate generated negatives for the report: the first captions with their negatives, a
column per kind."""

from __future__ import annotations

import argparse

from clipflow.io import read_parquet, write_text
from clipflow.negatives.report import negatives_by_kind


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--negatives", required=True, help="negatives parquet")
    parser.add_argument("--captions", type=int, default=12, help="captions shown, one per row")
    parser.add_argument("--output", required=True, help="CSV table")
    args = parser.parse_args()
    table = negatives_by_kind(read_parquet(args.negatives), args.captions)
    write_text(args.output, table.to_csv(index=False))


if __name__ == "__main__":
    main()
