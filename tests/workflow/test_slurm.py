"""Run workflows through a real single-node SLURM cluster via the repo's `slurm/` profile.

The `slurm_cluster` fixture (tests/conftest.py) starts the cluster. Two tests:

* a tiny self-contained Snakefile (proves cluster + profile + environment propagation,
  independent of the real workflow), and
* the repository's workflow, `snakemake --profile slurm all`, in a copy of the repo's
  workflow files so that its results do not clash with a local run.

Both check through `sacct` that every job snakemake submitted ran and is COMPLETED. A third
trains with the submitit launcher, stops it with submitit's signal and sees it requeued.
Outside CI they skip (with the reason) where the cluster cannot be started; in CI
(`CI` set) that is a failure instead.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from clipflow.models import load_checkpoint
from clipflow.training import TrainConfig, TrainOutputs
from clipflow.training.request import TrainingRequest
from clipflow.training.submitit_launch import SubmititOptions, submit

# One module, so that one pytest-xdist worker (--dist=loadscope) holds the cluster.
pytestmark = [pytest.mark.slurm, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "slurm"

# What the workflow test copies into its run directory (those that exist).
WORKFLOW_ENTRIES = (
    "Snakefile",
    "workflow",
    "rules",
    "config",
    "workflow_scripts",
    "envs",
    "schemas",
    ".test",
    "slurm",
)
# Extra snakemake arguments for the workflow test (e.g. a fast config:
# ["--configfile", "config/ci.yaml"]); CLIPFLOW_SLURM_WORKFLOW_ARGS (shell words) overrides.
WORKFLOW_EXTRA_ARGS: list[str] = [
    "--configfile",
    str(Path(__file__).with_name("slurm_overrides.yaml")),
]
RUN_NAME = "default"  # results/<RUN_NAME>/... of the config the test runs
WORKFLOW_TIMEOUT_S = int(os.environ.get("CLIPFLOW_SLURM_WORKFLOW_TIMEOUT", "2700"))
TINY_TIMEOUT_S = int(os.environ.get("CLIPFLOW_SLURM_TINY_TIMEOUT", "300"))


# ----------------------------------------------------------------------------- helpers


def _env() -> dict[str, str]:
    """Environment for snakemake; SLURM jobs inherit it (`sbatch --export=ALL`).

    The venv's bin/ goes first on PATH so that `python ...` in a rule's shell
    command, run inside a SLURM job, is the interpreter running these tests.
    """
    env = dict(os.environ)
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([venv_bin, env.get("PATH", "")])
    env["NO_ALBUMENTATIONS_UPDATE"] = "1"
    env["HF_HUB_OFFLINE"] = "1"
    for key in [k for k in env if k.startswith("SLURM_")]:
        del env[key]  # never look like "running inside a SLURM job"
    return env


def _now() -> str:
    # one second of slack: sacct -S has second resolution
    return (dt.datetime.now() - dt.timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S")


def _tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _job_logs(workdir: Path) -> str:
    parts = []
    for log in sorted((workdir / ".snakemake" / "slurm_logs").glob("**/*.log")):
        parts.append(
            f"---- {log.relative_to(workdir)} ----\n{_tail(log.read_text(errors='replace'), 30)}"
        )
    return "\n".join(parts)


def run_snakemake(workdir: Path, targets: list[str], timeout_s: int, extra=()) -> tuple[int, str]:
    """`snakemake --profile slurm TARGETS` in WORKDIR; returns (exit code, output).

    Wrapped in `timeout -s INT` so that a hang ends with SIGINT, on which snakemake
    cancels its SLURM jobs (SIGKILL 60 s later if it does not exit).
    """
    log = workdir / "snakemake-slurm.log"
    cmd = [
        "timeout", "-s", "INT", "-k", "60", str(timeout_s),
        sys.executable, "-m", "snakemake", "--profile", "slurm", *targets, *extra,
    ]  # fmt: skip
    with log.open("w") as fh:
        proc = subprocess.run(
            cmd,
            cwd=workdir,
            env=_env(),
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    return proc.returncode, log.read_text(errors="replace")


def sacct_jobs(output: str, start: str) -> tuple[str, list[str], dict[str, tuple[str, str]]]:
    """Jobs of the snakemake run whose OUTPUT is given, as sacct reports them.

    The plugin names every job after the run's UUID ("SLURM run ID: ...") and puts
    "rule_<name>" in the comment. Returns (run id, submitted SLURM job ids,
    {job id: (state, comment)}); waits up to 30 s for accounting to catch up.
    """
    match = re.search(r"SLURM run ID: (\S+)", output)
    assert match, f"no 'SLURM run ID' in snakemake output:\n{_tail(output)}"
    run_id = match.group(1)
    submitted = re.findall(r"submitted with SLURM jobid (\d+)", output)
    cmd = [
        "sacct", "-n", "-X", "-P", "-S", start, "--name", run_id,
        "--format=JobID,JobName,State,Comment",
    ]  # fmt: skip
    deadline = time.monotonic() + 30
    while True:
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        jobs = {}
        for line in out.splitlines():
            job_id, _name, state, comment = (line.split("|") + ["", "", "", ""])[:4]
            jobs[job_id] = (state.split()[0] if state else "", comment)
        settled = all(jobs.get(j, ("",))[0] not in ("", "PENDING", "RUNNING") for j in submitted)
        if settled or time.monotonic() > deadline:
            return run_id, submitted, jobs
        time.sleep(1)


class TimeLimitSignal(threading.Thread):
    """Stops the train job mid-run as SLURM's ``--signal=USR1@<s>`` would, once its first
    checkpoint exists; the trainer checkpoints and requeues the job. SLURM holds a requeued job
    for about two minutes (BeginTime): the thread lifts the hold to keep the test short."""

    def __init__(self, checkpoint: Path, timeout_s: float = 600) -> None:
        super().__init__(daemon=True)
        self.checkpoint, self.timeout_s = checkpoint, timeout_s
        self.job_id: str | None = None
        self.events: list[str] = []

    def _train_job(self) -> str | None:
        out = subprocess.run(["squeue", "-h", "-o", "%i %k"], capture_output=True, text=True).stdout
        return next((line.split()[0] for line in out.splitlines() if "rule_train" in line), None)

    def _state(self) -> str:
        return subprocess.run(
            ["squeue", "-h", "-j", str(self.job_id), "-o", "%T"], capture_output=True, text=True
        ).stdout.strip()

    def run(self) -> None:
        deadline = time.monotonic() + self.timeout_s
        while not self.checkpoint.exists() or (job := self._train_job()) is None:
            if time.monotonic() > deadline:
                return
            time.sleep(0.3)
        self.job_id = job
        subprocess.run(["scancel", "--signal=USR1", job], check=True)
        self.events.append("signalled")
        while self._state() != "PENDING":
            if time.monotonic() > deadline:
                return
            time.sleep(0.5)
        self.events.append("requeued")
        subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], check=True)


# ----------------------------------------------------------------------------- fixture


# ----------------------------------------------------------------------------- tests

TINY_SNAKEFILE = """
SHARDS = ["s1", "s2"]

rule all:
    input:
        "out/gathered.txt",

rule make_shard:
    output:
        "out/{shard}.txt",
    shell:
        "{{ python -c 'import sys; print(sys.prefix)'; echo job=$SLURM_JOB_ID; }} > {output}"

rule gather:
    input:
        expand("out/{shard}.txt", shard=SHARDS),
    output:
        "out/gathered.txt",
    threads: 2
    shell:
        "cat {input} > {output}; echo cpus=$SLURM_CPUS_PER_TASK >> {output}"
"""


def test_tiny_workflow_runs_on_slurm(slurm_cluster, tmp_path):
    """Two rules (three jobs, two of them concurrent) through the repo's profile."""
    (tmp_path / "Snakefile").write_text(TINY_SNAKEFILE)
    shutil.copytree(PROFILE, tmp_path / "slurm")
    start = _now()

    rc, output = run_snakemake(tmp_path, ["all"], TINY_TIMEOUT_S)

    assert rc == 0, f"snakemake exited {rc}:\n{_tail(output)}\n{_job_logs(tmp_path)}"
    gathered = (tmp_path / "out" / "gathered.txt").read_text()
    # `python` inside the SLURM job is this venv's interpreter (PATH propagated) ...
    assert gathered.count(sys.prefix) == 2, gathered
    # ... the shards ran as SLURM jobs, and gather got the CPUs its threads asked for.
    assert len(re.findall(r"^job=\d+$", gathered, flags=re.M)) == 2, gathered
    assert "cpus=2" in gathered, gathered

    run_id, submitted, jobs = sacct_jobs(output, start)
    assert len(submitted) == 3, output
    assert set(jobs) == set(submitted), (run_id, submitted, jobs)
    assert {state for state, _ in jobs.values()} == {"COMPLETED"}, jobs
    comments = sorted(comment for _, comment in jobs.values())
    assert comments == [
        "rule_gather",
        "rule_make_shard_wildcards_s1",
        "rule_make_shard_wildcards_s2",
    ], jobs


def test_workflow_runs_on_slurm(slurm_cluster, tmp_path):
    """The clipflow workflow, `all`, every job through SLURM; its training run as two DDP ranks
    under srun, stopped mid-run by a time-limit signal, requeued and resumed to completion."""
    snakefiles = [p for p in (REPO / "Snakefile", REPO / "workflow" / "Snakefile") if p.is_file()]
    if not snakefiles:
        pytest.skip("the workflow (Snakefile) is not written yet")
    for name in WORKFLOW_ENTRIES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.is_file():
            shutil.copy2(src, tmp_path / name)
    extra = WORKFLOW_EXTRA_ARGS
    if os.environ.get("CLIPFLOW_SLURM_WORKFLOW_ARGS"):
        extra = shlex.split(os.environ["CLIPFLOW_SLURM_WORKFLOW_ARGS"])
    start = _now()
    results = tmp_path / "results" / RUN_NAME
    signal_thread = TimeLimitSignal(results / "checkpoints" / "clip" / "seed0" / "latest.pt")
    signal_thread.start()

    rc, output = run_snakemake(tmp_path, ["all"], WORKFLOW_TIMEOUT_S, extra)

    assert rc == 0, f"snakemake exited {rc}:\n{_tail(output, 120)}\n{_job_logs(tmp_path)}"
    for rel in ("tables/summary.csv", "tables/summary.md", "tables/summary.tex"):
        assert (results / rel).is_file(), f"missing {results / rel}"
    assert list((results / "plots").glob("*.png")), f"no plots in {results / 'plots'}"

    run_id, submitted, jobs = sacct_jobs(output, start)
    rules_run = {comment.split("_wildcards_")[0] for _, comment in jobs.values()}
    assert len(submitted) >= 2, output
    assert set(jobs) == set(submitted), (run_id, submitted, jobs)
    bad = {job: v for job, v in jobs.items() if v[0] != "COMPLETED"}
    assert not bad, f"jobs not COMPLETED: {bad}"
    assert len(rules_run) >= 2, rules_run

    # The train job: two ranks in one srun step, a first attempt ended by the requeue, a second
    # that resumed from the first one's mid-epoch checkpoint and completed.
    signal_thread.join(timeout=5)
    assert signal_thread.events == ["signalled", "requeued"], signal_thread.events
    attempts = subprocess.run(
        ["sacct", "-D", "-n", "-P", "-j", signal_thread.job_id, "-o", "JobID,State,NTasks"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    job = signal_thread.job_id
    assert [a.split("|")[1] for a in attempts if a.split("|")[0] == job] == [
        "REQUEUED",
        "COMPLETED",
    ], attempts
    assert f"{job}.0|COMPLETED|2" in attempts, attempts
    train_log = (results / "logs" / "train" / "clip" / "seed0.log").read_text()
    resumed = re.findall(r"resumed from \S+latest.pt at epoch (\d+) step (\d+)", train_log)
    assert len(resumed) == 2 and resumed[0] == resumed[1], train_log  # both ranks, same step
    train_csv = results / "runs" / "clip" / "seed0" / "train_log.csv"
    steps = [int(line.split(",")[1]) for line in train_csv.read_text().splitlines()[1:]]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) == 3 * (600 // 128), steps


# ----------------------------------------------------------------------------- submitit


def _state(job_id: str) -> str:
    return subprocess.run(
        ["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True
    ).stdout.strip()


def _wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.3)


def test_submitit_run_is_requeued_on_its_signal_and_completes(
    slurm_cluster, metadata_file, tiny_download, tmp_path: Path
) -> None:
    cfg = TrainConfig(
        epochs=3, batch_size=16, lr=5e-4, warmup_steps=2, seed=3, checkpoint_every_steps=2
    )
    outputs = TrainOutputs(*(tmp_path / n for n in ("init.pt", "final.pt", "log.csv", "log.jsonl")))
    request = TrainingRequest(
        cfg, metadata_file, tiny_download["shards"], tmp_path / "checkpoints", outputs
    )
    options = SubmititOptions(
        folder=str(tmp_path / "submitit"),
        timeout_min=10,
        mem_gb=2,
        slurm_partition=slurm_cluster["partition"],
        slurm_account=slurm_cluster["account"],
    )

    job = submit(request, options)
    _wait_for((tmp_path / "checkpoints" / "latest.pt").exists, 300, "the first checkpoint")
    subprocess.run(["scancel", "--signal=USR2", job.job_id], check=True)  # submitit's time signal
    # SLURM holds a requeued job about two minutes; lift the hold to keep the test short
    _wait_for(lambda: _state(job.job_id) == "PENDING", 120, "the requeue")
    subprocess.run(["scontrol", "update", f"JobId={job.job_id}", "StartTime=now"], check=True)
    summary = job.result()

    steps_per_epoch = 120 // 16  # the tiny download has 120 pairs; batches drop the last
    assert summary["steps"] == 3 * steps_per_epoch

    def attempts() -> list[str]:
        return subprocess.run(
            ["sacct", "-D", "-X", "-n", "-P", "-j", job.job_id, "-o", "State"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()

    # the result is written before the job ends: wait for the accounting to see the end
    _wait_for(lambda: attempts()[-1:] != ["RUNNING"], 60, "the job to end")
    assert attempts() == ["REQUEUED", "COMPLETED"], attempts()
    log = "\n".join(p.read_text() for p in sorted((tmp_path / "submitit").glob("*_log.*")))
    resumed = re.search(r"resumed from \S+latest.pt at epoch (\d+) step (\d+)", log)
    assert resumed, log[-3000:]
    assert pd.read_csv(outputs.log_csv)["step"].tolist() == list(range(1, 3 * steps_per_epoch + 1))
    final = load_checkpoint(outputs.model_final)["state_dict"]
    assert all(torch.isfinite(v).all() for v in final.values() if v.is_floating_point())
