"""Merge evaluation results and training logs into summary tables and plots.

Writes TABLES_DIR/summary.csv (fractions), summary.md and summary.tex (percent), and
PLOTS_DIR/loss_curves.png (only with --train-logs), PLOTS_DIR/<benchmark>.png per benchmark and
PLOTS_DIR/comparison.png (every run against every benchmark); with --paper-table, also
TABLES_DIR/paper.{csv,md,tex}: a paper's table with measured and published columns; with --claims,
TABLES_DIR/claims.{csv,md}: each claim's paired difference over seeds and its verdict.
"""

from __future__ import annotations

import argparse
import json
import logging

from clipflow.reporting import build_report
from clipflow.reporting.published import PUBLISHED_CSV


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--results",
        nargs="+",
        required=True,
        metavar="JSON",
        help="result files at <experiment>/eval/<run>/<checkpoint>/<benchmark>.json",
    )
    parser.add_argument(
        "--train-logs",
        nargs="*",
        default=[],
        metavar="CSV",
        help="logs at <experiment>/runs/<run>/train_log.csv (columns epoch, step, loss, ...)",
    )
    parser.add_argument("--tables-dir", required=True, help="directory for summary.{csv,md,tex}")
    parser.add_argument("--plots-dir", required=True, help="directory for the PNG figures")
    pairs = {
        "--shared-init": ("RUN=OTHER", "RUN starts from OTHER's weights, whose init results count"),
        "--reference": ("BENCHMARK=REF", "BENCHMARK stands for REF of the published numbers"),
        "--published-as": ("RUN=MODEL", "RUN reproduces the published MODEL: add differences"),
    }
    for flag, (metavar, text) in pairs.items():
        parser.add_argument(flag, nargs="*", default=[], metavar=metavar, help=text)
    parser.add_argument("--published-csv", default=str(PUBLISHED_CSV), help="reference numbers")
    parser.add_argument(
        "--paper-table",
        type=json.loads,
        metavar="JSON",
        help="the config's report.paper_table (title, rows, columns) as JSON",
    )
    parser.add_argument(
        "--claims",
        type=json.loads,
        default=[],
        metavar="JSON",
        help="the config's claims (method, control, benchmark, metric, direction) as JSON",
    )
    args = parser.parse_args()
    mappings = {}
    for flag, (metavar, _) in pairs.items():
        values = getattr(args, flag.lstrip("-").replace("-", "_"))
        mappings[flag] = dict(value.split("=", 1) for value in values if "=" in value)
        if len(mappings[flag]) != len(values):
            parser.error(f"{flag} takes {metavar} pairs")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    try:
        written = build_report(
            args.results,
            args.train_logs,
            args.tables_dir,
            args.plots_dir,
            shared_init=mappings["--shared-init"],
            references=mappings["--reference"],
            published_as=mappings["--published-as"],
            published_csv=args.published_csv,
            paper=args.paper_table,
            claims=args.claims,
        )
    except (ValueError, OSError) as error:
        parser.exit(1, f"report.py: error: {error}\n")
    for path in written:
        logging.info("wrote %s", path)


if __name__ == "__main__":
    main()
