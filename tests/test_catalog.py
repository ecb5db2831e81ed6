from pathlib import Path

import pytest

from seedbench.sweep.presets import load_catalog
from seedbench.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "machinable.yaml"
    path.write_text(text)
    return path


def test_project_catalogue_has_the_required_presets_and_table1_rates():
    catalog = load_catalog(ROOT / "machinable.yaml")
    for name in ("fc", "cnn", "digits", "mnist", "fmnist", "cifar10", "table1"):
        assert name in catalog.presets
    assert catalog.preset("table1")["epochs"] == 100 and catalog.preset("table1")["batch_size"] == 32
    published = {"fc-mnist": 0.125, "fc-fmnist": 0.25, "fc-cifar10": 0.0078125, "cnn-mnist": 0.03125, "cnn-fmnist": 0.0625, "cnn-cifar10": 0.015625}
    for cell, lr in published.items():
        model, dataset = cell.split("-")
        assert catalog.learning_rate("table1", "sgd", model, dataset) == lr


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


def test_bad_learning_rate_value(tmp_path):
    path = _write(tmp_path, "learning_rates:\n  default:\n    sgd: {'*': -1}\n")
    with pytest.raises(ConfigError, match="must be a positive number"):
        load_catalog(path)


def test_learning_rate_fallbacks(tmp_path):
    path = _write(tmp_path, "learning_rates:\n  table1:\n    sgd: {fc-mnist: 0.5}\n  default:\n    sgd: {fc-digits: 0.2, '*': 0.01}\n")
    catalog = load_catalog(path)
    assert catalog.learning_rate("table1", "sgd", "fc", "mnist") == 0.5
    assert catalog.learning_rate("table1", "sgd", "fc", "digits") == 0.2  # not in table1 -> default
    assert catalog.learning_rate("default", "sgd", "cnn", "cifar10") == 0.01  # the method's '*'
    with pytest.raises(ConfigError, match="no learning rate for rbd"):
        catalog.learning_rate("default", "rbd", "fc", "mnist")


def test_editing_the_file_changes_defaults(tmp_path):
    path = _write(tmp_path, "presets:\n  long: {epochs: 7}\n")
    assert load_catalog(path).preset("long") == {"epochs": 7}
    import os
    import time

    path.write_text("presets:\n  long: {epochs: 9}\n")
    os.utime(path, (time.time() + 5, time.time() + 5))
    assert load_catalog(path).preset("long") == {"epochs": 9}
