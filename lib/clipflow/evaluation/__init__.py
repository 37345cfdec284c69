"""Evaluation: score a CLIP model on benchmarks read in their official on-disk formats.

Benchmarks live in the ``BENCHMARKS`` registry (``clipflow.registry.Registry``) as
:class:`Benchmark` entries, each a function ``run(encoder, root, **options)`` returning
``{metric: value}`` with CLIP_benchmark's metric names, and the task name for the result JSON:

- ``imagefolder_zeroshot``: ``root/<class>/<image>`` zero-shot ``acc1``/``acc5``/
  ``mean_per_class_recall`` (:mod:`clipflow.evaluation.zeroshot`);
- ``coco_retrieval``, ``flickr30k_retrieval``: Karpathy or BLIP caption files,
  ``{image,text}_retrieval_recall@k`` (:mod:`clipflow.evaluation.retrieval`);
- ``sugarcrepe``: per-subset accuracy and means (:mod:`clipflow.evaluation.sugarcrepe`).

A new benchmark is a module that registers one more entry and is imported here. Embeddings
come from :class:`Encoder`, so benchmark code never touches batching or devices.
"""

from clipflow.evaluation import retrieval, sugarcrepe, zeroshot  # noqa: F401  (registration)
from clipflow.evaluation.benchmark import (
    BENCHMARKS,
    Benchmark,
    BenchmarkDataError,
    get_benchmark,
    parse_options,
)
from clipflow.evaluation.encoder import Encoder
from clipflow.evaluation.runner import evaluate, evaluate_checkpoint, result_record

__all__ = [
    "BENCHMARKS",
    "Benchmark",
    "BenchmarkDataError",
    "Encoder",
    "evaluate",
    "evaluate_checkpoint",
    "get_benchmark",
    "parse_options",
    "result_record",
]
