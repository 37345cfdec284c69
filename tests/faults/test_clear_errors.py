"""Item 8: an unusable checkpoint and a full disk each fail in one line naming the path, and a
workflow script prints that line alone, without a traceback."""

import errno
import subprocess
import sys

import pandas as pd
import pytest
import torch

from clipflow.errors import DiskFullError
from clipflow.io import write_json, write_with
from clipflow.models import CheckpointError, create_model, load_checkpoint, save_checkpoint
from tests.conftest import REPO

MODEL = "clipflow-tiny-vit"


@pytest.fixture(scope="module")
def tiny_state():
    return create_model(MODEL, seed=0).model.state_dict()


def _one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def test_checkpoint_of_another_architecture_names_the_path(tiny_state, tmp_path):
    other = {**tiny_state, "positional_embedding": torch.zeros(3, 5)}  # another text length/width
    path = save_checkpoint({"state_dict": other}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError) as error:
        create_model(MODEL, pretrained=path)
    message = _one_line(error)
    assert message.startswith(f"cannot load checkpoint {path} into {MODEL}: ")
    assert "pos_embed" in message  # open_clip's own words for the mismatch


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04broken zip"])
def test_unreadable_checkpoint_names_the_path(content, tmp_path):
    path = tmp_path / "model_final.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path)
    assert _one_line(error).startswith(f"cannot load checkpoint {path}: ")
    with pytest.raises(CheckpointError) as error:
        create_model(MODEL, pretrained=path)
    assert _one_line(error).startswith(f"cannot load checkpoint {path} into {MODEL}: ")


class _Payload:
    def __reduce__(self):
        return (print, ("ran",))


def test_refused_pickle_says_which_global(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"x": _Payload()}, path)
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path)
    message = _one_line(error)
    assert message.startswith(f"cannot load checkpoint {path}: ") and "GLOBAL print" in message


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_full_disk_names_the_path(tmp_path, monkeypatch):
    target = tmp_path / "out" / "pairs.parquet"
    with pytest.raises(DiskFullError) as error:
        write_with(target, _no_space)
    assert str(error.value) == f"no space left on device writing {target}"
    assert error.value.errno == errno.ENOSPC and not list(target.parent.iterdir())
    monkeypatch.setattr(torch, "save", _no_space)
    with pytest.raises(DiskFullError, match=f"^no space left on device writing {tmp_path}/m.pt$"):
        save_checkpoint({}, tmp_path / "m.pt")
    write_json(tmp_path / "fine.json", {"a": 1})  # other errors and writes are untouched


def test_script_on_a_full_disk_prints_one_line(tiny_download, tmp_path):
    """build_metadata.py whose parquet write finds the disk full (injected into pandas)."""
    output = tmp_path / "pairs.parquet"
    script = REPO / "workflow_scripts" / "build_metadata.py"
    inject = (
        "import errno, runpy, sys, pandas\n"
        "def full(*a, **k): raise OSError(errno.ENOSPC, 'No space left on device')\n"
        "pandas.DataFrame.to_parquet = full\n"
        f"sys.argv = ['build_metadata.py', '--shards', {str(tiny_download['shards'])!r},"
        f" '--output', {str(output)!r}, '--url-index', {str(tmp_path / 'index.json')!r}]\n"
        f"runpy.run_path({str(script)!r}, run_name='__main__')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", inject], capture_output=True, text=True, check=False
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: no space left on device writing {output}"
    )
    assert pd.Series(list(tmp_path.iterdir())).empty
