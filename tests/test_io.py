"""The parquet reader every stage uses must let the interpreter exit with its own status."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

from clipflow.io import read_parquet

ROOT = Path(__file__).resolve().parents[1]

EXIT_AFTER_READ = """
import sys
from clipflow.io import read_parquet
read_parquet(sys.argv[1])
sys.exit("read it")  # an error message on exit, as the stage scripts do
"""


def test_read_parquet_round_trips_columns(tmp_path: Path) -> None:
    frame = pd.DataFrame({"index": [4, 7], "caption": ["a dog", "a cat"], "score": [0.5, 1.5]})
    frame.to_parquet(tmp_path / "t.parquet", index=False)
    pd.testing.assert_frame_equal(read_parquet(tmp_path / "t.parquet"), frame)
    assert list(read_parquet(tmp_path / "t.parquet", columns=["caption"]).columns) == ["caption"]


def test_process_exits_cleanly_after_a_read(tmp_path: Path) -> None:
    # With pd.read_parquet (a Python file object to pyarrow) 5-20% of such runs died of SIGABRT
    # at exit here, depending on load; ten runs catch that only often, hence the scan below.
    pd.DataFrame({"index": range(3), "x": [1, 2, 3]}).to_parquet(tmp_path / "t.parquet")
    codes = [
        subprocess.run(
            [sys.executable, "-c", EXIT_AFTER_READ, str(tmp_path / "t.parquet")],
            capture_output=True,
        ).returncode
        for _ in range(10)
    ]
    assert codes == [1] * 10


def test_no_stage_reads_parquet_through_pandas() -> None:
    # The abort is a race, so the test above can miss it; this one cannot.
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for folder in ("lib", "workflow_scripts", "benchmarks")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "pd.read_parquet(" in line
    ]
    assert offenders == []
