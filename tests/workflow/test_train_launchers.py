"""The train rule's launcher and cluster request follow `resources.train` and `train_launcher`."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

from tests.conftest import PYTHON, REPO

TARGET = "results/default/runs/clip/seed0/model_final.pt"


def _plan(config: str, folder: Path) -> str:
    """`snakemake -n -p` of the clip run in the repository, with `config` as an override file."""
    override = folder / "override.yaml"
    override.write_text(config)
    plan = subprocess.run(
        [PYTHON, "-m", "snakemake", "-n", "-p", "-F", TARGET, "--configfile", str(override)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert plan.returncode == 0, plan.stdout + plan.stderr
    (train,) = re.findall(r"^((?:local)?rule train:\n.*?)\n\n", plan.stdout, flags=re.S | re.M)
    return train


def test_several_tasks_run_as_ranks_and_ask_slurm_for_them(tmp_path: Path) -> None:
    train = _plan(
        "resources:\n  train:\n    tasks: 4\n    nodes: 2\n    gpus: 4\n    threads: 3\n"
        "    qos: high\n"
        "    slurm_extra: '--signal=USR1@120'\n",
        tmp_path,
    )
    assert "python -m clipflow.launch --tasks 4 -- workflow_scripts/train.py" in train
    assert "--threads 3 " in train  # per rank; the job's 12 threads are the scheduler's count
    resources = re.search(r"resources: (.*)", train).group(1)
    # one rank per GPU: left unset, the plugin would ask for `tasks` tasks per GPU
    expected_resources = ("tasks=4", "mpi=srun", "cpus_per_task=3", "nodes=2", "gpu=4")
    for expected in (*expected_resources, "tasks_per_gpu=1", "qos=high"):
        assert expected in resources.split(", "), resources
    assert "slurm_extra=--signal=USR1@120" in resources


def test_one_task_is_a_plain_job(tmp_path: Path) -> None:
    train = _plan("train:\n  epochs: 1\n", tmp_path)
    assert "python -m clipflow.launch --tasks 1 --" in train
    assert "mpi=" not in train and "tasks=" not in train


def test_submitit_launcher_passes_the_job_shape_per_node(tmp_path: Path) -> None:
    train = _plan(
        "train_launcher: submitit\nresources:\n  train:\n    tasks: 8\n    nodes: 2\n"
        "    gpus: 8\n    runtime: 240\n    mem_mb: 64000\n    slurm_partition: gpu\n",
        tmp_path,
    )
    (command,) = [line for line in train.splitlines() if "--launcher submitit" in line]
    words = shlex.split(command.removeprefix("Shell command: ").split(">")[0])
    options = json.loads(words[words.index("--submitit-options") + 1])
    assert options == {
        "folder": "results/default/checkpoints/clip/seed0/submitit",
        "timeout_min": 240,
        "nodes": 2,
        "tasks_per_node": 4,
        "gpus_per_node": 4,
        "cpus_per_task": 1,
        "mem_gb": 64.0,
        "slurm_partition": "gpu",
        "slurm_account": None,
        "slurm_qos": None,
    }
    assert words[:2] == ["python", "workflow_scripts/train.py"] and "--device" in words
    assert words[words.index("--device") + 1] == "cuda"
