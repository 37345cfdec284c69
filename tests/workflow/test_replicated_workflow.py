"""A replicated two-stage experiment, end to end at a small scale: stage-2 runs continue the
stage-1 `clip` run of their seed, every run exists per seed, and the summary and claims tables
equal a recomputation from the per-seed result JSONs."""

from __future__ import annotations

import base64
import json
import math
import os
import re
import shutil
import statistics
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from clipflow.models import load_checkpoint
from tests.conftest import PYTHON, REPO
from tests.workflow.test_default_workflow import WORKFLOW_FILES, planned_jobs

pytestmark = pytest.mark.slow
SEEDS = [0, 3]
# Student's t quantile 0.975 with 1 degree of freedom (two seeds): tan(0.475 pi)
T_975_ONE_DF = math.tan(0.475 * math.pi)
STAGE_TWO = ["clip_continued", "ce_clip", "helip"]
RUNS = ["clip", *STAGE_TWO]
BENCHMARKS = {
    "retrieval": {"kind": "coco_retrieval", "options": {"annotation": "dataset_synthetic.json"}},
    "compositional": {
        "kind": "sugarcrepe",
        "options": {"subsets": ["replace_att", "swap_att", "replace_rel", "swap_obj"]},
    },
}
CLAIMS = [
    {
        "claim": "CE-CLIP beats its control on SugarCrepe",
        "method": "ce_clip",
        "control": "clip_continued",
        "benchmark": "compositional",
        "metric": "acc",
        "direction": "greater",
    },
    {
        "claim": "HELIP loses retrieval (a made-up claim of the other direction)",
        "method": "helip",
        "control": "clip_continued",
        "benchmark": "retrieval",
        "metric": "mean_R@1",
        "direction": "less",
    },
]
FINETUNE = {"pretrained": {"run": "clip"}, "epochs": 1, "lr": 0.0003, "warmup_steps": 0}
EXPERIMENT = {
    "experiment": "replicated",
    "data": {
        "source": "synthetic",
        "synthetic": {"num_pairs": 192, "num_broken_urls": 0, "num_corrupt_images": 0},
    },
    "negatives": {"generator_set": "synthetic"},
    "mining": {"encoder": {"run": "clip"}, "topk": 8},
    "train": {
        "model": "clipflow-tiny-vit",
        "epochs": 1,
        "batch_size": 32,
        "lr": 0.001,
        "warmup_steps": 0,
        "seeds": SEEDS,
    },
    "runs": {
        "clip": {"loss": "clip"},
        "clip_continued": {"loss": "clip", **FINETUNE},
        "ce_clip": {"loss": "ce_clip", "negatives": True, **FINETUNE},
        "helip": {
            "loss": "helip",
            "sampler": "hard_pairs",
            "sampler_params": {"partners_topk": 8},
            **FINETUNE,
        },
    },
    "benchmarks": {"num_images": 40, "enabled": BENCHMARKS},
    "claims": CLAIMS,
}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("replicated_workflow")
    for name in WORKFLOW_FILES:
        source = REPO / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, workdir / name)
    (workdir / "replicated.yaml").write_text(yaml.safe_dump(EXPERIMENT))
    run = subprocess.run(
        [PYTHON, "-m", "snakemake", "--cores", "2", "all", "--configfile", "replicated.yaml"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=2400,
    )
    assert run.returncode == 0, run.stderr[-5000:]
    return workdir / "results" / "replicated"


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["state_dict"]


def test_stage_two_runs_start_from_the_stage_one_clip_of_their_seed(results: Path) -> None:
    for seed in SEEDS:
        start = weights(results / "runs" / "clip" / f"seed{seed}" / "model_final.pt")
        for run in STAGE_TWO:
            init = weights(results / "runs" / run / f"seed{seed}" / "model_init.pt")
            assert init.keys() == start.keys()
            assert all(torch.equal(init[key], start[key]) for key in start), (run, seed)
    # the seeds are replicates: their stage-1 runs end in different weights
    first, second = (
        weights(results / "runs" / "clip" / f"seed{seed}" / "model_final.pt") for seed in SEEDS
    )
    assert any(not torch.equal(first[key], second[key]) for key in first)


def test_every_run_exists_per_seed(results: Path) -> None:
    for run in RUNS:
        for seed in SEEDS:
            instance = results / "runs" / run / f"seed{seed}"
            for name in ("model_init.pt", "model_final.pt", "train_log.csv"):
                assert (instance / name).stat().st_size > 0, (run, seed, name)
            for benchmark in BENCHMARKS:
                result = results / "eval" / run / f"seed{seed}" / "final" / f"{benchmark}.json"
                assert result.is_file(), result
            assert (results / "checkpoints" / run / f"seed{seed}").is_dir()
    # HELIP mines once per seed, with that seed's stage-1 encoder: different embeddings
    embeddings = [np.load(results / "mining" / f"seed{seed}" / "embeddings.npz") for seed in SEEDS]
    for seed in SEEDS:
        assert (results / "mining" / f"seed{seed}" / "synthetic_hard_sample.csv").is_file()
    first, second = (dict(archive) for archive in embeddings)
    assert first.keys() == second.keys()
    assert any(not np.array_equal(first[key], second[key]) for key in first if key != "ids")


def headline(benchmark: str, metrics: dict[str, float]) -> float:
    """Each benchmark's headline number, computed here from the JSON's raw metrics."""
    if benchmark == "retrieval":
        return (metrics["image_retrieval_recall@1"] + metrics["text_retrieval_recall@1"]) / 2
    subsets = ("replace_att", "swap_att", "replace_rel", "swap_obj")
    return sum(metrics[name] for name in subsets) / len(subsets)


def per_seed(results: Path, run: str, benchmark: str) -> list[float]:
    values = []
    for seed in SEEDS:
        path = results / "eval" / run / f"seed{seed}" / "final" / f"{benchmark}.json"
        values.append(headline(benchmark, json.loads(path.read_text())["metrics"]))
    return values


def test_summary_holds_mean_std_and_n_over_seeds(results: Path) -> None:
    summary = pd.read_csv(results / "tables" / "summary.csv")
    final = summary[summary["checkpoint"] == "final"].set_index("run")
    columns = {"retrieval": "mean_R@1", "compositional": "acc"}
    assert set(final.index) == set(RUNS)
    for run in RUNS:
        assert final.loc[run, "n"] == len(SEEDS)
        for benchmark, metric in columns.items():
            values = per_seed(results, run, benchmark)
            column = f"{benchmark}/{metric}"
            assert final.loc[run, column] == pytest.approx(statistics.mean(values))
            assert final.loc[run, f"{column} std"] == pytest.approx(statistics.stdev(values))
    markdown = (results / "tables" / "summary.md").read_text()
    assert "±" in markdown and "| n " in markdown.replace("|   n", "| n ")
    # the headline table leads: a row per run, each benchmark's headline mean ± std in percent
    headline = markdown.split("## All metrics")[0]
    for run in RUNS:
        row = next(line for line in headline.splitlines() if line.startswith(f"| {run} "))
        for benchmark in columns:
            values = per_seed(results, run, benchmark)
            cell = f"{100 * statistics.mean(values):.2f} ± {100 * statistics.stdev(values):.2f}"
            assert f"| {cell} " in row, (run, benchmark, row)


def test_claims_equal_a_paired_recomputation(results: Path) -> None:
    claims = pd.read_csv(results / "tables" / "claims.csv")
    assert list(claims["claim"]) == [claim["claim"] for claim in CLAIMS]
    for claim, row in zip(CLAIMS, claims.itertuples(), strict=True):
        method = per_seed(results, claim["method"], claim["benchmark"])
        control = per_seed(results, claim["control"], claim["benchmark"])
        differences = [m - c for m, c in zip(method, control, strict=True)]
        mean = statistics.mean(differences)
        half = T_975_ONE_DF * statistics.stdev(differences) / math.sqrt(len(differences))
        assert row.n == len(SEEDS)
        assert row.method_mean == pytest.approx(statistics.mean(method))
        assert row.control_mean == pytest.approx(statistics.mean(control))
        assert row.difference == pytest.approx(mean)
        assert row.ci_low == pytest.approx(mean - half)
        assert row.ci_high == pytest.approx(mean + half)
        sign = 1 if claim["direction"] == "greater" else -1
        if sign * mean <= 0:
            expected = "not reproduced"
        elif sign * (mean - sign * half) > 0:
            expected = "reproduced"
        else:
            expected = "inconclusive"
        assert row.verdict == expected
    assert "95%" in (results / "tables" / "claims.md").read_text()


def test_claims_experiment_dry_runs_every_replicate(tmp_path: Path) -> None:
    """config/experiments/claims.yaml: 5 runs x 3 seeds, mining per seed, and an evaluation on
    both benchmarks of each final checkpoint and of each seed's two starting points."""
    for name in WORKFLOW_FILES:
        source = REPO / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, tmp_path / name)
    config = ["--configfile", "config/experiments/claims.yaml"]
    plan = subprocess.run(
        [PYTHON, "-m", "snakemake", "-n", "all", *config],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert plan.returncode == 0, plan.stderr[-3000:]
    jobs = planned_jobs(plan.stdout)
    assert (jobs["train"], jobs["embed_pairs"], jobs["mine_hard_pairs"]) == (15, 3, 3)
    assert jobs["evaluate"] == (15 + 3 * 2) * 2


CHROMIUM = shutil.which("chromium")
STAGES = ["download", "negatives", "mining", "training", "evaluation", "claims"]
# Appended to a copy of the report: once the report's app has rendered, list the evaluation
# results that have no subcategory and show comparison.png, as clicks on the menu do.
SHOW_COMPARISON = """
<script>
window.addEventListener("load", () => setTimeout(() => {
    const path = Object.keys(results).find((name) => name.endsWith("plots/comparison.png"));
    app.setView({
        navbarMode: "subcategory",
        category: "evaluation",
        subcategory: "Other",
        content: "img",
        contentPath: results[path].data_uri,
    });
}, 100));
</script>
"""


def rendered_app(page: Path, profile: Path) -> str:
    """What the report's app rendered into the ``#app`` element of ``page`` once its JavaScript
    ran (the scripts after the element left out), as headless Chromium serialises the DOM."""
    flags = "--headless --no-sandbox --disable-gpu --disable-quic --no-first-run"
    flags += " --disable-background-networking --disable-component-update --disable-sync"
    command = [CHROMIUM, *flags.split(), f"--user-data-dir={profile}"]
    command += ["--virtual-time-budget=10000", "--dump-dom", page.as_uri()]
    dump = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert dump.returncode == 0, dump.stderr[-3000:]
    app = dump.stdout.partition('<div id="app">')[2]
    return app.partition("<script")[0]


@pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="needs Debian's chromium (apt-get install chromium; .ci/run installs it in CI)",
)
def test_report_shows_every_stage_and_the_results_in_a_browser(results: Path, tmp_path) -> None:
    assert CHROMIUM is not None, "CI must install chromium (.ci/run)"
    workdir = results.parents[1]
    report = subprocess.run(
        [PYTHON, "-m", "snakemake", "--report", "report.html", "--configfile", "replicated.yaml"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert report.returncode == 0, report.stderr[-5000:]
    page = workdir / "report.html"
    menu = rendered_app(page, tmp_path / "profile")
    # the app rendered (the static page has only an empty #app) with the workflow description
    # and a menu entry per stage
    assert "hard negative captions per caption" in menu
    for stage in STAGES:
        assert re.search(rf">\s*{stage}\s*<", menu), stage
    html, end = page.read_text().rsplit("</body>", 1)  # the last: scripts quote the tag too
    shown = tmp_path / "shown.html"
    shown.write_text(f"{html}{SHOW_COMPARISON}</body>{end}")
    evaluation = rendered_app(shown, tmp_path / "profile")
    for name in ("summary.csv", "comparison.png", "summary_per_seed.csv", "published.csv"):
        assert name in evaluation, name
    # the image shown is comparison.png itself, embedded in the page
    images = re.findall(r'<img src="data:image/png;[^"]*base64,([^"]+)"', evaluation)
    comparison = (results / "plots" / "comparison.png").read_bytes()
    assert base64.b64encode(comparison).decode() in images
