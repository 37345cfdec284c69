"""The config schema: the default validates, and bad values fail in one line naming the key."""

import copy

import pytest
import yaml

from clipflow.config import ConfigError, check_config
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
