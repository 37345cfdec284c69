"""CE-CLIP English hard-negative generation speed (algorithms.md §4): captions per second.

Makes ``--captions`` COCO-style captions from templates (seeded: subjects, verbs, objects,
colours, sizes, places, a few with no verb or no adjective, as real captions have) and times
``generate_for_table`` over them with the ``english`` generator set (spaCy ``nlp.pipe`` +
WordNet), all four kinds, ``--per-caption`` negatives, for each ``--processes`` count. Each
count runs in a fresh subprocess, so that no run inherits another's caches, and reports

- ``load_s``: loading spaCy's model and WordNet (``prepare([])``, once per run, before workers
  fork; a workflow job pays it once);
- ``time_s``: the wall time of ``generate_for_table`` itself (parsing, WordNet lookups, edits,
  the worker pool's start and the rows' return);
- ``captions_per_s``: captions / ``time_s``; ``negatives_per_caption``: rows / captions; and
  ``kinds_covered``: the share of captions with at least one negative of each of 3+ kinds.

Writes ``<out>.csv`` and ``<out>.json`` and prints the table.

    python benchmarks/negatives_speed.py                          # 10,000 captions, 1 and 2
    python benchmarks/negatives_speed.py --captions 2000 --processes 2 --out /tmp/neg_speed
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import re
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "negatives_speed"


def _words(text: str) -> list[str]:
    return text.split()


_ARTICLE = re.compile(r"\b([Aa]) ([aeiou])")  # "a orange kite" -> "an orange kite"


PEOPLE = _words("man woman boy girl child person player skier surfer chef")
PEOPLE_PLURAL = _words("men women boys girls children people players skiers surfers chefs")
ANIMALS = _words("dog cat horse cow sheep elephant giraffe zebra bird bear")
THINGS = _words(
    "frisbee ball kite umbrella skateboard surfboard pizza sandwich cake laptop bicycle "
    "book phone bag banana"
)
THINGS_PLURAL = [t + ("es" if t.endswith("ch") else "s") for t in THINGS]
PLACES = _words("street field beach road kitchen table grass park river room building")
COLOURS = _words("red blue green yellow white black brown orange pink gray")
SIZES = _words("large small big little tall short old young")
TRANSITIVE = _words("holding carrying throwing riding eating watching chasing pulling kicking")
INTRANSITIVE = _words("sitting standing walking running jumping lying waiting playing")
PREPOSITIONS = _words("on in near under behind beside above at")
TEMPLATES = (
    "A {adj} {person} {vt} a {thing} {prep} the {place}.",
    "A {colour} {animal} {vi} {prep} a {adj} {place}.",
    "Two {people} {vt} {things} {prep} the {place}.",
    "A {person} and a {animal} {vi} {prep} the {place}.",
    "The {colour} {thing} is {prep} a {adj} {place}.",
    "A {animal} {vt} a {colour} {thing} in front of a {person}.",
    "A {adj} {colour} {thing} next to a {place}",
    "{person} {vi} with a {thing}",
    "A {place} with a {colour} {thing} and a {adj} {animal}.",
    "An image of a {animal} on top of a {thing}.",
)


def coco_style_captions(n: int, seed: int) -> list[str]:
    """``n`` captions from :data:`TEMPLATES`, words drawn with ``random.Random(seed)``."""
    rng = random.Random(seed)
    captions = []
    for _ in range(n):
        words = {
            "person": rng.choice(PEOPLE),
            "people": rng.choice(PEOPLE_PLURAL),
            "animal": rng.choice(ANIMALS),
            "thing": rng.choice(THINGS),
            "things": rng.choice(THINGS_PLURAL),
            "place": rng.choice(PLACES),
            "colour": rng.choice(COLOURS),
            "adj": rng.choice(SIZES + COLOURS),
            "vt": rng.choice(TRANSITIVE),
            "vi": rng.choice(INTRANSITIVE),
            "prep": rng.choice(PREPOSITIONS),
        }
        text = _ARTICLE.sub(r"\1n \2", rng.choice(TEMPLATES).format(**words))
        captions.append(text[:1].upper() + text[1:])
    return captions


def worker(args: argparse.Namespace) -> None:
    """One timed run in this (fresh) process; prints a JSON line with the measurements."""
    from clipflow.negatives import KINDS, generate_for_table, generator_set

    captions = coco_style_captions(args.captions, args.seed)
    started = time.perf_counter()
    for hook in {id(g.prepare): g.prepare for g in generator_set("english")}.values():
        hook([], args.batch_size)
    loaded = time.perf_counter()
    table = generate_for_table(
        captions,
        kinds=KINDS,
        per_caption=args.per_caption,
        seed=args.seed,
        generator_set="english",
        n_process=args.n_process,
        batch_size=args.batch_size,
        progress=False,
    )
    elapsed = time.perf_counter() - loaded
    kinds_per_caption = table.groupby("caption_index")["kind"].nunique()
    print(
        json.dumps(
            {
                "load_s": loaded - started,
                "time_s": elapsed,
                "captions_per_s": len(captions) / elapsed,
                "negatives_per_caption": len(table) / len(captions),
                "kinds_covered": float((kinds_per_caption >= 3).sum() / len(captions)),
                "per_kind": {k: int(v) for k, v in table["kind"].value_counts().items()},
            }
        )
    )


def run(n_process: int, args: argparse.Namespace) -> dict[str, object]:
    command = [sys.executable, __file__, "--worker", "--n-process", str(n_process)]
    command += ["--captions", str(args.captions), "--seed", str(args.seed)]
    command += ["--batch-size", str(args.batch_size), "--per-caption", str(args.per_caption)]
    # one BLAS/OpenMP thread per process: the processes are the parallelism measured
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def write_tables(rows: list[dict[str, object]], meta: dict[str, object], out: Path) -> None:
    """``<out>.json`` (every field, with the run's settings) and ``<out>.csv`` (the table)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_name(out.name + ".json").write_text(
        json.dumps({**meta, "rows": rows}, indent=2) + "\n"
    )
    columns = [
        "n_process",
        "captions",
        "load_s",
        "time_s",
        "captions_per_s",
        "negatives_per_caption",
        "kinds_covered",
    ]
    with open(out.with_name(out.name + ".csv"), "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--captions", type=int, default=10_000)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--per-caption", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS, help="path stem of the outputs")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--n-process", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    meta = {
        "captions": args.captions,
        "batch_size": args.batch_size,
        "per_caption": args.per_caption,
        "seed": args.seed,
        "generator_set": "english",
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
    }
    header = ("processes", "load_s", "time_s", "captions/s", "neg/cap", "3+kinds")
    print(" ".join(f"{h:>{w}}" for h, w in zip(header, (9, 7, 7, 10, 7, 7), strict=True)))
    rows: list[dict[str, object]] = []
    for n_process in args.processes:
        row = {"n_process": n_process, "captions": args.captions, **run(n_process, args)}
        rows.append(row)
        write_tables(rows, meta, args.out)  # kept up to date: a long run can be cut
        print(
            f"{n_process:>9} {row['load_s']:>7.2f} {row['time_s']:>7.2f}"
            f" {row['captions_per_s']:>10.0f} {row['negatives_per_caption']:>7.2f}"
            f" {row['kinds_covered']:>7.1%}",
            flush=True,
        )


if __name__ == "__main__":
    main()
