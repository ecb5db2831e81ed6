"""Bring your own method: examples/signsgd.py, copied outside the repository, through the CLI.

(Swept, reported and compared on both engines with the other examples in tests/test_method_api.py.)
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli, sweep_args

FAST = ["--epochs", "1", "--set", "limit_train=96", "--set", "val_size=48"]


@pytest.fixture
def plugin_copy(tmp_path: Path) -> Path:
    """The example plugin in a folder of its own, as a user who copied it would have it."""
    target = tmp_path / "my_methods" / "signsgd.py"
    target.parent.mkdir()
    shutil.copy(ROOT / "examples" / "signsgd.py", target)
    return target


def _rows(store: Path, plugin: Path) -> list[dict]:
    report = run_cli("report", "--store", str(store), "--plugin", str(plugin), "--format", "json", cwd=plugin.parent)
    assert report.returncode == 0, report.stderr
    return json.loads(report.stdout)


def test_a_plugin_in_a_sweep_file_is_found_relative_to_the_file(tmp_path: Path, plugin_copy: Path) -> None:
    spec = plugin_copy.parent / "sweep.yaml"
    spec.write_text(
        "plugins: [signsgd.py]\nmethods: [signsgd]\nmodels: [fc]\ndatasets: [digits]\nseeds: 0\n"
        "overrides: {epochs: 1, limit_train: 64, val_size: 32}\n"
    )
    result = run_cli("sweep", str(spec), "--store", str(tmp_path / "store"), "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "1 cells: trained 1" in result.stdout


@pytest.mark.parametrize(
    "source, fragment",
    [
        ("raise RuntimeError('boom')", "raised RuntimeError: boom"),
        ("import no_such_module_xyz", "import failed"),
        ("def broken(:\n", "SyntaxError"),
    ],
)
def test_a_broken_plugin_is_one_line(tmp_path: Path, source: str, fragment: str) -> None:
    plugin = tmp_path / "bad.py"
    plugin.write_text(source)
    result = run_cli(*sweep_args(tmp_path / "store", "--plugin", str(plugin)))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert fragment in result.stderr
    assert not (tmp_path / "store").exists()


def test_methods_command_lists_a_plugin_method(plugin_copy: Path) -> None:
    result = run_cli("methods", "--plugin", str(plugin_copy), "--format", "json")
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    assert "signsgd" in {m["name"] for m in listing["methods"]}
    assert {"pa_rewiring", "stabilized_strength"} <= {a["name"] for a in listing["aliases"]}


def test_plugin_registers_a_model_a_dataset_and_an_initializer(tmp_path: Path) -> None:
    """One file adds a model, an initializer and a dataset; a sweep uses all three."""
    plugin = tmp_path / "extras.py"
    plugin.write_text(
        "import numpy as np, torch\n"
        "from seedbench import register_model, register_initializer, register_dataset\n"
        "from seedbench.data.registry import DatasetSpec, RawSplits\n"
        "def tiny(in_shape, num_classes):\n"
        "    c, h, w = in_shape\n"
        "    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(c * h * w, num_classes))\n"
        "register_model('tiny', tiny)\n"
        "register_initializer('halfnormal', lambda t, generator=None: torch.nn.init.normal_(t, 0.0, 0.5, generator=generator))\n"
        "def load(data_dir):\n"
        "    rng = np.random.default_rng(0)\n"
        "    y = rng.integers(0, 3, 300)\n"
        "    x = (rng.random((300, 1, 6, 6)) * 40).astype(np.uint8)\n"
        "    x[np.arange(300), 0, y, :] = 255\n"
        "    return RawSplits(x[:240], y[:240], x[240:], y[240:])\n"
        "register_dataset(DatasetSpec(name='stripes', classes=3, shape=(1, 6, 6), load=load, val_size=40))\n"
    )
    store = tmp_path / "store"
    result = run_cli(
        "sweep",
        "--plugin",
        str(plugin),
        "--method",
        "sgd",
        "--model",
        "tiny",
        "--dataset",
        "stripes",
        "--seeds",
        "0",
        "--set",
        "init=halfnormal",
        "--epochs",
        "2",
        "--set",
        "lr=0.5",
        "--store",
        str(store),
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    (record,) = [json.loads(p.read_text()) for p in store.rglob("run.json")]
    assert record["status"] == "finished" and record["init_applied"] == "halfnormal"
    assert record["D"] == 6 * 6 * 3 + 3
