"""Reports of replicated runs (<run>/seed<k> paths): mean, std and n over seeds, paired deltas."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pandas as pd
import pytest

from clipflow.reporting import build_report, load_results, load_train_logs

ACC1 = {  # (run, seed, checkpoint) -> imagenet acc1
    ("clip", 0, "init"): 0.10,
    ("clip", 0, "final"): 0.30,
    ("clip", 1, "init"): 0.12,
    ("clip", 1, "final"): 0.36,
    ("clip", 2, "init"): 0.08,
    ("clip", 2, "final"): 0.31,
    ("siam", 0, "final"): 0.40,
    ("siam", 1, "final"): 0.38,
    ("siam", 2, "final"): 0.47,
}


def write_results(root: Path) -> list[Path]:
    paths = []
    for (run, seed, checkpoint), acc1 in ACC1.items():
        path = root / "exp" / "eval" / run / f"seed{seed}" / checkpoint / "imagenet.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        metrics = {"acc1": acc1, "acc5": min(1.0, 2 * acc1)}
        path.write_text(json.dumps({"task": "zeroshot_classification", "metrics": metrics}))
        paths.append(path)
    return paths


def test_results_and_logs_carry_the_seed(tmp_path: Path) -> None:
    results = load_results(write_results(tmp_path))
    row = results[(results["run"] == "siam") & (results["metric"] == "acc1")]
    assert sorted(row["seed"]) == [0, 1, 2] and set(row["experiment"]) == {"exp"}
    log = tmp_path / "exp" / "runs" / "clip" / "seed2" / "train_log.csv"
    log.parent.mkdir(parents=True)
    log.write_text("epoch,step,loss\n0,1,2.5\n")
    logs = load_train_logs([log])
    assert list(logs["run"]) == ["clip/seed2"] and list(logs["experiment"]) == ["exp"]


def test_summary_is_mean_std_and_n_with_per_seed_deltas(tmp_path: Path) -> None:
    written = build_report(
        write_results(tmp_path),
        [],
        tmp_path / "tables",
        tmp_path / "plots",
        shared_init={"siam": "clip"},
    )
    assert tmp_path / "tables" / "summary_per_seed.csv" in written
    summary = pd.read_csv(tmp_path / "tables" / "summary.csv").set_index(["run", "checkpoint"])
    for run in ("clip", "siam"):
        final = [ACC1[(run, seed, "final")] for seed in range(3)]
        init = [ACC1[("clip", seed, "init")] for seed in range(3)]
        deltas = [f - i for f, i in zip(final, init, strict=True)]
        for checkpoint, values in (("final", final), ("final-init", deltas)):
            row = summary.loc[(run, checkpoint)]
            assert row["n"] == 3
            assert row["imagenet/acc1"] == pytest.approx(statistics.mean(values))
            assert row["imagenet/acc1 std"] == pytest.approx(statistics.stdev(values))
    markdown = (tmp_path / "tables" / "summary.md").read_text()
    mean, std = statistics.mean([0.40, 0.38, 0.47]), statistics.stdev([0.40, 0.38, 0.47])
    assert f"{100 * mean:.2f} ± {100 * std:.2f}" in markdown
    assert (tmp_path / "plots" / "imagenet.png").stat().st_size > 0
