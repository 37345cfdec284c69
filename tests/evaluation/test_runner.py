"""The registry, options, result records and the embedding cache."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from evaluation_fixtures import LookupModel, id_preprocess, write_id_image, write_json

from clipflow.evaluation import (
    BENCHMARKS,
    evaluate,
    get_benchmark,
    parse_options,
    result_record,
)


def test_registry_lists_the_benchmarks() -> None:
    assert set(BENCHMARKS) >= {
        "imagefolder_zeroshot",
        "cifar10",
        "cifar100",
        "coco_retrieval",
        "flickr30k_retrieval",
        "sugarcrepe",
        "aro_vg_relation",
        "aro_vg_attribution",
        "aro_coco_order",
        "aro_flickr_order",
        "valse",
        "vl_checklist",
    }
    options = ["annotation", "split", "image_root", "recall_k"]
    assert get_benchmark("coco_retrieval").option_names() == options
    assert get_benchmark("flickr30k_retrieval").option_names() == options


def test_unknown_benchmark_and_option_fail_listing_the_known() -> None:
    with pytest.raises(ValueError, match=r"unknown benchmark 'imagenet'; known: aro_coco_order, "):
        get_benchmark("imagenet")
    model = LookupModel([[1.0]], {"a": [1.0]})
    with pytest.raises(ValueError, match=r"no option\(s\) \['splitt'\]; it accepts \['image_root'"):
        evaluate("sugarcrepe", model, id_preprocess, model.tokenizer, ".", splitt="test")


def test_parse_options() -> None:
    assert parse_options(["split=test", "recall_k=[1, 5]", "amp=true", "subsets=a,b", "x="]) == {
        "split": "test",
        "recall_k": [1, 5],
        "amp": True,
        "subsets": "a,b",
        "x": "",
    }
    with pytest.raises(ValueError, match="not of the form key=value"):
        parse_options(["split"])


def test_result_record_matches_clip_benchmark_shape() -> None:
    record = result_record("coco_retrieval", {"image_retrieval_recall@1": 0.5}, "RN50", None)
    assert record == {
        "dataset": "coco_retrieval",
        "model": "RN50",
        "pretrained": None,
        "task": "zeroshot_retrieval",
        "metrics": {"image_retrieval_recall@1": 0.5},
        "language": "en",
    }
    named = result_record("sugarcrepe", {}, "RN50", Path("ckpt.pt"), dataset_name="sugar_crepe")
    assert (named["dataset"], named["pretrained"], named["task"]) == (
        "sugar_crepe",
        "ckpt.pt",
        "image_caption_selection",
    )


class Unusable(LookupModel):
    """A model that must not be called: every embedding has to come from the cache."""

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        raise AssertionError("image embeddings were not cached")

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        raise AssertionError("text embeddings were not cached")


def test_embedding_cache_reuses_embeddings_of_the_same_weights(tmp_path: Path) -> None:
    write_id_image(tmp_path / "val2017" / "0.jpg", 0)
    record = {"filename": "0.jpg", "caption": "good", "negative_caption": "bad"}
    write_json(tmp_path / "add_obj.json", {"0": record})
    texts = {"good": [1.0, 0.0], "bad": [0.0, 1.0]}
    cache = tmp_path / "cache"

    def run(model: LookupModel) -> dict[str, float]:
        return evaluate(
            "sugarcrepe",
            model,
            id_preprocess,
            model.tokenizer,
            tmp_path,
            embedding_cache=cache,
            subsets=["add_obj"],
        )

    first = run(LookupModel([[1.0, 0.0]], texts))
    assert len(list(cache.glob("*.npy"))) == 2
    assert run(Unusable([[1.0, 0.0]], texts)) == first
    # Other weights hash to another key: the stale embeddings are not read.
    assert run(LookupModel([[0.0, 1.0]], texts))["acc"] == 0.0
    assert len(list(cache.glob("*.npy"))) == 4
