"""Item 7: a name that would put outputs outside ``results/<experiment>/`` fails in one line."""

import copy

import pytest
import yaml

from clipflow.config import ConfigError, check_config
from tests.conftest import REPO

SCHEMA = REPO / "config" / "schema.yaml"
DEFAULT = yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def _rename_run(config, name):
    config["runs"] = {name: {"loss": "clip"}}


def _rename_benchmark(config, name):
    enabled = config["benchmarks"]["enabled"]
    config["benchmarks"]["enabled"] = {name: next(iter(enabled.values()))}


@pytest.mark.parametrize("name", [".", "..", ".hidden", "../elsewhere", "a/b"])
@pytest.mark.parametrize(
    ("rename", "key"),
    [
        (lambda c, n: c.update(experiment=n), "config key experiment"),
        (_rename_run, "config key runs"),
        (_rename_benchmark, "config key benchmarks.enabled"),
    ],
)
def test_dot_and_path_names_are_refused(rename, key, name):
    config = copy.deepcopy(DEFAULT)
    rename(config, name)
    with pytest.raises(ConfigError) as error:
        check_config(config, SCHEMA)
    message = str(error.value)
    assert message.startswith(key) and "does not match" in message and "\n" not in message


@pytest.mark.parametrize("name", ["default", "helip_cc3m", "v1.2", "a..b"])
def test_ordinary_experiment_names_still_pass(name):
    config = copy.deepcopy(DEFAULT)
    config["experiment"] = name
    check_config(config, SCHEMA)
