"""Make the synthetic benchmarks in official formats (ImageNet folders, Karpathy, SugarCrepe)."""

import argparse
import logging

from clipflow.data.synthetic import make_benchmarks
from clipflow.logging_setup import setup_logging


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--num-images", type=int, default=200)
    parser.add_argument("--image-size", type=int, default=64)
    args = parser.parse_args()
    setup_logging()
    roots = make_benchmarks(args.output_dir, args.seed, args.num_images, args.image_size)
    logging.info("benchmarks: %s", roots)


if __name__ == "__main__":
    main()
