"""Embed every downloaded image-text pair with a frozen CLIP (HELIP mining, step 1)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from clipflow.io import encoder_fingerprint
from clipflow.logging_setup import setup_logging
from clipflow.mining import (
    embed_pairs,
    embed_shards,
    iter_shard_samples,
    read_pairs,
    save_embeddings,
)
from clipflow.models import create_model  # sets HF_HUB_OFFLINE: checkpoints are local files

log = logging.getLogger("embed_pairs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--pairs",
        required=True,
        help="metadata parquet (index, key, url, caption, shard, status); rows "
        "whose status is not 'success' are skipped",
    )
    parser.add_argument("--shards-dir", required=True, help="folder of webdataset <shard>.tar")
    parser.add_argument("--model", required=True, help="open_clip or clipflow model name")
    parser.add_argument("--pretrained", default=None, help="local checkpoint (open_clip format)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0, help="initialisation without --pretrained")
    parser.add_argument("--output", required=True, help="embeddings .npz (image, text, index)")
    parser.add_argument(
        "--cache-dir",
        help="per-shard embedding cache, kept across attempts (a subfolder per encoder)",
    )
    args = parser.parse_args()
    setup_logging()

    pairs = read_pairs(args.pairs)
    bundle = create_model(args.model, args.pretrained, device=args.device, seed=args.seed)
    log.info("embedding %d pairs from %s with %s", len(pairs), args.shards_dir, args.model)
    if args.cache_dir:
        encoder = encoder_fingerprint(args.model, args.pretrained, args.seed)
        image, text = embed_shards(
            bundle.model,
            bundle.preprocess_val,
            bundle.tokenizer,
            pairs,
            args.shards_dir,
            Path(args.cache_dir, encoder),
            args.batch_size,
            args.device,
        )
    else:
        image, text = embed_pairs(
            bundle.model,
            bundle.preprocess_val,
            bundle.tokenizer,
            iter_shard_samples(pairs, args.shards_dir),
            args.batch_size,
            args.device,
            total=len(pairs),
        )
    save_embeddings(args.output, image, text, pairs["index"].to_numpy())
    log.info("wrote %s: %d pairs, dimension %d", args.output, *image.shape)


if __name__ == "__main__":
    try:
        main()
    except (FileNotFoundError, KeyError, ValueError) as error:  # bad input: one line
        sys.exit(f"{log.name}: error: {error}")
