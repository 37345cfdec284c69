"""How the train rule starts its ranks, and when a stopped job asks SLURM to run it again."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from clipflow.launch import launch_command
from clipflow.training.preemption import requeue_slurm_job

SCRIPT = ["workflow_scripts/train.py", "--threads", "1"]


def test_one_task_runs_the_script_itself() -> None:
    assert launch_command(1, SCRIPT, {"SLURM_JOB_ID": "7"}) == [sys.executable, *SCRIPT]


def test_ranks_use_srun_inside_slurm_and_torchrun_elsewhere() -> None:
    assert launch_command(4, SCRIPT, {"SLURM_JOB_ID": "7"}) == [
        "srun",
        "--ntasks=4",
        "--kill-on-bad-exit=1",
        sys.executable,
        *SCRIPT,
    ]
    assert launch_command(2, SCRIPT, {}) == [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node=2",
        *SCRIPT,
    ]


def test_bad_task_counts_and_missing_script_are_one_line_errors() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        launch_command(0, SCRIPT, {})
    done = subprocess.run(
        [sys.executable, "-m", "clipflow.launch", "--tasks", "2"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "no script to launch" in done.stderr


def test_launcher_execs_the_script_with_its_arguments(tmp_path) -> None:
    script = tmp_path / "echo_args.py"
    script.write_text("import sys; print(sys.argv[1:]); sys.exit(5)")
    done = subprocess.run(
        [sys.executable, "-m", "clipflow.launch", "--", str(script), "--x", "a b"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 5 and done.stdout.strip() == "['--x', 'a b']"


@pytest.mark.parametrize(
    ("signum", "environ", "requeued"),
    [
        (signal.SIGUSR1, {"SLURM_JOB_ID": "42"}, True),
        (signal.SIGUSR2, {"SLURM_JOB_ID": "42"}, True),
        # SIGTERM: SLURM requeues a preempted job itself, and a cancelled one must stay cancelled
        (signal.SIGTERM, {"SLURM_JOB_ID": "42"}, False),
        (signal.SIGUSR1, {}, False),
    ],
)
def test_only_time_limit_signals_inside_slurm_requeue(signum, environ, requeued) -> None:
    calls = []
    assert requeue_slurm_job(signum, environ, run=lambda *a, **k: calls.append((a, k))) is requeued
    assert calls == ([((["scontrol", "requeue", "42"],), {"check": True})] if requeued else [])
