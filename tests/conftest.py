"""Suite-wide settings: offline hub, no albumentations phone-home, and the `gpu` marker's skip."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
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


@pytest.fixture(scope="session")
def metadata(tiny_download):
    """The tiny download's metadata table."""
    from clipflow.data.metadata import build_metadata

    return build_metadata(tiny_download["shards"])


@pytest.fixture(scope="session")
def metadata_file(metadata, tmp_path_factory):
    """The same table as the parquet file the train script reads."""
    from clipflow.io import write_with

    path = tmp_path_factory.mktemp("meta") / "pairs.parquet"
    write_with(path, lambda tmp: metadata.to_parquet(tmp, index=False))
    return path


SLURM_UP = REPO / ".ci" / "slurm-up.sh"
SLURM_DOWN = REPO / ".ci" / "slurm-down.sh"
SLURM_UP_TIMEOUT_S = 900  # includes apt-get install on a fresh machine


def _unavailable_reason() -> str | None:
    if sys.platform != "linux":
        return "the local SLURM cluster needs Linux"
    if os.geteuid() != 0:
        return (
            "needs root: .ci/slurm-up.sh installs slurm-wlm/munge/mariadb and starts "
            "system daemons (run the tests as root, as CI does)"
        )
    if shutil.which("slurmctld") is None and shutil.which("apt-get") is None:
        return "SLURM is not installed and apt-get is unavailable to install it"
    try:
        import snakemake  # noqa: F401
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError as err:
        return f"snakemake / snakemake-executor-plugin-slurm not importable: {err}"
    return None


@pytest.fixture(scope="session")
def slurm_cluster():
    """The local cluster, up for this session. Stopped afterwards if this fixture started
    it (a cluster that was already up is left running); CLIPFLOW_SLURM_KEEP=1 keeps it."""
    reason = _unavailable_reason()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"SLURM tests must run in CI, but: {reason}")
        pytest.skip(reason)
    t0 = time.monotonic()
    try:
        up = subprocess.run(
            ["bash", str(SLURM_UP)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=SLURM_UP_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as err:
        pytest.fail(f".ci/slurm-up.sh did not finish in {SLURM_UP_TIMEOUT_S}s: {err}")
    if up.returncode != 0:
        pytest.fail(f".ci/slurm-up.sh failed ({up.returncode}):\n{up.stdout}\n{up.stderr}")
    print(f"{up.stdout.strip()} [{time.monotonic() - t0:.1f}s]")
    started_here = "already up" not in up.stdout
    try:
        yield {"account": "clipflow", "partition": "cpu"}
    finally:
        if started_here and os.environ.get("CLIPFLOW_SLURM_KEEP") != "1":
            down = subprocess.run(
                ["bash", str(SLURM_DOWN)],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=300,
            )
            print(down.stdout.strip(), down.stderr.strip())
