"""workflow_scripts/evaluate.py: checkpoint in, CLIP_benchmark-style JSON out, one-line errors."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pytest
from evaluation_fixtures import write_json, write_noise_image

from clipflow.evaluation import evaluate
from clipflow.models import create_model, save_checkpoint

SCRIPT = Path(__file__).parents[2] / "workflow_scripts" / "evaluate.py"


def run_script(monkeypatch: pytest.MonkeyPatch, *args: str) -> None:
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), *args])
    runpy.run_path(str(SCRIPT), run_name="__main__")


def make_sugarcrepe(root: Path) -> Path:
    for i in range(3):
        write_noise_image(root / "val2017" / f"{i}.jpg", seed=i)
    records = {
        str(k): {
            "filename": f"{k % 3}.jpg",
            "caption": f"a red dog {k}",
            "negative_caption": "a cat",
        }
        for k in range(6)
    }
    write_json(root / "replace_obj.json", records)
    return root


def test_help_lists_benchmarks(monkeypatch, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        run_script(monkeypatch, "--help")
    assert exit_.value.code == 0
    assert "coco_retrieval" in capsys.readouterr().out


def test_checkpoint_is_scored_and_written(monkeypatch, tmp_path: Path) -> None:
    root = make_sugarcrepe(tmp_path / "sugarcrepe")
    bundle = create_model("clipflow-tiny-vit", seed=7)
    checkpoint = save_checkpoint({"state_dict": bundle.model.state_dict()}, tmp_path / "ckpt.pt")
    output = tmp_path / "out" / "sugarcrepe.json"
    run_script(
        monkeypatch,
        *("--benchmark", "sugarcrepe", "--data-root", str(root), "--model", "clipflow-tiny-vit"),
        *("--pretrained", str(checkpoint), "--output", str(output), "--batch-size", "4"),
        *("--option", "subsets=replace_obj", "--dataset-name", "sugar_crepe"),
    )
    result = json.loads(output.read_text())
    expected = evaluate(
        "sugarcrepe",
        bundle.model,
        bundle.preprocess_val,
        bundle.tokenizer,
        root,
        batch_size=4,
        subsets=["replace_obj"],
    )
    assert result == {
        "dataset": "sugar_crepe",
        "model": "clipflow-tiny-vit",
        "pretrained": str(checkpoint),
        "task": "image_caption_selection",
        "metrics": pytest.approx(dict(expected), abs=1e-6),
        "language": "en",
        "parts": ["replace_obj"],
    }


def test_embedding_cache_is_per_checkpoint(monkeypatch, tmp_path: Path) -> None:
    """Same result from the cache; another checkpoint gets its own files, not the first's."""
    root = make_sugarcrepe(tmp_path / "sugarcrepe")
    cache = tmp_path / "cache"
    results, files = [], []
    for name, seed in (("a", 1), ("a", 1), ("b", 2)):
        bundle = create_model("clipflow-tiny-vit", seed=seed)
        state = {"state_dict": bundle.model.state_dict()}
        checkpoint = save_checkpoint(state, tmp_path / f"{name}.pt")
        output = tmp_path / f"{name}-{len(results)}.json"
        run_script(
            monkeypatch,
            *("--benchmark", "sugarcrepe", "--data-root", str(root)),
            *("--model", "clipflow-tiny-vit", "--pretrained", str(checkpoint)),
            *("--output", str(output), "--option", f"embedding_cache={cache}"),
            *("--option", "subsets=replace_obj"),
        )
        results.append(json.loads(output.read_text())["metrics"])
        files.append(sorted(p.name for p in cache.glob("*.npy")))
    assert len(files[0]) >= 2  # images and captions
    assert files[1] == files[0], "the same checkpoint must read its cache, not write another"
    assert set(files[0]) < set(files[2]) and len(files[2]) == 2 * len(files[0])
    assert results[1] == results[0]
    assert results[2] != results[0]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ((), "replace_obj.json: ['1'].filename: missing"),
        (("--option", "splt=test"), "no option(s) ['splt']"),
        (("--pretrained", "absent.pt"), "pretrained checkpoint not found: absent.pt"),
    ],
)
def test_bad_input_is_one_line(monkeypatch, capsys, tmp_path: Path, extra, message) -> None:
    root = make_sugarcrepe(tmp_path)
    data = json.loads((root / "replace_obj.json").read_text())
    del data["1"]["filename"]
    write_json(root / "replace_obj.json", data)
    with pytest.raises(SystemExit) as exit_:
        run_script(
            monkeypatch,
            *(
                "--benchmark",
                "sugarcrepe",
                "--data-root",
                str(root),
                "--model",
                "clipflow-tiny-vit",
            ),
            *("--output", str(tmp_path / "out.json"), "--option", "subsets=replace_obj", *extra),
        )
    assert exit_.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("evaluate.py: error:") and message in err[-1]
    assert not (tmp_path / "out.json").exists()


def make_vg_relation(root: Path) -> Path:
    """ARO's VG-Relation: a one-line JSON list, boxes cropping 40x40 noise images."""
    for i in range(2):
        write_noise_image(root / "images" / f"{2410049 + i}.jpg", seed=10 + i)
    records = [
        {
            "image_id": str(2410049 + k % 2),
            "true_caption": f"the dog {k} is on the table",
            "false_caption": f"the table is on the dog {k}",
            "relation_info": {"object": "227262", "name": relation},
            "primary_object_id": "227260",
            "primary_object_name": f"dog {k}",
            "bbox_x": 2 * k,
            "bbox_y": k,
            "bbox_w": 30 - 2 * k,
            "bbox_h": 25,
            "relation_name": relation,
            "image_path": f"{2410049 + k % 2}.jpg",
        }
        for k, relation in enumerate(["on", "on", "wearing", "under", "wearing", "next to"])
    ]
    (root / "visual_genome_relation.json").write_text(json.dumps(records))
    return root


def test_aro_vg_relation_from_the_command_line(monkeypatch, tmp_path: Path) -> None:
    root = make_vg_relation(tmp_path / "aro")
    output = tmp_path / "out" / "aro_vg_relation.json"
    run_script(
        monkeypatch,
        *("--benchmark", "aro_vg_relation", "--data-root", str(root)),
        *("--model", "clipflow-tiny-vit", "--output", str(output), "--batch-size", "4"),
        *("--option", "exclude_symmetric=false"),
    )
    result = json.loads(output.read_text())
    bundle = create_model(
        "clipflow-tiny-vit", seed=0
    )  # what the script builds without --pretrained
    expected = evaluate(
        "aro_vg_relation",
        bundle.model,
        bundle.preprocess_val,
        bundle.tokenizer,
        root,
        batch_size=4,
        exclude_symmetric=False,
    )
    assert set(expected) == {"macro_accuracy", "micro_accuracy"}
    assert result == {
        "dataset": "aro_vg_relation",
        "model": "clipflow-tiny-vit",
        "pretrained": None,
        "task": "image_caption_selection",
        "metrics": pytest.approx(expected, abs=1e-6),
        "language": "en",
    }


def test_malformed_aro_file_is_one_line(monkeypatch, capsys, tmp_path: Path) -> None:
    root = make_vg_relation(tmp_path / "aro")
    path = root / "visual_genome_relation.json"
    records = json.loads(path.read_text())
    del records[0]["bbox_w"]
    path.write_text(json.dumps(records))
    with pytest.raises(SystemExit) as exit_:
        run_script(
            monkeypatch,
            *("--benchmark", "aro_vg_relation", "--data-root", str(root)),
            *("--model", "clipflow-tiny-vit", "--output", str(tmp_path / "out.json")),
        )
    assert exit_.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"evaluate.py: error: {path}: [0].bbox_w: missing"
    assert not (tmp_path / "out.json").exists()
