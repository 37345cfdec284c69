"""sugarcrepe: official subset files, strict-> accuracy with ties wrong, means, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from evaluation_fixtures import LookupModel, id_preprocess, write_id_image, write_json

from clipflow.evaluation import BenchmarkDataError, evaluate

IMAGES = ["000000000000.jpg", "000000000001.jpg"]  # embed to e0 and e1
TEXTS = {
    "e0": [1.0, 0.0],
    "e1": [0.0, 1.0],
    "diagonal": [1.0, 1.0],
    "twice e0": [2.0, 0.0],
    "tie one": [1.0, 1.0],
    "tie two": [1.0, 1.0],
    "mostly e0": [3.0, 1.0],
    "mostly e1": [1.0, 3.0],
}
SUBSETS = {
    # image e0: 1 vs 0 right; image e1: .71 vs 0 right; image e0: 0 vs 1 wrong -> 2/3
    "add_att": {"0": (0, "e0", "e1"), "1": (1, "diagonal", "e0"), "2": (0, "e1", "twice e0")},
    # keys not contiguous, as in the real swap_obj; an exact tie counts wrong -> 1/2
    "swap_obj": {"0": (1, "tie one", "tie two"), "2": (0, "mostly e0", "mostly e1")},
    "replace_rel": {"5": (1, "e1", "e0")},  # right -> 1
}


def make_sugarcrepe(root: Path, subsets: dict = SUBSETS) -> Path:
    for i, name in enumerate(IMAGES):
        write_id_image(root / "images" / name, i)
    for subset, records in subsets.items():
        write_json(
            root / f"{subset}.json",
            {
                key: {"filename": IMAGES[image], "caption": pos, "negative_caption": neg}
                for key, (image, pos, neg) in records.items()
            },
        )
    return root


def run(root: Path, **options) -> dict[str, float]:
    model = LookupModel([[1.0, 0.0], [0.0, 1.0]], TEXTS)
    return evaluate("sugarcrepe", model, id_preprocess, model.tokenizer, root, **options)


def test_hand_worked_accuracies(tmp_path: Path) -> None:
    metrics = run(make_sugarcrepe(tmp_path))
    assert metrics == pytest.approx(
        {
            "add_att": 2 / 3,
            "swap_obj": 1 / 2,
            "replace_rel": 1.0,
            "add": 2 / 3,
            "swap": 1 / 2,
            "replace": 1.0,
            "acc": (2 / 3 + 1 / 2 + 1) / 3,
        }
    )


def test_subsets_option_restricts_the_mean(tmp_path: Path) -> None:
    metrics = run(make_sugarcrepe(tmp_path), subsets="add_att,swap_obj")
    assert metrics == pytest.approx(
        {"add_att": 2 / 3, "swap_obj": 1 / 2, "add": 2 / 3, "swap": 1 / 2, "acc": 7 / 12}
    )


def test_image_root_option(tmp_path: Path) -> None:
    root = make_sugarcrepe(tmp_path)
    (root / "images").rename(root / "val2017")
    assert run(root, image_root="val2017")["acc"] == pytest.approx(13 / 18)


def test_missing_field_names_file_and_record(tmp_path: Path) -> None:
    root = make_sugarcrepe(tmp_path)
    write_json(root / "add_att.json", {"0": {"filename": IMAGES[0], "caption": "e0"}})
    with pytest.raises(BenchmarkDataError) as error:
        run(root)
    assert str(error.value) == f"{root / 'add_att.json'}: ['0'].negative_caption: missing"


def test_missing_image_names_file_and_record(tmp_path: Path) -> None:
    root = make_sugarcrepe(tmp_path)
    (root / "images" / IMAGES[1]).unlink()
    with pytest.raises(BenchmarkDataError, match=r"add_att\.json: \['1'\]\.filename: image file"):
        run(root)


def test_no_subset_files(tmp_path: Path) -> None:
    with pytest.raises(BenchmarkDataError, match=r"subsets: none of \['add_att.json', .*\] found"):
        run(tmp_path)


def test_requested_subset_file_missing(tmp_path: Path) -> None:
    root = make_sugarcrepe(tmp_path)
    with pytest.raises(BenchmarkDataError, match=r"swap_att\.json: file: not found"):
        run(root, subsets=["swap_att"])


def test_unknown_subset_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown; known"):
        run(make_sugarcrepe(tmp_path), subsets=["add_colour"])
