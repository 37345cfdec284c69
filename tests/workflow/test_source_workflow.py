"""A real source in `data:` replaces the synthetic data in the plan; everything downstream stays."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.conftest import PYTHON, REPO

FIXTURES = REPO / "tests" / "data" / "fixtures" / "sources"
WORKFLOW_FILES = ["Snakefile", "rules", "config", "workflow_scripts", "envs", "report"]


def _dry_run(workdir: Path, data: str) -> subprocess.CompletedProcess:
    for name in WORKFLOW_FILES:
        source = REPO / name
        if not (workdir / name).exists():
            (shutil.copytree if source.is_dir() else shutil.copy)(source, workdir / name)
    (workdir / "source.yaml").write_text(data)
    return subprocess.run(
        [PYTHON, "-m", "snakemake", "-n", "-p", "all", "--configfile", "source.yaml"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_local_source_is_packed_by_the_download_rule(tmp_path):
    plan = _dry_run(
        tmp_path,
        f"data:\n  source: simclip_tsv\n  path: {FIXTURES / 'simclip.tsv'}\n"
        f"  images_root: {FIXTURES / 'images'}\n  max_pairs: 5\n",
    )
    assert plan.returncode == 0, plan.stderr
    table = plan.stdout.split("Job stats:", 1)[1]
    assert "synthesize_dataset" not in table and "\ndownload " in table
    (command,) = [line for line in plan.stdout.splitlines() if "workflow_scripts/ingest.py" in line]
    assert f"--source simclip_tsv --path {FIXTURES / 'simclip.tsv'}" in command
    assert f"--images-root {FIXTURES / 'images'} --max-pairs 5" in command
    assert "--bad-rows results/default/download/bad_rows.csv" in command


def test_real_source_without_path_fails_in_one_line(tmp_path):
    plan = _dry_run(tmp_path, "data:\n  source: cc3m_tsv\n")
    assert plan.returncode != 0
    assert "config key data: 'path' is a required property" in plan.stdout + plan.stderr
