"""Shared fixtures for the loss tests: reproducible L2-normalised embeddings."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch.nn import functional as F

UnitFeatures = Callable[..., torch.Tensor]


@pytest.fixture
def unit_features() -> UnitFeatures:
    """``unit_features(batch, dim, seed=0, dtype=float64)``: random rows of unit norm."""

    def make(batch: int, dim: int, seed: int = 0, dtype: torch.dtype = torch.float64):
        generator = torch.Generator().manual_seed(seed)
        return F.normalize(torch.randn(batch, dim, generator=generator, dtype=dtype), dim=-1)

    return make
