from pathlib import Path

import pytest

from seedbench.errors import ConfigError
from seedbench.sweep.presets import load_catalog

ROOT = Path(__file__).resolve().parent.parent


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "machinable.yaml"
    path.write_text(text)
    return path


def test_project_catalogue_has_the_required_presets_and_the_methods_carry_table1_rates():
    from seedbench.registry import get_method

    catalog = load_catalog(ROOT / "machinable.yaml")
    for name in ("fc", "cnn", "digits", "mnist", "fmnist", "cifar10", "table1", "quick", "gpu", "ipu", "nostop"):
        assert name in catalog.presets
    assert catalog.preset("table1")["epochs"] == 100 and catalog.preset("table1")["batch_size"] == 32
    published = {
        ("fc", "mnist"): 0.125,
        ("fc", "fmnist"): 0.25,
        ("fc", "cifar10"): 0.0078125,
        ("cnn", "mnist"): 0.03125,
        ("cnn", "fmnist"): 0.0625,
        ("cnn", "cifar10"): 0.015625,
    }
    for (model, dataset), lr in published.items():
        assert get_method("sgd").learning_rate("table1", model, dataset) == lr
    assert get_method("nes").learning_rate("table1", "fc", "fmnist") == get_method("rbd").learning_rate("table1", "fc", "fmnist") == 0.5


def test_unknown_preset_suggests_the_closest(tmp_path):
    catalog = load_catalog(ROOT / "machinable.yaml")
    with pytest.raises(ConfigError, match=r"unknown preset ~tabel1 \(did you mean ~table1\?\)"):
        catalog.preset("tabel1")


def test_unknown_key_in_a_preset_is_a_load_error(tmp_path):
    path = _write(tmp_path, "presets:\n  cnn: {modle: cnn}\n")
    with pytest.raises(ConfigError, match="preset 'cnn' sets unknown key 'modle' \\(did you mean 'model'\\?\\)"):
        load_catalog(path)


def test_wrong_value_type_is_a_load_error(tmp_path):
    path = _write(tmp_path, "presets:\n  long: {epochs: many}\n")
    with pytest.raises(ConfigError, match="preset 'long' key 'epochs' = 'many' has the wrong type"):
        load_catalog(path)


def test_malformed_yaml_names_the_line(tmp_path):
    path = _write(tmp_path, "presets:\n  fc: {model: fc\n  cnn: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_catalog(path)


def test_learning_rates_in_the_catalogue_are_refused_with_where_they_moved(tmp_path):
    path = _write(tmp_path, "learning_rates:\n  default:\n    sgd: {'*': 0.1}\n")
    with pytest.raises(ConfigError, match="moved into each method's declaration"):
        load_catalog(path)


def test_learning_rate_fallbacks():
    from seedbench.config import TrialConfig
    from seedbench.methods.base import Method

    method = Method(
        "toy", TrialConfig, optimizer=lambda *a: None, learning_rates={"table1": {"fc-mnist": 0.5}, "default": {"fc-digits": 0.2, "*": 0.01}}
    )
    assert method.learning_rate("table1", "fc", "mnist") == 0.5
    assert method.learning_rate("table1", "fc", "digits") == 0.2  # not in table1 -> default
    assert method.learning_rate("default", "cnn", "cifar10") == 0.01  # the method's '*'
    assert method.learning_rate("nosuchtable", "cnn", "cifar10") == 0.01  # a table the method lacks -> its default
    bare = Method("bare", TrialConfig, optimizer=lambda *a: None)
    with pytest.raises(ConfigError, match="no learning rate for bare"):
        bare.learning_rate("default", "fc", "mnist")


def test_a_placement_preset_validates_against_placement_keys(tmp_path):
    path = _write(tmp_path, "presets:\n  big: {num_gpus: 0.5, resources: {IPU: 1}}\n  bad: {num_gpus: lots}\n")
    with pytest.raises(ConfigError, match="preset 'bad' key 'num_gpus'"):
        load_catalog(path)


def test_editing_the_file_changes_defaults(tmp_path):
    path = _write(tmp_path, "presets:\n  long: {epochs: 7}\n")
    assert load_catalog(path).preset("long") == {"epochs": 7}
    import os
    import time

    path.write_text("presets:\n  long: {epochs: 9}\n")
    os.utime(path, (time.time() + 5, time.time() + 5))
    assert load_catalog(path).preset("long") == {"epochs": 9}
