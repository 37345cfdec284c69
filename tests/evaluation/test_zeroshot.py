"""imagefolder_zeroshot: folder reading, class names/templates, and hand-worked metrics."""

from __future__ import annotations

import json
import math
from pathlib import Path

import clip_benchmark
import pytest
from clip_benchmark.datasets.builder import all_imagenet_wordnet_ids
from evaluation_fixtures import LookupModel, id_preprocess, write_id_image

from clipflow.evaluation import BenchmarkDataError, evaluate
from clipflow.evaluation.zeroshot import (
    default_templates,
    imagenet_classnames,
    load_imagefolder,
)

FOLDERS = {"a_plane": 1, "bird": 1, "cat": 1, "deer": 1, "dog": 1, "frog": 2}
TEMPLATES = ["a photo of a {c}.", "itap of a {}."]


def basis(index: int, scale: float = 1.0) -> list[float]:
    return [scale if i == index else 0.0 for i in range(6)]


def make_folder(root: Path, folders: dict[str, int] = FOLDERS) -> Path:
    for folder, count in folders.items():
        for i in range(count):
            write_id_image(root / folder / f"img_{i}.jpg", 0)
    return root


def test_hand_worked_metrics(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "imagenet")
    (root / "templates.txt").write_text("\n".join(TEMPLATES) + "\n")
    names = ["a plane", "bird", "cat", "deer", "dog", "frog"]
    # (template 1, template 2) embeddings per class. Class 3 mixes e3 (norm 3) with e0, so its
    # classifier is (e0 + e3)/sqrt(2) only when templates are normalised before averaging;
    # class 5 mixes e5 with e4 and must be renormalised to outscore class 4.
    pairs = [
        (basis(0), basis(0, 3)),
        (basis(1), basis(1)),
        (basis(2), basis(2, 2)),
        (basis(3, 3), basis(0)),
        (basis(4), basis(4)),
        (basis(5), basis(4)),
    ]
    texts = {}
    for name, vectors in zip(names, pairs, strict=True):
        texts[f"a photo of a {name}."] = vectors[0]
        texts[f"itap of a {name}."] = vectors[1]
    # Every image embeds to v = (6,5,4,3,2,1). Class scores (x |v|): c0 6, c1 5, c2 4,
    # c3 9/sqrt2 = 6.36, c4 2, c5 3/sqrt2 = 2.12, so the ranking is c3 c0 c1 c2 c5 c4 for all.
    model = LookupModel([[6, 5, 4, 3, 2, 1]], texts)
    metrics = evaluate("imagefolder_zeroshot", model, id_preprocess, model.tokenizer, root)
    # 7 images: only deer's is top-1; dog's (c4, ranked 6th) is the only top-5 miss;
    # every prediction is c3, so per-class recall is 1 for deer and 0 for the other five.
    assert metrics == pytest.approx(
        {"acc1": 1 / 7, "acc5": 6 / 7, "mean_per_class_recall": 1 / 6}, abs=1e-6
    )


def test_top5_is_nan_below_five_classes(tmp_path: Path) -> None:
    # CLIP_benchmark's zeroshot_classification: acc5 = float("nan") with < 5 classes.
    root = make_folder(tmp_path / "two", {"cat": 1, "dog": 1})
    (root / "templates.txt").write_text("{c}\n")
    model = LookupModel([[1.0, 0.0]], {"cat": [1.0, 0.0], "dog": [0.0, 1.0]})
    metrics = evaluate("imagefolder_zeroshot", model, id_preprocess, model.tokenizer, root)
    assert metrics == pytest.approx(
        {"acc1": 0.5, "acc5": math.nan, "mean_per_class_recall": 0.5}, nan_ok=True
    )


def test_imagenet_wnid_folders_get_clip_benchmarks_curated_names(tmp_path: Path) -> None:
    wnids = list(imagenet_classnames())
    root = make_folder(tmp_path / "imagenet", dict.fromkeys(wnids, 1))
    names = load_imagefolder(root).classnames
    assert (names[0], names[1], names[999]) == ("tench", "goldfish", "toilet paper")
    # What CLIP_benchmark itself uses for imagenet1k: the same wnids in the same order.
    packaged = Path(clip_benchmark.__file__).parent / "datasets" / "en_classnames.json"
    assert names == json.loads(packaged.read_text())["imagenet1k"]
    assert wnids == all_imagenet_wordnet_ids
    # A class-names file still wins.
    (root / "classnames.txt").write_text("".join(f"class {i}\n" for i in range(1000)))
    assert load_imagefolder(root).classnames[999] == "class 999"


def test_other_wnid_folders_without_names_fail(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "subset", {"n01440764": 1, "n01443537": 1, "sharks": 1})
    with pytest.raises(BenchmarkDataError) as error:
        load_imagefolder(root)
    assert str(error.value) == (
        f"{root}: class names: 2 of 3 class folders are WordNet ids (e.g. n01440764) but they "
        "are not ImageNet-1k's 1,000 and no class-names file gives their names: add "
        "classnames.txt (one name per line, in sorted-folder order)"
    )
    (root / "classnames.txt").write_text("tench\ngoldfish\nsharks\n")
    assert load_imagefolder(root).classnames == ["tench", "goldfish", "sharks"]


def test_folder_layout_classnames_and_default_templates(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "data", {"n02_b": 2, "n01_a": 1})
    (root / "n01_a" / "readme.txt").write_text("not an image")
    write_id_image(root / "n01_a" / "nested" / "img_5.jpg", 0)  # ImageFolder walks subfolders
    write_id_image(root / ".cache" / "img_0.jpg", 0)
    data = load_imagefolder(root)
    assert data.classnames == ["n01 a", "n02 b"]
    assert data.labels == [0, 0, 1, 1]
    assert [p.relative_to(root).as_posix() for p in data.images] == [
        "n01_a/img_0.jpg",
        "n01_a/nested/img_5.jpg",
        "n02_b/img_0.jpg",
        "n02_b/img_1.jpg",
    ]
    assert data.templates == default_templates()
    assert len(data.templates) == 80
    assert data.templates[0] == "a bad photo of a {c}."

    (root / "classnames.txt").write_text("goldfish\ngreat white shark\n")
    assert load_imagefolder(root).classnames == ["goldfish", "great white shark"]


def test_class_name_count_mismatch_names_the_file(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "data", {"a": 1, "b": 1})
    (root / "classnames.txt").write_text("only one\n")
    with pytest.raises(BenchmarkDataError) as error:
        load_imagefolder(root)
    assert (
        str(error.value) == f"{root / 'classnames.txt'}: class names: 1 lines for 2 class folders"
    )


def test_template_without_placeholder_names_file_and_line(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "data", {"a": 1})
    (root / "templates.txt").write_text("a photo of a {c}.\na photo.\n")
    with pytest.raises(BenchmarkDataError, match=r"templates\.txt: line 2: no \{c\} placeholder"):
        load_imagefolder(root)


def test_empty_class_folder_fails_naming_it(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "data", {"a": 1})
    (root / "b").mkdir()
    with pytest.raises(BenchmarkDataError, match=r"b: images: class folder has no image files"):
        load_imagefolder(root)


def test_missing_classnames_option_file_fails_naming_it(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "data", {"a": 1})
    with pytest.raises(BenchmarkDataError, match=r"missing\.txt: classnames: file not found"):
        load_imagefolder(root, classnames="missing.txt")


def test_default_templates_are_used_end_to_end(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "data", {"cat": 1, "dog": 1})
    prompts = [t.replace("{c}", name) for name in ("cat", "dog") for t in default_templates()]
    model = LookupModel(
        [[1.0, 0.0]], {p: [1.0, 0.0] if "cat" in p else [0.0, 1.0] for p in prompts}
    )
    metrics = evaluate("imagefolder_zeroshot", model, id_preprocess, model.tokenizer, root)
    assert metrics == pytest.approx(
        {"acc1": 0.5, "acc5": math.nan, "mean_per_class_recall": 0.5}, nan_ok=True
    )
