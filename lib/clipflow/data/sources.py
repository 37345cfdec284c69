"""Readers of the image-text sources the seeds train on, each into one manifest of candidate pairs.

Every reader turns its file into the same shape (:data:`MANIFEST_COLUMNS`): ``source_row`` (where
the pair came from: the 1-based line of a text file, where a line-spanning quoted csv record
counts from its first line, or the 1-based position of the record in a JSON/npy/pickle list),
``url`` and ``caption``. ``url`` is the http(s) url of a web source, or the absolute path of a
local image; one image with several captions gives one pair per caption, and then each pair's
url is the path plus ``#<k>`` (k = 1, 2, ... in manifest order), so that url stays a unique key
of the pair (HELIP's url index) while ``image`` keeps the file to read.

Rows that cannot become a pair are never dropped silently: each is a :data:`BAD_ROW_COLUMNS`
row (``source_row``, ``stage`` "read", ``field``, ``reason`` (a fixed category, counted in the
download report), ``detail``). Images are only checked for existence here; the packing step
decodes each one anyway and reports the unreadable ones with their rows.

The formats, as the seeds' loaders read them (docs/formats.md, training data;
rom1504/img2dataset ``dataset_examples/cc{3,12}m.md``;
facebookresearch/clip-rocket ``datasets.py`` and facebookresearch/SLIP ``make_dataset.py``;
lezhang7/Enhance-FineGrained (CE-CLIP) ``data/dataset.py``; sx-liu/SimCLIP ``models/data.py``
and ``datasets/coco_train.tsv``; zhqiu/contrastive-learning-iSogCLR
``bimodal_exps/dataset/caption_dataset.py``):

- ``cc3m_tsv``: Google's CC3M tsv, ``caption<TAB>url`` without header; a first line
  ``caption<TAB>url`` (the header HELIP's README and img2dataset's cc3m example add with
  ``sed``) is skipped.
- ``cc12m_tsv``: CC12M's ``cc12m.tsv``, ``url<TAB>caption``; a first line ``url<TAB>caption``
  (img2dataset's cc12m example) is skipped.
- ``coco_captions``: COCO's ``captions_{train,val}{2014,2017}.json`` (``images[].id/file_name``,
  ``annotations[].image_id/caption``); one pair per annotation in file order, as CE-CLIP's
  ``CocoDataset`` reads it (pycocotools' ``anns``); the image is ``images_root/file_name``
  (``images_root`` = the split's image folder, e.g. ``train2014/``).
- ``yfcc15m_rocket``: clip-rocket's (SLIP's ``make_dataset.py``) ``yfcc15m.pkl``, a pickled list
  of ``(photo id, title, description)``; captions are the non-empty of title and description,
  the image is member ``ddd.jpg`` of ``images_root/images/dd/ddd.zip`` (clip-rocket's
  ``yfcc_loader``: the 8-digit id split 2/3/3).
- ``helip_csv``: the open_clip csv HELIP trains on (``--csv-img-key filepath``, caption key
  ``title``, ``--csv-separator ,``), with a header.
- ``rocket_npy``: clip-rocket's ``cc3m.npy``/``cc12m.npy``, a NumPy object array of dicts
  ``{image_id, captions}`` (CC3M) or ``{image_name, image_id, captions}`` (CC12M); the image is
  ``images_root/str(image_name or image_id)`` as clip-rocket's ``get_raw_item`` joins it.
- ``simclip_tsv``: SimCLIP's tsv, header ``[id] image caption1 ... captionK`` (``--caption_keys``
  default ``caption1..caption5``); each ``caption<N>`` column gives a pair.
- ``isogclr_json``: iSogCLR's ``cc3m_train_subset.json``, a list of ``{image, caption,
  image_id}``; a ``caption`` list (the ``coco_val.json`` shape) gives one pair per caption.

Local formats resolve relative image paths against ``images_root`` (default: the source file's
folder).
"""

from __future__ import annotations

import csv
import functools
import json
import os
import pickle
import re
import zipfile
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

from clipflow.registry import Registry

MANIFEST_COLUMNS = ["source_row", "url", "image", "caption"]
BAD_ROW_COLUMNS = ["source_row", "stage", "field", "reason", "detail"]

# The ndarray reconstruction globals of an object array pickled by np.save (numpy 1 and 2
# module names) and of numpy scalars such as an np.int64 image id: all that clip-rocket's
# .npy files need, so a crafted file cannot name any other callable.
_NUMPY_PICKLE_GLOBALS = frozenset(
    {
        (module, name)
        for module in ("numpy.core.multiarray", "numpy._core.multiarray")
        for name in ("_reconstruct", "scalar")
    }
    | {("numpy", "ndarray"), ("numpy", "dtype")}
)


class SourceFormatError(ValueError):
    """A source file that cannot be read as its format at all; the message names file and field."""

    def __init__(self, path: str | os.PathLike, field: str, problem: str) -> None:
        super().__init__(f"{path}: {field}: {problem}")


@dataclass(frozen=True)
class Pair:
    """A candidate pair as a reader found it; :func:`read_source` validates it."""

    source_row: int
    caption: Any
    caption_field: str
    location: Any  # url (web sources) or image path (local sources), as written in the file
    location_field: str


@dataclass(frozen=True)
class BadRow:
    """A row that gives no pair: ``reason`` is a fixed category, ``detail`` the specifics."""

    source_row: int
    field: str
    reason: str
    detail: str = ""


Item = Pair | BadRow


@dataclass(frozen=True)
class Source:
    """A registered source format: its reader and whether its images are local files."""

    read: Callable[[Path, Path], Iterator[Item]]  # (source file, images root) -> items
    local: bool


@dataclass(frozen=True)
class SourceTable:
    """What :func:`read_source` found: the valid pairs and the rows that are not."""

    manifest: pd.DataFrame  # MANIFEST_COLUMNS
    bad_rows: pd.DataFrame  # BAD_ROW_COLUMNS, stage "read"
    local: bool


SOURCES: Registry[Source] = Registry("data source")


def register(name: str, local: bool) -> Callable[[Callable], Callable]:
    """Register a reader ``(source file, images root) -> Pair | BadRow items`` under ``name``."""

    def decorator(reader: Callable[[Path, Path], Iterator[Item]]) -> Callable:
        SOURCES.register(name)(Source(reader, local))
        return reader

    return decorator


def archive_member(location: str) -> tuple[str, str] | None:
    """``(zip file, member)`` when ``location`` is a path through a zip archive
    (``.../345.zip/678.jpg``, clip-rocket's YFCC layout), else None."""
    head, sep, member = location.partition(".zip" + os.sep)
    if not sep or not member:
        return None
    return head + ".zip", member


@functools.lru_cache(maxsize=4096)
def _is_file(path: str) -> bool:
    return os.path.isfile(path)


def local_image_problem(location: str) -> str | None:
    """Why ``location`` names no image file (for a zip member: no archive), or None. Members
    are only looked up when packing; an archive is checked once (YFCC: 1000 photos each)."""
    archive = archive_member(location)
    if archive is not None:
        return None if _is_file(archive[0]) else f"no archive {archive[0]}"
    return None if os.path.isfile(location) else f"no file {location}"


@functools.lru_cache(maxsize=8)
def _open_archive(path: str) -> zipfile.ZipFile:
    # kept open: consecutive photos share an archive, whose directory is then read once
    return zipfile.ZipFile(path)


def read_local_image(location: str) -> bytes:
    """The bytes of a local image: a file, or a member of a zip archive."""
    archive = archive_member(location)
    if archive is None:
        with open(location, "rb") as handle:
            return handle.read()
    return _open_archive(archive[0]).read(archive[1])


def _caption_problem(caption: Any) -> tuple[str, str] | None:
    if caption is None or (isinstance(caption, str) and not caption.strip()):
        return "missing caption", ""
    if not isinstance(caption, str):
        return "caption not text", f"{type(caption).__name__} {caption!r}"[:200]
    return None


def _url_problem(url: Any) -> tuple[str, str] | None:
    if not isinstance(url, str) or not url.strip():
        return "missing url", ""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in url):
        return "malformed url", url[:200]
    return None


def read_source(
    name: str,
    path: str | os.PathLike,
    images_root: str | os.PathLike | None = None,
    max_pairs: int | None = None,
) -> SourceTable:
    """Read source ``name`` from ``path`` into valid pairs and bad rows.

    Checks, in this order, one reason per candidate pair: the caption (present, non-blank text),
    then the url (http(s) with a host; a url seen before is a ``duplicate url``, which the
    metadata would otherwise drop) or the local image (exists). Stops after ``max_pairs`` valid
    pairs (a subset such as CC3M-100k: the first N, in file order), so later rows are not read.
    """
    source = SOURCES.get(name)
    path = Path(path)
    if not path.is_file():
        raise SourceFormatError(path, "file", "not found")
    root = Path(images_root) if images_root is not None else path.parent
    _is_file.cache_clear()  # archives may have changed since an earlier read
    # column lists, not row dicts: CC12M and YFCC15M have tens of millions of pairs
    columns: dict[str, list[Any]] = {"source_row": [], "location": [], "caption": []}
    bad: list[BadRow] = []
    first_row_of_url: dict[str, int] = {}
    for item in source.read(path, root):
        if max_pairs is not None and len(columns["source_row"]) >= max_pairs:
            break
        if isinstance(item, BadRow):
            bad.append(item)
            continue
        problem = _caption_problem(item.caption)
        if problem is not None:
            bad.append(BadRow(item.source_row, item.caption_field, *problem))
            continue
        if source.local:
            location, problem = _local_image(item.location, root)
        else:
            location, problem = item.location, _url_problem(item.location)
            if problem is None and location in first_row_of_url:
                problem = "duplicate url", f"first at row {first_row_of_url[location]}"
        if problem is not None:
            bad.append(BadRow(item.source_row, item.location_field, *problem))
            continue
        if not source.local:
            first_row_of_url[location] = item.source_row
        columns["source_row"].append(item.source_row)
        columns["location"].append(location)
        columns["caption"].append(item.caption)
    locations = pd.Series(columns["location"], dtype=object)
    manifest = pd.DataFrame(
        {
            "source_row": pd.Series(columns["source_row"], dtype="int64"),
            "url": _pair_urls(locations) if source.local else locations,
            "image": locations if source.local else "",
            "caption": pd.Series(columns["caption"], dtype=object),
        },
        columns=MANIFEST_COLUMNS,
    )
    bad_rows = pd.DataFrame(
        [(b.source_row, "read", b.field, b.reason, b.detail) for b in bad], columns=BAD_ROW_COLUMNS
    )
    return SourceTable(manifest, bad_rows.astype({"source_row": "int64"}), source.local)


def _local_image(location: Any, root: Path) -> tuple[str, tuple[str, str] | None]:
    """The absolute path of a local image, and why it cannot be used (or None)."""
    if not isinstance(location, str) or not location:
        return "", ("missing image path", "")
    path = os.path.abspath(os.path.join(root, location))
    missing = local_image_problem(path)
    return path, None if missing is None else ("missing image file", missing)


def _pair_urls(images: pd.Series) -> pd.Series:
    """The image path, plus ``#k`` for the k-th pair of an image that has several."""
    counts = images.value_counts()
    seen: dict[str, int] = {}
    urls = []
    for image in images:
        if counts[image] == 1:
            urls.append(image)
        else:
            seen[image] = seen.get(image, 0) + 1
            urls.append(f"{image}#{seen[image]}")
    return pd.Series(urls, index=images.index, dtype=object)


# --- text formats ---------------------------------------------------------------------------


def _lines(path: Path) -> Iterator[tuple[int, str | None]]:
    """``(line number, text)``; text None for a line that is not UTF-8. Only ``\\n`` ends a
    line (a stray ``\\r`` inside a caption does not split it)."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            try:
                yield number, raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                yield number, None


def _two_column_tsv(path: Path, columns: tuple[str, str]) -> Iterator[Item]:
    for number, line in _lines(path):
        if line is None:
            yield BadRow(number, "line", "malformed line", "not UTF-8")
            continue
        if not line.strip():
            continue  # a blank line holds no pair
        fields = line.split("\t")
        if number == 1 and tuple(fields) == columns:
            continue
        if len(fields) != 2:
            yield BadRow(
                number,
                "line",
                "malformed line",
                f"expected 2 tab-separated fields ({', '.join(columns)}), got {len(fields)}",
            )
            continue
        record = dict(zip(columns, fields, strict=True))
        yield Pair(number, record["caption"], "caption", record["url"], "url")


@register("cc3m_tsv", local=False)
def read_cc3m_tsv(path: Path, images_root: Path) -> Iterator[Item]:
    return _two_column_tsv(path, ("caption", "url"))


@register("cc12m_tsv", local=False)
def read_cc12m_tsv(path: Path, images_root: Path) -> Iterator[Item]:
    return _two_column_tsv(path, ("url", "caption"))


class _ReplayableLines:
    """The lines of a file for ``csv.reader``, numbered, decoded as UTF-8 with undecodable bytes
    kept as surrogates (so one bad row does not stop the file). After a record that is not
    valid csv, :meth:`reject_record` hands the record's lines but its first out again: a quote
    that is never closed then loses its own row only, not the rows it swallowed."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle
        self._replay: deque[str] = deque()
        self._record: list[str] = []
        self.next_number = 1  # the line number of the next line handed out
        self.record_start = 1

    def __iter__(self) -> _ReplayableLines:
        return self

    def __next__(self) -> str:
        line = self._replay.popleft() if self._replay else next(self._handle)
        if isinstance(line, bytes):
            line = line.decode("utf-8", "surrogateescape")
        self._record.append(line)
        self.next_number += 1
        return line

    def start_record(self) -> None:
        self._record, self.record_start = [], self.next_number

    def reject_record(self) -> None:
        self._replay.extendleft(reversed(self._record[1:]))
        self.next_number = self.record_start + 1


_UNDECODABLE = re.compile("[\udc80-\udcff]")  # the surrogates that stand for non-UTF-8 bytes


def _csv_records(
    path: Path, delimiter: str, required: Callable[[list[str]], str | None]
) -> Iterator[tuple[int, dict[str, str] | BadRow]]:
    """Records of a delimited file with a header, as pandas (SimCLIP, open_clip's csv) reads it:
    ``"`` quoting, a short row's missing values None, a long row an error (a bad row here).
    ``required(header)`` names what the header lacks, if anything. Rows are numbered by the
    line they start on (the header is line 1). A row that is not UTF-8, or not valid csv (a
    quote never closed, text after a closing quote), is a bad row; reading goes on with the
    next line."""
    with open(path, "rb") as handle:
        lines = _ReplayableLines(handle)
        reader = csv.reader(lines, delimiter=delimiter, strict=True)
        try:
            header = next(reader, None)
        except csv.Error as error:
            raise SourceFormatError(path, "header", str(error)) from None
        if header is None:
            raise SourceFormatError(path, "header", "the file is empty")
        if _UNDECODABLE.search("".join(header)):
            raise SourceFormatError(path, "header", "not UTF-8")
        missing = required(header)
        if missing:
            raise SourceFormatError(path, "header", f"{missing}; got {header}")
        while True:
            lines.start_record()
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                row = lines.record_start
                lines.reject_record()
                yield row, BadRow(row, "line", "malformed line", f"not valid csv ({error})")
                continue
            row = lines.record_start
            if not any(f.strip() for f in fields):
                continue  # a blank line holds no pair
            if _UNDECODABLE.search("".join(fields)):
                yield row, BadRow(row, "line", "malformed line", "not UTF-8")
                continue
            if len(fields) > len(header):
                detail = f"expected {len(header)} fields ({', '.join(header)}), got {len(fields)}"
                yield row, BadRow(row, "line", "malformed line", detail)
                continue
            # a short row lacks its last values, as pandas reads it (NaN there)
            yield (
                row,
                dict(zip(header, fields + [None] * (len(header) - len(fields)), strict=True)),
            )


@register("helip_csv", local=True)
def read_helip_csv(path: Path, images_root: Path) -> Iterator[Item]:
    def required(header: list[str]) -> str | None:
        lacking = [c for c in ("filepath", "title") if c not in header]
        return f"needs column(s) {', '.join(lacking)} (HELIP's csv keys)" if lacking else None

    for row, record in _csv_records(path, ",", required):
        if isinstance(record, BadRow):
            yield record
        else:
            yield Pair(row, record["title"], "title", record["filepath"], "filepath")


_SIMCLIP_CAPTION = re.compile(r"caption\d+")


@register("simclip_tsv", local=True)
def read_simclip_tsv(path: Path, images_root: Path) -> Iterator[Item]:
    def required(header: list[str]) -> str | None:
        if "image" not in header:
            return "needs an image column"
        if not any(_SIMCLIP_CAPTION.fullmatch(c) for c in header):
            return "needs caption1, caption2, ... columns"
        return None

    for row, record in _csv_records(path, "\t", required):
        if isinstance(record, BadRow):
            yield record
            continue
        for column, caption in record.items():
            if _SIMCLIP_CAPTION.fullmatch(column):
                yield Pair(row, caption, column, record["image"], "image")


# --- JSON formats ---------------------------------------------------------------------------


def _load_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise SourceFormatError(path, "file", f"not JSON ({error})") from None


@register("coco_captions", local=True)
def read_coco_captions(path: Path, images_root: Path) -> Iterator[Item]:
    data = _load_json(path)
    if not isinstance(data, dict):
        raise SourceFormatError(path, "top level", "expected an object with images, annotations")
    for key in ("images", "annotations"):
        if not isinstance(data.get(key), list):
            raise SourceFormatError(path, key, "missing or not a list")
    file_names = {
        image["id"]: image.get("file_name")
        for image in data["images"]
        if isinstance(image, dict) and "id" in image
    }
    for number, annotation in enumerate(data["annotations"], 1):
        if not isinstance(annotation, dict):
            yield BadRow(number, "annotation", "malformed record", "not an object")
        elif annotation.get("image_id") not in file_names:
            detail = f"no image with id {annotation.get('image_id')!r}"
            yield BadRow(number, "image_id", "malformed record", detail)
        else:
            file_name = file_names[annotation["image_id"]]
            yield Pair(number, annotation.get("caption"), "caption", file_name, "file_name")


@register("isogclr_json", local=True)
def read_isogclr_json(path: Path, images_root: Path) -> Iterator[Item]:
    data = _load_json(path)
    if not isinstance(data, list):
        raise SourceFormatError(path, "top level", "expected a list of {image, caption} records")
    for number, record in enumerate(data, 1):
        if not isinstance(record, dict):
            yield BadRow(number, "record", "malformed record", "not an object")
            continue
        captions = record.get("caption")
        if isinstance(captions, list) and captions:
            for k, caption in enumerate(captions):
                yield Pair(number, caption, f"caption[{k}]", record.get("image"), "image")
        else:
            yield Pair(number, captions, "caption", record.get("image"), "image")


# --- pickled formats (clip-rocket) ----------------------------------------------------------


class _AllowListUnpickler(pickle.Unpickler):
    """Resolves only the globals it is given: the published clip-rocket files are pickles (an
    object array, a list of tuples), and an allow-list keeps loading them from running code."""

    def __init__(self, handle: Any, allowed: frozenset[tuple[str, str]]) -> None:
        super().__init__(handle)
        self.allowed = allowed

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.allowed:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        return super().find_class(module, name)


def load_object_npy(path: Path) -> np.ndarray:
    """A 1-d object array saved with ``np.save`` (clip-rocket's ``cc3m.npy``/``cc12m.npy``).

    The published format is a pickle (``np.load`` needs ``allow_pickle=True`` for it); instead
    of that, the header is checked here and the payload unpickled with an allow-list of numpy's
    array-reconstruction globals, which every legitimate file of this format satisfies.
    """
    with open(path, "rb") as handle:
        try:
            version = np.lib.format.read_magic(handle)
            read_header = {
                (1, 0): np.lib.format.read_array_header_1_0,
                (2, 0): np.lib.format.read_array_header_2_0,
            }.get(version)
            if read_header is None:
                raise ValueError(f"npy version {version} not supported")
            shape, _, dtype = read_header(handle)
        except ValueError as error:
            raise SourceFormatError(path, "header", f"not a .npy file ({error})") from None
        if dtype != np.dtype(object) or len(shape) != 1:
            raise SourceFormatError(
                path, "array", f"expected a 1-d object array of dicts, got {dtype} {shape}"
            )
        try:
            array = _AllowListUnpickler(handle, _NUMPY_PICKLE_GLOBALS).load()
        except Exception as error:  # malformed pickle bytes can raise almost any exception type
            raise SourceFormatError(path, "array", f"cannot be unpickled ({error})") from None
    if not isinstance(array, np.ndarray) or array.shape != tuple(shape):
        raise SourceFormatError(path, "array", "payload does not match the header")
    return array


@register("rocket_npy", local=True)
def read_rocket_npy(path: Path, images_root: Path) -> Iterator[Item]:
    for number, record in enumerate(load_object_npy(path), 1):
        if not isinstance(record, dict):
            yield BadRow(
                number, "record", "malformed record", f"not a dict: {type(record).__name__}"
            )
            continue
        # CC12M dicts name the file in image_name (their image_id is a counter), CC3M's in image_id
        field = "image_name" if "image_name" in record else "image_id"
        image = str(record[field]) if field in record else None
        captions = record.get("captions")
        if not isinstance(captions, list | tuple | np.ndarray) or len(captions) == 0:
            yield BadRow(number, "captions", "missing caption", "expected a non-empty list")
            continue
        for k, caption in enumerate(captions):
            yield Pair(number, caption, f"captions[{k}]", image, field)


@register("yfcc15m_rocket", local=True)
def read_yfcc15m_rocket(path: Path, images_root: Path) -> Iterator[Item]:
    try:
        with open(path, "rb") as handle:
            records = _AllowListUnpickler(handle, frozenset()).load()
    except Exception as error:  # malformed pickle bytes can raise almost any exception type
        raise SourceFormatError(path, "file", f"cannot be unpickled ({error})") from None
    if not isinstance(records, list):
        raise SourceFormatError(path, "top level", "expected a list of (id, title, description)")
    for number, record in enumerate(records, 1):
        if (
            not isinstance(record, tuple | list)
            or len(record) != 3
            or not isinstance(record[0], int)
            or not 0 <= record[0] < 10**8
        ):
            detail = f"expected (photo id < 10^8, title, description), got {record!r}"[:200]
            yield BadRow(number, "record", "malformed record", detail)
            continue
        digits = f"{record[0]:08d}"
        image = os.path.join("images", digits[:2], f"{digits[2:5]}.zip", f"{digits[5:]}.jpg")
        captions = [
            (f, c) for f, c in zip(("title", "description"), record[1:], strict=True) if c != ""
        ]
        if not captions:
            yield BadRow(number, "title, description", "missing caption", "both empty")
        for field, caption in captions:
            yield Pair(number, caption, field, image, "photo id")
