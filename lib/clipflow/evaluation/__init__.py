"""Evaluation: score a CLIP model on benchmarks read in their official on-disk formats.

Benchmarks live in the ``BENCHMARKS`` registry (``clipflow.registry.Registry``) as
:class:`Benchmark` entries, each a function ``run(encoder, root, **options)`` returning
``{metric: value}`` with CLIP_benchmark's metric names (a :class:`Scores` where the benchmark
has parts or counts), and the task name for the result JSON:

- ``imagefolder_zeroshot``: ``root/<class>/<image>`` zero-shot ``acc1``/``acc5``/
  ``mean_per_class_recall`` (:mod:`clipflow.evaluation.zeroshot`);
- ``coco_retrieval``, ``flickr30k_retrieval``: Karpathy or BLIP caption files,
  ``{image,text}_retrieval_recall@k`` (:mod:`clipflow.evaluation.retrieval`);
- ``sugarcrepe``: per-subset accuracy and means, images in ``root/val2017``
  (:mod:`clipflow.evaluation.sugarcrepe`);
- ``cifar10``, ``cifar100``: torchvision's pickled batches, zero-shot like
  ``imagefolder_zeroshot`` with CLIP's CIFAR templates (:mod:`clipflow.evaluation.cifar`);
- ``aro_vg_relation``, ``aro_vg_attribution`` (``macro_accuracy``, ``micro_accuracy``) and
  ``aro_coco_order``, ``aro_flickr_order`` (``Precision@1``) (:mod:`clipflow.evaluation.aro`);
- ``valse``: ``acc_r`` per piece and their mean (:mod:`clipflow.evaluation.valse`);
- ``vl_checklist``: accuracy per file, radar axis, dimension and type and their mean ``acc``;
  the number of ties is a count beside the metrics (:mod:`clipflow.evaluation.vl_checklist`).

A benchmark made of parts scores every part it defines and fails naming the files that are
missing, unless an option lists the parts; the result record names the parts scored.

A new benchmark is a module that registers one more entry and is imported here. Embeddings
come from :class:`Encoder`, so benchmark code never touches batching or devices.
"""

from clipflow.evaluation import (  # noqa: F401  (registration)
    aro,
    cifar,
    retrieval,
    sugarcrepe,
    valse,
    vl_checklist,
    zeroshot,
)
from clipflow.evaluation.benchmark import (
    BENCHMARKS,
    Benchmark,
    BenchmarkDataError,
    Scores,
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
    "Scores",
    "evaluate",
    "evaluate_checkpoint",
    "get_benchmark",
    "parse_options",
    "result_record",
]
