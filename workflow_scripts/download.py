"""Serve a folder on loopback, write its url list and download it with img2dataset."""

import argparse
import json
import logging
from pathlib import Path

from clipflow.data.download import DownloadOptions, download_served_folder, download_stats
from clipflow.data.synthetic import read_manifest
from clipflow.io import write_json
from clipflow.logging_setup import setup_logging


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--manifest", required=True, help="tsv with caption and path columns")
    parser.add_argument("--url-list", required=True, help="url list tsv to write")
    parser.add_argument("--output-folder", required=True, help="folder for the webdataset shards")
    parser.add_argument("--stats", required=True, help="download summary JSON to write")
    parser.add_argument("--options", default="{}", help="img2dataset options as JSON")
    args = parser.parse_args()
    setup_logging()
    options = DownloadOptions(**json.loads(args.options))
    manifest = read_manifest(args.manifest)
    download_served_folder(
        Path(args.manifest).parent, manifest, args.url_list, args.output_folder, options
    )
    stats = download_stats(args.output_folder)
    write_json(args.stats, stats)
    logging.info(
        "downloaded %d of %d; failures: %s",
        stats["successes"],
        stats["count"],
        stats["failure_reasons"],
    )


if __name__ == "__main__":
    main()
