"""Evaluation throughput: a random-init open_clip ViT-B-32 scoring ImageNet-style zero-shot.

The checkpoint is saved to disk and loaded as ``workflow_scripts/evaluate.py`` loads any open_clip
checkpoint; the benchmark is ``--images`` synthetic images (224 px) in ImageNet-style folders with
``classnames.txt`` and ``templates.txt`` (``clipflow.data.synthetic``, the default workflow's
``colours_zeroshot``). Three runs of ``evaluate_checkpoint`` in this process, model build
included, each timed on its own:

- ``no cache``: every image and class prompt embedded;
- ``cache, cold``: the same, also writing the embeddings to an empty ``embedding_cache``;
- ``cache, warm``: the embeddings read back from that cache.

Prints images/second per run (images / wall seconds) with ``--threads`` torch threads and writes
``<out>.{csv,json}``. The metrics of the three runs must agree (checked).

    python benchmarks/eval_speed.py                       # 1,000 images, 2 threads
    python benchmarks/eval_speed.py --device cuda --batch-size 256
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path

import torch

from clipflow.data.synthetic import make_benchmarks
from clipflow.evaluation import evaluate_checkpoint
from clipflow.models import create_model, save_checkpoint

RESULTS = Path(__file__).resolve().parent / "results" / "eval_speed"
MODEL = "ViT-B-32"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=RESULTS, help="path stem of the outputs")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="eval_speed_") as tmp:
        work = Path(tmp)
        root = make_benchmarks(work / "data", seed=0, num_images=args.images, image_size=224)[
            "colours_zeroshot"
        ]
        images = sum(1 for p in Path(root).rglob("*.png"))
        checkpoint = work / "vit_b_32_random.pt"
        save_checkpoint({"state_dict": create_model(MODEL, seed=0).model.state_dict()}, checkpoint)
        rows, metrics = [], []
        for label, cache in (
            ("no cache", None),
            ("cache, cold", work / "cache"),
            ("cache, warm", work / "cache"),
        ):
            options = {"embedding_cache": str(cache)} if cache else {}
            started = time.perf_counter()
            result = evaluate_checkpoint(
                "imagefolder_zeroshot",
                root,
                MODEL,
                pretrained=checkpoint,
                batch_size=args.batch_size,
                device=args.device,
                **options,
            )
            seconds = time.perf_counter() - started
            metrics.append(result["metrics"])
            rows.append(
                {
                    "run": label,
                    "images": images,
                    "seconds": seconds,
                    "images_per_s": images / seconds,
                }
            )
    if any(m != metrics[0] for m in metrics[1:]):
        raise SystemExit(f"eval_speed: the runs disagree: {metrics}")

    for row in rows:
        print(
            f"{row['run']:>12}: {row['images']} images in {row['seconds']:.1f} s = "
            f"{row['images_per_s']:.1f} images/s"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    record = {"settings": settings, "model": MODEL, "metrics": metrics[0], "rows": rows}
    args.out.with_name(args.out.name + ".json").write_text(json.dumps(record, indent=2) + "\n")
    with open(args.out.with_name(args.out.name + ".csv"), "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
