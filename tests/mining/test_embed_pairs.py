"""Embedding pairs from webdataset shards, and the two mining workflow scripts end to end."""

from __future__ import annotations

import io
import json
import os
import random
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from clipflow.data.synthetic import random_scene, render_scene
from clipflow.io import encoder_fingerprint
from clipflow.mining import (
    embed_pairs,
    embed_shards,
    iter_shard_samples,
    load_embeddings,
    read_hard_sample_csv,
    read_hard_sample_dict,
    read_pairs,
)
from clipflow.models import create_model, save_checkpoint

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "HF_HUB_OFFLINE": "1"}


def _add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two img2dataset-style shards (key.jpg/.txt/.json) and the pairs table; one failed row."""
    root = tmp_path_factory.mktemp("wds")
    rng = random.Random(0)
    rows = []
    for shard in range(2):
        with tarfile.open(root / f"{shard:05d}.tar", "w") as archive:  # names as build_metadata
            for i in range(12):
                key = f"{shard:05d}{i:04d}"
                url = f"http://127.0.0.1/images/{key}.png"
                if i == 5:  # a failed download: in the table, not in the shard
                    rows.append((-1, key, url, "lost", f"{shard:05d}.tar", "failed_to_download"))
                    continue
                scene = random_scene(rng)
                buffer = io.BytesIO()
                render_scene(scene, rng).save(buffer, format="JPEG")
                _add(archive, f"{key}.jpg", buffer.getvalue())
                _add(archive, f"{key}.txt", scene.caption().encode())
                _add(archive, f"{key}.json", json.dumps({"url": url}).encode())
                index = sum(row[-1] == "success" for row in rows)  # first-seen url order
                rows.append((index, key, url, scene.caption(), f"{shard:05d}.tar", "success"))
    table = pd.DataFrame(rows, columns=["index", "key", "url", "caption", "shard", "status"])
    table.to_parquet(root / "pairs.parquet")
    return root / "pairs.parquet", root


def test_reads_images_by_key_in_table_order(dataset: tuple[Path, Path]) -> None:
    pairs_path, shards = dataset
    pairs = read_pairs(pairs_path)
    assert len(pairs) == 22 and (pairs["status"] == "success").all()
    samples = list(iter_shard_samples(pairs, shards))
    assert [caption for _, caption in samples] == pairs["caption"].tolist()
    assert all(image.mode == "RGB" and image.size == (64, 64) for image, _ in samples)


def test_missing_member_and_columns_are_named(dataset: tuple[Path, Path], tmp_path: Path) -> None:
    pairs_path, shards = dataset
    pairs = read_pairs(pairs_path)
    pairs.loc[3, "key"] = "999999999"
    with pytest.raises(ValueError, match=r"00000.tar: no image for key '999999999' \(pairs col"):
        list(iter_shard_samples(pairs, shards))
    pd.DataFrame({"index": [0], "caption": ["a"]}).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(ValueError, match=r"bad.parquet: missing column\(s\) key, shard, status"):
        read_pairs(tmp_path / "bad.parquet")


def test_embeddings_are_normalised_and_batch_invariant(dataset: tuple[Path, Path]) -> None:
    pairs_path, shards = dataset
    pairs = read_pairs(pairs_path)
    bundle = create_model("clipflow-tiny-vit", seed=0)
    args = (bundle.model, bundle.preprocess_val, bundle.tokenizer)
    image, text = embed_pairs(*args, iter_shard_samples(pairs, shards), batch_size=5)
    assert image.dtype == text.dtype == np.float32 and image.shape[0] == text.shape[0] == 22
    np.testing.assert_allclose(np.linalg.norm(image, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(text, axis=1), 1.0, atol=1e-5)
    one_image, one_text = embed_pairs(*args, iter_shard_samples(pairs, shards), batch_size=22)
    np.testing.assert_allclose(image, one_image, atol=1e-5)
    np.testing.assert_allclose(text, one_text, atol=1e-5)


def test_shard_cache_resumes_and_matches_one_pass(
    dataset: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shard by shard, cached: same rows as one pass; a rerun embeds only what is missing."""
    from clipflow.mining import embed as embed_module

    pairs_path, shards = dataset
    pairs = read_pairs(pairs_path)
    bundle = create_model("clipflow-tiny-vit", seed=0)
    args = (bundle.model, bundle.preprocess_val, bundle.tokenizer)
    whole = embed_pairs(*args, iter_shard_samples(pairs, shards), batch_size=8)
    cache = tmp_path / "cache"
    embedded: list[int] = []
    original = embed_module.embed_pairs

    def counting(*a, **k):
        embedded.append(k["total"])
        return original(*a, **k)

    monkeypatch.setattr(embed_module, "embed_pairs", counting)
    shuffled = pairs.sample(frac=1.0, random_state=0).reset_index(drop=True)  # rows interleave
    image, text = embed_shards(*args, shuffled, shards, cache, batch_size=8)
    order = shuffled["index"].to_numpy()
    np.testing.assert_allclose(image, whole[0][order], atol=1e-5)
    np.testing.assert_allclose(text, whole[1][order], atol=1e-5)
    assert sorted(embedded) == [11, 11] and len(list(cache.glob("*.npy"))) == 6

    (cache / "00001.index.npy").unlink()  # as if killed while writing shard 1's cache
    np.save(cache / "00000.index.npy", np.arange(11) + 100)  # another dataset's rows
    embedded.clear()
    again = embed_shards(*args, pairs, shards, cache, batch_size=8)
    assert embedded == [11, 11]
    np.testing.assert_allclose(again[0], whole[0], atol=1e-5)
    embedded.clear()
    embed_shards(*args, pairs, shards, cache, batch_size=8)
    assert embedded == [], "a complete cache is read back, not recomputed"
    assert encoder_fingerprint("m", None, 0) != encoder_fingerprint("m", None, 1)


def _script(name: str, *args: object) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "workflow_scripts" / name), *map(str, args)],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=ROOT,
    )


def test_scripts_embed_then_mine(dataset: tuple[Path, Path], tmp_path: Path) -> None:
    pairs_path, shards = dataset
    bundle = create_model("clipflow-tiny-vit", seed=1)
    checkpoint = save_checkpoint({"state_dict": bundle.model.state_dict()}, tmp_path / "tiny.pt")
    done = _script(
        "embed_pairs.py",
        "--pairs",
        pairs_path,
        "--shards-dir",
        shards,
        "--model",
        "clipflow-tiny-vit",
        "--pretrained",
        checkpoint,
        "--batch-size",
        8,
        "--output",
        tmp_path / "emb.npz",
        "--cache-dir",
        tmp_path / "cache",
    )
    assert done.returncode == 0, done.stderr
    (encoder,) = (tmp_path / "cache").iterdir()  # one folder per encoder
    assert len(list(encoder.glob("*.npy"))) == 6
    image, text, index = load_embeddings(tmp_path / "emb.npz")
    assert image.shape[0] == 22 and index.tolist() == list(range(22))
    with torch.inference_mode():  # the checkpoint's weights, not a fresh initialisation
        tokens = bundle.tokenizer([read_pairs(pairs_path)["caption"][0]])
        expected = torch.nn.functional.normalize(bundle.model.encode_text(tokens), dim=-1)
    np.testing.assert_allclose(text[0], expected[0].numpy(), atol=1e-5)

    outputs = {
        name: tmp_path / name
        for name in (
            "syn_hard_sample.csv",
            "syn_hard_sample_dict.json",
            "report.json",
            "scores.png",
        )
    }
    done = _script(
        "mine_hard_pairs.py",
        "--embeddings",
        tmp_path / "emb.npz",
        "--topk",
        5,
        "--index",
        "hnsw",
        "--dataset-name",
        "syn",
        "--output-csv",
        outputs["syn_hard_sample.csv"],
        "--output-dict",
        outputs["syn_hard_sample_dict.json"],
        "--output-report",
        outputs["report.json"],
        "--output-plot",
        outputs["scores.png"],
    )
    assert done.returncode == 0, done.stderr
    hard = read_hard_sample_csv(outputs["syn_hard_sample.csv"])
    assert hard == read_hard_sample_dict(outputs["syn_hard_sample_dict.json"])
    assert sorted(hard) == list(range(22)) and all(a not in h for a, h in hard.items())
    report = json.loads(outputs["report.json"].read_text())
    assert report["index"] == "hnsw" and report["recall_sample_size"] == 22
    assert 0.0 <= report["recall_at_k"] <= 1.0 and sum(report["score_histogram"]["counts"]) > 0
    assert outputs["scores.png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_scripts_fail_in_one_line_on_bad_input(tmp_path: Path) -> None:
    np.savez(tmp_path / "emb.npz", image=np.ones((3, 4)), text=np.ones((3, 4)))
    done = _script(
        "mine_hard_pairs.py",
        "--embeddings",
        tmp_path / "emb.npz",
        "--topk",
        2,
        "--dataset-name",
        "x",
        "--output-csv",
        tmp_path / "a.csv",
        "--output-dict",
        tmp_path / "a.json",
        "--output-report",
        tmp_path / "r.json",
        "--output-plot",
        tmp_path / "p.png",
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        f"mine_hard_pairs: error: {tmp_path / 'emb.npz'}: missing array(s) index"
    )
    assert not (tmp_path / "a.csv").exists()
