"""Index the downloaded shards: one parquet of the successful pairs and HELIP's url -> index map."""

import argparse
import logging

from clipflow.data.metadata import build_metadata
from clipflow.helip_formats import write_url_index
from clipflow.io import write_with
from clipflow.logging_setup import setup_logging


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shards", required=True, help="folder of webdataset *.tar shards")
    parser.add_argument("--output", required=True, help="metadata parquet to write")
    parser.add_argument("--url-index", required=True, help="url -> index JSON to write")
    args = parser.parse_args()
    setup_logging()
    metadata = build_metadata(args.shards)
    write_with(args.output, lambda tmp: metadata.to_parquet(tmp, index=False))
    write_url_index(args.url_index, metadata)
    logging.info("%d pairs in %d shards", len(metadata), metadata["shard"].nunique())


if __name__ == "__main__":
    main()
