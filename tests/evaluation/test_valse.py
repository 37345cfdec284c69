"""valse: one file and image folder per piece, the mturk filter, acc_r per piece and their mean
(hand-worked), options and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from evaluation_fixtures import LookupModel, id_preprocess, write_id_image, write_json

from clipflow.evaluation import BenchmarkDataError, Scores, evaluate, get_benchmark, result_record
from clipflow.evaluation.valse import PIECES as PIECES_FILES

E0, E1 = [1.0, 0.0], [0.0, 1.0]
TEXTS = {
    "There are no people in the picture.": E0,
    "There are people in the picture.": E1,
    "There are no cars in the picture.": E0,
    "There are cars in the picture.": E1,
    "There are no dogs.": E0,
    "There are dogs.": E1,
    "There are exactly 0 people.": E0,
    "There are exactly 2 people.": E1,
    "There are exactly 4 dishes in the picture.": E1,
    "There are exactly 12 dishes in the picture.": E0,
    "There are exactly 3 cats.": [0.6, 0.8],
    "There are exactly 5 cats.": [0.6, 0.8],
    "a giant bowl of food, with broccoli and other food on it.": E0,
    "a giant bowl of food, with carrot and other food on it.": E1,
}


def existence(image: int, caption: str, foil: str, votes: int) -> dict:
    """An existence.json record, keys in the released order."""
    return {
        "dataset": "visual7w",
        "original_split": "test",
        "dataset_idx": str(2371044 + image),
        "linguistic_phenomena": "existence",
        "image_file": f"v7w_{2371044 + image}.jpg",
        "caption": caption,
        "foil": foil,
        "classes": 0,
        "classes_foil": [1, 2],
        "split": "test",
        "answer": 0,
        "declarative_statement": caption,
        "declarative_statement_foils": [foil],
        "provenance_of_foils": "zero_to_something",
        "mturk": {"foil": 3 - votes, "caption": votes, "other": 0},
    }


def counting(image: int, caption: str, foil: str, votes: int) -> dict:
    """A counting-hard.json record, keys in the released order."""
    return {
        "dataset": "visual7w",
        "dataset_idx": str(2371044 + image),
        "image_file": f"v7w_{2371044 + image}.jpg",
        "linguistic_phenomena": "counting",
        "caption": caption,
        "answer": 0,
        "classes": 0,
        "split": "test",
        "original_split": "test",
        "classes_foil": 2,
        "mturk": {"foil": 0, "caption": votes, "other": 3 - votes},
        "foil": foil,
    }


# Images: v7w_2371044.jpg embeds to e0, v7w_2371045.jpg to e1 (both in visual7w/images), and
# the FOIL-it COCO image to e0.
PIECES = {
    "existence.json": {
        # valid and right; valid (2 votes) and wrong; 1 vote: dropped, though right
        "existence_visual7w_2371044": existence(
            0, "There are no people in the picture.", "There are people in the picture.", 3
        ),
        "existence_visual7w_2371045": existence(
            1, "There are no cars in the picture.", "There are cars in the picture.", 2
        ),
        "existence_visual7w_2371046": existence(0, "There are no dogs.", "There are dogs.", 1),
    },
    "counting-hard.json": {
        # right, right (caption given as a list), right, a tie (wrong); a wrong one with 0 votes
        "counting_visual7w_2396743": counting(
            0, "There are exactly 0 people.", "There are exactly 2 people.", 2
        ),
        "counting_visual7w_2383458": counting(
            1,
            ["There are exactly 4 dishes in the picture.", "There are people."],
            "There are exactly 12 dishes in the picture.",
            3,
        ),
        "counting_visual7w_2375454": counting(
            0, "There are exactly 0 people.", "There are exactly 2 people.", 3
        ),
        "counting_visual7w_2375455": counting(
            0, "There are exactly 3 cats.", "There are exactly 5 cats.", 2
        ),
        "counting_visual7w_2375456": counting(
            1, "There are exactly 0 people.", "There are exactly 2 people.", 0
        ),
    },
    "foil-it.json": {
        "1283539": {
            "dataset": "FOIL dataset",
            "dataset_idx": 1283539,
            "original_split": "test",
            "linguistic_phenomena": "noun phrases",
            "image_file": "COCO_val2014_000000165831.jpg",
            "caption": "a giant bowl of food, with broccoli and other food on it.",
            "classes": "broccoli",
            "classes_foil": "carrot",
            "mturk": {"foil": 0, "caption": 3, "other": 0},
            "foil": "a giant bowl of food, with carrot and other food on it.",
        }
    },
}
# Filtered: existence 1/2, counting_hard 3/4, foil_it 1/1. Unfiltered: 2/3, 3/5, 1/1.
EXPECTED = {
    "acc_r": (1 / 2 + 3 / 4 + 1) / 3,
    "existence": 1 / 2,
    "counting_hard": 3 / 4,
    "foil_it": 1.0,
}


def make_valse(root: Path) -> Path:
    write_id_image(root / "visual7w" / "images" / "v7w_2371044.jpg", 0)
    write_id_image(root / "visual7w" / "images" / "v7w_2371045.jpg", 1)
    write_id_image(root / "visual7w" / "images" / "v7w_2371046.jpg", 0)
    write_id_image(root / "coco" / "val2014" / "COCO_val2014_000000165831.jpg", 0)
    for name, records in PIECES.items():
        # The released files: json.dumps(obj, indent=4), no trailing newline.
        (root / name).write_text(json.dumps(records, indent=4))
    return root


FIXTURE_PIECES = ["existence", "counting_hard", "foil_it"]


def run(root: Path, **options) -> Scores:
    """Scores of the fixture's three pieces (``pieces=None``: VALSE's eleven)."""
    model = LookupModel([E0, E1], TEXTS)
    options.setdefault("pieces", FIXTURE_PIECES)
    return evaluate("valse", model, id_preprocess, model.tokenizer, root, **options)


def test_hand_worked_acc_r(tmp_path: Path) -> None:
    metrics = run(make_valse(tmp_path))
    assert metrics == pytest.approx(EXPECTED)
    assert next(iter(metrics)) == "acc_r"  # the headline comes first
    assert result_record("valse", metrics, "tiny", None)["parts"] == FIXTURE_PIECES


def test_missing_pieces_are_named_unless_the_pieces_are_listed(tmp_path: Path) -> None:
    root = make_valse(tmp_path)
    with pytest.raises(BenchmarkDataError) as error:
        run(root, pieces=None)
    missing = [file for piece, file in PIECES_FILES.items() if piece not in FIXTURE_PIECES]
    assert str(error.value) == (
        f"{root}: pieces: missing {missing}; to score fewer, list them in pieces="
    )
    assert len(missing) == 8 and "relations.json" in missing


def test_without_the_mturk_filter(tmp_path: Path) -> None:
    metrics = run(make_valse(tmp_path), mturk_filter=False)
    assert metrics == pytest.approx(
        {"acc_r": (2 / 3 + 3 / 5 + 1) / 3, "existence": 2 / 3, "counting_hard": 3 / 5, "foil_it": 1}
    )


def test_pieces_and_image_dirs_options(tmp_path: Path) -> None:
    root = make_valse(tmp_path)
    (root / "visual7w").rename(root / "v7w")
    metrics = run(root, pieces="existence,foil_it", image_dirs={"existence": "v7w/images"})
    assert metrics == pytest.approx({"acc_r": 3 / 4, "existence": 1 / 2, "foil_it": 1.0})
    with pytest.raises(ValueError, match=r"unknown pieces \['counting'\]"):
        run(root, image_dirs={"counting": "v7w/images"})
    with pytest.raises(ValueError, match=r"valse pieces \['negation'\] unknown"):
        run(root, pieces=["negation"])


def test_registered_task_and_options() -> None:
    entry = get_benchmark("valse")
    assert entry.task == "image_caption_selection"
    assert entry.option_names() == ["pieces", "image_dirs", "mturk_filter"]


@pytest.mark.parametrize(
    ("edit", "field", "problem"),
    [
        (lambda r: r.pop("foil"), "['existence_visual7w_2371045'].foil", "missing"),
        (lambda r: r.pop("image_file"), "['existence_visual7w_2371045'].image_file", "missing"),
        (
            lambda r: r.update(caption=[]),
            "['existence_visual7w_2371045'].caption",
            "expected a string or a list of them, got []",
        ),
        (
            lambda r: r.update(mturk={"caption": "2"}),
            "['existence_visual7w_2371045'].mturk.caption",
            "expected a count, got '2'",
        ),
    ],
)
def test_malformed_record_is_one_line(tmp_path: Path, edit, field: str, problem: str) -> None:
    root = make_valse(tmp_path)
    data = json.loads((root / "existence.json").read_text())
    edit(data["existence_visual7w_2371045"])
    write_json(root / "existence.json", data)
    with pytest.raises(BenchmarkDataError) as error:
        run(root)
    assert str(error.value) == f"{root / 'existence.json'}: {field}: {problem}"


def test_missing_files_and_images(tmp_path: Path) -> None:
    root = make_valse(tmp_path)
    with pytest.raises(BenchmarkDataError, match=r"pieces: missing \['relations\.json'\]$"):
        run(root, pieces=["existence", "relations"])
    (root / "coco" / "val2014" / "COCO_val2014_000000165831.jpg").unlink()
    with pytest.raises(
        BenchmarkDataError, match=r"foil-it\.json: \['1283539'\]\.image_file: image file not found"
    ):
        run(root)


def test_a_piece_with_no_valid_item_is_one_line(tmp_path: Path) -> None:
    root = make_valse(tmp_path)
    data = json.loads((root / "foil-it.json").read_text())
    data["1283539"]["mturk"] = {"foil": 2, "caption": 1, "other": 0}
    write_json(root / "foil-it.json", data)
    with pytest.raises(BenchmarkDataError, match=r"foil-it\.json: mturk: no item has mturk"):
        run(root)
