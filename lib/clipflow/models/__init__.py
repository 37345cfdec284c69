"""Models: open_clip towers built by name, with the project's own JSON configs registered.

Any open_clip architecture name works (``ViT-B-32``, ``RN50``, ...). The project adds small
configs in ``model_configs/`` (``clipflow-tiny-vit``: 64 px, 2 layers, width 64) that train in
seconds on a CPU. ``pretrained`` is a local checkpoint path in open_clip's format: no hub is
contacted (HF_HUB_OFFLINE is forced), so real weights a user has on disk load the same way as a
checkpoint this workflow trains.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import open_clip  # noqa: E402
import torch  # noqa: E402

from clipflow.errors import first_line  # noqa: E402
from clipflow.models.checkpoint import (  # noqa: E402
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
)

MODEL_CONFIG_DIR = Path(__file__).parent / "model_configs"
open_clip.add_model_config(MODEL_CONFIG_DIR)

__all__ = ["ClipBundle", "create_model", "load_checkpoint", "save_checkpoint", "MODEL_CONFIG_DIR"]


class ClipBundle(NamedTuple):
    model: torch.nn.Module
    preprocess_train: object
    preprocess_val: object
    tokenizer: object


def create_model(
    model_name: str,
    pretrained: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    seed: int | None = None,
) -> ClipBundle:
    """Build an open_clip model with its transforms and tokenizer.

    ``pretrained`` must be a local file; a missing one fails here with its path rather than inside
    open_clip's hub logic. ``seed`` makes random initialisation reproducible.
    """
    if model_name not in open_clip.list_models():
        raise ValueError(f"unknown model {model_name!r}: not an open_clip or clipflow model config")
    if pretrained is not None and not Path(pretrained).is_file():
        raise FileNotFoundError(f"pretrained checkpoint not found: {pretrained}")
    if seed is not None:
        torch.manual_seed(seed)
    try:
        model, preprocess_train, preprocess_val = open_clip.create_model_and_transforms(
            model_name, pretrained=str(pretrained) if pretrained else None, device=device
        )
    except Exception as error:  # unreadable bytes, a refused pickle, another architecture
        if pretrained is None:
            raise
        raise CheckpointError(
            f"cannot load checkpoint {pretrained} into {model_name}: {first_line(error)}"
        ) from error
    return ClipBundle(model, preprocess_train, preprocess_val, open_clip.get_tokenizer(model_name))
