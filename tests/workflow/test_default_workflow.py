"""The embedded default experiment, end to end, in a scratch copy of the workflow."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import torch

from clipflow.io import read_parquet
from clipflow.models import load_checkpoint
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
    assert {"loss_curves.png", "shapes_zeroshot.png", "retrieval.png", "comparison.png"} <= plots


def test_every_objective_and_sampler_beats_the_shared_init(workflow_run):
    """From the result table: each run's final checkpoint over the random init it started from,
    on every benchmark's headline metric (retrieval: mean R@1 of both directions)."""
    summary = pd.read_csv(workflow_run["results"] / "tables" / "summary.csv")
    headline = ["retrieval/mean_R@1", "shapes_zeroshot/acc1", "colours_zeroshot/acc1"]
    headline.append("compositional/acc")
    runs = set(summary["run"])
    # every loss of the registry, and the two batch samplers, each in one run
    assert {"clip", "helip", "simclip", "ce_clip", "sogclr", "isogclr", "infosogclr"} <= runs
    assert {"hybridsogclr", "cl2l", "siamlip", "byolip", "barlip", "swalip"} <= runs
    gains = summary[summary["checkpoint"] == "final-init"].set_index("run")[headline]
    assert set(gains.index) == runs
    assert (gains > 0).all().all(), gains[(gains <= 0).any(axis=1)]
    # one init row: every run starts from the same weights, evaluated once
    assert list(summary.loc[summary["checkpoint"] == "init", "run"]) == ["clip"]


def test_runs_start_from_one_initialisation(workflow_run):
    runs = workflow_run["results"] / "runs"
    reference = load_checkpoint(runs / "clip" / "model_init.pt")["state_dict"]
    for other in ("simclip", "barlip"):
        weights = load_checkpoint(runs / other / "model_init.pt")["state_dict"]
        assert all(torch.equal(weights[k], reference[k]) for k in reference), other


def test_download_failures_are_reported_and_kept_out_of_metadata(workflow_run):
    results = workflow_run["results"]
    stats = json.loads((results / "download" / "stats.json").read_text())
    assert stats["failed"] == 4 and stats["successes"] == 2000
    assert sum(n for r, n in stats["failure_reasons"].items() if "404" in r) == 3
    assert sum(n for r, n in stats["failure_reasons"].items() if "decod" in r.lower()) == 1
    pairs = read_parquet(results / "metadata" / "pairs.parquet")
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
