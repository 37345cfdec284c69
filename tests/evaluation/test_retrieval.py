"""coco_retrieval / flickr30k_retrieval: both annotation formats and hand-worked recall@k."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from evaluation_fixtures import (
    LookupModel,
    id_preprocess,
    karpathy_record,
    write_id_image,
    write_json,
)

from clipflow.evaluation import BenchmarkDataError, evaluate

# Three images embed to e0, e1, e2, so a caption's score for image j is its j-th component
# (after normalisation: every vector below has an integer norm, 7, 9, 11, 13, 15, 9).
CAPTIONS = {  # caption -> (its image, embedding)
    "t0": (0, [6, 2, 3]),  # /7:  .86 .29 .43 -> ranks img0 first            (hit@1)
    "t1": (0, [1, 8, 4]),  # /9:  .11 .89 .44 -> img1, img2, img0            (miss@2)
    "t2": (1, [2, 9, 6]),  # /11: .18 .82 .55 -> img1 first                  (hit@1)
    "t3": (1, [12, 3, 4]),  # /13: .92 .23 .31 -> img0, img2, img1           (miss@2)
    "t4": (2, [2, 11, 10]),  # /15: .13 .73 .67 -> img1, img2                 (hit@2)
    "t5": (2, [4, 4, 7]),  # /9:  .44 .44 .78 -> img2 first                  (hit@1)
}
# Text->image (image_retrieval): @1 3/6, @2 4/6. Image->text (text_retrieval), by column:
# img0: t3 .92 > t0 .86 (miss@1, hit@2); img1: t1 .89 > t2 .82 (miss@1, hit@2); img2: t5 .78 (hit).
EXPECTED = {
    "image_retrieval_recall@1": 3 / 6,
    "text_retrieval_recall@1": 1 / 3,
    "image_retrieval_recall@2": 4 / 6,
    "text_retrieval_recall@2": 1.0,
}
IMAGES = [f"COCO_val2014_00000000000{i}.jpg" for i in range(3)]


def lookup_model() -> LookupModel:
    basis = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    return LookupModel(basis, {text: vector for text, (_, vector) in CAPTIONS.items()})


def captions_of(image: int) -> list[str]:
    return [text for text, (owner, _) in CAPTIONS.items() if owner == image]


def make_coco(root: Path) -> Path:
    for i, name in enumerate(IMAGES):
        write_id_image(root / "val2014" / name, i)
    records = [karpathy_record("train2014", "COCO_train2014_000000000009.jpg", "train", ["x"])]
    records += [
        karpathy_record("val2014", name, "test", captions_of(i)) for i, name in enumerate(IMAGES)
    ]
    records.append(karpathy_record("val2014", "COCO_val2014_000000000009.jpg", "restval", ["t0"]))
    return write_json(root / "dataset_coco.json", {"images": records, "dataset": "coco"})


def run(root: Path, benchmark: str = "coco_retrieval", **options) -> dict[str, float]:
    model = lookup_model()
    return evaluate(benchmark, model, id_preprocess, model.tokenizer, root, batch_size=4, **options)


def test_karpathy_hand_worked_recall(tmp_path: Path) -> None:
    make_coco(tmp_path)
    assert run(tmp_path, recall_k=[1, 2]) == pytest.approx(EXPECTED)


def test_default_k_is_capped_at_gallery_size(tmp_path: Path) -> None:
    make_coco(tmp_path)
    metrics = run(tmp_path)
    assert sorted(metrics) == sorted(
        f"{kind}_retrieval_recall@{k}" for kind in ("image", "text") for k in (1, 5, 10)
    )
    assert metrics["image_retrieval_recall@5"] == metrics["text_retrieval_recall@10"] == 1.0


def test_blip_list_format_gives_the_same_numbers(tmp_path: Path) -> None:
    for i, name in enumerate(IMAGES):
        write_id_image(tmp_path / "val2014" / name, i)
    records = [
        {"image": f"val2014/{name}", "caption": captions_of(i)} for i, name in enumerate(IMAGES)
    ]
    write_json(tmp_path / "coco_karpathy_test.json", records)
    metrics = run(tmp_path, annotation="coco_karpathy_test.json", recall_k="1,2")
    assert metrics == pytest.approx(EXPECTED)


def test_flickr_alias_reads_karpathy_without_filepath(tmp_path: Path) -> None:
    records = []
    for i in range(3):
        write_id_image(tmp_path / "flickr30k-images" / f"{i}.jpg", i)
        record = karpathy_record("", f"{i}.jpg", "test", captions_of(i))
        del record["filepath"], record["cocoid"]
        records.append(record)
    write_json(tmp_path / "dataset_flickr30k.json", {"images": records, "dataset": "flickr30k"})
    metrics = run(tmp_path, "flickr30k_retrieval", image_root="flickr30k-images", recall_k=[1, 2])
    assert metrics == pytest.approx(EXPECTED)


def test_split_option_selects_images(tmp_path: Path) -> None:
    make_coco(tmp_path)
    write_id_image(tmp_path / "val2014" / "COCO_val2014_000000000009.jpg", 0)
    metrics = run(tmp_path, split="restval", recall_k=[1])
    assert metrics == {"image_retrieval_recall@1": 1.0, "text_retrieval_recall@1": 1.0}


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (
            lambda d: d["images"][1]["sentences"][0].pop("raw"),
            "images[1].sentences[0].raw: missing",
        ),
        (lambda d: d["images"][2].pop("filename"), "images[2].filename: missing"),
        (lambda d: d["images"][3].update(sentences=[]), "images[3].sentences: missing or empty"),
        (lambda d: d.pop("images"), "images: missing or not a list"),
        (
            lambda d: d["images"][1].update(filename="absent.jpg"),
            "images[1].filename: image file not found: ",
        ),
    ],
)
def test_malformed_karpathy_fails_naming_file_and_field(tmp_path: Path, corrupt, message) -> None:
    annotation = make_coco(tmp_path)
    data = json.loads(annotation.read_text())
    corrupt(data)
    write_json(annotation, data)
    with pytest.raises(BenchmarkDataError) as error:
        run(tmp_path)
    assert str(error.value).startswith(f"{annotation}: {message}")
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "file: not found"),
        ("{not json", "line 1: invalid JSON"),
        ('[{"image": "a.jpg", "caption": "one string"}]', "[0].caption: expected a non-empty list"),
        ('[{"caption": ["x"]}]', "[0].image: missing"),
        ('{"images": [], "dataset": "coco"}', "images: no images in split 'test'"),
    ],
)
def test_bad_annotation_files(tmp_path: Path, content: str | None, message: str) -> None:
    annotation = tmp_path / "dataset_coco.json"
    if content is not None:
        annotation.write_text(content)
    with pytest.raises(BenchmarkDataError) as error:
        run(tmp_path)
    assert str(error.value).startswith(f"{annotation}: {message}")
