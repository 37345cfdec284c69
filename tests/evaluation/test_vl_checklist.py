"""vl_checklist: the data/ tree and per-source image roots, POS[0] vs NEG[0] with ties wrong
and counted apart, radar.py's per-axis means over sources of per-source means, dimension and
type means (hand-worked), the corpus definition, options and one-line errors."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
from evaluation_fixtures import LookupModel, id_preprocess, write_id_image

from clipflow.evaluation import BenchmarkDataError, Scores, evaluate, get_benchmark, result_record
from clipflow.evaluation.vl_checklist import IMAGE_ROOTS, corpus

E0, E1 = [1.0, 0.0], [0.0, 1.0]
VG0, VG1 = "VG_100K/2376832.jpg", "VG_100K_2/2385955.jpg"  # embed to e0, e1
SWIG0, SWIG1 = "dialing_8.jpg", "gluing_188.jpg"  # embed to e0, e1
HAKE0 = "hake_images_20190730/xxx.jpg"  # embeds to e0

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
    "Object/Size/swig_size/swig_item/swig_item_small.json": [
        (SWIG1, ["a flower dials a phone"], ["a man dials a phone"]),  # wrong
    ],
    "Object/Size/vg_size/vg_obj_small.json": [(VG0, ["brown knob"], ["teal knob"])],  # right
    "Object/Location/hake_location/hake_obj_margin.json": [
        (HAKE0, ["brown knob"], ["teal knob"]),  # right
    ],
    # Released as [] and in no corpus config: not scored.
    "Object/Size/swig_size/swig_place/swig_place_large.json": [],
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
    "Attribute/vaw/color": 1.0,
    "Attribute/vaw/material": 1.0,
    "Attribute/vg/color": 2 / 4,
    "Object/Location/hake_location/hake_obj_margin": 1.0,
    "Object/Location/vg_location/vg_subj_center": 1 / 2,
    "Object/Size/swig_size/swig_agent/swig_agent_small": 1.0,
    "Object/Size/swig_size/swig_item/swig_item_small": 0.0,
    "Object/Size/vg_size/vg_obj_small": 1.0,
    "Relation/swig_action": 1 / 2,
    "Relation/vg/spatial": 0.0,
}
# radar.py: per axis, the mean over sources of each source's mean over its files. Small: SWiG
# (1 + 0) / 2 and VG 1 give 3/4 (the mean over the three files would be 2/3).
AXIS_ACC = {
    "Object/Size/small": (1 / 2 + 1) / 2,
    "Object/Location/center": 1 / 2,
    "Object/Location/margin": 1.0,
    "Attribute/color": (2 / 4 + 1) / 2,
    "Attribute/material": 1.0,
    "Relation/action": 1 / 2,
    "Relation/spatial": 0.0,
}
DIMENSION_ACC = {"Object/Size": 3 / 4, "Object/Location": (1 / 2 + 1) / 2}  # the others: axes
TYPE_ACC = {"Object": 3 / 4, "Attribute": (3 / 4 + 1) / 2, "Relation": 1 / 4}
SCORED = sorted(FILE_ACC)


def make_vl_checklist(root: Path) -> Path:
    write_id_image(root / "vg" / VG0, 0)
    write_id_image(root / "vg" / VG1, 1)
    write_id_image(root / "swig" / SWIG0, 0)
    write_id_image(root / "swig" / SWIG1, 1)
    write_id_image(root / "hake" / HAKE0, 0)
    for name, items in FILES.items():
        path = root / "data" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        # The released files: one line, json.dumps defaults, no trailing newline.
        path.write_text(json.dumps([[image, {"POS": p, "NEG": n}] for image, p, n in items]))
    return root


def run(root: Path, **options) -> Scores:
    """Scores of the fixture's files (``files=None``: the corpus's 56)."""
    model = LookupModel([E0, E1], TEXTS)
    options.setdefault("files", SCORED)
    return evaluate("vl_checklist", model, id_preprocess, model.tokenizer, root, **options)


def test_hand_worked_accuracies(tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        metrics = run(make_vl_checklist(tmp_path))
    assert metrics == pytest.approx(
        {
            "acc": (3 / 4 + 7 / 8 + 1 / 4) / 3,
            **TYPE_ACC,
            **DIMENSION_ACC,
            **AXIS_ACC,
            **FILE_ACC,
        }
    )
    assert list(metrics)[:4] == ["acc", "Object", "Attribute", "Relation"]
    assert "vg_subj_center.json: 1 items dropped" in caplog.text
    # The tie is a count beside the metrics, never a metric (a table would show it x 100).
    assert metrics.counts == {"ties": 1} and metrics.parts == SCORED
    record = result_record("vl_checklist", metrics, "tiny", None)
    assert record["counts"] == {"ties": 1} and "ties" not in record["metrics"]
    assert record["parts"] == SCORED


def test_max_items_counts_only_items_with_images(tmp_path: Path) -> None:
    metrics = run(make_vl_checklist(tmp_path), max_items=1)
    # Each file keeps its first item with an image: right everywhere but in
    # Relation/vg/spatial and swig_item_small.
    files = dict.fromkeys(FILE_ACC, 1.0) | {
        "Relation/vg/spatial": 0.0,
        "Object/Size/swig_size/swig_item/swig_item_small": 0.0,
    }
    axes = dict.fromkeys(AXIS_ACC, 1.0) | {"Relation/spatial": 0.0, "Object/Size/small": 3 / 4}
    dimensions = {"Object/Size": 3 / 4, "Object/Location": 1.0}
    types = {"Object": 7 / 8, "Attribute": 1.0, "Relation": 1 / 2}
    expected = {"acc": (7 / 8 + 1 + 1 / 2) / 3, **types, **dimensions, **axes, **files}
    assert metrics == pytest.approx(expected)
    assert metrics.counts == {"ties": 0}


def test_missing_files_are_named_unless_the_files_are_listed(tmp_path: Path) -> None:
    root = make_vl_checklist(tmp_path)
    with pytest.raises(BenchmarkDataError) as error:
        run(root, files=None)
    message = str(error.value)
    assert message.startswith(f"{root / 'data'}: files: missing [")
    assert message.endswith("; to score fewer, list them in files=")
    assert message.count(".json") == 56 - len(FILE_ACC)
    assert "'Attribute/vg/size.json'" in message and "'Attribute/vg/color.json'" not in message
    with pytest.raises(ValueError, match=r"vl_checklist files \['Object/Size/swig_place'\] unk"):
        run(root, files=["Object/Size/swig_place"])


def test_corpus_definition_is_the_official_one() -> None:
    definition = corpus()
    # radar.py's axes in its order (corpus.json's keys), each source's files as ANNO_PATHs.
    assert list(definition) == [
        *("Object/Size/large", "Object/Size/medium", "Object/Size/small"),
        *("Object/Location/center", "Object/Location/mid", "Object/Location/margin"),
        *("Attribute/color", "Attribute/material", "Attribute/action", "Attribute/size"),
        *("Attribute/state", "Relation/action", "Relation/spatial"),
    ]
    assert sum(len(f) for sources in definition.values() for f in sources.values()) == 56
    assert definition["Object/Location/mid"] == {
        "vg": [
            "Object/Location/vg_location/vg_obj_mid",
            "Object/Location/vg_location/vg_subj_mid",
        ],
        "swig": [
            f"Object/Location/swig_location/swig_{role}/swig_{role}_mid"
            for role in ("agent", "destination", "item", "tool")
        ],
        "hake": ["Object/Location/hake_location/hake_obj_mid"],
    }
    assert definition["Attribute/action"] == {
        "vg": ["Attribute/vg/action"],
        "vaw": ["Attribute/vaw/action"],
    }
    assert definition["Relation/action"] == {
        "vg": ["Relation/vg/action"],
        "swig": ["Relation/swig_action"],
        "hake": ["Relation/hake_action"],
    }
    assert {source for sources in definition.values() for source in sources} == set(IMAGE_ROOTS)


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
    assert entry.option_names() == ["annotations", "image_roots", "max_items", "files"]


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


def test_missing_images_is_one_line(tmp_path: Path) -> None:
    root = make_vl_checklist(tmp_path)
    shutil.rmtree(root / "swig")
    with pytest.raises(
        BenchmarkDataError, match=r"swig_agent_small\.json: \[\*\]\[0\]: no item with its image"
    ):
        run(root)
