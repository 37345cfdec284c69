"""vl_checklist: the data/ tree and per-source image roots, POS[0] vs NEG[0] with ties wrong,
per-file / dimension / type means (hand-worked), options and one-line errors."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
from evaluation_fixtures import LookupModel, id_preprocess, write_id_image

from clipflow.evaluation import BenchmarkDataError, evaluate, get_benchmark

E0, E1 = [1.0, 0.0], [0.0, 1.0]
VG0, VG1 = "VG_100K/2376832.jpg", "VG_100K_2/2385955.jpg"  # embed to e0, e1
SWIG0, SWIG1 = "dialing_8.jpg", "gluing_188.jpg"  # embed to e0, e1

# File below data/ -> items (image, POS texts, NEG texts); only POS[0] and NEG[0] have vectors.
FILES: dict[str, list[tuple[str, list[str], list[str]]]] = {
    "Attribute/vg/color.json": [
        (VG0, ["brown knob"], ["teal knob"]),  # right
        (VG1, ["brown face"], ["green face"]),  # right
        (VG0, ["white shirt"], ["gray shirt"]),  # wrong
        (VG1, ["white shirt"], ["white shirt"]),  # POS == NEG: a tie, wrong
    ],
    "Attribute/vaw/color.json": [(VG0, ["red car"], ["blue car"])],  # right (VAW uses vg/)
    "Attribute/vaw/material.json": [
        (VG0, ["wooden table"], ["metal table"]),  # right
        (VG1, ["glass window"], ["wooden window"]),  # right
    ],
    "Object/Location/vg_location/vg_subj_center.json": [
        ("VG_100K/999.jpg", ["woman has hair"], ["beds has hair"]),  # no such image: dropped
        (VG0, ["woman has hair"], ["beds has hair"]),  # right
        (VG1, ["man has hat"], ["tree has hat"]),  # wrong
    ],
    "Object/Size/swig_size/swig_agent/swig_agent_small.json": [
        (
            SWIG0,
            [
                "an individual dials on an mobile phone at inside",  # right
                "an adult male dials on an telephone set at place",
                "an individual dials on an cellular phone at place",
            ],
            [
                "an bird of prey dials on an cellular telephone at interior",
                "an flower dials on an telephone set at place",
                "an threesome dials on an cellular telephone at place",
            ],
        )
    ],
    "Object/Size/swig_size/swig_place/swig_place_large.json": [],  # released as []
    "Relation/vg/spatial.json": [
        (VG0, ["cup ON table"], ["cup under table"]),  # wrong
        (VG1, ["man ON horse"], ["man under horse"]),  # wrong
    ],
    "Relation/swig_action.json": [
        (SWIG1, ["the person glues item"], ["the bean glues item"]),  # right
        (SWIG0, ["a man dials a phone"], ["a flower dials a phone"]),  # wrong
    ],
}
TEXTS = {
    **dict.fromkeys(
        [
            "brown knob",
            "green face",
            "gray shirt",
            "red car",
            "wooden table",
            "wooden window",
            "woman has hair",
            "man has hat",
            "an individual dials on an mobile phone at inside",
            "cup under table",
            "man ON horse",
            "the bean glues item",
            "a flower dials a phone",
        ],
        E0,
    ),
    **dict.fromkeys(
        [
            "teal knob",
            "brown face",
            "white shirt",
            "blue car",
            "metal table",
            "glass window",
            "beds has hair",
            "tree has hat",
            "an bird of prey dials on an cellular telephone at interior",
            "cup ON table",
            "man under horse",
            "the person glues item",
            "a man dials a phone",
        ],
        E1,
    ),
}
FILE_ACC = {
    "Object/Location/vg_location/vg_subj_center": 1 / 2,
    "Object/Size/swig_size/swig_agent/swig_agent_small": 1.0,
    "Attribute/vaw/color": 1.0,
    "Attribute/vaw/material": 1.0,
    "Attribute/vg/color": 2 / 4,
    "Relation/swig_action": 1 / 2,
    "Relation/vg/spatial": 0.0,
}
DIMENSION_ACC = {
    "Object/Location": 1 / 2,
    "Object/Size": 1.0,
    "Attribute/color": (1.0 + 2 / 4) / 2,
    "Attribute/material": 1.0,
    "Relation/action": 1 / 2,
    "Relation/spatial": 0.0,
}
TYPE_ACC = {"Object": 3 / 4, "Attribute": 7 / 8, "Relation": 1 / 4}


def make_vl_checklist(root: Path) -> Path:
    write_id_image(root / "vg" / VG0, 0)
    write_id_image(root / "vg" / VG1, 1)
    write_id_image(root / "swig" / SWIG0, 0)
    write_id_image(root / "swig" / SWIG1, 1)
    for name, items in FILES.items():
        path = root / "data" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        # The released files: one line, json.dumps defaults, no trailing newline.
        path.write_text(json.dumps([[image, {"POS": p, "NEG": n}] for image, p, n in items]))
    return root


def run(root: Path, **options) -> dict[str, float]:
    model = LookupModel([E0, E1], TEXTS)
    return evaluate("vl_checklist", model, id_preprocess, model.tokenizer, root, **options)


def test_hand_worked_accuracies(tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        metrics = run(make_vl_checklist(tmp_path))
    assert metrics == pytest.approx(
        {
            "acc": (3 / 4 + 7 / 8 + 1 / 4) / 3,
            **TYPE_ACC,
            **DIMENSION_ACC,
            **FILE_ACC,
            "ties": 1.0,
        }
    )
    assert next(iter(metrics)) == "acc"
    assert "vg_subj_center.json: 1 items dropped" in caplog.text


def test_max_items_counts_only_items_with_images(tmp_path: Path) -> None:
    metrics = run(make_vl_checklist(tmp_path), max_items=1)
    # Each file keeps its first item with an image: right everywhere but Relation/vg/spatial.
    files = dict.fromkeys(FILE_ACC, 1.0) | {"Relation/vg/spatial": 0.0}
    dimensions = dict.fromkeys(DIMENSION_ACC, 1.0) | {"Relation/spatial": 0.0}
    types = {"Object": 1.0, "Attribute": 1.0, "Relation": 1 / 2}
    assert metrics == pytest.approx({"acc": 2.5 / 3, **types, **dimensions, **files, "ties": 0.0})


def test_image_roots_option(tmp_path: Path) -> None:
    root = make_vl_checklist(tmp_path)
    (root / "swig").rename(root / "imsitu")
    metrics = run(root, image_roots={"swig": "imsitu"})
    assert metrics["acc"] == pytest.approx((3 / 4 + 7 / 8 + 1 / 4) / 3)
    with pytest.raises(ValueError, match=r"unknown sources \['coco'\]"):
        run(root, image_roots={"coco": "coco"})


def test_registered_task_and_options() -> None:
    entry = get_benchmark("vl_checklist")
    assert entry.task == "image_caption_selection"
    assert entry.option_names() == ["annotations", "image_roots", "max_items"]


@pytest.mark.parametrize(
    ("item", "field", "problem"),
    [
        (
            [VG0],
            "[1]",
            f'expected [image path, {{"POS": [...], "NEG": [...]}}], got [\'{VG0}\']',
        ),
        ([VG0, {"NEG": ["teal knob"]}], "[1][1].POS", "missing"),
        (
            [VG0, {"POS": ["brown knob"], "NEG": "teal knob"}],
            "[1][1].NEG",
            "expected a list of texts, got 'teal knob'",
        ),
    ],
)
def test_malformed_item_is_one_line(tmp_path: Path, item, field: str, problem: str) -> None:
    root = make_vl_checklist(tmp_path)
    path = root / "data" / "Attribute" / "vg" / "color.json"
    items = json.loads(path.read_text())
    items[1] = item
    path.write_text(json.dumps(items))
    with pytest.raises(BenchmarkDataError) as error:
        run(root)
    assert str(error.value) == f"{path}: {field}: {problem}"


def test_missing_data_images_and_unknown_source(tmp_path: Path) -> None:
    with pytest.raises(BenchmarkDataError, match=r"data: annotations: no Object/Attribute/Rel"):
        run(tmp_path)
    root = make_vl_checklist(tmp_path)
    shutil.rmtree(root / "swig")
    with pytest.raises(
        BenchmarkDataError, match=r"swig_agent_small\.json: \[\*\]\[0\]: no item's image found"
    ):
        run(root)
    make_vl_checklist(root)
    odd = root / "data" / "Relation" / "coco_action.json"
    odd.write_text(json.dumps([[VG0, {"POS": ["a"], "NEG": ["b"]}]]))
    with pytest.raises(BenchmarkDataError) as error:
        run(root)
    assert str(error.value) == f"{odd}: source: path names none of ['hake', 'swig', 'vaw', 'vg']"
