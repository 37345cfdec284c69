"""The config schema: the default validates, and bad values fail in one line naming the key."""

import copy
import dataclasses

import pytest
import yaml

from clipflow.config import ConfigError, check_config, train_defaults
from clipflow.evaluation import BENCHMARKS
from clipflow.losses import LOSSES
from clipflow.sampling import SAMPLERS
from clipflow.training import TrainConfig
from tests.conftest import REPO

SCHEMA = REPO / "config" / "schema.yaml"


@pytest.fixture
def default_config():
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def test_default_config_is_valid(default_config):
    check_config(default_config, SCHEMA)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda c: c["train"].update(epochs="six"),
            "config key train.epochs: 'six' is not of type 'integer'",
        ),
        (lambda c: c.update(trian={}), "config key trian: unknown key"),
        (lambda c: c["runs"]["clip"].update(los="clip"), "config key runs.clip.los: unknown key"),
        (lambda c: c["mining"].update(index="kd"), "config key mining.index: 'kd' is not one of"),
    ],
)
def test_bad_config_fails_with_one_line_naming_the_key(default_config, change, message):
    config = copy.deepcopy(default_config)
    change(config)
    with pytest.raises(ConfigError) as error:
        check_config(config, SCHEMA)
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def _schema() -> dict:
    return yaml.safe_load(SCHEMA.read_text())


def test_schema_train_defaults_are_the_trainers():
    trainer = dataclasses.asdict(TrainConfig())
    for where_it_runs in ("threads", "device"):  # the train rule sets them per job
        del trainer[where_it_runs]
    assert train_defaults(_schema()) == trainer


@pytest.mark.parametrize(
    ("path", "registry"),
    [
        (("$defs", "train_settings", "properties", "loss"), LOSSES),
        (("$defs", "train_settings", "properties", "sampler"), SAMPLERS),
        (
            (
                "properties",
                "benchmarks",
                "properties",
                "enabled",
                "additionalProperties",
                "properties",
                "kind",
            ),
            BENCHMARKS,
        ),
    ],
)
def test_schema_enums_are_the_registries(path, registry):
    spec = _schema()
    for key in path:
        spec = spec[key]
    assert spec["enum"] == registry.names()


@pytest.mark.parametrize(
    ("run", "message"),
    [
        (
            {"loss": "clip", "loss_params": {"tau": 0.1}},
            "config key runs.probe.loss_params.tau: not a parameter of loss clip; "
            "it takes label_smoothing",
        ),
        (
            {"loss": "ce_clip", "loss_params": {"imc_form": "paper"}},
            "config key runs.probe.loss_params: loss ce_clip of run probe: imc_form must be one "
            "of ['batch', 'caption', 'released'], got 'paper'",
        ),
        (
            {"loss": "swalip", "loss_params": {"num_augs": 0}},
            "config key runs.probe.loss_params: loss swalip of run probe: swalip compares "
            "augmented views: num_augs must be >= 1, got 0",
        ),
    ],
)
def test_loss_params_fail_when_the_config_is_checked(default_config, run, message):
    config = copy.deepcopy(default_config)
    config["runs"]["probe"] = run
    with pytest.raises(ConfigError) as error:
        check_config(config, SCHEMA)
    assert str(error.value) == message


def test_loss_params_from_train_are_named_there(default_config):
    config = copy.deepcopy(default_config)
    config["train"]["loss_params"] = {"margin": 1.0}
    with pytest.raises(ConfigError, match=r"^config key train\.loss_params\.margin: not a param"):
        check_config(config, SCHEMA)


def test_parameters_the_trainer_fills_need_no_config(default_config):
    config = copy.deepcopy(default_config)
    config["runs"] = {"sogclr": {"loss": "sogclr"}, "barlip": {"loss": "barlip"}}
    check_config(config, SCHEMA)  # num_samples and embed_dim come from the run
