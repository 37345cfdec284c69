"""Generate hard negative captions for every pair, CE-CLIP style (§4), with a Markdown report.

``--generator-set synthetic`` (default) runs the rules for the synthetic grammar; ``english``
runs the spaCy + WordNet rules for real captions, in ``--n-process`` processes and batches of
``--batch-size`` captions, plus CE-CLIP's fill-mask step when ``--fill-mask-model`` names a
local masked language model.
"""

from __future__ import annotations

import argparse
import logging
import sys

from clipflow.io import write_text, write_with
from clipflow.logging_setup import setup_logging
from clipflow.negatives import (
    DEFAULT_SET,
    KINDS,
    NEGATIVE_GENERATORS,
    fill_mask_generators,
    generate_for_table,
    generator_set,
    generator_sets,
    negatives_report,
    read_captions,
)

log = logging.getLogger("generate_negatives")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
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
        "--generator-set",
        default=DEFAULT_SET,
        choices=generator_sets(),
        help="synthetic: the synthetic grammar's rules; english: spaCy + WordNet rules",
    )
    parser.add_argument(
        "--generators",
        nargs="+",
        default=None,
        choices=NEGATIVE_GENERATORS.names(),
        help="restrict to these generators (default: all of the generator set)",
    )
    parser.add_argument("--per-caption", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-process", type=int, default=1, help="worker processes")
    parser.add_argument("--batch-size", type=int, default=256, help="captions per nlp.pipe batch")
    parser.add_argument(
        "--fill-mask-model",
        default=None,
        help="local transformers masked LM: add CE-CLIP's fill-mask generators (english set;"
        " empty: none)",
    )
    parser.add_argument("--fill-mask-top-k", type=int, default=20)
    parser.add_argument(
        "--output", required=True, help="parquet: caption_index, caption, negative, kind, generator"
    )
    parser.add_argument("--report", required=True, help="Markdown summary")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    args = parser.parse_args()
    setup_logging()

    generators = None
    if args.fill_mask_model:
        if args.generator_set != "english":
            raise ValueError("--fill-mask-model needs --generator-set english")
        chosen = args.generators or [g.name for g in generator_set(args.generator_set)]
        generators = chosen + fill_mask_generators(args.fill_mask_model, args.fill_mask_top_k)
    captions = read_captions(args.pairs)
    negatives = generate_for_table(
        captions,
        kinds=args.kinds,
        per_caption=args.per_caption,
        seed=args.seed,
        generators=generators or args.generators,
        generator_set=args.generator_set,
        n_process=args.n_process,
        batch_size=args.batch_size,
        progress=not args.no_progress,
    )
    write_with(args.output, lambda tmp: negatives.to_parquet(tmp, index=False))
    write_text(
        args.report,
        negatives_report(
            negatives,
            len(captions),
            args.kinds,
            args.per_caption,
            args.seed,
            generator_set=args.generator_set,
        ),
    )
    log.info("wrote %d negatives for %d captions to %s", len(negatives), len(captions), args.output)


if __name__ == "__main__":
    try:
        main()
    except (OSError, KeyError, ValueError) as error:  # bad input, missing model: one line
        sys.exit(f"{log.name}: error: {error}")
