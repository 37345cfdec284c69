"""HELIP hard-pair mining speed (algorithms.md §2): exact vs approximate faiss vs torch brute force.

For each N in ``--sizes`` this draws 512-d embedding pairs clustered like an encoder's (shared
topics, both modalities noisy views of them, in a cone: the generator of tests/mining, scaled to
``--dim``), mines the top ``--topk`` hard pairs of every anchor with each method and reports

- ``time_s``: wall time of ``mine_hard_pairs`` (index build + search + rescoring), or of the torch
  loop, in a fresh subprocess with ``--threads`` threads for BLAS, faiss (OpenMP) and torch;
- ``peak_mib``: that subprocess's peak resident memory *above* its resident high-water mark just
  before mining (``resource.getrusage(RUSAGE_SELF).ru_maxrss``, read before and after; the
  embeddings were already loaded from disk then, so the figure is what the method itself adds:
  normalised copies, the index, the score blocks). A high-water mark under-counts a method that
  reuses memory freed after loading (``flat`` at 100k reads lower than at 30k);
- ``recall@10`` of each method's first 10 pairs against the exact (``flat``) ones, over all N
  anchors, and the time ratio to ``flat``.

Methods: ``flat`` (exact, blockwise numpy BLAS), ``ivf`` and ``hnsw`` (faiss candidates over
``[img, txt]/√2``, rescored exactly) with the defaults of ``clipflow.mining.search``, and
``torch`` (the same exact score by chunked ``torch.matmul`` with a running ``torch.topk``; its
ties may break differently from ``flat``). Each ``--variant 'ivf:{"nprobe": 4}'`` adds a run of
an index with other options, labelled ``ivf(nprobe=4)``.

Writes ``<out>.csv``, ``<out>.json`` and ``<out>.png`` (time and memory against N) and prints the
table plus the approximate/exact time ratio and recall at the largest N.

    python benchmarks/mining_speed.py                      # N = 10k, 30k, 100k
    python benchmarks/mining_speed.py --sizes 2000 5000 --out /tmp/mining_speed
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from clipflow.mining import mine_hard_pairs, recall_at_k

RESULTS = Path(__file__).resolve().parent / "results" / "mining_speed"
METHODS = ("flat", "ivf", "hnsw", "torch")
RECALL_K = 10


def clustered_pairs(n: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` (image, text) unit pairs from n/40 shared topics, noisy per modality, in a cone."""
    rng = np.random.default_rng(seed)
    topics = rng.standard_normal((max(1, n // 40), dim), dtype=np.float32)
    base = topics[rng.integers(0, len(topics), n)]
    base += 0.7 * rng.standard_normal((n, dim), dtype=np.float32)
    image = base + 0.5 * rng.standard_normal((n, dim), dtype=np.float32) + 1.0
    mix = rng.standard_normal((dim, dim), dtype=np.float32) / np.sqrt(dim)
    text = base @ mix + 0.5 * rng.standard_normal((n, dim), dtype=np.float32) + 1.0
    image /= np.linalg.norm(image, axis=1, keepdims=True)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    return image, text


def torch_brute_force(
    image: np.ndarray, text: np.ndarray, topk: int, chunk: int = 1024, db_chunk: int = 16384
) -> np.ndarray:
    """Exact HELIP scores by chunked ``torch.matmul`` and a running ``torch.topk`` per anchor."""
    import torch

    from clipflow.mining.search import DUPLICATE_TEXT_COS, NEAR_DUPLICATE_COS

    img = torch.nn.functional.normalize(torch.from_numpy(image), dim=1)
    txt = torch.nn.functional.normalize(torch.from_numpy(text), dim=1)
    n = img.shape[0]
    out = torch.empty((n, topk), dtype=torch.int64)
    for start in range(0, n, chunk):
        q = torch.arange(start, min(n, start + chunk))
        best = torch.full((len(q), 0), -torch.inf)
        best_idx = torch.empty((len(q), 0), dtype=torch.int64)
        for db_start in range(0, n, db_chunk):
            db = torch.arange(db_start, min(n, db_start + db_chunk))
            image_cos, text_cos = img[q] @ img[db].T, txt[q] @ txt[db].T
            scores = image_cos * text_cos
            scores[(image_cos > NEAR_DUPLICATE_COS) | (text_cos > NEAR_DUPLICATE_COS)] = 0.0
            scores[(text_cos > DUPLICATE_TEXT_COS) | (q[:, None] == db[None, :])] = -torch.inf
            scores = torch.cat([best, scores], dim=1)
            indices = torch.cat([best_idx, db.expand(len(q), -1)], dim=1)
            best, keep = torch.topk(scores, min(topk, scores.shape[1]), dim=1)
            best_idx = torch.gather(indices, 1, keep)
        out[start : start + len(q)] = torch.where(torch.isfinite(best), best_idx, -1)
    return out.numpy()


def worker(args: argparse.Namespace) -> None:
    """One method on one saved N in this (fresh) process; prints a JSON line with the timings."""
    import resource

    import faiss
    import torch

    faiss.omp_set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    data = np.load(args.data)
    image, text = data["image"], data["text"]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    if args.method == "torch":
        hard = torch_brute_force(image, text, args.topk)
    else:
        hard = mine_hard_pairs(image, text, args.topk, index=args.method, **json.loads(args.opts))
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    np.save(args.result, hard)
    print(json.dumps({"time_s": elapsed, "peak_mib": (after - before) / 1024}))


def run_method(
    method: str, data: Path, result: Path, args: argparse.Namespace, opts: dict[str, object]
) -> dict[str, float]:
    threads = str(args.threads)
    env = {
        **os.environ,
        "OMP_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
    }
    command = [sys.executable, __file__, "--worker", "--data", str(data), "--result", str(result)]
    command += ["--method", method, "--topk", str(args.topk), "--threads", threads]
    command += ["--opts", json.dumps(opts)]
    done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def with_suffix(stem: Path, suffix: str) -> Path:
    """``stem`` + ``suffix``, keeping any dots of the stem (``mining_speed.nprobe2`` + ``.csv``)."""
    return stem.with_name(stem.name + suffix)


def write_tables(rows: list[dict[str, object]], meta: dict[str, object], out: Path) -> None:
    """``<out>.json`` (every field, with the run's settings) and ``<out>.csv`` (the table)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with_suffix(out, ".json").write_text(json.dumps({**meta, "rows": rows}, indent=2) + "\n")
    columns = ["n", "method", "time_s", "peak_mib", "recall@10", "speedup_vs_flat"]
    with open(with_suffix(out, ".csv"), "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def plot(rows: list[dict[str, object]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    largest = max(r["n"] for r in rows)
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        last = mine[-1]
        label = method
        if last["index"] in ("ivf", "hnsw") and last["n"] == largest:
            label += f"  R@10 {last['recall@10']:.4f}, {last['speedup_vs_flat']:.1f}x flat"
        sizes = [r["n"] for r in mine]
        left.plot(sizes, [r["time_s"] for r in mine], marker="o", label=label)
        right.plot(sizes, [r["peak_mib"] for r in mine], marker="o", label=method)
    for axis, label in ((left, "wall time (s)"), (right, "peak RSS added (MiB)")):
        axis.set(xscale="log", yscale="log", xlabel="N pairs", ylabel=label)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=7)
    fig.suptitle("HELIP hard-pair mining (algorithms.md §2)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 30_000, 100_000])
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--topk", type=int, default=20, help="pairs mined per anchor (config)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="INDEX:JSON",
        help="an extra run of ivf or hnsw with other options, e.g. 'ivf:{\"nprobe\": 4}'",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS, help="path stem of the outputs")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--method", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--opts", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    if args.topk < RECALL_K:
        parser.error(f"--topk must be at least {RECALL_K} to measure recall@{RECALL_K}")
    runs = [("flat", {})] + [(m, {}) for m in args.methods if m != "flat"]  # exact first
    for variant in args.variant:
        index, _, options = variant.partition(":")
        if index not in ("ivf", "hnsw"):
            parser.error(f"--variant {variant!r}: the index must be ivf or hnsw")
        runs.append((index, json.loads(options or "{}")))
    meta = {"dim": args.dim, "topk": args.topk, "threads": args.threads, "seed": args.seed}
    rows: list[dict[str, object]] = []
    header = f"{'N':>7} {'method':>34} {'time_s':>8} {'peak_mib':>8} {'recall@10':>9} {'x_flat':>6}"
    print(header, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            data = Path(tmp) / f"pairs_{n}.npz"
            image, text = clustered_pairs(n, args.dim, args.seed)
            np.savez(data, image=image, text=text)
            del image, text
            exact = None
            for method, options in runs:
                label = method + (
                    f"({','.join(f'{k}={v}' for k, v in options.items())})" if options else ""
                )
                result = Path(tmp) / "result.npy"
                measured = run_method(method, data, result, args, options)
                hard = np.load(result)
                exact = hard if method == "flat" else exact
                row = {
                    "n": n,
                    "method": label,
                    "index": method,
                    "options": options,
                    **measured,
                    "recall@10": recall_at_k(hard, exact, k=RECALL_K),
                }
                flat_time = next(r["time_s"] for r in rows + [row] if r["n"] == n)
                row["speedup_vs_flat"] = flat_time / row["time_s"]
                rows.append(row)
                write_tables(rows, meta, args.out)  # kept up to date: a long run can be cut
                print(
                    f"{n:>7} {label:>34} {row['time_s']:>8.2f} {row['peak_mib']:>8.1f}"
                    f" {row['recall@10']:>9.4f} {row['speedup_vs_flat']:>6.2f}",
                    flush=True,
                )
    largest = max(args.sizes)
    flat_time = next(r["time_s"] for r in rows if r["n"] == largest and r["method"] == "flat")
    for row in rows:
        if row["n"] == largest and row["index"] in ("ivf", "hnsw"):
            print(
                f"N={largest} {row['method']}: time ratio approximate/exact "
                f"{row['time_s'] / flat_time:.3f} ({flat_time / row['time_s']:.1f}x faster), "
                f"recall@10 {row['recall@10']:.4f}"
            )
    plot(rows, with_suffix(args.out, ".png"))


if __name__ == "__main__":
    main()
