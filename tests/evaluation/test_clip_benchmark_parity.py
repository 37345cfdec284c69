"""Our metrics equal CLIP_benchmark's own functions on the same random model and data.

CLIP_benchmark runs with ``amp=False`` (its CPU autocast is bfloat16) and gets its data from
torchvision's ``ImageFolder`` / its own ``sugar_crepe/<subset>`` datasets (built by its
``build_dataset`` from the same root, so the data layout is checked too), so labels and
ordering are checked too. SugarCrepe compares with ``image_caption_selection``'s ``text_acc``,
which differs from ours only on exact score ties.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from clip_benchmark.datasets.builder import build_dataset, image_captions_collate_fn
from clip_benchmark.metrics import image_caption_selection, zeroshot_classification
from clip_benchmark.metrics import zeroshot_retrieval as cb_retrieval
from evaluation_fixtures import karpathy_record, write_json, write_noise_image
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.datasets import ImageFolder

from clipflow.evaluation import evaluate
from clipflow.evaluation.retrieval import load_captions
from clipflow.evaluation.zeroshot import load_imagefolder

WORDS = ["a", "the", "red", "blue", "big", "dog", "cat", "car", "tree", "man", "on", "in", "road"]
CLASSES = ["golden_retriever", "tabby", "sports_car", "oak", "daisy", "canoe"]
BATCH = 8


def sentence(rng: np.random.Generator) -> str:
    return " ".join(rng.choice(WORDS, size=rng.integers(4, 9)))


class Captioned(Dataset):
    """(image tensor, captions) pairs in CLIP_benchmark's retrieval dataset shape."""

    def __init__(self, images: list[Path], captions: list[list[str]], preprocess) -> None:
        self.images, self.captions, self.preprocess = images, captions, preprocess

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        with Image.open(self.images[index]) as image:
            return self.preprocess(image.convert("RGB")), self.captions[index]


def check_zeroshot(bundle, root: Path, per_class: int, templates: list[str] | None) -> None:
    for c, name in enumerate(CLASSES):
        for i in range(per_class):
            write_noise_image(root / name / f"{i}.jpg", seed=100 * c + i)
    if templates is not None:
        (root / "templates.txt").write_text("\n".join(templates) + "\n")
    data = load_imagefolder(root)
    loader = DataLoader(ImageFolder(str(root), transform=bundle.preprocess_val), batch_size=BATCH)
    theirs = zeroshot_classification.evaluate(
        bundle.model, loader, bundle.tokenizer, data.classnames, data.templates, "cpu", amp=False
    )
    ours = evaluate(
        "imagefolder_zeroshot",
        bundle.model,
        bundle.preprocess_val,
        bundle.tokenizer,
        root,
        batch_size=BATCH,
    )
    assert ours == pytest.approx(theirs, abs=1e-4)


def check_retrieval(bundle, root: Path, n_images: int, per_image: int = 5) -> None:
    rng = np.random.default_rng(0)
    records = []
    for i in range(n_images):
        name = f"COCO_val2014_{i:012d}.jpg"
        write_noise_image(root / "val2014" / name, seed=i)
        records.append(
            karpathy_record("val2014", name, "test", [sentence(rng) for _ in range(per_image)])
        )
    write_json(root / "dataset_coco.json", {"images": records, "dataset": "coco"})
    images, captions = load_captions(root / "dataset_coco.json", root)
    loader = DataLoader(
        Captioned(images, captions, bundle.preprocess_val),
        batch_size=BATCH,
        collate_fn=image_captions_collate_fn,
    )
    theirs = cb_retrieval.evaluate(
        bundle.model, loader, bundle.tokenizer, "cpu", amp=False, recall_k_list=[1, 5, 10]
    )
    ours = evaluate(
        "coco_retrieval", bundle.model, bundle.preprocess_val, bundle.tokenizer, root, BATCH
    )
    assert ours == pytest.approx(theirs, abs=1e-4)


def check_sugarcrepe(bundle, root: Path, n_images: int, per_subset: int) -> None:
    rng = np.random.default_rng(1)
    names = [f"{i:012d}.jpg" for i in range(n_images)]
    for i, name in enumerate(names):
        write_noise_image(root / "val2017" / name, seed=500 + i)
    for subset in ("add_att", "swap_obj"):
        write_json(
            root / f"{subset}.json",
            {
                str(2 * k): {
                    "filename": names[rng.integers(n_images)],
                    "caption": sentence(rng),
                    "negative_caption": sentence(rng),
                }
                for k in range(per_subset)
            },
        )
    subsets = ["add_att", "swap_obj"]
    ours = evaluate(
        "sugarcrepe",
        bundle.model,
        bundle.preprocess_val,
        bundle.tokenizer,
        root,
        subsets=subsets,
    )
    for subset in subsets:
        dataset = build_dataset(
            f"sugar_crepe/{subset}",
            root=str(root),
            transform=bundle.preprocess_val,
            task="image_caption_selection",
        )
        loader = DataLoader(dataset, batch_size=BATCH, collate_fn=image_captions_collate_fn)
        theirs = image_caption_selection.evaluate(
            bundle.model, loader, bundle.tokenizer, "cpu", amp=False
        )
        assert ours[subset] == pytest.approx(theirs["text_acc"], abs=1e-4)


def test_tiny_model_matches_clip_benchmark(tiny_bundle, tmp_path: Path) -> None:
    check_zeroshot(tiny_bundle, tmp_path / "imagenet", per_class=2, templates=None)
    check_retrieval(tiny_bundle, tmp_path / "coco", n_images=12)
    check_sugarcrepe(tiny_bundle, tmp_path / "sugarcrepe", n_images=6, per_subset=10)


@pytest.mark.slow
def test_vit_b_32_matches_clip_benchmark_on_50_images(tmp_path: Path) -> None:
    from clipflow.models import create_model

    bundle = create_model("ViT-B-32", seed=0)
    # Two captions per image and one template keep the 12-layer text tower's work to minutes.
    check_retrieval(bundle, tmp_path / "coco", n_images=50, per_image=2)
    check_zeroshot(bundle, tmp_path / "imagenet", per_class=8, templates=["a photo of a {c}."])
    check_sugarcrepe(bundle, tmp_path / "sugarcrepe", n_images=10, per_subset=10)
