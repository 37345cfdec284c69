"""The embedded default experiment, end to end, in a scratch copy of the workflow."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import PYTHON, REPO

pytestmark = pytest.mark.slow
WORKFLOW_FILES = ["Snakefile", "rules", "config", "workflow_scripts", "envs"]
STAGES = {
    "synthesize_dataset",
    "download",
    "build_metadata",
    "negatives",
    "embed_pairs",
    "mine_hard_pairs",
    "train",
    "synthesize_benchmarks",
    "evaluate",
    "report",
}


def snakemake(workdir: Path, *args: str, timeout: int = 1500) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, "-m", "snakemake", "--cores", "2", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def planned_jobs(output: str) -> dict[str, int]:
    """Rule -> count from snakemake's 'Job stats' table of a dry run."""
    table = output.split("Job stats:", 1)[1]
    return {
        m[1]: int(m[2])
        for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)
        if m[1] not in ("all", "total")
    }


@pytest.fixture(scope="module")
def workflow_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("default_workflow")
    for name in WORKFLOW_FILES:
        source = REPO / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, workdir / name)
    plan = snakemake(workdir, "-n", "all")
    assert plan.returncode == 0, plan.stderr
    run = snakemake(workdir, "all")
    assert run.returncode == 0, run.stderr[-5000:]
    return {"dir": workdir, "results": workdir / "results" / "default", "plan": plan.stdout}


def test_dry_run_lists_every_stage(workflow_run):
    assert set(planned_jobs(workflow_run["plan"])) == STAGES


def test_tables_and_plots_are_written(workflow_run):
    results = workflow_run["results"]
    for suffix in ("csv", "md", "tex"):
        assert (results / "tables" / f"summary.{suffix}").stat().st_size > 0
    plots = {p.name for p in (results / "plots").glob("*.png")}
    assert {"loss_curves.png", "shapes_zeroshot.png", "retrieval.png"} <= plots
    summary = pd.read_csv(results / "tables" / "summary.csv")
    assert len(summary) >= 2


def _headline(metrics: dict) -> float:
    if "acc1" in metrics:
        return metrics["acc1"]
    if "acc" in metrics:
        return metrics["acc"]
    recalls = [v for k, v in metrics.items() if k.endswith("recall@1")]
    return sum(recalls) / len(recalls)


def test_training_beats_random_init_on_every_benchmark(workflow_run):
    evaluations = workflow_run["results"] / "eval"
    benchmarks = sorted(p.stem for p in (evaluations / "clip" / "final").glob("*.json"))
    assert len(benchmarks) == 4
    for run in (p.name for p in evaluations.iterdir()):
        for benchmark in benchmarks:
            init, final = (
                json.loads((evaluations / run / w / f"{benchmark}.json").read_text())
                for w in ("init", "final")
            )
            assert _headline(final["metrics"]) > _headline(init["metrics"]), (run, benchmark)


def test_download_failures_are_reported_and_kept_out_of_metadata(workflow_run):
    results = workflow_run["results"]
    stats = json.loads((results / "download" / "stats.json").read_text())
    assert stats["failed"] == 4 and stats["successes"] == 2000
    assert sum(n for r, n in stats["failure_reasons"].items() if "404" in r) == 3
    assert sum(n for r, n in stats["failure_reasons"].items() if "decod" in r.lower()) == 1
    pairs = pd.read_parquet(results / "metadata" / "pairs.parquet")
    assert len(pairs) == 2000 and (pairs["status"] == "success").all()
    assert not pairs["url"].str.contains("missing_|corrupt_").any()


def test_rerun_does_nothing_and_forcerun_evaluate_reruns_only_evaluation(workflow_run):
    again = snakemake(workflow_run["dir"], "-n", "all")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
    forced = snakemake(workflow_run["dir"], "-n", "--forcerun", "evaluate", "all")
    assert set(planned_jobs(forced.stdout)) == {"evaluate", "report"}


def test_lint_is_clean(workflow_run):
    lint = snakemake(workflow_run["dir"], "--lint")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "Congratulations" in lint.stdout + lint.stderr
