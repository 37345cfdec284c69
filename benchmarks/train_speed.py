"""Training throughput: clipflow's trainer vs ``open_clip_train.main`` on the same data and model.

Both train the tiny random-init open_clip model (``clipflow-tiny-vit``) with the CLIP loss, fp32,
batch ``--batch-size``, AdamW at the same learning rate and warm-up, for the same number of steps
(``--epochs`` passes over the ``--pairs`` synthetic pairs that this script makes and downloads
into webdataset shards with img2dataset, as the default workflow does), data-loader workers 0,
``--threads`` torch threads, each in a fresh subprocess, one after the other. Reported per trainer:

- ``samples_per_s``: samples trained / wall time of the whole subprocess (imports, model
  creation and data indexing included, the same fixed costs for both), the headline figure;
- ``logged_samples_per_s``: the median of each trainer's own per-step figure after the first
  step (clipflow: model step only; open_clip_train: its ``Batch (t)``, which includes data time),
  for orientation only since they do not time the same span;
- ``peak_mib``: the subprocess's peak resident memory (``wait4`` rusage).

and the ratio clipflow / open_clip_train of ``samples_per_s``. Writes ``<out>.{csv,json}``.

    python benchmarks/train_speed.py                  # 2,000 pairs, 3 epochs of batch 64
    python benchmarks/train_speed.py --device cuda    # on a GPU machine (open_clip_train: amp)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from clipflow.data.download import DownloadOptions, download_served_folder
from clipflow.data.metadata import build_metadata
from clipflow.data.synthetic import make_training_set

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results" / "train_speed"
MODEL = "clipflow-tiny-vit"
# open_clip_train's step lines: "... Batch (t): 0.123, 520.3/s, 520.3/s/gpu ..."
OPEN_CLIP_RATE = re.compile(r"Batch \(t\): [\d.]+, ([\d.]+)/s")
# open_clip_train does not know clipflow's model config until clipflow.models registers it
OPEN_CLIP_MAIN = (
    "import sys, torch; torch.set_num_threads(int(sys.argv[1])); import clipflow.models; "
    "from open_clip_train.main import main; main(sys.argv[2:])"
)


def run(command: list[str], env: dict[str, str], log: Path) -> tuple[float, float]:
    """Run ``command``; return (wall seconds, peak RSS MiB); its output goes to ``log``."""
    with open(log, "w") as handle:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"train_speed: {command[1]} failed; see {log}")
    return wall, usage.ru_maxrss / 1024


def clipflow_run(args: argparse.Namespace, data: dict[str, Path], work: Path, env) -> dict:
    out = work / "clipflow"
    settings = {
        "model": MODEL,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "warmup_steps": args.warmup,
        "loss": "clip",
    }
    command = [sys.executable, str(REPO / "workflow_scripts" / "train.py")]
    command += ["--metadata", str(data["metadata"]), "--shards", str(data["shards"])]
    command += ["--run-config", json.dumps(settings), "--checkpoint-dir", str(out / "ckpt")]
    command += ["--model-init", str(out / "init.pt"), "--model-final", str(out / "final.pt")]
    command += ["--log-csv", str(out / "log.csv"), "--log-jsonl", str(out / "log.jsonl")]
    command += ["--threads", str(args.threads), "--device", args.device]
    wall, peak = run(command, env, work / "clipflow.log")
    log = pd.read_csv(out / "log.csv")
    return {
        "trainer": "clipflow",
        "steps": len(log),
        "wall_s": wall,
        "logged_samples_per_s": float(log["samples_per_s"].iloc[1:].median()),
        "peak_mib": peak,
    }


def open_clip_run(args: argparse.Namespace, data: dict[str, Path], work: Path, env) -> dict:
    shards = sorted(p.name for p in data["shards"].glob("*.tar"))
    first, last = shards[0].removesuffix(".tar"), shards[-1].removesuffix(".tar")
    steps_per_epoch = data["pairs"] // args.batch_size
    command = [sys.executable, "-c", OPEN_CLIP_MAIN, str(args.threads)]
    command += ["--train-data", f"{data['shards']}/{{{first}..{last}}}.tar"]
    command += ["--dataset-type", "webdataset"]
    command += ["--train-num-samples", str(steps_per_epoch * args.batch_size)]
    command += ["--batch-size", str(args.batch_size), "--epochs", str(args.epochs)]
    command += ["--model", MODEL, "--workers", "0", "--lr", str(args.lr)]
    command += ["--warmup", str(args.warmup), "--wd", "0.1", "--seed", "0"]
    command += ["--precision", "amp" if args.device.startswith("cuda") else "fp32"]
    command += ["--logs", str(work / "open_clip_logs"), "--name", "run", "--save-frequency", "0"]
    command += ["--log-every-n-steps", "1", "--report-to", ""]
    wall, peak = run(command, env, work / "open_clip_train.log")
    rates = [float(m) for m in OPEN_CLIP_RATE.findall((work / "open_clip_train.log").read_text())]
    return {
        "trainer": "open_clip_train",
        "steps": steps_per_epoch * args.epochs,
        "wall_s": wall,
        "logged_samples_per_s": statistics.median(rates[1:]) if len(rates) > 1 else float("nan"),
        "peak_mib": peak,
    }


def make_data(pairs: int, root: Path) -> dict[str, object]:
    """``pairs`` synthetic pairs, served on loopback and downloaded by img2dataset."""
    manifest = make_training_set(
        root / "source", pairs, seed=0, num_broken_urls=0, num_corrupt_images=0
    )
    download_served_folder(
        root / "source", manifest, root / "url_list.tsv", root / "shards", DownloadOptions()
    )
    metadata = build_metadata(root / "shards")
    metadata.to_parquet(root / "pairs.parquet", index=False)
    return {"shards": root / "shards", "metadata": root / "pairs.parquet", "pairs": len(metadata)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=RESULTS, help="path stem of the outputs")
    args = parser.parse_args()
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(args.threads),
        "NO_ALBUMENTATIONS_UPDATE": "1",
        "HF_HUB_OFFLINE": "1",
        "WANDB_MODE": "disabled",
    }
    with tempfile.TemporaryDirectory(prefix="train_speed_") as tmp:
        work = Path(tmp)
        data = make_data(args.pairs, work / "data")
        rows = [clipflow_run(args, data, work, env), open_clip_run(args, data, work, env)]
    for row in rows:
        row["samples_per_s"] = row["steps"] * args.batch_size / row["wall_s"]
    ratio = rows[0]["samples_per_s"] / rows[1]["samples_per_s"]

    columns = ["trainer", "steps", "wall_s", "samples_per_s", "logged_samples_per_s", "peak_mib"]
    print(pd.DataFrame(rows)[columns].to_string(index=False, float_format="%.1f"))
    print(f"ratio clipflow / open_clip_train samples/s: {ratio:.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    meta = {"settings": settings, "ratio": ratio, "rows": rows}
    args.out.with_name(args.out.name + ".json").write_text(json.dumps(meta, indent=2) + "\n")
    with open(args.out.with_name(args.out.name + ".csv"), "w", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows({k: row[k] for k in columns} for row in rows)


if __name__ == "__main__":
    main()
