"""sugarcrepe: official subset files, strict-> accuracy with ties wrong, means, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from evaluation_fixtures import LookupModel, id_preprocess, write_id_image, write_json

from clipflow.config import TINY_STAND_INS
from clipflow.data.synthetic import SUGARCREPE_SUBSETS, make_benchmarks
from clipflow.evaluation import BenchmarkDataError, Scores, evaluate, result_record

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
    "add_obj": {"0": (1, "e1", "e0")},  # right -> 1
    "replace_att": {"0": (0, "e1", "e0")},  # wrong -> 0
    "replace_obj": {"0": (0, "e0", "e1"), "1": (1, "e0", "e1")},  # right, wrong -> 1/2
    "replace_rel": {"5": (1, "e1", "e0")},  # right -> 1
    "swap_att": {"0": (0, "tie one", "tie two")},  # an exact tie counts wrong -> 0
    # keys not contiguous, as in the real swap_obj -> 1/2
    "swap_obj": {"0": (1, "tie one", "tie two"), "2": (0, "mostly e0", "mostly e1")},
}
SUBSET_ACC = {
    "add_att": 2 / 3,
    "add_obj": 1.0,
    "replace_att": 0.0,
    "replace_obj": 1 / 2,
    "replace_rel": 1.0,
    "swap_att": 0.0,
    "swap_obj": 1 / 2,
}


def make_sugarcrepe(root: Path, subsets: dict = SUBSETS) -> Path:
    """CLIP_benchmark's layout: the subset files and val2017/ side by side."""
    for i, name in enumerate(IMAGES):
        write_id_image(root / "val2017" / name, i)
    for subset, records in subsets.items():
        write_json(
            root / f"{subset}.json",
            {
                key: {"filename": IMAGES[image], "caption": pos, "negative_caption": neg}
                for key, (image, pos, neg) in records.items()
            },
        )
    return root


def run(root: Path, **options) -> Scores:
    model = LookupModel([[1.0, 0.0], [0.0, 1.0]], TEXTS)
    return evaluate("sugarcrepe", model, id_preprocess, model.tokenizer, root, **options)


def test_hand_worked_accuracies(tmp_path: Path) -> None:
    metrics = run(make_sugarcrepe(tmp_path))
    assert metrics == pytest.approx(
        {
            **SUBSET_ACC,
            "add": (2 / 3 + 1) / 2,
            "replace": (0 + 1 / 2 + 1) / 3,
            "swap": (0 + 1 / 2) / 2,
            "acc": (2 / 3 + 1 + 0 + 1 / 2 + 1 + 0 + 1 / 2) / 7,
        }
    )
    assert metrics.parts == list(SUBSET_ACC)
    record = result_record("sugarcrepe", metrics, "tiny", None)
    assert record["parts"] == list(SUBSET_ACC) and "counts" not in record


def test_subsets_option_restricts_the_mean(tmp_path: Path) -> None:
    metrics = run(make_sugarcrepe(tmp_path), subsets="add_att,swap_obj")
    assert metrics == pytest.approx(
        {"add_att": 2 / 3, "swap_obj": 1 / 2, "add": 2 / 3, "swap": 1 / 2, "acc": 7 / 12}
    )
    assert metrics.parts == ["add_att", "swap_obj"]


def test_image_root_option(tmp_path: Path) -> None:
    root = make_sugarcrepe(tmp_path)
    (root / "val2017").rename(root / "coco_images")
    assert run(root, image_root="coco_images")["acc"] == pytest.approx(11 / 21)
    with pytest.raises(BenchmarkDataError, match=r"add_att\.json: \['0'\]\.filename: image file"):
        run(root)  # the default is root/val2017


def test_missing_field_names_file_and_record(tmp_path: Path) -> None:
    root = make_sugarcrepe(tmp_path)
    write_json(root / "add_att.json", {"0": {"filename": IMAGES[0], "caption": "e0"}})
    with pytest.raises(BenchmarkDataError) as error:
        run(root)
    assert str(error.value) == f"{root / 'add_att.json'}: ['0'].negative_caption: missing"


def test_missing_image_names_file_and_record(tmp_path: Path) -> None:
    root = make_sugarcrepe(tmp_path)
    (root / "val2017" / IMAGES[1]).unlink()
    with pytest.raises(BenchmarkDataError, match=r"add_att\.json: \['1'\]\.filename: image file"):
        run(root)


def test_missing_subsets_are_named_unless_the_subsets_are_listed(tmp_path: Path) -> None:
    root = make_sugarcrepe(tmp_path, {k: v for k, v in SUBSETS.items() if k != "swap_att"})
    (root / "add_obj.json").unlink()
    with pytest.raises(BenchmarkDataError) as error:
        run(root)
    assert str(error.value) == (
        f"{root}: subsets: missing ['add_obj.json', 'swap_att.json']; "
        "to score fewer, list them in subsets="
    )
    scored = [name for name in SUBSET_ACC if name not in ("add_obj", "swap_att")]
    assert run(root, subsets=scored).parts == scored


def test_requested_subset_file_missing(tmp_path: Path) -> None:
    root = make_sugarcrepe(tmp_path, {"add_att": SUBSETS["add_att"]})
    with pytest.raises(BenchmarkDataError) as error:
        run(root, subsets=["add_att", "swap_att"])
    assert str(error.value) == f"{root}: subsets: missing ['swap_att.json']"


def test_unknown_subset_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown; known"):
        run(make_sugarcrepe(tmp_path), subsets=["add_colour"])


def test_synthetic_sugarcrepe_is_scored_with_the_subsets_the_configs_list(
    tmp_path: Path, tiny_bundle
) -> None:
    """The default experiment's SugarCrepe has four subsets in CLIP_benchmark's layout; the
    config and scale tiny's stand-in list exactly those."""
    roots = make_benchmarks(tmp_path, seed=1, num_images=8)
    config = yaml.safe_load((Path(__file__).parents[2] / "config" / "config.yaml").read_text())
    options = config["benchmarks"]["enabled"]["compositional"]["options"]
    assert options == TINY_STAND_INS["sugarcrepe"]["options"]
    assert options["subsets"] == list(SUGARCREPE_SUBSETS)
    bundle = tiny_bundle
    metrics = evaluate(
        "sugarcrepe",
        bundle.model,
        bundle.preprocess_val,
        bundle.tokenizer,
        roots["compositional"],
        **options,
    )
    assert metrics.parts == list(SUGARCREPE_SUBSETS)
    assert set(metrics) == {*SUGARCREPE_SUBSETS, "replace", "swap", "acc"}
