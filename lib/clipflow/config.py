"""Workflow config: validation with one-line errors that name the offending key, the
experiment a command line selects, and its `scale: tiny` version."""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jsonschema
import yaml


class ConfigError(ValueError):
    """A config value that does not fit ``config/schema.yaml``; the message names the key."""


def describe(error: jsonschema.ValidationError) -> str:
    path = [str(part) for part in error.absolute_path]
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return f"config key {'.'.join(path + extra[:1])}: unknown key"
    return f"config key {'.'.join(path) or '<top level>'}: {error.message}"


def check_config(config: dict[str, Any], schema_path: str | Path) -> None:
    """Raise :class:`ConfigError` for the most relevant schema violation, in one line; then
    check each run's ``loss_params`` against its loss (:func:`check_loss_params`)."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is not None:
        raise ConfigError(describe(error))
    check_loss_params(config, train_defaults(schema))


def train_defaults(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The defaults of the ``train`` settings that ``schema`` fills in."""
    settings = schema["properties"]["train"]["properties"]
    return {key: spec["default"] for key, spec in settings.items()}


def check_loss_params(config: Mapping[str, Any], defaults: Mapping[str, Any]) -> None:
    """Fail in one line, naming ``runs.<run>.loss_params[.<key>]``, when a run's loss would
    not build from its ``loss_params``: an unknown or missing parameter, or a value the loss
    rejects. The parameters the trainer fills from the run (``LossNeeds.run_parameters``) get
    placeholders here, so a config need not set them."""
    from clipflow.losses import LOSSES, build_loss, loss_parameters  # torch: only when checking

    train = {**defaults, **config.get("train", {})}
    for run, overrides in config.get("runs", {}).items():
        settings = {**train, **overrides}
        loss, params = settings["loss"], settings["loss_params"]
        where = f"config key {'runs.' + run if 'loss_params' in overrides else 'train'}.loss_params"
        accepted = [p.name for p in loss_parameters(loss)]
        for key in params:
            if key not in accepted:
                raise ConfigError(
                    f"{where}.{key}: not a parameter of loss {loss}; it takes {', '.join(accepted)}"
                )
        placeholders = dict.fromkeys(LOSSES.get(loss).needs.run_parameters, RUN_PLACEHOLDER)
        try:
            build_loss(loss, **{**placeholders, **params})
        except (TypeError, ValueError) as error:
            raise ConfigError(f"{where}: loss {loss} of run {run}: {error}") from None


# Stands in for the dataset size and the towers' width (LossNeeds.run_parameters) when a run's
# loss is built to check its parameters: small, so no head is large.
RUN_PLACEHOLDER = 8


def experiment_config(
    merged: dict[str, Any],
    command_line_files: Sequence[str | os.PathLike],
    command_line_config: Mapping[str, Any],
) -> dict[str, Any]:
    """The config a run of the workflow uses, given what snakemake built.

    Snakemake deep-merges every ``--configfile`` into the Snakefile's ``configfile:``
    (``config/config.yaml``), so a paper recipe would inherit the default experiment's runs and
    synthetic benchmarks. A command-line config file that sets ``experiment`` is therefore a
    whole experiment: it and the other command-line settings (``command_line_config``,
    snakemake's merge of every ``--configfile`` then ``--config``) replace the default, as
    ``--replace-workflow-config`` would. Files that set no ``experiment`` (paths, cluster
    overrides) still extend ``merged``, which is returned unchanged then.
    """
    for path in command_line_files:
        loaded = yaml.safe_load(Path(path).read_text()) or {}
        if isinstance(loaded, dict) and "experiment" in loaded:
            return copy.deepcopy(dict(command_line_config))
    return merged


# `scale: tiny` runs an experiment end to end on the embedded data in a few minutes on a CPU.
TINY_DATA = {
    "source": "synthetic",
    "synthetic": {
        "num_pairs": 128,
        "image_size": 64,
        "num_broken_urls": 0,
        "num_corrupt_images": 0,
    },
    "download": {"image_size": 64, "processes_count": 1, "thread_count": 8},
}
TINY_TRAIN = {
    "model": "clipflow-tiny-vit",
    "pretrained": None,  # a real checkpoint does not fit the tiny model; {run: ...} stays
    "epochs": 1,
    "batch_size": 32,
    "num_workers": 0,
    "precision": "fp32",  # amp needs CUDA
    "warmup_steps": 0,  # the recipes count theirs in full-scale steps: none would train here
}
TINY_BENCHMARK_IMAGES = 40
TINY_RESOURCES = {"default": {"mem_mb": 2000, "runtime": 20, "threads": 1, "gpus": 0}}

# The embedded synthetic benchmark (``clipflow.data.synthetic.make_benchmarks``) that stands in
# for a benchmark of each registered kind at `scale: tiny`: one of the same task, so the
# report's rows and columns stay those of the full-scale experiment.
_ZEROSHOT = {"kind": "imagefolder_zeroshot", "synthetic": "shapes_zeroshot"}
_RETRIEVAL = {
    "kind": "coco_retrieval",
    "synthetic": "retrieval",
    "options": {"annotation": "dataset_synthetic.json"},
}
# The synthetic SugarCrepe has four of the seven subsets (clipflow.data.synthetic).
_COMPOSITIONAL = {
    "kind": "sugarcrepe",
    "synthetic": "compositional",
    "options": {"subsets": ["replace_att", "swap_att", "replace_rel", "swap_obj"]},
}
TINY_STAND_INS: dict[str, dict[str, Any]] = {
    "imagefolder_zeroshot": _ZEROSHOT,
    "cifar10": _ZEROSHOT,
    "cifar100": _ZEROSHOT,
    "coco_retrieval": _RETRIEVAL,
    "flickr30k_retrieval": _RETRIEVAL,
    **dict.fromkeys(
        (
            "sugarcrepe",
            "aro_vg_relation",
            "aro_vg_attribution",
            "aro_coco_order",
            "aro_flickr_order",
            "valse",
            "vl_checklist",
        ),
        _COMPOSITIONAL,
    ),
}


def scale_down(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` itself unless it sets ``scale: tiny``; then a copy that runs on a CPU in minutes.

    Only what ties the experiment to real data and hardware changes: the data become the
    embedded synthetic set (``TINY_DATA``), every run trains ``TINY_TRAIN`` (tiny model, random
    init, one fp32 epoch of small batches without warm-up), a benchmark read from a ``root``
    becomes the synthetic benchmark of its task (``TINY_STAND_INS``) under the same name and
    ``published`` reference, the mining encoder becomes a run when it was a checkpoint, the
    index exact (an IVF index cannot be trained on 128 pairs), negatives skip the local
    fill-mask model, and resources are one CPU. Runs, losses, samplers, negatives, mining and
    the report stay the recipe's. Outputs go to ``results/<experiment>_tiny/`` so they never mix
    with the full-scale ones.
    """
    if config.get("scale", "full") != "tiny":
        return config
    tiny = copy.deepcopy(config)
    tiny["experiment"] = f"{config.get('experiment', 'default')}_tiny"
    tiny["data"] = copy.deepcopy(TINY_DATA)
    tiny["train"] = {**config.get("train", {}), **TINY_TRAIN}
    for settings in tiny.get("runs", {}).values():
        for key in TINY_TRAIN:
            # a run that starts from another run of the experiment (stage 2) still does
            if not (key == "pretrained" and isinstance(settings.get(key), dict)):
                settings.pop(key, None)
    benchmarks = tiny.setdefault("benchmarks", {})
    benchmarks["num_images"] = TINY_BENCHMARK_IMAGES
    for name, settings in benchmarks.get("enabled", {}).items():
        if "root" in settings:
            stand_in = TINY_STAND_INS.get(settings["kind"])
            if stand_in is None:
                known = ", ".join(sorted(TINY_STAND_INS))
                raise ConfigError(
                    f"config key benchmarks.enabled.{name}.kind: no synthetic stand-in for "
                    f"{settings['kind']!r} at scale tiny; known: {known}"
                )
            published = {"published": settings["published"]} if "published" in settings else {}
            benchmarks["enabled"][name] = {**copy.deepcopy(stand_in), **published}
    mining = tiny.setdefault("mining", {})
    if "checkpoint" in mining.get("encoder", {}):
        mining["encoder"] = {"run": _first_plain_run(tiny.get("runs", {}))}
    mining["index"] = "flat"
    mining["index_options"] = {}
    negatives = tiny.setdefault("negatives", {})
    negatives["n_process"] = 1
    negatives["fill_mask"] = {**negatives.get("fill_mask", {}), "model": None}
    tiny["resources"] = copy.deepcopy(TINY_RESOURCES)
    tiny.pop("train_launcher", None)  # submitit would send the tiny runs to a cluster
    return tiny


def _first_plain_run(runs: Mapping[str, Mapping[str, Any]]) -> str:
    """The first enabled run that does not itself need mined hard pairs: the tiny mining encoder."""
    for name, settings in runs.items():
        if settings.get("enabled", True) and settings.get("sampler") != "hard_pairs":
            return name
    raise ConfigError("config key mining.encoder: scale tiny needs a run without hard_pairs")


def check_paper_table(config: Mapping[str, Any]) -> None:
    """Fail in one line when ``report.paper_table`` names a run that is not enabled, a benchmark
    that is not, or a row or column label twice (the labels key the written tables)."""
    spec = config.get("report", {}).get("paper_table")
    if spec is None:
        return
    runs = {name for name, run in config["runs"].items() if run.get("enabled", True)}
    benchmarks = set(config["benchmarks"].get("enabled", {}))
    where = "config key report.paper_table"
    for part, key, known, what in (
        ("rows", "run", runs, "an enabled run"),
        ("columns", "benchmark", benchmarks, "an enabled benchmark"),
    ):
        labels = [entry["label"] for entry in spec[part]]
        for index, entry in enumerate(spec[part]):
            if key in entry and entry[key] not in known:
                raise ConfigError(f"{where}.{part}[{index}].{key}: {entry[key]!r} is not {what}")
            if labels.count(entry["label"]) > 1:
                raise ConfigError(
                    f"{where}.{part}[{index}].label: {entry['label']!r} is used twice"
                )
