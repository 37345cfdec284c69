"""Read a real image-text source, fetch its pairs into webdataset shards and report every loss."""

import argparse
import json
import logging

from clipflow.data.download import DownloadOptions
from clipflow.data.download_report import write_download_outputs
from clipflow.data.ingest import fetch_pairs, ingestion_summary
from clipflow.data.sources import SOURCES, read_source
from clipflow.logging_setup import setup_logging


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", required=True, choices=SOURCES.names(), help="source format")
    parser.add_argument("--path", required=True, help="the source's file (tsv/csv/json/npy/pkl)")
    parser.add_argument("--images-root", help="where relative image paths resolve (local formats)")
    parser.add_argument("--max-pairs", type=int, help="keep the first N valid pairs")
    parser.add_argument("--url-list", required=True, help="tsv of the fetched pairs to write")
    parser.add_argument("--output-folder", required=True, help="folder for the webdataset shards")
    parser.add_argument("--stats", required=True, help="download summary JSON to write")
    parser.add_argument("--bad-rows", required=True, help="csv of every lost row to write")
    parser.add_argument("--report", required=True, help="Markdown report to write")
    parser.add_argument("--plot", required=True, help="report bar plot (png) to write")
    parser.add_argument("--options", default="{}", help="img2dataset options as JSON")
    args = parser.parse_args()
    setup_logging()
    table = read_source(args.source, args.path, args.images_root, args.max_pairs)
    logging.info("%d pairs read, %d rows rejected", len(table.manifest), len(table.bad_rows))
    if table.manifest.empty:
        raise SystemExit(f"{args.path}: no valid pair; first bad rows:\n{table.bad_rows.head()}")
    options = DownloadOptions(**json.loads(args.options))
    fetch_pairs(table, args.url_list, args.output_folder, options)
    stage = "pack" if table.local else "download"
    stats, bad_rows = ingestion_summary(args.output_folder, table.bad_rows, stage)
    write_download_outputs(
        stats,
        bad_rows,
        f"{args.source} (`{args.path}`)",
        args.stats,
        args.bad_rows,
        args.report,
        args.plot,
    )
    logging.info(
        "%d of %d candidate pairs in the shards; lost: %s",
        stats["successes"],
        stats["candidates"],
        {**stats["rejection_reasons"], **stats["failure_reasons"]},
    )


if __name__ == "__main__":
    main()
