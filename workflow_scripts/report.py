"""Merge evaluation results and training logs into summary tables and plots.

Writes TABLES_DIR/summary.csv (fractions), summary.md and summary.tex (percent), and
PLOTS_DIR/loss_curves.png (only with --train-logs), PLOTS_DIR/<benchmark>.png per benchmark and
PLOTS_DIR/comparison.png (every run against every benchmark).
"""

from __future__ import annotations

import argparse
import logging

from clipflow.reporting import build_report


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
    parser.add_argument(
        "--shared-init",
        nargs="*",
        default=[],
        metavar="RUN=OTHER",
        help="RUN starts from the same weights as OTHER, whose init results stand for RUN's",
    )
    args = parser.parse_args()
    shared_init = dict(pair.split("=", 1) for pair in args.shared_init if "=" in pair)
    if len(shared_init) != len(args.shared_init):
        parser.error("--shared-init takes RUN=OTHER pairs")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    try:
        written = build_report(
            args.results, args.train_logs, args.tables_dir, args.plots_dir, shared_init
        )
    except (ValueError, OSError) as error:
        parser.exit(1, f"report.py: error: {error}\n")
    for path in written:
        logging.info("wrote %s", path)


if __name__ == "__main__":
    main()
