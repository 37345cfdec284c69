"""Choosing the experiment from the command line, its `scale: tiny` version, and the paper-table
section's cross-references (clipflow.config)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from clipflow.config import (
    TINY_DATA,
    ConfigError,
    check_paper_table,
    experiment_config,
    scale_down,
)

DEFAULT = {
    "experiment": "default",
    "runs": {"clip": {"loss": "clip"}, "sogclr": {"loss": "sogclr"}},
}


def write(path: Path, content: dict) -> Path:
    path.write_text(yaml.safe_dump(content))
    return path


def test_files_without_experiment_extend_the_default(tmp_path: Path) -> None:
    paths = write(tmp_path / "paths.yaml", {"data": {"path": "cc3m.tsv"}})
    merged = {**DEFAULT, "data": {"path": "cc3m.tsv"}}
    assert experiment_config(merged, [paths], {"data": {"path": "cc3m.tsv"}}) is merged


def test_a_file_naming_an_experiment_replaces_the_default(tmp_path: Path) -> None:
    # snakemake merged: the default, then recipe.yaml, then paths.yaml, then --config
    paths = write(tmp_path / "paths.yaml", {"data": {"path": "real.tsv"}})
    recipe = write(tmp_path / "recipe.yaml", {"experiment": "helip", "runs": {"helip": {}}})
    command_line = {
        "experiment": "helip",
        "runs": {"helip": {"loss": "helip"}},
        "data": {"path": "real.tsv"},
        "scale": "tiny",
    }
    merged = {**DEFAULT, **command_line, "runs": {**DEFAULT["runs"], "helip": {"loss": "helip"}}}
    chosen = experiment_config(merged, [paths, recipe], command_line)
    assert chosen == command_line  # no clip or sogclr run from the default
    chosen["runs"]["helip"]["loss"] = "changed"
    assert command_line["runs"]["helip"]["loss"] == "helip"  # a copy, not snakemake's dict


RECIPE = {
    "experiment": "paper",
    "data": {"source": "cc3m_tsv", "path": "data/cc3m.tsv", "download": {"processes_count": 16}},
    "train": {"model": "RN50", "pretrained": "rn50.pt", "epochs": 30, "lr": 5e-4, "seed": 1},
    "runs": {
        "helip": {"loss": "helip", "sampler": "hard_pairs", "batch_size": 420},
        "clip": {"loss": "clip", "model": "ViT-B-32", "precision": "amp"},
    },
    "mining": {"encoder": {"model": "RN50", "checkpoint": "rn50.pt"}, "index": "ivf", "topk": 100},
    "negatives": {"generator_set": "english", "n_process": 8, "fill_mask": {"model": "roberta"}},
    "benchmarks": {
        "enabled": {
            "imagenet": {"kind": "imagefolder_zeroshot", "root": "in/val", "published": "in1k"},
            "flickr": {"kind": "flickr30k_retrieval", "root": "f30k", "options": {"split": "val"}},
            "vgr": {"kind": "aro_vg_relation", "root": "aro"},
            "shapes_zeroshot": {"kind": "imagefolder_zeroshot"},
        }
    },
    "resources": {"train": {"gpus": 8, "tasks": 8, "slurm_partition": "gpu"}},
    "train_launcher": "submitit",
    "report": {"paper_table": {"title": "T", "rows": [{"label": "a"}], "columns": []}},
}


def test_full_scale_is_left_alone() -> None:
    assert scale_down(RECIPE) is RECIPE
    full = {**RECIPE, "scale": "full"}
    assert scale_down(full) is full


def test_tiny_keeps_the_experiment_but_not_its_data_model_or_hardware() -> None:
    original = copy.deepcopy(RECIPE)
    tiny = scale_down({**RECIPE, "scale": "tiny"})
    assert original == RECIPE  # the input is not changed
    assert tiny["experiment"] == "paper_tiny"
    assert tiny["data"] == TINY_DATA
    assert tiny["train"] == {
        "model": "clipflow-tiny-vit",
        "pretrained": None,
        "epochs": 1,
        "batch_size": 32,
        "num_workers": 0,
        "precision": "fp32",
        "warmup_steps": 0,
        "lr": 5e-4,
        "seed": 1,
    }
    assert tiny["runs"] == {  # the runs' own model, batch and precision give way to the tiny ones
        "helip": {"loss": "helip", "sampler": "hard_pairs"},
        "clip": {"loss": "clip"},
    }
    assert tiny["benchmarks"]["num_images"] == 40
    assert tiny["benchmarks"]["enabled"] == {
        "imagenet": {
            "kind": "imagefolder_zeroshot",
            "synthetic": "shapes_zeroshot",
            "published": "in1k",
        },
        "flickr": {
            "kind": "coco_retrieval",
            "synthetic": "retrieval",
            "options": {"annotation": "dataset_synthetic.json"},
        },
        "vgr": {
            "kind": "sugarcrepe",
            "synthetic": "compositional",
            "options": {"subsets": ["replace_att", "swap_att", "replace_rel", "swap_obj"]},
        },
        "shapes_zeroshot": {"kind": "imagefolder_zeroshot"},  # already synthetic
    }
    # the encoder becomes the first run that does not itself wait for the hard pairs
    assert tiny["mining"] == {
        "encoder": {"run": "clip"},
        "index": "flat",
        "index_options": {},
        "topk": 100,
    }
    assert tiny["negatives"] == {
        "generator_set": "english",
        "n_process": 1,
        "fill_mask": {"model": None},
    }
    assert tiny["resources"] == {
        "default": {"mem_mb": 2000, "runtime": 20, "threads": 1, "gpus": 0}
    }
    assert "train_launcher" not in tiny
    assert tiny["report"] == RECIPE["report"]


def test_tiny_fails_in_one_line_without_a_stand_in() -> None:
    config = {
        **RECIPE,
        "scale": "tiny",
        "benchmarks": {"enabled": {"x": {"kind": "mine", "root": "r"}}},
    }
    with pytest.raises(
        ConfigError, match=r"^config key benchmarks\.enabled\.x\.kind: no synthetic"
    ):
        scale_down(config)


def test_tiny_needs_a_run_to_mine_with() -> None:
    config = {**RECIPE, "scale": "tiny", "runs": {"helip": RECIPE["runs"]["helip"]}}
    with pytest.raises(ConfigError, match=r"^config key mining\.encoder: "):
        scale_down(config)


PAPER = {
    "runs": {"clip": {}, "helip": {}, "off": {"enabled": False}},
    "benchmarks": {"enabled": {"imagenet": {}, "coco": {}}},
}


def paper(rows: list[dict], columns: list[dict]) -> dict:
    return {**PAPER, "report": {"paper_table": {"title": "T", "rows": rows, "columns": columns}}}


def test_paper_table_that_fits_the_experiment_passes() -> None:
    rows = [{"label": "CLIP", "run": "clip"}, {"label": "Paper", "published": "M"}]
    columns = [
        {"benchmark": "coco", "metric": "IR@1", "label": "IR"},
        {"benchmark": "coco", "metric": "TR@1", "label": "TR"},
    ]
    check_paper_table(paper(rows, columns))
    check_paper_table(PAPER)  # no paper table: nothing to check


@pytest.mark.parametrize(
    ("rows", "columns", "message"),
    [
        (
            [{"label": "A", "run": "off"}],
            [],
            "config key report.paper_table.rows[0].run: 'off' is not an enabled run",
        ),
        (
            [{"label": "A"}],
            [
                {"benchmark": "coco", "metric": "x", "label": "c"},
                {"benchmark": "cifar", "metric": "x", "label": "d"},
            ],
            "config key report.paper_table.columns[1].benchmark: 'cifar' is not an enabled"
            " benchmark",
        ),
        (
            [{"label": "A", "run": "clip"}, {"label": "A", "run": "helip"}],
            [],
            "config key report.paper_table.rows[0].label: 'A' is used twice",
        ),
    ],
)
def test_paper_table_errors_name_the_entry(rows, columns, message) -> None:
    with pytest.raises(ConfigError) as error:
        check_paper_table(paper(rows, columns))
    assert str(error.value) == message
