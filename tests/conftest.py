"""Suite-wide settings: offline hub, no albumentations phone-home, and the `gpu` marker's skip."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs CUDA; none on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def tiny_download(tmp_path_factory):
    """A small set (120 pairs, 2 broken urls, 1 corrupt image), downloaded by img2dataset."""
    from clipflow.data.download import DownloadOptions, download_served_folder, download_stats
    from clipflow.data.synthetic import make_training_set

    root = tmp_path_factory.mktemp("tiny_download")
    manifest = make_training_set(
        root / "source", 120, seed=3, num_broken_urls=2, num_corrupt_images=1
    )
    options = DownloadOptions(number_sample_per_shard=50, thread_count=4)
    download_served_folder(
        root / "source", manifest, root / "url_list.tsv", root / "shards", options
    )
    return {
        "root": root,
        "manifest": manifest,
        "shards": root / "shards",
        "stats": download_stats(root / "shards"),
    }
