"""Metrics as pure functions of embeddings, computed the way CLIP_benchmark and the papers do.

Inputs are L2-normalised float tensors, so dot products are cosine similarities.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch.nn import functional as F


def class_embeddings(template_embeddings: torch.Tensor) -> torch.Tensor:
    """Zero-shot classifier rows from ``(classes, templates, dim)`` normalised text embeddings.

    Each class is the mean of its template embeddings, renormalised (CLIP_benchmark's
    ``zero_shot_classifier``).
    """
    return F.normalize(template_embeddings.mean(dim=1), dim=-1)


def classification_metrics(logits: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    """``acc1``, ``acc5`` and ``mean_per_class_recall`` of ``(N, C)`` logits.

    ``acc5`` is NaN below five classes, as CLIP_benchmark reports it (a top-5 of fewer classes
    would be 1 by construction); tables show it blank. Mean per-class recall averages recall
    over the classes present in ``targets``, which is ``sklearn.metrics.balanced_accuracy_score``
    as CLIP_benchmark uses it.
    """
    top = logits.topk(min(5, logits.shape[1]), dim=1).indices
    hits = top == targets[:, None]
    predictions = logits.argmax(dim=1)
    recalls = [
        (predictions[targets == label] == label).float().mean() for label in targets.unique()
    ]
    return {
        "acc1": hits[:, :1].any(dim=1).float().mean().item(),
        "acc5": hits.any(dim=1).float().mean().item() if logits.shape[1] >= 5 else math.nan,
        "mean_per_class_recall": torch.stack(recalls).mean().item(),
    }


def retrieval_metrics(
    text_embeddings: torch.Tensor,
    image_embeddings: torch.Tensor,
    text_to_image: torch.Tensor,
    recall_k: Sequence[int] = (1, 5, 10),
) -> dict[str, float]:
    """Recall@k both ways for captions ``text_embeddings`` of images ``image_embeddings``.

    ``text_to_image[t]`` is the index of caption ``t``'s image. ``image_retrieval_recall@k``:
    share of captions whose image ranks in the top k images; ``text_retrieval_recall@k``:
    share of images with at least one of their captions in the top k captions
    (CLIP_benchmark's ``zeroshot_retrieval``). ``k`` is capped at the gallery size.
    """
    scores = text_embeddings @ image_embeddings.T
    positives = torch.zeros_like(scores, dtype=torch.bool)
    positives[torch.arange(len(scores)), text_to_image] = True
    metrics = {}
    for k in recall_k:
        metrics[f"image_retrieval_recall@{k}"] = _recall(scores, positives, k)
        metrics[f"text_retrieval_recall@{k}"] = _recall(scores.T, positives.T, k)
    return metrics


def _recall(scores: torch.Tensor, positives: torch.Tensor, k: int) -> float:
    """Share of rows with a positive column among their ``k`` highest-scoring columns."""
    top = scores.topk(min(k, scores.shape[1]), dim=1).indices
    return positives.gather(1, top).any(dim=1).float().mean().item()


def pair_scores(image_embeddings: torch.Tensor, text_embeddings: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of each image row with the text row beside it."""
    return (image_embeddings * text_embeddings).sum(dim=1)


def selection_correct(
    image_embeddings: torch.Tensor,
    positive_embeddings: torch.Tensor,
    negative_embeddings: torch.Tensor,
) -> torch.Tensor:
    """Per row, whether the positive caption scores strictly above the negative one.

    A tie counts as wrong (SugarCrepe's ``main_eval.py``, ARO's VG tasks, VALSE's ``acc_r``,
    VL-CheckList's ITC; CLIP_benchmark's argmax would count it right).
    """
    return pair_scores(image_embeddings, positive_embeddings) > pair_scores(
        image_embeddings, negative_embeddings
    )


def selection_accuracy(
    image_embeddings: torch.Tensor,
    positive_embeddings: torch.Tensor,
    negative_embeddings: torch.Tensor,
) -> float:
    """Share of rows where the positive caption scores strictly above the negative one."""
    correct = selection_correct(image_embeddings, positive_embeddings, negative_embeddings)
    return correct.float().mean().item()


def first_option_correct(scores: torch.Tensor) -> torch.Tensor:
    """Per row of ``(N, K)`` image-caption scores, whether option 0 scores highest.

    Ties go to option 0, as ARO's ``argmax(...) == 0`` does for COCO/Flickr-Order, where a
    perturbation can leave a short caption unchanged.
    """
    return scores[:, 0] >= scores.max(dim=1).values
