"""Entry points: score a model on a registered benchmark, or a checkpoint into a result record."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from clipflow.evaluation.benchmark import Scores, get_benchmark
from clipflow.evaluation.encoder import Encoder
from clipflow.models import create_model


def evaluate(
    benchmark: str,
    model: torch.nn.Module,
    preprocess: Any,
    tokenizer: Any,
    data_root: str | os.PathLike,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    *,
    amp: bool = False,
    num_workers: int = 0,
    embedding_cache: str | os.PathLike | None = None,
    **options: Any,
) -> dict[str, float]:
    """Metrics of ``model`` on ``benchmark`` read from ``data_root`` (a
    :class:`~clipflow.evaluation.benchmark.Scores` for a benchmark made of parts).

    ``options`` are the benchmark's own (see each benchmark's function, e.g. ``split`` for
    retrieval); an unknown one fails with the list of accepted ones. ``embedding_cache`` is a
    directory for cached embeddings (see :class:`~clipflow.evaluation.encoder.Encoder`).
    """
    entry = get_benchmark(benchmark)
    unknown = sorted(set(options) - set(entry.option_names()))
    if unknown:
        raise ValueError(
            f"benchmark {benchmark!r} has no option(s) {unknown}; it accepts {entry.option_names()}"
        )
    encoder = Encoder(
        model,
        preprocess,
        tokenizer,
        batch_size=batch_size,
        device=device,
        amp=amp,
        num_workers=num_workers,
        cache_dir=embedding_cache,
    )
    return entry.run(encoder, Path(data_root), **options)


def result_record(
    benchmark: str,
    metrics: dict[str, float],
    model_name: str,
    pretrained: str | os.PathLike | None,
    dataset_name: str | None = None,
) -> dict[str, Any]:
    """The CLIP_benchmark-shaped result: ``{dataset, model, pretrained, task, metrics, language}``
    and, for :class:`~clipflow.evaluation.benchmark.Scores`, the ``parts`` scored and the
    ``counts`` beside the metrics.

    ``pretrained`` is the checkpoint path, or ``None`` for a randomly initialised model.
    """
    record: dict[str, Any] = {
        "dataset": dataset_name or benchmark,
        "model": model_name,
        "pretrained": str(pretrained) if pretrained is not None else None,
        "task": get_benchmark(benchmark).task,
        "metrics": dict(metrics),
        "language": "en",
    }
    if isinstance(metrics, Scores):
        if metrics.parts:
            record["parts"] = metrics.parts
        if metrics.counts:
            record["counts"] = metrics.counts
    return record


def evaluate_checkpoint(
    benchmark: str,
    data_root: str | os.PathLike,
    model_name: str,
    pretrained: str | os.PathLike | None = None,
    batch_size: int = 64,
    device: str = "cpu",
    dataset_name: str | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Build ``model_name`` (weights from the ``pretrained`` checkpoint, else seeded random
    init), score it on ``benchmark`` and return the result record."""
    get_benchmark(benchmark)  # fail on a typo before building the model
    bundle = create_model(model_name, pretrained=pretrained, device=device, seed=0)
    metrics = evaluate(
        benchmark,
        bundle.model,
        bundle.preprocess_val,
        bundle.tokenizer,
        data_root,
        batch_size=batch_size,
        device=device,
        **options,
    )
    return result_record(benchmark, metrics, model_name, pretrained, dataset_name)
