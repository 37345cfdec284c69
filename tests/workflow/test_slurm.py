"""Run workflows through a real single-node SLURM cluster via the repo's `slurm/` profile.

The module fixture starts the cluster with `.ci/slurm-up.sh` (installs the Debian
packages if needed; root only) and stops it with `.ci/slurm-down.sh`. Two tests:

* a tiny self-contained Snakefile (proves cluster + profile + environment propagation,
  independent of the real workflow), and
* the repository's workflow, `snakemake --profile slurm all`, in a copy of the repo's
  workflow files so that its results do not clash with a local run.

Both check through `sacct` that every job snakemake submitted ran and is COMPLETED.
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
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SLURM_UP = REPO / ".ci" / "slurm-up.sh"
SLURM_DOWN = REPO / ".ci" / "slurm-down.sh"
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
SLURM_UP_TIMEOUT_S = 900  # includes apt-get install on a fresh machine


# ----------------------------------------------------------------------------- helpers


def _unavailable_reason() -> str | None:
    if sys.platform != "linux":
        return "the local SLURM cluster needs Linux"
    if os.geteuid() != 0:
        return (
            "needs root: .ci/slurm-up.sh installs slurm-wlm/munge/mariadb and starts "
            "system daemons (run the tests as root, as CI does)"
        )
    if shutil.which("slurmctld") is None and shutil.which("apt-get") is None:
        return "SLURM is not installed and apt-get is unavailable to install it"
    try:
        import snakemake  # noqa: F401
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError as err:
        return f"snakemake / snakemake-executor-plugin-slurm not importable: {err}"
    return None


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


# ----------------------------------------------------------------------------- fixture


@pytest.fixture(scope="module")
def slurm_cluster():
    """The local cluster, up for this module. Stopped afterwards if this fixture started
    it (a cluster that was already up is left running); CLIPFLOW_SLURM_KEEP=1 keeps it."""
    reason = _unavailable_reason()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"SLURM tests must run in CI, but: {reason}")
        pytest.skip(reason)
    t0 = time.monotonic()
    try:
        up = subprocess.run(
            ["bash", str(SLURM_UP)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=SLURM_UP_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as err:
        pytest.fail(f".ci/slurm-up.sh did not finish in {SLURM_UP_TIMEOUT_S}s: {err}")
    if up.returncode != 0:
        pytest.fail(f".ci/slurm-up.sh failed ({up.returncode}):\n{up.stdout}\n{up.stderr}")
    print(f"{up.stdout.strip()} [{time.monotonic() - t0:.1f}s]")
    started_here = "already up" not in up.stdout
    try:
        yield {"account": "clipflow", "partition": "cpu"}
    finally:
        if started_here and os.environ.get("CLIPFLOW_SLURM_KEEP") != "1":
            down = subprocess.run(
                ["bash", str(SLURM_DOWN)],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=300,
            )
            print(down.stdout.strip(), down.stderr.strip())


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
    """The clipflow workflow, `all`, every job through SLURM."""
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

    rc, output = run_snakemake(tmp_path, ["all"], WORKFLOW_TIMEOUT_S, extra)

    assert rc == 0, f"snakemake exited {rc}:\n{_tail(output, 120)}\n{_job_logs(tmp_path)}"
    results = tmp_path / "results" / RUN_NAME
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
