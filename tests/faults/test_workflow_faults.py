"""Items 4 and 9, on a scratch copy of the workflow whose outputs all exist and are up to date
(made with `--touch`, no job runs): a model lost to a failed forced retrain is made again by
`all`, and a second snakemake process gets snakemake's lock message."""

import base64
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import PYTHON, REPO

pytestmark = pytest.mark.slow
WORKFLOW_FILES = ["Snakefile", "rules", "config", "workflow_scripts", "envs", "report"]
RESULTS = "results/default_tiny"


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, "-m", "snakemake", "--cores", "1", "--config", "scale=tiny", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def finished_workflow(tmp_path):
    for name in WORKFLOW_FILES:
        source = REPO / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, tmp_path / name)
    plan = snakemake(tmp_path, "-n")
    assert plan.returncode == 0, plan.stderr
    for line in re.findall(r"^\s+output: (.+)$", plan.stdout, re.M):
        for output in line.split(", "):
            path = tmp_path / output
            if "." in path.name:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
            else:  # a directory() output: shards, synthetic benchmarks
                path.mkdir(parents=True, exist_ok=True)
    touched = snakemake(tmp_path, "--touch")
    assert touched.returncode == 0, touched.stderr
    assert "Nothing to be done" in snakemake(tmp_path, "-n").stdout
    return tmp_path


def test_model_lost_to_a_failed_retrain_is_trained_again(finished_workflow):
    # a forced retrain that failed: snakemake removed the job's outputs, the rest is up to date
    (finished_workflow / RESULTS / "runs" / "sogclr" / "seed0" / "model_final.pt").unlink()
    plan = snakemake(finished_workflow, "-n")
    assert "Nothing to be done" not in plan.stdout
    assert re.search(r"^train\s+1$", plan.stdout, re.M), plan.stdout[-3000:]


def _mark_incomplete(workdir: Path, key: str) -> None:
    """Snakemake's own marker (persistence/file.py) for an output whose job is running."""
    marker = workdir / ".snakemake" / "incomplete" / base64.urlsafe_b64encode(key.encode()).decode()
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text('{"external_jobid": null}')


def test_second_process_gets_the_lock_message(finished_workflow):
    # what a first `snakemake` leaves while its train job of run clip is writing the outputs:
    # its locks, and the job's outputs marked incomplete (persistence/file.py's formats)
    outputs = [f"{RESULTS}/runs/clip/seed0/{name}" for name in ("model_final.pt", "train_log.csv")]
    locks = finished_workflow / ".snakemake" / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    (locks / "0.output.lock").write_text("\n".join(outputs) + "\n")
    for output in outputs:
        _mark_incomplete(finished_workflow, output)
    second = snakemake(finished_workflow)
    assert second.returncode != 0
    assert "Directory cannot be locked" in second.stderr
    assert "rerun-incomplete" not in second.stderr + second.stdout
