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
import yaml

from clipflow.io import read_parquet
from clipflow.models import load_checkpoint
from tests.conftest import PYTHON, REPO

pytestmark = pytest.mark.slow
WORKFLOW_FILES = ["Snakefile", "rules", "config", "workflow_scripts", "envs", "report"]
STAGES = {
    "synthesize_dataset",
    "download",
    "build_metadata",
    "negatives",
    "negatives_table",
    "embed_pairs",
    "mine_hard_pairs",
    "plot_hard_pairs",
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


STAGE_ONE = ["clip", "cl2l", "siamlip", "byolip", "barlip", "swalip"]
STAGE_ONE += ["sogclr", "isogclr", "infosogclr", "hybridsogclr"]
STAGE_TWO = ["clip_continued", "helip", "ce_clip", "simclip"]
SEEDS = [0]  # train.seeds: 1 (config/experiments/claims.yaml has three)


def test_tables_and_plots_are_written(workflow_run):
    results = workflow_run["results"]
    for suffix in ("csv", "md", "tex"):
        assert (results / "tables" / f"summary.{suffix}").stat().st_size > 0
    plots = {p.name for p in (results / "plots").glob("*.png")}
    assert {"loss_curves.png", "shapes_zeroshot.png", "retrieval.png", "comparison.png"} <= plots


def test_stage_one_objectives_beat_their_random_init(workflow_run):
    """From the result table: each stage-1 run's final checkpoint over the random init it
    started from (mean over seeds), on every benchmark's headline metric (retrieval: mean R@1
    of both directions); stage-2 runs are compared with their control in the claims table."""
    summary = pd.read_csv(workflow_run["results"] / "tables" / "summary.csv")
    headline = ["retrieval/mean_R@1", "shapes_zeroshot/acc1", "colours_zeroshot/acc1"]
    headline.append("compositional/acc")
    assert set(summary["run"]) == {*STAGE_ONE, *STAGE_TWO}
    assert (summary["n"] == len(SEEDS)).all()
    gains = summary[summary["checkpoint"] == "final-init"].set_index("run")[headline]
    assert set(gains.index) == {*STAGE_ONE, *STAGE_TWO}
    gains = gains.loc[STAGE_ONE]
    assert (gains > 0).all().all(), gains[(gains <= 0).any(axis=1)]
    # one init row per stage: its runs start from the same weights, evaluated once per seed
    assert list(summary.loc[summary["checkpoint"] == "init", "run"]) == ["clip", "clip_continued"]


def test_runs_start_from_their_stage_s_weights(workflow_run):
    runs = workflow_run["results"] / "runs"
    for seed in SEEDS:
        reference = load_checkpoint(runs / "clip" / f"seed{seed}" / "model_init.pt")["state_dict"]
        trained = load_checkpoint(runs / "clip" / f"seed{seed}" / "model_final.pt")["state_dict"]
        for other, start in (("barlip", reference), ("sogclr", reference), ("ce_clip", trained)):
            weights = load_checkpoint(runs / other / f"seed{seed}" / "model_init.pt")["state_dict"]
            assert all(torch.equal(weights[k], start[k]) for k in start), (other, seed)


def test_claims_table_lists_every_configured_claim(workflow_run):
    claims = pd.read_csv(workflow_run["results"] / "tables" / "claims.csv")
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    assert list(claims["claim"]) == [claim["claim"] for claim in config["claims"]]
    assert (claims["n"] == len(SEEDS)).all()
    assert set(claims["verdict"]) <= {"reproduced", "not reproduced", "inconclusive"}


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
