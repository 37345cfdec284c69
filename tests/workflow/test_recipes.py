"""The paper recipes (config/experiments/): each is a valid whole experiment, dry-runs on its
fixture paths (tests/workflow/recipes/) with the jobs its runs and benchmarks call for, and runs
end to end at `scale: tiny` into the layout of its paper's table."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
import yaml

from clipflow.config import check_config, check_paper_table, scale_down
from tests.conftest import PYTHON, REPO
from tests.workflow.test_default_workflow import WORKFLOW_FILES, planned_jobs

EXPERIMENTS = REPO / "config" / "experiments"
SCHEMA = REPO / "config" / "schema.yaml"
FIXTURES = ["tests/workflow/recipes", "tests/data/fixtures"]
PLACEHOLDER = "tests/workflow/recipes/placeholder.pt"  # named by the paths files

BASE_JOBS = {"download": 1, "build_metadata": 1, "train": 0, "evaluate": 0, "report": 1}
# recipe -> its dry run's jobs: a train job per run (none of the default config's 13), an evaluate
# job per benchmark and checkpoint (the runs' shared starting point once, then each run), mining
# for HELIP, negatives for CE-CLIP (each with its report figure)
MINING = {"embed_pairs": 1, "mine_hard_pairs": 1, "plot_hard_pairs": 1}
RECIPES = {
    "helip_cc3m": {"train": 2, "evaluate": 3 * 5, **MINING},
    "clip_rocket_cl2l_cc3m": {"train": 6, "evaluate": 7 * 3},
    "ce_clip_coco": {"train": 2, "evaluate": 3 * 7, "negatives": 1, "negatives_table": 1},
    "isogclr_cc3m100k": {"train": 5, "evaluate": 6 * 2},
    "simclip_coco": {"train": 3, "evaluate": 4 * 2},
}
# headline metrics the synthetic stand-ins report (zero-shot, retrieval, SugarCrepe's replace_att,
# swap_att, replace_rel and swap_obj): at scale tiny exactly these cells are measured
TINY_METRICS = {"acc1", "TR@1", "TR@5", "TR@10", "IR@1", "IR@5", "IR@10", "replace", "swap"}
# (recipe, row, column) -> published number (reporting/data/published.csv)
PUBLISHED = {
    ("isogclr_cc3m100k", "CLIP", "COCO TR@1"): 0.1200,
    ("isogclr_cc3m100k", "iSogCLR", "ImageNet top-1"): 0.2854,
    ("ce_clip_coco", "CE-CLIP", "ARO VG-R"): 0.830,
    ("ce_clip_coco", "CE-CLIP", "SugarCrepe Swap"): 0.749,
    ("ce_clip_coco", "CLIP", "VALSE"): 0.640,
    ("simclip_coco", "CLIP ViT-B/32 (zero-shot)", "I2T R@1"): 0.501,
    ("simclip_coco", "CLIP ViT-B/32 (zero-shot)", "T2I R@10"): 0.669,
    ("simclip_coco", "CLIP ViT-B/32 (zero-shot)", "ImageNet"): 0.633,
}


def recipe(name: str) -> dict:
    return yaml.safe_load((EXPERIMENTS / f"{name}.yaml").read_text())


def snakemake(workdir: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, "-m", "snakemake", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def scratch_workflow(workdir: Path) -> Path:
    for name in [*WORKFLOW_FILES, *FIXTURES]:
        source, target = REPO / name, workdir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy)(source, target)
    (workdir / PLACEHOLDER).touch()  # a dry run checks that inputs exist, not what they hold
    return workdir


def test_every_recipe_is_tested() -> None:
    # claims.yaml runs on the embedded data: tests/workflow/test_replicated_workflow.py
    assert {path.stem for path in EXPERIMENTS.glob("*.yaml")} == {*RECIPES, "claims"}


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_is_a_valid_experiment_at_both_scales(name: str) -> None:
    config = recipe(name)
    for scaled in (config, scale_down({**config, "scale": "tiny"})):
        check_config(scaled, SCHEMA)
        check_paper_table(scaled)
    tiny = scale_down({**config, "scale": "tiny"})
    assert tiny["experiment"] == f"{name}_tiny"
    assert set(tiny["runs"]) == set(config["runs"])
    assert set(tiny["benchmarks"]["enabled"]) == set(config["benchmarks"]["enabled"])
    assert not any("root" in b for b in tiny["benchmarks"]["enabled"].values())


@pytest.fixture(scope="module")
def dry_run_dir(tmp_path_factory) -> Path:
    return scratch_workflow(tmp_path_factory.mktemp("recipes_dry_run"))


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_dry_runs_on_fixture_paths(name: str, dry_run_dir: Path) -> None:
    plan = snakemake(
        dry_run_dir,
        "-n",
        "all",
        "--configfile",
        f"config/experiments/{name}.yaml",
        f"tests/workflow/recipes/{name}.paths.yaml",
    )
    assert plan.returncode == 0, plan.stderr[-3000:]
    assert planned_jobs(plan.stdout) == {**BASE_JOBS, **RECIPES[name]}


def assert_paper_table(name: str, tables: Path) -> None:
    spec = recipe(name)["report"]["paper_table"]
    assert (tables / "paper.md").read_text().splitlines()[0] == f"**{spec['title']}**"
    table = pd.read_csv(tables / "paper.csv").set_index("method")
    assert list(table.index) == [row["label"] for row in spec["rows"]]
    assert list(table.columns) == [
        f"{column['label']} {kind}"
        for column in spec["columns"]
        for kind in ("measured", "published")
    ]
    for row in spec["rows"]:
        for column in spec["columns"]:
            measured = table.loc[row["label"], f"{column['label']} measured"]
            if "run" in row and column["metric"] in TINY_METRICS:
                assert 0.0 <= measured <= 1.0, (name, row["label"], column["label"])
            else:
                assert math.isnan(measured), (name, row["label"], column["label"])
            published = table.loc[row["label"], f"{column['label']} published"]
            expected = PUBLISHED.get((name, row["label"], column["label"]))
            if expected is None:
                continue
            assert published == pytest.approx(expected), (name, row["label"], column["label"])
    if name in ("helip_cc3m", "clip_rocket_cl2l_cc3m"):  # the seeds publish none of theirs
        assert table.filter(like=" published").isna().all().all()


@pytest.mark.slow
def test_every_recipe_runs_end_to_end_at_scale_tiny(tmp_path: Path) -> None:
    """All five side by side, each in its own scratch copy with one core: most of a tiny job is
    starting Python and importing torch, so the machine's cores stay busy while each snakemake
    schedules, and at most five jobs hold memory at once."""

    def run(name: str) -> subprocess.CompletedProcess:
        workdir = scratch_workflow(tmp_path / name)
        config = ["--configfile", f"config/experiments/{name}.yaml", "--config", "scale=tiny"]
        return snakemake(workdir, "--cores", "1", "all", *config)

    started = time.perf_counter()
    with ThreadPoolExecutor(len(RECIPES)) as pool:
        runs = dict(zip(RECIPES, pool.map(run, RECIPES), strict=True))
    print(f"five recipes at scale tiny: {time.perf_counter() - started:.0f} s")
    for name, result in runs.items():
        assert result.returncode == 0, (name, result.stderr[-5000:])
        assert_paper_table(name, tmp_path / name / "results" / f"{name}_tiny" / "tables")
    # CE-CLIP's seven benchmarks share one stand-in: evaluated as the first, copied as the rest
    evaluated = tmp_path / "ce_clip_coco/results/ce_clip_coco_tiny/eval/ce_clip/final"
    first = json.loads((evaluated / "aro_vg_relation.json").read_text())
    copy = json.loads((evaluated / "valse.json").read_text())
    assert (first["dataset"], copy["dataset"]) == ("aro_vg_relation", "valse")
    assert copy["metrics"] == first["metrics"]
    logs = tmp_path / "ce_clip_coco/results/ce_clip_coco_tiny/benchmarks/evaluate/ce_clip/final"
    assert [path.stem for path in logs.glob("*.tsv")] == ["aro_vg_relation"]
