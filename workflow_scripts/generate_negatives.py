"""Generate hard negative captions for every pair, CE-CLIP style (§4), with a Markdown report."""

from __future__ import annotations

import argparse
import logging
import sys

from clipflow.io import write_text, write_with
from clipflow.logging_setup import setup_logging
from clipflow.negatives import (
    KINDS,
    NEGATIVE_GENERATORS,
    generate_for_table,
    negatives_report,
    read_captions,
)

log = logging.getLogger("generate_negatives")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--pairs",
        required=True,
        help="parquet with columns index, caption[, status: only 'success' rows]",
    )
    parser.add_argument(
        "--kinds",
        nargs="+",
        default=list(KINDS),
        choices=KINDS,
        help="CE-CLIP kinds of negative; one of each first, where possible",
    )
    parser.add_argument(
        "--generators",
        nargs="+",
        default=None,
        choices=NEGATIVE_GENERATORS.names(),
        help="restrict to these generators",
    )
    parser.add_argument("--per-caption", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--output", required=True, help="parquet: caption_index, caption, negative, kind, generator"
    )
    parser.add_argument("--report", required=True, help="Markdown summary")
    args = parser.parse_args()
    setup_logging()

    captions = read_captions(args.pairs)
    negatives = generate_for_table(
        captions,
        kinds=args.kinds,
        per_caption=args.per_caption,
        seed=args.seed,
        generators=args.generators,
    )
    write_with(args.output, lambda tmp: negatives.to_parquet(tmp, index=False))
    write_text(
        args.report,
        negatives_report(negatives, len(captions), args.kinds, args.per_caption, args.seed),
    )
    log.info("wrote %d negatives for %d captions to %s", len(negatives), len(captions), args.output)


if __name__ == "__main__":
    try:
        main()
    except (FileNotFoundError, KeyError, ValueError) as error:  # bad input: one line
        sys.exit(f"{log.name}: error: {error}")
