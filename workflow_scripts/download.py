"""Serve a folder on loopback, write its url list and download it with img2dataset."""

import argparse
import json
import logging
from pathlib import Path

import pandas as pd

from clipflow.data.download import DownloadOptions, download_served_folder
from clipflow.data.download_report import write_download_outputs
from clipflow.data.ingest import ingestion_summary
from clipflow.data.sources import BAD_ROW_COLUMNS
from clipflow.data.synthetic import read_manifest
from clipflow.logging_setup import setup_logging


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--manifest", required=True, help="tsv with caption and path columns")
    parser.add_argument("--url-list", required=True, help="url list tsv to write")
    parser.add_argument("--output-folder", required=True, help="folder for the webdataset shards")
    parser.add_argument("--stats", required=True, help="download summary JSON to write")
    parser.add_argument("--bad-rows", required=True, help="csv of every lost row to write")
    parser.add_argument("--report", required=True, help="Markdown report to write")
    parser.add_argument("--plot", required=True, help="report bar plot (png) to write")
    parser.add_argument("--options", default="{}", help="img2dataset options as JSON")
    args = parser.parse_args()
    setup_logging()
    options = DownloadOptions(**json.loads(args.options))
    manifest = read_manifest(args.manifest)
    download_served_folder(
        Path(args.manifest).parent, manifest, args.url_list, args.output_folder, options
    )
    stats, bad_rows = ingestion_summary(
        args.output_folder, pd.DataFrame(columns=BAD_ROW_COLUMNS), "download"
    )
    source = f"synthetic, served on loopback from `{args.manifest}`"
    write_download_outputs(
        stats, bad_rows, source, args.stats, args.bad_rows, args.report, args.plot
    )
    logging.info(
        "downloaded %d of %d; failures: %s",
        stats["successes"],
        stats["count"],
        stats["failure_reasons"],
    )


if __name__ == "__main__":
    main()
