"""Items 3 and 8: the metadata index does not depend on the order img2dataset's threads wrote a
shard's samples; a truncated shard or a missing member fails in one line naming it."""

import io
import json
import subprocess
import sys
import tarfile

import pandas as pd
import pytest
from PIL import Image

from clipflow.data.metadata import build_metadata
from clipflow.data.shards import ShardError, ShardImages
from tests.conftest import REPO


def _png(shade: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (shade, 0, 0)).save(buffer, format="PNG")
    return buffer.getvalue()


def _write_shard(path, keys):
    """An img2dataset-like shard: ``key.png`` and ``key.json`` per sample, in ``keys`` order."""
    with tarfile.open(path, "w") as tar:
        for key in keys:
            meta = {"key": key, "url": f"http://x/{key}.png", "caption": f"c{key}"}
            meta["status"] = "success"
            for name, data in ((f"{key}.png", _png(int(key) % 250)), (f"{key}.json", b"")):
                data = data or json.dumps(meta).encode()
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


KEYS = [f"{i:09d}" for i in range(12)]


def test_metadata_is_the_same_whatever_order_the_threads_finished(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _write_shard(tmp_path / "a" / "00000.tar", KEYS)
    finished = [KEYS[i] for i in (5, 0, 11, 3, 1, 9, 2, 7, 4, 10, 6, 8)]
    _write_shard(tmp_path / "b" / "00000.tar", finished)
    in_order, shuffled = build_metadata(tmp_path / "a"), build_metadata(tmp_path / "b")
    pd.testing.assert_frame_equal(in_order, shuffled)
    assert list(shuffled["key"]) == KEYS and list(shuffled["index"]) == list(range(12))


@pytest.fixture
def shard(tmp_path):
    folder = tmp_path / "shards"
    folder.mkdir()
    _write_shard(folder / "00000.tar", KEYS)
    return folder / "00000.tar"


def _cut(path, size):
    path.write_bytes(path.read_bytes()[:size])


def test_truncated_shard_inside_a_member_names_the_shard(shard):
    _cut(shard, shard.stat().st_size // 2 + 100)
    for read in (
        lambda: build_metadata(shard.parent),
        lambda: ShardImages(shard.parent, [shard.name]),
    ):
        with pytest.raises(ShardError, match=rf"^{shard}: truncated or unreadable shard \("):
            read()


def test_truncated_shard_between_members_names_the_shard(shard):
    with tarfile.open(shard) as tar:
        members = tar.getmembers()
    _cut(shard, members[6].offset)  # the header of sample 3's image is the first thing lost
    with pytest.raises(ShardError, match=r"no end-of-archive marker"):
        build_metadata(shard.parent)


def test_missing_member_names_the_key(shard):
    images = ShardImages(shard.parent, [shard.name])
    assert images[shard.name, KEYS[4]].size == (8, 8)
    with pytest.raises(ShardError) as error:
        images[shard.name, "000000099"]
    assert str(error.value) == f"{shard}: no image for key '000000099'"


def test_workflow_script_prints_one_line_not_a_traceback(shard, tmp_path):
    _cut(shard, shard.stat().st_size // 2 + 100)
    done = subprocess.run(
        [
            sys.executable,
            REPO / "workflow_scripts" / "build_metadata.py",
            "--shards",
            shard.parent,
            "--output",
            tmp_path / "pairs.parquet",
            "--url-index",
            tmp_path / "index.json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(f"error: {shard}: truncated")
