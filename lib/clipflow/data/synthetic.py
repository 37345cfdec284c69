"""The embedded default dataset: coloured shapes with attributes and spatial relations.

Everything is deterministic from a seed, so a clean checkout regenerates the same pixels. The
training set is a folder of PNGs plus a manifest; the download stage serves that folder over
loopback HTTP so img2dataset downloads it like any web dataset. A few manifest rows point at
missing files and one at a corrupt image, so the download failure path is always exercised.
Benchmarks are written in the official on-disk formats their readers expect (ImageNet-style
folders, Karpathy JSON, SugarCrepe JSON), from scenes disjoint in seed from the training set.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from PIL import Image, ImageDraw

from clipflow.data.vocabulary import COLOURS, RELATIONS, SHAPES, SIZES, Scene, ShapeSpec
from clipflow.io import write_json, write_text, write_with

BACKGROUND = (245, 245, 240)
MANIFEST_COLUMNS = ["caption", "path", "expected"]


def random_shape(rng: random.Random, **fixed: str) -> ShapeSpec:
    return ShapeSpec(
        fixed.get("size", rng.choice(list(SIZES))),
        fixed.get("colour", rng.choice(list(COLOURS))),
        fixed.get("shape", rng.choice(SHAPES)),
    )


def random_scene(rng: random.Random, **fixed: str) -> Scene:
    """A scene whose two objects differ (so every caption names a distinguishable pair)."""
    subject = random_shape(rng, **fixed)
    obj = random_shape(rng, **fixed)
    while obj == subject:
        obj = random_shape(rng, **fixed)
    return Scene(subject, rng.choice(list(RELATIONS)), obj)


def _draw_shape(
    draw: ImageDraw.ImageDraw, spec: ShapeSpec, cx: float, cy: float, size: int
) -> None:
    radius = SIZES[spec.size] * size / 2
    box = (cx - radius, cy - radius, cx + radius, cy + radius)
    colour = COLOURS[spec.colour]
    if spec.shape == "circle":
        draw.ellipse(box, fill=colour)
    elif spec.shape == "square":
        draw.rectangle(box, fill=colour)
    else:
        draw.polygon(
            [(cx, cy - radius), (cx - radius, cy + radius), (cx + radius, cy + radius)], fill=colour
        )


def render_scene(scene: Scene, rng: random.Random, size: int = 64) -> Image.Image:
    """Draw the subject and the object on either side of the image axis that the relation names."""
    image = Image.new("RGB", (size, size), BACKGROUND)
    draw = ImageDraw.Draw(image)
    near, far = 0.27 * size, 0.73 * size
    jitter = 0.08 * size
    along = {
        "to the left of": (near, far),
        "to the right of": (far, near),
        "above": (near, far),
        "below": (far, near),
    }[scene.relation]
    horizontal = scene.relation in ("to the left of", "to the right of")
    for spec, position in zip((scene.subject, scene.obj), along, strict=True):
        main = position + rng.uniform(-jitter, jitter)
        cross = size / 2 + rng.uniform(-2 * jitter, 2 * jitter)
        cx, cy = (main, cross) if horizontal else (cross, main)
        _draw_shape(draw, spec, cx, cy, size)
    return image


def _save_png(image: Image.Image, path: Path) -> None:
    write_with(path, lambda tmp: image.save(tmp, format="PNG"))


def make_training_set(
    out_dir: str | Path,
    num_pairs: int,
    seed: int,
    image_size: int = 64,
    num_broken_urls: int = 3,
    num_corrupt_images: int = 1,
) -> pd.DataFrame:
    """Write ``images/*.png`` and ``manifest.tsv`` (caption, path under ``out_dir``, expected).

    ``expected`` is ``ok``, ``missing`` (the file is never written: an HTTP 404) or ``corrupt``
    (bytes that no image decoder accepts); the broken rows are spread through the manifest.
    """
    out_dir = Path(out_dir)
    rng = random.Random(seed)
    rows = []
    for i in range(num_pairs):
        scene = random_scene(rng)
        path = f"images/{i:06d}.png"
        _save_png(render_scene(scene, rng, image_size), out_dir / path)
        rows.append({"caption": scene.caption(), "path": path, "expected": "ok"})
    for i in range(num_broken_urls):
        rows.append(
            {
                "caption": random_scene(rng).caption(),
                "path": f"images/missing_{i}.png",
                "expected": "missing",
            }
        )
    for i in range(num_corrupt_images):
        path = f"images/corrupt_{i}.png"
        write_text(out_dir / path, "this is not an image\n" * 8)
        rows.append({"caption": random_scene(rng).caption(), "path": path, "expected": "corrupt"})
    broken = rows[num_pairs:]
    manifest = rows[:num_pairs]
    for k, row in enumerate(broken):  # interleave, so failures land inside shards, not after them
        manifest.insert(min(len(manifest), (k + 1) * max(1, num_pairs // (len(broken) + 1))), row)
    frame = pd.DataFrame(manifest, columns=MANIFEST_COLUMNS)
    write_with(out_dir / "manifest.tsv", lambda tmp: frame.to_csv(tmp, sep="\t", index=False))
    return frame


def _write_imagefolder(
    root: Path,
    classes: list[str],
    templates: list[str],
    per_class: int,
    scene_for: Callable[[str], Scene],
    rng: random.Random,
    image_size: int,
) -> None:
    classes = sorted(classes)  # classnames.txt lists classes in folder (sorted) order
    for name in classes:
        for i in range(per_class):
            _save_png(render_scene(scene_for(name), rng, image_size), root / name / f"{i:04d}.png")
    write_text(root / "classnames.txt", "\n".join(classes) + "\n")
    write_text(root / "templates.txt", "\n".join(templates) + "\n")


# The SugarCrepe subsets a synthetic scene has negatives for (it has no add_* or replace_obj).
SUGARCREPE_SUBSETS = ("replace_att", "swap_att", "replace_rel", "swap_obj")


def make_benchmarks(out_dir: str | Path, seed: int, num_images: int, image_size: int = 64) -> dict:
    """Write the default benchmarks under ``out_dir``; returns {benchmark: root}.

    - ``shapes_zeroshot``/``colours_zeroshot``: ImageNet-style folders, both objects share the
      class attribute, with ``classnames.txt`` and ``templates.txt``;
    - ``retrieval``: Karpathy ``dataset_synthetic.json`` (split ``test``), two captions per image
      (the scene and its converse);
    - ``compositional``: SugarCrepe ``replace_att``/``swap_att``/``replace_rel``/``swap_obj``
      (:data:`SUGARCREPE_SUBSETS`, which a benchmark reading it lists in its ``subsets``
      option) with the images in ``val2017/``, CLIP_benchmark's layout.
    """
    out_dir = Path(out_dir)
    rng = random.Random(seed)
    per_class = max(2, num_images // len(COLOURS))
    _write_imagefolder(
        out_dir / "shapes_zeroshot",
        list(SHAPES),
        ["a {}", "a small {}", "a large {}", "a red {}", "a blue {}", "a green {}"],
        per_class,
        lambda shape: random_scene(rng, shape=shape),
        rng,
        image_size,
    )
    _write_imagefolder(
        out_dir / "colours_zeroshot",
        list(COLOURS),
        ["a {} circle", "a {} square", "a {} triangle", "a small {} shape", "a large {} shape"],
        per_class,
        lambda colour: random_scene(rng, colour=colour),
        rng,
        image_size,
    )
    images, sugarcrepe = [], {k: {} for k in SUGARCREPE_SUBSETS}
    for i in range(num_images):
        scene = random_scene(rng)
        filename = f"{i:06d}.png"
        _save_png(render_scene(scene, rng, image_size), out_dir / "retrieval" / "images" / filename)
        converse = Scene(scene.obj, RELATIONS[scene.relation], scene.subject)
        images.append(
            {
                "filepath": "images",
                "filename": filename,
                "split": "test",
                "imgid": i,
                "sentences": [{"raw": scene.caption()}, {"raw": converse.caption()}],
            }
        )
        for subset, negative in _sugarcrepe_negatives(scene, rng).items():
            if negative is not None:
                sugarcrepe[subset][str(len(sugarcrepe[subset]))] = {
                    "filename": filename,
                    "caption": scene.caption(),
                    "negative_caption": negative,
                }
    write_json(
        out_dir / "retrieval" / "dataset_synthetic.json", {"images": images, "dataset": "synthetic"}
    )
    compositional = out_dir / "compositional"
    for subset, records in sugarcrepe.items():
        write_json(compositional / f"{subset}.json", records, indent=4)
    (compositional / "val2017").mkdir(parents=True, exist_ok=True)
    for entry in images:  # SugarCrepe reads images from root/val2017, CLIP_benchmark's layout
        target = compositional / "val2017" / entry["filename"]
        if not target.exists():
            target.hardlink_to(out_dir / "retrieval" / "images" / entry["filename"])
    return {
        name: str(out_dir / name)
        for name in ("shapes_zeroshot", "colours_zeroshot", "retrieval", "compositional")
    }


def _sugarcrepe_negatives(scene: Scene, rng: random.Random) -> dict[str, str | None]:
    s, o = scene.subject, scene.obj
    other_colours = [c for c in COLOURS if c not in (s.colour, o.colour)]
    replace_att = Scene(ShapeSpec(s.size, rng.choice(other_colours), s.shape), scene.relation, o)
    swap_att = (
        Scene(
            ShapeSpec(s.size, o.colour, s.shape),
            scene.relation,
            ShapeSpec(o.size, s.colour, o.shape),
        )
        if s.colour != o.colour
        else None
    )
    swap_obj = (
        Scene(
            ShapeSpec(s.size, s.colour, o.shape),
            scene.relation,
            ShapeSpec(o.size, o.colour, s.shape),
        )
        if s.shape != o.shape
        else None
    )
    replace_rel = Scene(s, RELATIONS[scene.relation], o)
    return {
        "replace_att": replace_att.caption(),
        "swap_att": swap_att.caption() if swap_att else None,
        "replace_rel": replace_rel.caption(),
        "swap_obj": swap_obj.caption() if swap_obj else None,
    }


def read_manifest(path: str | Path) -> pd.DataFrame:
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    missing = set(MANIFEST_COLUMNS) - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
    return frame
