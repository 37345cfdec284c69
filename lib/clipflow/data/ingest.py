"""A real source into the webdataset shards the metadata and the trainer read.

Web sources (url lists) go through img2dataset with the ``data.download`` options. Local images
need no download: they are packed with img2dataset's own resizer and webdataset shard writer, so
the shards hold the same members (``key.jpg``, ``key.txt``, ``key.json``), keys and per-shard
``.parquet`` as a download would, resized the same way. Every source row that does not end up
as a pair is then accounted for, by row number, in one bad-row table.
"""

from __future__ import annotations

import io
import logging
import math
import multiprocessing
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
from PIL import Image

from clipflow.data.download import DownloadOptions, download_stats, run_img2dataset, write_url_list
from clipflow.data.sources import BAD_ROW_COLUMNS, SourceTable, read_local_image

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # albumentations phones home at import
log = logging.getLogger(__name__)

OOM_SHARD_COUNT = 5  # img2dataset's default: shard names 00000.tar, ...
# img2dataset's shard-table schema for a tsv with caption and source_row (downloader.py)
SHARD_TABLE_SCHEMA = pa.schema(
    [
        ("url", pa.string()),
        ("caption", pa.string()),
        ("source_row", pa.int64()),
        ("key", pa.string()),
        ("status", pa.string()),
        ("error_message", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("original_width", pa.int32()),
        ("original_height", pa.int32()),
    ]
)
# Failure categories of local images, the ``error_message`` of their shard-table rows
MISSING_IMAGE = "missing image file"
UNREADABLE_IMAGE = "unreadable image"

_resizer: Any = None  # one per packing process (set by _start_packer)


def _start_packer(options: dict[str, Any]) -> None:
    from img2dataset.resizer import Resizer

    global _resizer
    _resizer = Resizer(
        image_size=options["image_size"],
        resize_mode=options["resize_mode"],
        resize_only_if_bigger=False,  # img2dataset's default, as for a download
        encode_format=options["encode_format"],
    )


def _pack_one(location: str) -> tuple[bytes | None, dict[str, Any]]:
    """Read, check with PIL (a full decode: truncated files fail too) and resize one image."""
    failed = {"width": None, "height": None, "original_width": None, "original_height": None}
    try:
        data = read_local_image(location)
    except (OSError, KeyError) as error:  # KeyError: no such member in its zip archive
        log.warning("%s: %s", location, error)
        return None, {**failed, "status": "failed_to_download", "error_message": MISSING_IMAGE}
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except Exception as error:  # PIL raises many types (OSError, SyntaxError, bomb errors...)
        log.warning("%s: %s", location, error)
        message = f"{UNREADABLE_IMAGE} ({type(error).__name__})"
        return None, {**failed, "status": "failed_to_resize", "error_message": message}
    encoded, width, height, original_width, original_height, error = _resizer(io.BytesIO(data))
    if error is not None:
        return None, {**failed, "status": "failed_to_resize", "error_message": error}
    return encoded, {
        "status": "success",
        "error_message": None,
        "width": width,
        "height": height,
        "original_width": original_width,
        "original_height": original_height,
    }


def _packed(locations: list[str], options: DownloadOptions) -> Iterator[tuple[bytes | None, dict]]:
    """``_pack_one`` over ``locations`` in order, on ``processes_count`` processes."""
    if options.processes_count == 1:
        _start_packer(asdict(options))
        yield from map(_pack_one, locations)
        return
    with multiprocessing.get_context("spawn").Pool(
        options.processes_count, initializer=_start_packer, initargs=(asdict(options),)
    ) as pool:
        yield from pool.imap(_pack_one, locations, chunksize=64)


def pack_local_images(
    manifest: pd.DataFrame, output_folder: str | Path, options: DownloadOptions
) -> None:
    """Write ``manifest``'s local images as img2dataset's webdataset shards (no HTTP).

    Pair i goes to shard ``i // number_sample_per_shard`` under img2dataset's key for that
    position; a pair whose image cannot be read stays out of the tar and is a failed row of the
    shard table, as a failed download is.
    """
    from img2dataset.downloader import compute_key
    from img2dataset.writer import WebDatasetSampleWriter

    if options.output_format != "webdataset":
        raise ValueError(f"output_format {options.output_format!r}: only webdataset is packed")
    Path(output_folder).mkdir(parents=True, exist_ok=True)
    per_shard = options.number_sample_per_shard
    digits = math.ceil(math.log10(per_shard))
    pairs = manifest[["url", "caption", "source_row"]].itertuples(index=False, name=None)
    packed = _packed(list(manifest["image"]), options)
    writer = None
    for position, ((url, caption, source_row), (encoded, result)) in enumerate(
        zip(pairs, packed, strict=True)
    ):
        shard, index = divmod(position, per_shard)
        if index == 0:
            if writer is not None:
                writer.close()
            writer = WebDatasetSampleWriter(
                shard,
                str(output_folder),
                True,
                OOM_SHARD_COUNT,
                SHARD_TABLE_SCHEMA,
                options.encode_format,
            )
        key = compute_key(index, shard, digits, OOM_SHARD_COUNT)
        meta = {"url": url, "caption": caption, "source_row": int(source_row), "key": key}
        writer.write(encoded, key, caption, {**meta, **result})
    if writer is not None:
        writer.close()


def fetch_pairs(
    table: SourceTable,
    url_list: str | Path,
    output_folder: str | Path,
    options: DownloadOptions,
) -> None:
    """The table's pairs into shards: downloaded (web source) or packed (local images).

    ``url_list`` records what was fetched, in img2dataset's tsv layout either way.
    """
    manifest = table.manifest
    write_url_list(
        list(manifest["caption"]), list(manifest["url"]), list(manifest["source_row"]), url_list
    )
    if table.local:
        log.info("packing %d local pairs into %s", len(manifest), output_folder)
        pack_local_images(manifest, output_folder, options)
    else:
        log.info("downloading %d urls into %s", len(manifest), output_folder)
        run_img2dataset(url_list, output_folder, options)


def ingestion_summary(
    output_folder: str | Path, read_bad_rows: pd.DataFrame, stage: str
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Download statistics plus the rows rejected while reading, and every lost row.

    ``stage`` names how the pairs were fetched (``download`` or ``pack``). The statistics are
    :func:`download_stats`' (``count`` pairs fetched, ``successes``, ``failed``,
    ``success_rate``, ``failure_reasons``, ``failures``) plus ``stage``, ``rejected`` (rows
    rejected while reading), ``rejection_reasons`` and ``candidates`` (= count + rejected), so
    the candidates split into successes, failures and rejections. The bad-row table
    (``BAD_ROW_COLUMNS``, by source row) holds the rejected rows and the failed ones.
    """
    stats = download_stats(output_folder)
    failures = pd.DataFrame(
        stats["failures"], columns=["shard", "source_row", "url", "caption", "error"]
    )
    failed_rows = pd.DataFrame(
        {
            "source_row": failures["source_row"],
            "stage": stage,
            "field": "url" if stage == "download" else "image",
            "reason": failures["error"],
            "detail": failures["url"],
        },
        columns=BAD_ROW_COLUMNS,
    )
    bad_rows = pd.concat(
        [frame for frame in (read_bad_rows, failed_rows) if len(frame)] or [failed_rows],
        ignore_index=True,
    ).sort_values("source_row", kind="stable", ignore_index=True)
    stats.update(
        stage=stage,
        rejected=len(read_bad_rows),
        rejection_reasons=dict(Counter(read_bad_rows["reason"]).most_common()),
        candidates=stats["count"] + len(read_bad_rows),
    )
    return stats, bad_rows
