"""HELIP's hard-sample CSV and dict JSON (docs/formats.md, HELIP): written, then parsed back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from clipflow.mining import (
    read_hard_sample_csv,
    read_hard_sample_dict,
    write_helip_outputs,
)


def test_csv_and_dict_parse_back_and_agree(tmp_path: Path) -> None:
    hard = np.array([[2, 1, -1], [0, 2, 3], [3, -1, -1], [1, 0, 2]])  # positions, -1 padded
    ids = np.array([10, 11, 15, 17])  # url index of each position
    csv_path, dict_path = tmp_path / "syn_hard_sample.csv", tmp_path / "syn_hard_sample_dict.json"
    write_helip_outputs(hard, ids, csv_path, dict_path)

    raw = csv_path.read_bytes()
    assert raw == b"10,15,11\r\n11,10,15,17\r\n15,17\r\n17,11,10,15\r\n"  # no header, CRLF
    expected = {10: [15, 11], 11: [10, 15, 17], 15: [17], 17: [11, 10, 15]}
    assert read_hard_sample_csv(csv_path) == expected
    assert read_hard_sample_dict(dict_path) == expected
    assert list(json.loads(dict_path.read_text())) == ["10", "11", "15", "17"]  # anchor order


def test_helip_trainer_reading_matches(tmp_path: Path) -> None:
    # HELIP's data.py: csv.reader -> {int(row[0]): [int(x) for x in row[1:]]}
    import csv

    hard = np.random.default_rng(0).integers(0, 50, size=(50, 7))
    write_helip_outputs(hard, np.arange(100, 150), tmp_path / "a.csv", tmp_path / "a.json")
    with open(tmp_path / "a.csv") as handle:  # no newline="": as HELIP opens it
        helip = {int(row[0]): [int(x) for x in row[1:]] for row in csv.reader(handle)}
    assert helip == read_hard_sample_csv(tmp_path / "a.csv")
    assert all(len(v) == 7 for v in helip.values())


def test_bad_files_name_the_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("1,2,3\r\n4,x,6\r\n")
    with pytest.raises(ValueError, match=r"bad.csv: line 2: non-integer entry"):
        read_hard_sample_csv(bad)
    with pytest.raises(ValueError, match="do not match 2 anchor ids"):
        write_helip_outputs(np.zeros((3, 2), int), np.arange(2), bad, tmp_path / "d.json")
    with pytest.raises(ValueError, match="outside"):
        write_helip_outputs(np.full((2, 2), 5), np.arange(2), bad, tmp_path / "d.json")
