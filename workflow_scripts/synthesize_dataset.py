"""Make the embedded synthetic training set: PNGs plus a manifest (with broken rows on purpose)."""

import argparse
import logging

from clipflow.data.synthetic import make_training_set
from clipflow.logging_setup import setup_logging


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output-dir", required=True, help="folder for images/ and manifest.tsv")
    parser.add_argument("--num-pairs", type=int, default=2000)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-broken-urls", type=int, default=3)
    parser.add_argument("--num-corrupt-images", type=int, default=1)
    args = parser.parse_args()
    setup_logging()
    manifest = make_training_set(
        args.output_dir,
        args.num_pairs,
        args.seed,
        args.image_size,
        args.num_broken_urls,
        args.num_corrupt_images,
    )
    logging.info("wrote %d manifest rows to %s", len(manifest), args.output_dir)


if __name__ == "__main__":
    main()
