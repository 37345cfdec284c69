import json
import random

import numpy as np
import pytest

from clipflow.data.synthetic import make_benchmarks, make_training_set, render_scene
from clipflow.data.vocabulary import COLOURS, RELATIONS, Scene, ShapeSpec, parse_caption


def _centroid(image, colour):
    pixels = np.asarray(image).astype(int)
    mask = np.abs(pixels - np.array(COLOURS[colour])).sum(axis=-1) < 30
    ys, xs = np.nonzero(mask)
    return xs.mean(), ys.mean()


@pytest.mark.parametrize("relation", list(RELATIONS))
def test_render_puts_subject_where_the_relation_says(relation):
    scene = Scene(
        ShapeSpec("large", "red", "square"), relation, ShapeSpec("large", "blue", "circle")
    )
    image = render_scene(scene, random.Random(0), size=64)
    (sx, sy), (ox, oy) = _centroid(image, "red"), _centroid(image, "blue")
    expected = {
        "to the left of": sx < ox,
        "to the right of": sx > ox,
        "above": sy < oy,
        "below": sy > oy,
    }
    assert expected[relation]


def test_captions_parse_back_to_their_scene():
    scene = Scene(
        ShapeSpec("small", "red", "circle"), "to the left of", ShapeSpec("large", "blue", "square")
    )
    assert scene.caption() == "a small red circle to the left of a large blue square"
    assert parse_caption(scene.caption()) == scene
    assert parse_caption("a dog on a couch") is None


def test_training_set_is_deterministic_and_marks_broken_rows(tmp_path):
    first = make_training_set(tmp_path / "a", 30, seed=7, num_broken_urls=2, num_corrupt_images=1)
    second = make_training_set(tmp_path / "b", 30, seed=7, num_broken_urls=2, num_corrupt_images=1)
    assert first.equals(second)
    assert (tmp_path / "a" / first["path"][0]).read_bytes() == (
        tmp_path / "b" / second["path"][0]
    ).read_bytes()
    assert first["expected"].value_counts().to_dict() == {"ok": 30, "missing": 2, "corrupt": 1}
    assert not (tmp_path / "a" / first.loc[first.expected == "missing", "path"].iloc[0]).exists()
    # failures sit among the good rows, so they land inside shards
    assert first.index[first.expected != "ok"].max() < len(first) - 1


def test_benchmarks_follow_official_formats(tmp_path):
    roots = make_benchmarks(tmp_path, seed=1, num_images=12)
    karpathy = json.loads((tmp_path / "retrieval" / "dataset_synthetic.json").read_text())
    entry = karpathy["images"][0]
    assert entry["split"] == "test" and len(entry["sentences"]) == 2
    assert (tmp_path / "retrieval" / entry["filepath"] / entry["filename"]).exists()
    swap_att = json.loads((tmp_path / "compositional" / "swap_att.json").read_text())
    record = next(iter(swap_att.values()))
    assert set(record) == {"filename", "caption", "negative_caption"}
    assert record["caption"] != record["negative_caption"]
    assert sorted(record["caption"].split()) == sorted(record["negative_caption"].split())
    classes = (tmp_path / "colours_zeroshot" / "classnames.txt").read_text().split()
    assert classes == sorted(COLOURS) and set(roots) >= {"shapes_zeroshot", "compositional"}
