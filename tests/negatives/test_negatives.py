"""Hard negative captions for the synthetic grammar (docs/algorithms.md §4): per-kind properties,
validity (never the caption, never a repeat, nothing outside the grammar), determinism."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from clipflow.data.synthetic import random_scene
from clipflow.data.vocabulary import parse_caption
from clipflow.io import read_parquet
from clipflow.negatives import (
    KINDS,
    NEGATIVE_GENERATORS,
    generate,
    generate_for_table,
    generator_set,
    generator_sets,
    register_generator,
)

ROOT = Path(__file__).resolve().parents[2]
CAPTION = "a small red circle to the left of a large blue square"


def _only(name: str, caption: str = CAPTION, per_caption: int = 50) -> list[str]:
    kind = NEGATIVE_GENERATORS.get(name).kind
    return [
        text
        for text, _ in generate(caption, kinds=[kind], per_caption=per_caption, generators=[name])
    ]


def test_registry_holds_the_synthetic_rules_under_ce_clip_kinds() -> None:
    kinds = {g.name: g.kind for g in generator_set("synthetic")}
    assert kinds == {
        "replace_attribute": "attribute",
        "replace_object": "object",
        "replace_relation": "relation",
        "swap_attribute": "attribute",
        "swap_object": "object",
    }
    assert KINDS == ("relation", "attribute", "object", "action")
    assert generator_sets() == ["english", "synthetic"]
    assert set(NEGATIVE_GENERATORS.names()) == set(kinds) | {
        g.name for g in generator_set("english")
    }
    with pytest.raises(ValueError, match="unknown negative generator set 'shapes'; known: en"):
        generate(CAPTION, generator_set="shapes")
    with pytest.raises(ValueError, match="kind 'colour' is not one of"):
        register_generator("bad", kind="colour")


def test_swap_attribute() -> None:
    assert sorted(_only("swap_attribute")) == [
        "a large red circle to the left of a small blue square",
        "a small blue circle to the left of a large red square",
    ]
    same_colour = "a small red circle above a large red square"
    assert _only("swap_attribute", same_colour) == ["a large red circle above a small red square"]
    assert _only("swap_attribute", "a small red circle above a small red square") == []


def test_replace_attribute() -> None:
    found = _only("replace_attribute")
    assert len(found) == 2 * (5 + 1)  # per object: five other colours, the other size
    for text in found:
        old, new = parse_caption(CAPTION), parse_caption(text)
        assert new.relation == old.relation
        assert (new.subject == old.subject) != (new.obj == old.obj)  # exactly one object edited
        edited = [(a, b) for a, b in ((old.subject, new.subject), (old.obj, new.obj)) if a != b]
        ((a, b),) = edited
        assert a.shape == b.shape and (a.colour != b.colour) + (a.size != b.size) == 1


def test_swap_and_replace_object() -> None:
    assert _only("swap_object") == ["a small red square to the left of a large blue circle"]
    assert _only("swap_object", "a small red circle below a large blue circle") == []
    found = _only("replace_object")
    assert len(found) == 4  # two other shapes for each object
    assert all(parse_caption(t).subject.colour == "red" for t in found)


def test_replace_relation_prefers_the_converse() -> None:
    found = _only("replace_relation")
    assert found[0] == "a small red circle to the right of a large blue square"
    assert sorted(parse_caption(t).relation for t in found[1:]) == ["above", "below"]
    identical = "a small red circle above a small red circle"  # its converse is the same image
    assert sorted(_only("replace_relation", identical)) == [
        "a small red circle to the left of a small red circle",
        "a small red circle to the right of a small red circle",
    ]


@pytest.mark.parametrize("seed", range(4))
def test_one_of_each_kind_first_then_the_rest(seed: int) -> None:
    negatives = generate(CAPTION, per_caption=4, seed=seed)
    assert {kind for _, kind in negatives[:3]} == {"relation", "attribute", "object"}
    assert len(negatives) == 4  # no action generator yet: the fourth comes from the next round
    negatives = generate(CAPTION, kinds=["object", "relation"], per_caption=5, seed=seed)
    assert sorted(kind for _, kind in negatives[:2]) == ["object", "relation"]
    assert sorted(kind for _, kind in negatives[2:4]) == ["object", "relation"]


def test_extra_slots_and_generators_are_spread_over_captions() -> None:
    rng = random.Random(9)
    table = generate_for_table([random_scene(rng).caption() for _ in range(300)], seed=0)
    assert set(table["generator"]) == {g.name for g in generator_set("synthetic")}
    shares = table["kind"].value_counts(normalize=True)
    assert all(0.25 < shares[kind] < 0.42 for kind in ("relation", "attribute", "object"))


@pytest.mark.parametrize("seed", range(5))
def test_never_the_caption_never_a_repeat_always_in_grammar(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(200):
        scene = random_scene(rng)
        caption = scene.caption()
        negatives = generate(caption.capitalize() + " ", per_caption=8, seed=seed)
        texts = [text for text, _ in negatives]
        assert caption not in texts and len(set(texts)) == len(texts) == 8
        assert all(parse_caption(t) is not None for t in texts)
        for text, kind in negatives:
            new = parse_caption(text)
            if kind == "relation":
                assert new.relation != scene.relation and (new.subject, new.obj) == (
                    scene.subject,
                    scene.obj,
                )
            else:
                assert new.relation == scene.relation


def test_captions_outside_the_grammar_get_nothing() -> None:
    assert generate("a dog chasing a cat on the grass") == []
    assert generate("") == []
    # a grammatical caption offering few edits gets fewer, never filler
    same = "a small red circle to the left of a small red circle"
    negatives = generate(same, kinds=["attribute"], per_caption=50, generators=["swap_attribute"])
    assert negatives == []


def test_deterministic_and_seed_dependent() -> None:
    assert generate(CAPTION, seed=7) == generate(CAPTION, seed=7)
    seeds = {tuple(generate(CAPTION, per_caption=8, seed=s)) for s in range(6)}
    assert len(seeds) > 1
    # a caption's negatives do not depend on the other kinds asked for
    alone = generate(CAPTION, kinds=["attribute"], per_caption=2, seed=7)
    assert alone == generate(
        CAPTION,
        kinds=["attribute"],
        per_caption=2,
        seed=7,
        generators=["replace_attribute", "swap_attribute"],
    )
    assert alone[0] in generate(CAPTION, kinds=["relation", "attribute"], per_caption=2, seed=7)


def test_unknown_kind_or_generator_is_named() -> None:
    with pytest.raises(ValueError, match="unknown negative kind.s. verb; known: relation"):
        generate(CAPTION, kinds=["verb"])
    with pytest.raises(KeyError, match="unknown negative generator 'nope'"):
        generate(CAPTION, generators=["nope"])


def test_table_matches_single_captions() -> None:
    rng = random.Random(0)
    captions = pd.Series(
        [random_scene(rng).caption() for _ in range(30)] + ["not a scene"], index=range(100, 131)
    )
    table = generate_for_table(captions, per_caption=4, seed=1)
    assert list(table.columns) == ["caption_index", "caption", "negative", "kind", "generator"]
    assert set(table["caption_index"]) == set(range(100, 130))
    for index, caption in captions.items():
        rows = table[table["caption_index"] == index]
        assert list(zip(rows["negative"], rows["kind"], strict=True)) == generate(caption, seed=1)
    reversed_table = generate_for_table(captions[::-1], per_caption=4, seed=1)
    assert sorted(map(tuple, reversed_table.to_numpy().tolist())) == sorted(
        map(tuple, table.to_numpy().tolist())
    )


def test_script_writes_parquet_and_report(tmp_path: Path) -> None:
    rng = random.Random(2)
    pairs = pd.DataFrame(
        {
            "index": range(12),
            "caption": [random_scene(rng).caption() for _ in range(11)] + ["a photo of a dog"],
            "status": ["success"] * 10 + ["failed_to_download", "success"],
        }
    )
    pairs.to_parquet(tmp_path / "pairs.parquet")
    command = [
        sys.executable,
        str(ROOT / "workflow_scripts" / "generate_negatives.py"),
        "--pairs",
        str(tmp_path / "pairs.parquet"),
        "--output",
        str(tmp_path / "n.parquet"),
        "--report",
        str(tmp_path / "r.md"),
        "--per-caption",
        "3",
        "--seed",
        "5",
    ]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    table = read_parquet(tmp_path / "n.parquet")
    assert len(table) == 30 and set(table["caption_index"]) == set(range(10))
    report = (tmp_path / "r.md").read_text()
    assert "30 negatives for 11 captions" in report and "1 got none" in report
    assert "| relation | 10 | 0.91 |" in report and "| action | 0 | 0.00 |" in report

    pairs.drop(columns="caption").to_parquet(tmp_path / "bad.parquet")
    command[command.index("--pairs") + 1] = str(tmp_path / "bad.parquet")
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"generate_negatives: error: {tmp_path / 'bad.parquet'}: missing column(s) caption"
    )
