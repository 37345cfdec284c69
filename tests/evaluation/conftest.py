"""Shared fixtures for evaluation tests (builders live in ``evaluation_fixtures``)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")


@pytest.fixture(scope="session")
def tiny_bundle():
    """The project's tiny random-init model (seeded), shared by the tests that need a real one."""
    from clipflow.models import create_model

    return create_model("clipflow-tiny-vit", seed=0)
