"""Download a url list into webdataset shards with img2dataset; summarise what failed and why."""

from __future__ import annotations

import glob
import logging
import os
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from clipflow.data.serve import serve_directory
from clipflow.errors import first_line
from clipflow.io import read_parquet, write_with

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # albumentations phones home at import

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DownloadOptions:
    """img2dataset's options that matter for reproducing a dataset (names as img2dataset's)."""

    image_size: int = 64
    resize_mode: str = "border"
    encode_format: str = "jpg"
    output_format: str = "webdataset"  # the metadata and the trainer read webdataset shards
    processes_count: int = 1
    thread_count: int = 8
    number_sample_per_shard: int = 1000
    timeout: int = 5
    retries: int = 0


def write_url_list(
    captions: list[str], urls: list[str], source_rows: list[int], path: str | Path
) -> Path:
    """The tsv img2dataset reads (``caption\\turl`` with a header: the step HELIP does with sed),
    plus each pair's ``source_row``, which img2dataset keeps with the sample (and its failure)."""
    frame = pd.DataFrame({"caption": captions, "url": urls, "source_row": source_rows})
    return write_with(path, lambda tmp: frame.to_csv(tmp, sep="\t", index=False))


def run_img2dataset(
    url_list: str | Path, output_folder: str | Path, options: DownloadOptions
) -> None:
    """img2dataset's ``download``, each url's download bounded in time and in pixels
    (:mod:`clipflow.data.deadline_download`)."""
    import img2dataset

    from clipflow.data.deadline_download import deadline_downloader

    with deadline_downloader():
        img2dataset.download(
            url_list=str(url_list),
            output_folder=str(output_folder),
            input_format="tsv",
            url_col="url",
            caption_col="caption",
            save_additional_columns=["source_row"],
            enable_wandb=False,
            **asdict(options),
        )


def download_served_folder(
    source_dir: str | Path,
    manifest: pd.DataFrame,
    url_list: str | Path,
    output_folder: str | Path,
    options: DownloadOptions,
) -> None:
    """Serve ``source_dir`` on loopback, write the url list for ``manifest``, download it, stop."""
    with serve_directory(source_dir) as base_url:
        urls = [f"{base_url}/{path}" for path in manifest["path"]]
        # the manifest tsv's header is line 1, so its i-th pair (from 0) is on line i + 2
        source_rows = list(range(2, len(manifest) + 2))
        write_url_list(list(manifest["caption"]), urls, source_rows, url_list)
        log.info("serving %s at %s; downloading %d urls", source_dir, base_url, len(urls))
        run_img2dataset(url_list, output_folder, options)


# the url list's source_row (write_url_list) comes back as one of the shard table's columns
_STATS_COLUMNS = ["url", "caption", "source_row", "status", "error_message"]


def download_stats(output_folder: str | Path) -> dict:
    """Totals over img2dataset's per-shard ``_stats.json`` and every failed row with its reason."""
    output_folder = Path(output_folder)
    shard_tables = sorted(glob.glob(str(output_folder / "*.parquet")))
    if not shard_tables:
        raise FileNotFoundError(f"{output_folder}: no img2dataset shard parquet files")
    rows = pd.concat(
        [read_parquet(p, columns=_STATS_COLUMNS).assign(shard=Path(p).stem) for p in shard_tables],
        ignore_index=True,
    )
    failed = rows[rows["status"] != "success"]
    # one line each (a decoder's error can run to several): bad_rows.csv keeps a row per line
    reasons = Counter(first_line(e) for e in failed["error_message"])
    return {
        "count": int(len(rows)),
        "successes": int((rows["status"] == "success").sum()),
        "failed": int(len(failed)),
        "success_rate": float((rows["status"] == "success").mean()) if len(rows) else 0.0,
        "failure_reasons": dict(reasons.most_common()),
        "failures": [
            {
                "shard": r.shard,
                "source_row": None if pd.isna(r.source_row) else int(r.source_row),
                "url": r.url,
                "caption": r.caption,
                "error": first_line(r.error_message),
            }
            for r in failed.itertuples()
        ],
    }
