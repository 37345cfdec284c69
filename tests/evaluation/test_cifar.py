"""cifar10 / cifar100: torchvision's pickled batches, CLIP's CIFAR templates, hand-worked metrics,
parity with torchvision's reader and CLIP_benchmark, and one-line errors."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from evaluation_fixtures import ID_STEP, LookupModel, id_preprocess

from clipflow.evaluation import BenchmarkDataError, evaluate, get_benchmark
from clipflow.evaluation.benchmark import packaged_lines
from clipflow.evaluation.cifar import CIFAR_TEMPLATES, read_batch

CIFAR10_NAMES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]
# CIFAR-100's meta names keep underscores (aquarium_fish); the rest are stand-ins.
CIFAR100_NAMES = ["apple", "aquarium_fish", *(f"thing{i}" for i in range(2, 100))]


def dump(path: Path, obj: dict) -> None:
    """Pickle as the released files are: protocol 2, readable by Python 2 and 3."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(obj, protocol=2))


def id_pixels(image_ids: list[int]) -> np.ndarray:
    """``N x 3072`` rows (red plane, green plane, blue plane) of solid images whose red channel
    encodes the id, for ``id_preprocess``."""
    planes = [np.full((len(image_ids), 1024), value, np.uint8) for value in (0, 128, 128)]
    planes[0][:] = np.array(image_ids, np.uint8)[:, None] * ID_STEP
    return np.concatenate(planes, axis=1)


def noise_pixels(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 3072), dtype=np.uint8)


def make_cifar10(root: Path, test: tuple[np.ndarray, list[int]], train_labels=None) -> Path:
    """``root/cifar-10-batches-py`` with the released keys; each train batch holds one image."""
    folder = root / "cifar-10-batches-py"
    meta = {"num_cases_per_batch": 10000, "label_names": CIFAR10_NAMES, "num_vis": 3072}
    dump(folder / "batches.meta", meta)

    def batch(label: str, pixels: np.ndarray, labels: list[int]) -> dict:
        names = [f"img_{i}.png" for i in range(len(labels))]
        return {"batch_label": label, "labels": labels, "data": pixels, "filenames": names}

    dump(folder / "test_batch", batch("testing batch 1 of 1", *test))
    for i, label in enumerate(train_labels or [0, 1, 2, 3, 4], start=1):
        dump(folder / f"data_batch_{i}", batch(f"training batch {i} of 5", id_pixels([0]), [label]))
    return root


def make_cifar100(root: Path, pixels: np.ndarray, labels: list[int]) -> Path:
    folder = root / "cifar-100-python"
    coarse = [f"superclass{i}" for i in range(20)]
    dump(folder / "meta", {"fine_label_names": CIFAR100_NAMES, "coarse_label_names": coarse})
    record = {
        "filenames": [f"img_{i}.png" for i in range(len(labels))],
        "batch_label": "testing batch 1 of 1",
        "fine_labels": labels,
        "coarse_labels": [0] * len(labels),
        "data": pixels,
    }
    dump(folder / "test", record)
    dump(folder / "train", {**record, "batch_label": "training batch 1 of 1"})
    return root


def basis(index: int, size: int) -> list[float]:
    return [1.0 if i == index else 0.0 for i in range(size)]


def prompts_to_basis(names: list[str]) -> dict[str, list[float]]:
    """Every default prompt of class ``c`` embeds to ``e_c``, so class ``c``'s classifier is
    ``e_c`` and an image's class scores are its own components."""
    templates = packaged_lines(CIFAR_TEMPLATES)
    return {
        t.replace("{c}", name): basis(c, len(names))
        for c, name in enumerate(names)
        for t in templates
    }


# Image id -> embedding over the 10 classes, and the label of each test image.
IMAGE_VECTORS = [
    basis(0, 10),  # id 0: class 0 first
    [0, 0.5, 0.9, 0.8, 0.7, 0.6, 0.1, 0.2, 0.3, 0.4],  # id 1: c2 c3 c4 c5 c1 ... (c1 5th)
    [1, 0.9, 0, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2],  # id 2: c2 last
    basis(2, 10),  # id 3: class 2 first
]
TEST_IDS = [0, 1, 2, 3, 0]
TEST_LABELS = [0, 1, 2, 2, 0]


def test_templates_are_clip_benchmarks_cifar_list() -> None:
    templates = packaged_lines(CIFAR_TEMPLATES)
    assert len(templates) == 18
    assert templates[0] == "a photo of a {c}."
    assert templates[-1] == "a photo of the big {c}."


def test_cifar10_hand_worked_metrics(tmp_path: Path) -> None:
    root = make_cifar10(tmp_path, (id_pixels(TEST_IDS), TEST_LABELS))
    model = LookupModel(IMAGE_VECTORS, prompts_to_basis(CIFAR10_NAMES))
    metrics = evaluate("cifar10", model, id_preprocess, model.tokenizer, root)
    # Top-1 right: images 0, 3, 4. Top-5: image 1's label (c1) ranks 5th, a hit; image 2's label
    # (c2) ranks last, the only miss. Recall: class 0 2/2, class 1 0/1, class 2 1/2.
    assert metrics == pytest.approx(
        {"acc1": 3 / 5, "acc5": 4 / 5, "mean_per_class_recall": (1 + 0 + 0.5) / 3}
    )


def test_cifar10_train_split_reads_the_five_batches(tmp_path: Path) -> None:
    root = make_cifar10(tmp_path, (id_pixels([0]), [0]), train_labels=[0, 0, 1, 2, 5])
    descending = [1.0 - c / 10 for c in range(10)]  # ranks c0 c1 c2 ... for every image
    model = LookupModel([descending], prompts_to_basis(CIFAR10_NAMES))
    metrics = evaluate("cifar10", model, id_preprocess, model.tokenizer, root, split="train")
    # One image per batch, labels 0 0 1 2 5: top-1 right twice, top-5 misses only c5 (6th);
    # recall 1 for class 0 and 0 for classes 1, 2, 5.
    assert metrics == pytest.approx({"acc1": 2 / 5, "acc5": 4 / 5, "mean_per_class_recall": 1 / 4})
    with pytest.raises(ValueError, match="no split 'val'"):
        evaluate("cifar10", model, id_preprocess, model.tokenizer, root, split="val")


def test_cifar100_fine_labels_and_underscored_names(tmp_path: Path) -> None:
    root = make_cifar100(tmp_path, id_pixels([0, 1, 2]), [1, 1, 0])
    # Only the meta file's names have prompts (the model fails on any other text), so this also
    # checks aquarium_fish keeps its underscore, as CLIP_benchmark's torchvision names do.
    first, second, third = basis(1, 100), [0.0] * 100, [0.0] * 100
    second[1], second[2:7] = 0.5, [0.9, 0.8, 0.7, 0.6, 0.55]  # c1 sixth: a top-5 miss
    third[1], third[0] = 0.9, 0.8  # c0 second: a top-5 hit
    model = LookupModel([first, second, third], prompts_to_basis(CIFAR100_NAMES))
    metrics = evaluate("cifar100", model, id_preprocess, model.tokenizer, root)
    # Recall: class 1 (aquarium_fish) 1/2, class 0 (apple) 0/1.
    assert metrics == pytest.approx({"acc1": 1 / 3, "acc5": 2 / 3, "mean_per_class_recall": 0.25})


def test_templates_and_classnames_options(tmp_path: Path) -> None:
    root = make_cifar10(tmp_path, (id_pixels([0, 3]), [0, 3]))
    (root / "prompts.txt").write_text("itap of a {}.\n")
    names = [f"name {i}" for i in range(10)]
    (root / "names.txt").write_text("\n".join(names) + "\n")
    texts = {f"itap of a {name}.": basis(c, 10) for c, name in enumerate(names)}
    model = LookupModel([basis(0, 10), basis(1, 10), basis(2, 10), basis(3, 10)], texts)
    metrics = evaluate(
        "cifar10",
        model,
        id_preprocess,
        model.tokenizer,
        root,
        templates="prompts.txt",
        classnames="names.txt",
    )
    assert metrics == pytest.approx({"acc1": 1.0, "acc5": 1.0, "mean_per_class_recall": 1.0})


def test_batches_match_torchvisions_reader(tmp_path: Path, monkeypatch) -> None:
    from torchvision.datasets import CIFAR10, CIFAR100

    # torchvision accepts only the released files' MD5 sums; the format is what is compared.
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda *a, **k: True)
    root = make_cifar10(tmp_path / "c10", (noise_pixels(6, seed=0), [3, 1, 4, 1, 5, 9]))
    theirs = CIFAR10(str(root), train=False)
    images, labels = read_batch(root / "cifar-10-batches-py" / "test_batch", "labels", 10)
    np.testing.assert_array_equal(images, theirs.data)
    assert labels == theirs.targets and theirs.classes == CIFAR10_NAMES

    root = make_cifar100(tmp_path / "c100", noise_pixels(3, seed=1), [99, 0, 1])
    theirs = CIFAR100(str(root), train=False)
    images, labels = read_batch(root / "cifar-100-python" / "test", "fine_labels", 100)
    np.testing.assert_array_equal(images, theirs.data)
    assert labels == theirs.targets and theirs.classes == CIFAR100_NAMES


def test_tiny_model_matches_clip_benchmark(tiny_bundle, tmp_path: Path, monkeypatch) -> None:
    from clip_benchmark.datasets.builder import build_dataset
    from clip_benchmark.metrics import zeroshot_classification
    from torch.utils.data import DataLoader

    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda *a, **k: True)
    root = make_cifar10(tmp_path, (noise_pixels(20, seed=2), [i % 10 for i in range(20)]))
    dataset = build_dataset(
        "cifar10",
        root=str(root),
        transform=tiny_bundle.preprocess_val,
        split="test",
        download=False,
    )
    theirs = zeroshot_classification.evaluate(
        tiny_bundle.model,
        DataLoader(dataset, batch_size=8),
        tiny_bundle.tokenizer,
        dataset.classes,
        dataset.templates,
        "cpu",
        amp=False,
    )
    ours = evaluate(
        "cifar10",
        tiny_bundle.model,
        tiny_bundle.preprocess_val,
        tiny_bundle.tokenizer,
        root,
        batch_size=8,
    )
    assert ours == pytest.approx(theirs, abs=1e-4)


def test_registered_with_clip_benchmark_task_and_options() -> None:
    for name in ("cifar10", "cifar100"):
        entry = get_benchmark(name)
        assert entry.task == "zeroshot_classification"
        assert entry.option_names() == ["split", "classnames", "templates"]


def run_on(root: Path) -> dict[str, float]:
    model = LookupModel(IMAGE_VECTORS, prompts_to_basis(CIFAR10_NAMES))
    return evaluate("cifar10", model, id_preprocess, model.tokenizer, root)


def test_missing_meta_names_the_file(tmp_path: Path) -> None:
    root = make_cifar10(tmp_path, (id_pixels([0]), [0]))
    meta = root / "cifar-10-batches-py" / "batches.meta"
    meta.unlink()
    with pytest.raises(BenchmarkDataError) as error:
        run_on(root)
    assert str(error.value) == f"{meta}: file: not found"


def test_missing_labels_names_the_file_and_field(tmp_path: Path) -> None:
    root = make_cifar10(tmp_path, (id_pixels([0]), [0]))
    batch = root / "cifar-10-batches-py" / "test_batch"
    dump(batch, {"batch_label": "testing batch 1 of 1", "data": id_pixels([0])})
    with pytest.raises(BenchmarkDataError) as error:
        run_on(root)
    assert str(error.value) == f"{batch}: labels: missing"


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"labels": [0], "data": np.zeros((1, 1024), np.uint8)}, "data: expected an N x 3072"),
        ({"labels": [10], "data": id_pixels([0])}, r"labels\[0\]: expected a class index below 10"),
        ({"labels": [0, 1], "data": id_pixels([0])}, "labels: expected a list of 1 labels"),
    ],
)
def test_malformed_batch_is_one_line(tmp_path: Path, record: dict, message: str) -> None:
    root = make_cifar10(tmp_path, (id_pixels([0]), [0]))
    dump(root / "cifar-10-batches-py" / "test_batch", record)
    with pytest.raises(BenchmarkDataError, match=rf"test_batch: {message}"):
        run_on(root)


def test_numpy_1_pickles_are_read(tmp_path: Path) -> None:
    # The released batches name numpy 1.x's numpy.core module, which numpy 2 still resolves.
    root = make_cifar10(tmp_path, (id_pixels(TEST_IDS), TEST_LABELS))
    batch = root / "cifar-10-batches-py" / "test_batch"
    data = batch.read_bytes()
    assert b"numpy._core.multiarray\n_reconstruct" in data
    batch.write_bytes(data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    images, labels = read_batch(batch, "labels", 10)
    assert labels == TEST_LABELS
    assert images[:, 0, 0, 0].tolist() == [i * ID_STEP for i in TEST_IDS]


class _Hostile:
    """Unpickling this would call ``print``: stands for a doctored file that runs code."""

    def __reduce__(self):
        return (print, ("this must not run",))


def test_pickle_naming_other_code_is_refused(tmp_path: Path, capsys) -> None:
    root = make_cifar10(tmp_path, (id_pixels([0]), [0]))
    dump(root / "cifar-10-batches-py" / "test_batch", {"labels": [0], "data": _Hostile()})
    with pytest.raises(BenchmarkDataError, match=r"test_batch: pickle: cannot be read \(refusing"):
        run_on(root)
    assert "this must not run" not in capsys.readouterr().out


def test_truncated_pickle_is_one_line(tmp_path: Path) -> None:
    root = make_cifar10(tmp_path, (id_pixels([0]), [0]))
    batch = root / "cifar-10-batches-py" / "test_batch"
    batch.write_bytes(batch.read_bytes()[:100])
    with pytest.raises(BenchmarkDataError, match=r"test_batch: pickle: cannot be read"):
        run_on(root)
