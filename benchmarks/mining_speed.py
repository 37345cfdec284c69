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
METHODS = ("flat", "matmul", "ivf", "hnsw", "torch")
GENERATE_ROWS = 65536
RECALL_K = 10


def clustered_pairs(n: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` (image, text) unit pairs from n/40 shared topics, noisy per modality, in a cone.

    Drawn ``GENERATE_ROWS`` pairs at a time, so making 1M pairs holds little beyond the result.
    """
    rng = np.random.default_rng(seed)
    topics = rng.standard_normal((max(1, n // 40), dim), dtype=np.float32)
    mix = rng.standard_normal((dim, dim), dtype=np.float32) / np.sqrt(dim)
    image = np.empty((n, dim), dtype=np.float32)
    text = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, GENERATE_ROWS):
        rows = min(n, start + GENERATE_ROWS) - start
        base = topics[rng.integers(0, len(topics), rows)]
        base += 0.7 * rng.standard_normal((rows, dim), dtype=np.float32)
        block_image = base + 0.5 * rng.standard_normal((rows, dim), dtype=np.float32) + 1.0
        block_text = base @ mix + 0.5 * rng.standard_normal((rows, dim), dtype=np.float32) + 1.0
        image[start : start + rows] = block_image / np.linalg.norm(block_image, axis=1)[:, None]
        text[start : start + rows] = block_text / np.linalg.norm(block_text, axis=1)[:, None]
    return image, text


def matmul_floor(
    image: np.ndarray, text: np.ndarray, chunk: int = 1024, db_chunk: int = 16384
) -> None:
    """The two float32 products exact search cannot avoid, in ``flat``'s blocks; nothing else."""
    n = image.shape[0]
    for start in range(0, n, chunk):
        for db_start in range(0, n, db_chunk):
            image[start : start + chunk] @ image[db_start : db_start + db_chunk].T
            text[start : start + chunk] @ text[db_start : db_start + db_chunk].T


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

    faiss.omp_set_num_threads(args.threads)
    if args.method == "torch":  # only then: importing torch alone adds ~0.3 GB to the peak RSS
        import torch

        torch.set_num_threads(args.threads)
    image, text = np.load(f"{args.data}.image.npy"), np.load(f"{args.data}.text.npy")
    queries = np.load(args.queries) if args.queries and args.method == "flat" else None
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    if args.method == "torch":
        hard = torch_brute_force(image, text, args.topk)
    elif args.method == "matmul":
        matmul_floor(image, text)
        hard = np.zeros((0, args.topk), dtype=np.int64)
    else:
        opts = json.loads(args.opts)
        hard = mine_hard_pairs(image, text, args.topk, index=args.method, queries=queries, **opts)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    np.save(args.result, hard)
    print(
        json.dumps(
            {
                "time_s": elapsed,
                "peak_mib": (after - before) / 1024,
                "peak_rss_mib": after / 1024,
                "load_1min": [load_before, os.getloadavg()[0]],
            }
        )
    )


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
    command += ["--opts", json.dumps(opts), "--queries", str(args.queries_file or "")]
    done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def with_suffix(stem: Path, suffix: str) -> Path:
    """``stem`` + ``suffix``, keeping any dots of the stem (``mining_speed.100k`` + ``.csv``)."""
    return stem.with_name(stem.name + suffix)


def write_tables(rows: list[dict[str, object]], meta: dict[str, object], out: Path) -> None:
    """``<out>.json`` (every field, with the run's settings), ``<out>.csv`` and ``<out>.md``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with_suffix(out, ".json").write_text(json.dumps({**meta, "rows": rows}, indent=2) + "\n")
    columns = ["n", "method", "time_s", "peak_mib", "peak_rss_mib", "recall@10", "speedup_vs_flat"]
    columns += ["flat_vs_matmul", "load_1min"]
    with open(with_suffix(out, ".csv"), "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        f"HELIP mining, {meta['dim']}-d, top-{meta['topk']}, {meta['threads']} threads "
        f"(benchmarks/mining_speed.py). Load: start `{meta['uptime_start']}`, "
        f"end `{meta.get('uptime_end', '')}`.",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
    ]
    for row in rows:
        cells = [row.get(column, "") for column in columns]
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    with_suffix(out, ".md").write_text("\n".join(lines) + "\n")


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if value < 10 else f"{value:.1f}"
    if isinstance(value, list):
        return "/".join(f"{item:.2f}" for item in value)
    return str(value)


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
    parser.add_argument(
        "--recall-sample",
        type=int,
        default=0,
        help="run flat on this many random anchors only and measure recall on them (0: all)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="path stem of the outputs")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--method", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--opts", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--queries", default="", help=argparse.SUPPRESS)
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
    meta = {
        "dim": args.dim,
        "topk": args.topk,
        "threads": args.threads,
        "seed": args.seed,
        "recall_sample": args.recall_sample,
        "uptime_start": uptime(),
    }
    rows: list[dict[str, object]] = []
    header = f"{'N':>7} {'method':>34} {'time_s':>8} {'peak_mib':>8} {'recall@10':>9} {'x_flat':>6}"
    print(header, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            data = Path(tmp) / f"pairs_{n}"
            image, text = clustered_pairs(n, args.dim, args.seed)
            np.save(f"{data}.image.npy", image)
            np.save(f"{data}.text.npy", text)
            del image, text
            sample = None
            args.queries_file = None
            if 0 < args.recall_sample < n:
                rng = np.random.default_rng(args.seed)
                sample = np.sort(rng.choice(n, size=args.recall_sample, replace=False))
                args.queries_file = Path(tmp) / "queries.npy"
                np.save(args.queries_file, sample)
            exact = None
            for method, options in runs:
                label = method + (
                    f"({','.join(f'{k}={v}' for k, v in options.items())})" if options else ""
                )
                if method == "flat" and sample is not None:
                    label = f"flat(sample={len(sample)})"
                result = Path(tmp) / "result.npy"
                measured = run_method(method, data, result, args, options)
                hard = np.load(result)
                row = {"n": n, "method": label, "index": method, "options": options, **measured}
                if method == "flat":
                    exact = hard
                    # time of all N anchors: the sample's, scaled (flat is linear in anchors)
                    row["flat_all_s"] = measured["time_s"] * (n / len(hard))
                if method != "matmul":
                    found = hard if sample is None or method == "flat" else hard[sample]
                    row["recall@10"] = recall_at_k(found, exact, k=RECALL_K)
                flat = next(r for r in rows + [row] if r["n"] == n and r["index"] == "flat")
                row["speedup_vs_flat"] = flat["flat_all_s"] / row["time_s"]
                if method == "matmul":
                    flat["flat_vs_matmul"] = flat["time_s"] / row["time_s"]
                rows.append(row)
                meta["uptime_end"] = uptime()
                write_tables(rows, meta, args.out)  # kept up to date: a long run can be cut
                print(
                    f"{n:>7} {label:>34} {row['time_s']:>8.2f} {row['peak_mib']:>8.1f}"
                    f" {row.get('recall@10', float('nan')):>9.4f}"
                    f" {row['speedup_vs_flat']:>6.2f}  load {row['load_1min']}",
                    flush=True,
                )
    for row in rows:
        if "flat_vs_matmul" in row:
            print(f"N={row['n']} flat / its two matmuls: {row['flat_vs_matmul']:.2f}")
        if row["index"] in ("ivf", "hnsw"):
            print(
                f"N={row['n']} {row['method']}: {row['time_s']:.1f} s, "
                f"{row['speedup_vs_flat']:.1f}x faster than flat, "
                f"recall@10 {row['recall@10']:.4f}, peak RSS {row['peak_rss_mib']:.0f} MiB"
            )
    plot(rows, with_suffix(args.out, ".png"))


if __name__ == "__main__":
    main()
