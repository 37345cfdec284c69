"""Every registered source format, from a small fixture on disk, into the one metadata schema;
bad rows come back with their row numbers (tests/data/fixtures/sources/, one file per format)."""

from __future__ import annotations

import io
import os
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from clipflow.data.download import DownloadOptions
from clipflow.data.download_report import download_report, loss_counts, plot_download_report
from clipflow.data.ingest import fetch_pairs, ingestion_summary
from clipflow.data.metadata import METADATA_COLUMNS, build_metadata
from clipflow.data.serve import serve_directory
from clipflow.data.shards import ShardImages
from clipflow.data.sources import (
    BAD_ROW_COLUMNS,
    MANIFEST_COLUMNS,
    SOURCES,
    SourceFormatError,
    read_source,
)
from tests.conftest import REPO

FIXTURES = Path(__file__).parent / "fixtures" / "sources"
IMAGES = FIXTURES / "images"
PLACEHOLDER = "http://images.invalid"  # the url fixtures' host; tests serve IMAGES instead
OPTIONS = DownloadOptions(image_size=16, number_sample_per_shard=3, thread_count=4)
COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 200, 30),
    "blue": (30, 30, 220),
    "yellow": (230, 220, 30),
}

# name -> (format, file, images_root, pairs read: (row, caption, image file, #k or None),
#          rows rejected while reading: (row, field, reason)), written from the fixture files
LOCAL = {
    "helip_csv": (
        "helip_csv",
        "helip.csv",
        None,
        [
            (2, "a red square", "images/red.jpg", None),
            (3, "a green square, seen from above", "images/green.jpg", None),
            (6, "a picture that cannot be read", "images/broken.jpg", None),
            (7, "a yellow square\non two lines", "images/yellow.jpg", None),
            (9, "a blue square", "images/blue.jpg", None),
        ],
        [(4, "title", "missing caption"), (5, "filepath", "missing image file")],
    ),
    "simclip_tsv": (
        "simclip_tsv",
        "simclip.tsv",
        IMAGES,
        [
            (2, "a red square", "red.jpg", 1),
            (2, "a square coloured red ", "red.jpg", 2),
            (3, "a green square", "green.jpg", None),
            (4, "a picture that cannot be read", "broken.jpg", 1),
            (4, "still unreadable", "broken.jpg", 2),
            (6, "a yellow square", "yellow.jpg", None),
            (7, "a blue square", "blue.jpg", 1),
            (7, "a square coloured blue", "blue.jpg", 2),
        ],
        [
            (3, "caption2", "missing caption"),
            (5, "image", "missing image file"),
            (5, "image", "missing image file"),
            (6, "caption2", "missing caption"),
        ],
    ),
    "coco_captions": (
        "coco_captions",
        "coco_captions.json",
        IMAGES,
        [
            (1, "a red square", "red.jpg", 1),
            (2, "a square, red", "red.jpg", 2),
            (5, "a picture that cannot be read", "broken.jpg", None),
            (7, "a green square", "green.jpg", None),
            (8, "a blue square", "blue.jpg", None),
        ],
        [
            (3, "caption", "missing caption"),
            (4, "image_id", "malformed record"),
            (6, "file_name", "missing image file"),
        ],
    ),
    "isogclr_json": (
        "isogclr_json",
        "isogclr.json",
        IMAGES,
        [
            (1, "a red square", "red.jpg", 1),
            (2, "a green square", "green.jpg", None),
            (4, "a picture that cannot be read", "broken.jpg", None),
            (6, "a yellow square", "yellow.jpg", None),
            (7, "another red square", "red.jpg", 2),
        ],
        [(3, "caption", "missing caption"), (5, "image", "missing image path")],
    ),
    "rocket_cc3m": (
        "rocket_npy",
        "rocket_cc3m.npy",
        IMAGES,
        [
            (1, "a red square", "red.jpg", 1),
            (1, "a square that is red", "red.jpg", 2),
            (4, "a blue square", "blue.jpg", None),
            (6, "a picture that cannot be read", "broken.jpg", None),
        ],
        [
            (2, "captions", "missing caption"),
            (3, "image_id", "missing image file"),
            (5, "image_id", "missing image path"),
        ],
    ),
    "rocket_cc12m": (
        "rocket_npy",
        "rocket_cc12m.npy",
        IMAGES,
        [
            (1, "a yellow square", "yellow.jpg", None),
            (3, "a blue square", "blue.jpg", 1),
            (3, "a square that is blue", "blue.jpg", 2),
        ],
        [(2, "captions[0]", "missing caption")],
    ),
    "yfcc15m_rocket": (
        "yfcc15m_rocket",
        "yfcc/yfcc15m.pkl",
        None,
        [
            (1, "red square", "images/00/000.zip/001.jpg", 1),
            (1, "a red square on white", "images/00/000.zip/001.jpg", 2),
            (2, "a green square", "images/00/000.zip/002.jpg", None),
            (3, "unreadable", "images/00/000.zip/003.jpg", None),
            (6, "a photo missing from its archive", "images/00/000.zip/005.jpg", None),
        ],
        [(4, "title, description", "missing caption"), (5, "photo id", "missing image file")],
    ),
}
# rows whose image is found but cannot be packed: (row, shard-table error)
PACK_FAILURES = {
    "helip_csv": [(6, "unreadable image (UnidentifiedImageError)")],
    "simclip_tsv": [(4, "unreadable image (UnidentifiedImageError)")] * 2,
    "coco_captions": [(5, "unreadable image (UnidentifiedImageError)")],
    "isogclr_json": [(4, "unreadable image (UnidentifiedImageError)")],
    "rocket_cc3m": [(6, "unreadable image (UnidentifiedImageError)")],
    "rocket_cc12m": [],
    "yfcc15m_rocket": [
        (3, "unreadable image (UnidentifiedImageError)"),
        (6, "missing image file"),
    ],
}


def _local_case(name: str) -> tuple:
    source, file, root, pairs, rejected = LOCAL[name]
    base = Path(root) if root is not None else (FIXTURES / file).parent
    expected = [
        (row, caption, os.path.abspath(base / image) + (f"#{k}" if k else ""))
        for row, caption, image, k in pairs
    ]
    return source, FIXTURES / file, root, expected, rejected


def _colour(caption: str) -> str:
    (word,) = set(re.findall(r"[a-z]+", caption)) & set(COLOURS)
    return word


def _assert_colour(image: Image.Image, colour: str) -> None:
    """The centre pixel is the fixture's solid colour (within JPEG error)."""
    centre = image.getpixel((image.width // 2, image.height // 2))
    assert max(abs(a - b) for a, b in zip(centre, COLOURS[colour], strict=True)) < 30, centre


def test_schema_lists_every_registered_source():
    schema = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())
    enum = schema["properties"]["data"]["properties"]["source"]["enum"]
    assert sorted(enum) == sorted(["synthetic", *SOURCES.names()])
    assert {LOCAL[name][0] for name in LOCAL} | {"cc3m_tsv", "cc12m_tsv"} == set(SOURCES.names())


@pytest.mark.parametrize("name", list(LOCAL))
def test_local_reader_finds_pairs_and_bad_rows_with_row_numbers(name):
    source, path, root, expected, rejected = _local_case(name)
    table = read_source(source, path, root)
    assert table.local and list(table.manifest.columns) == MANIFEST_COLUMNS
    got = list(table.manifest[["source_row", "caption", "url"]].itertuples(index=False, name=None))
    assert got == expected
    assert list(table.manifest["image"]) == [url.split("#")[0] for _, _, url in expected]
    assert list(table.bad_rows.columns) == BAD_ROW_COLUMNS
    bad = table.bad_rows[["source_row", "field", "reason"]].itertuples(index=False, name=None)
    assert list(bad) == rejected
    assert set(table.bad_rows["stage"]) <= {"read"}


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """Each local fixture read, packed into shards and indexed (image_size 16, 3 per shard)."""
    results = {}
    for name in LOCAL:
        source, path, root, _, _ = _local_case(name)
        out = tmp_path_factory.mktemp(name)
        table = read_source(source, path, root)
        fetch_pairs(table, out / "url_list.tsv", out / "shards", OPTIONS)
        stats, bad_rows = ingestion_summary(out / "shards", table.bad_rows, "pack")
        results[name] = {
            "table": table,
            "stats": stats,
            "bad_rows": bad_rows,
            "shards": out / "shards",
            "metadata": build_metadata(out / "shards"),
        }
    return results


@pytest.mark.parametrize("name", list(LOCAL))
def test_local_source_packs_into_the_metadata_schema(packed, name):
    _, _, _, expected, rejected = _local_case(name)
    result = packed[name]
    metadata = result["metadata"]
    failed_rows = {row for row, _ in PACK_FAILURES[name]}
    kept = [(caption, url) for row, caption, url in expected if row not in failed_rows]
    assert list(metadata.columns) == METADATA_COLUMNS
    assert list(zip(metadata["caption"], metadata["url"], strict=True)) == kept
    assert list(metadata["index"]) == list(range(len(kept)))
    # pair i of the manifest is shard i // 3 under img2dataset's key (5 shard digits + 1)
    positions = [i for i, (row, _, _) in enumerate(expected) if row not in failed_rows]
    assert list(metadata["shard"]) == [f"{i // 3:05d}.tar" for i in positions]
    assert list(metadata["key"]) == [f"{i // 3:05d}{i % 3}" for i in positions]
    images = ShardImages(result["shards"], list(metadata["shard"]))
    for row in metadata.itertuples():
        image = images[row.shard, row.key]
        assert image.size == (16, 16)
        _assert_colour(image, _colour(row.caption))
    lost = result["bad_rows"][["source_row", "stage", "reason"]].itertuples(index=False, name=None)
    expected_lost = [(r, "read", reason) for r, _, reason in rejected] + [
        (r, "pack", error) for r, error in PACK_FAILURES[name]
    ]
    assert list(lost) == sorted(expected_lost, key=lambda entry: entry[0])
    stats = result["stats"]
    assert stats["candidates"] == len(expected) + len(rejected)
    assert stats["successes"] == len(kept) and stats["failed"] == len(PACK_FAILURES[name])
    assert stats["rejected"] == len(rejected)


@pytest.fixture(scope="module")
def downloaded(tmp_path_factory):
    """The url fixtures with their host replaced by a loopback server of the fixture images,
    downloaded by img2dataset."""
    results = {}
    root = tmp_path_factory.mktemp("url_sources")
    with serve_directory(IMAGES) as base_url:
        for source, file in (("cc3m_tsv", "cc3m.tsv"), ("cc12m_tsv", "cc12m.tsv")):
            path = root / file
            path.write_text((FIXTURES / file).read_text().replace(PLACEHOLDER, base_url))
            table = read_source(source, path)
            out = root / source
            fetch_pairs(table, out / "url_list.tsv", out / "shards", OPTIONS)
            stats, bad_rows = ingestion_summary(out / "shards", table.bad_rows, "download")
            results[source] = {
                "stats": stats,
                "bad_rows": bad_rows,
                "metadata": build_metadata(out / "shards"),
                "shards": out / "shards",
            }
    return base_url, results


# format -> (pairs in the shards: (caption, image file), lost rows: (row, stage, field, reason))
URL_SOURCES = {
    "cc3m_tsv": (
        [
            ("a red square", "red.jpg"),
            ("a green square", "green.jpg"),
            ("a blue square", "blue.jpg"),
            ("a yellow square", "yellow.jpg"),
        ],
        [
            (3, "read", "caption", "missing caption"),
            (4, "read", "url", "malformed url"),
            (6, "download", "url", "HTTP Error 404"),
            (7, "download", "url", "decoding"),
            (9, "read", "line", "malformed line"),
            (10, "read", "url", "duplicate url"),
        ],
    ),
    "cc12m_tsv": (
        [("a yellow square", "yellow.jpg"), ("a blue square", "blue.jpg")],
        [
            (3, "read", "url", "malformed url"),
            (4, "read", "caption", "missing caption"),
            (6, "download", "url", "HTTP Error 404"),
        ],
    ),
}


@pytest.mark.parametrize("source", list(URL_SOURCES))
def test_url_source_downloads_into_the_metadata_schema(downloaded, source):
    base_url, results = downloaded
    pairs, lost = URL_SOURCES[source]
    metadata = results[source]["metadata"]
    assert list(metadata.columns) == METADATA_COLUMNS
    # img2dataset writes a shard's samples as their downloads finish: compare as sets
    got = set(zip(metadata["caption"], metadata["url"], strict=True))
    assert got == {(caption, f"{base_url}/{file}") for caption, file in pairs}
    images = ShardImages(results[source]["shards"], list(metadata["shard"]))
    for row in metadata.itertuples():
        _assert_colour(images[row.shard, row.key], _colour(row.caption))
    bad_rows = results[source]["bad_rows"]
    assert len(bad_rows) == len(lost)
    for entry, expected in zip(bad_rows.itertuples(index=False), lost, strict=True):
        assert (entry.source_row, entry.stage, entry.field) == expected[:3]
        assert expected[3].lower() in entry.reason.lower(), entry
    stats = results[source]["stats"]
    rejected = sum(1 for entry in lost if entry[1] == "read")
    assert stats["candidates"] == len(pairs) + len(lost)
    assert (stats["successes"], stats["failed"], stats["rejected"]) == (
        len(pairs),
        len(lost) - rejected,
        rejected,
    )


def test_report_counts_every_candidate_pair_once(downloaded, tmp_path):
    _, results = downloaded
    stats, bad_rows = results["cc3m_tsv"]["stats"], results["cc3m_tsv"]["bad_rows"]
    report = download_report(stats, bad_rows, "cc3m fixture")
    # candidates, rejected while reading, downloaded, in the shards, failed (10 lines, 4 rejected)
    assert "| 10 | 4 | 6 | 4 | 2 |" in report
    assert "66.7 % of the pairs downloaded with img2dataset (4 of 6)" in report
    assert "40.0 % of all candidate pairs (4 of 10)" in report
    losses = loss_counts(stats)
    assert sum(n for _, _, n in losses) == 6 == len(bad_rows)
    assert {(stage, n) for stage, _, n in losses} == {("read", 1), ("download", 1)}
    assert {reason for stage, reason, _ in losses if stage == "read"} == {
        "missing caption",
        "malformed url",
        "malformed line",
        "duplicate url",
    }
    rows = re.findall(r"^\| (\d+) \| (read|download) \|", report, re.M)
    assert [int(r) for r, _ in rows] == [3, 4, 6, 7, 9, 10]
    plot = plot_download_report(stats, tmp_path / "report.png")
    with Image.open(plot) as image:  # one bar per loss reason plus the successes
        assert image.format == "PNG" and image.height == round(120 * (1.2 + 0.35 * 7))


def test_max_pairs_keeps_the_first_valid_pairs_and_reads_no_further():
    table = read_source("cc3m_tsv", FIXTURES / "cc3m.tsv", max_pairs=3)
    assert list(table.manifest["source_row"]) == [1, 2, 5]
    assert list(table.bad_rows["source_row"]) == [3, 4]


def test_header_line_is_optional_in_url_lists(tmp_path):
    body = (FIXTURES / "cc3m.tsv").read_text()
    (tmp_path / "with_header.tsv").write_text("caption\turl\n" + body)
    table = read_source("cc3m_tsv", tmp_path / "with_header.tsv")
    assert list(table.manifest["source_row"]) == [2, 3, 6, 7, 8, 9]


def _npy(path: Path, payload: bytes, shape: tuple[int, ...] = (1,)) -> Path:
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(
            handle, {"descr": "|O", "fortran_order": False, "shape": shape}
        )
        handle.write(payload)
    return path


def test_rocket_npy_takes_numpy_ids_and_refuses_other_pickled_globals(tmp_path):
    records = np.array([{"image_id": np.int64(7), "captions": ["seven"]}], dtype=object)
    buffer = io.BytesIO()
    np.save(buffer, records, allow_pickle=True)
    (tmp_path / "7").write_bytes((IMAGES / "red.jpg").read_bytes())
    (tmp_path / "ids.npy").write_bytes(buffer.getvalue())
    table = read_source("rocket_npy", tmp_path / "ids.npy")
    assert list(table.manifest["url"]) == [str(tmp_path / "7")]
    crafted = _npy(tmp_path / "crafted.npy", pickle.dumps(np.array([io.StringIO()], dtype=object)))
    with pytest.raises(SourceFormatError, match=r"crafted.npy: array: .*refusing to load global"):
        read_source("rocket_npy", crafted)
    numbers = tmp_path / "numbers.npy"
    np.save(numbers, np.arange(3))
    with pytest.raises(SourceFormatError, match=r"expected a 1-d object array of dicts, got int64"):
        read_source("rocket_npy", numbers)


@pytest.mark.parametrize(
    ("source", "content", "message"),
    [
        ("helip_csv", "filepath,caption\na.jpg,a\n", r"x: header: needs column\(s\) title"),
        ("simclip_tsv", "image\ttext\na.jpg\ta\n", r"x: header: needs caption1, caption2"),
        ("isogclr_json", '{"image": "a.jpg"}', r"x: top level: expected a list"),
        ("coco_captions", '{"images": []}', r"x: annotations: missing or not a list"),
        ("yfcc15m_rocket", None, r"x: file: cannot be unpickled"),
    ],
)
def test_unreadable_source_files_fail_in_one_line(tmp_path, source, content, message):
    path = tmp_path / "x"
    if content is None:  # a pickle that names a callable
        path.write_bytes(pickle.dumps([(1, "t", io.StringIO)]))
    else:
        path.write_text(content)
    with pytest.raises(SourceFormatError, match=message) as error:
        read_source(source, path)
    assert "\n" not in str(error.value)
