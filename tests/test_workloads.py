"""Workloads - a dataset and a model - are plugins like methods, and a model that cannot take a dataset's
inputs (or give its classes) is refused on the driver: one line, exit 2, nothing created or stored.

The CLI cases run a plugin written here, outside the repository, as a user would: a table of 13 features
stored as (N, 1, 1, 13) uint8 samples in a .npz file under --data-dir, and a two-layer MLP for it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from seedbench import registry
from seedbench.data import registry as data_registry
from seedbench.data.builtin import BUILTINS
from seedbench.data.registry import DatasetSpec, RawSplits, register_dataset
from seedbench.errors import ConfigError
from seedbench.models.builtin import MODELS
from seedbench.models.spec import ModelSpec
from seedbench.sweep import fit
from tests.conftest import ROOT, run_cli
from tests.source_scan import named_constants

TABULAR_PLUGIN = '''
"""A table of 13 features (each sample a 1x1x13 "image") and a two-layer MLP for it."""

from pathlib import Path

import numpy as np

from seedbench import register_dataset, register_model
from seedbench.data.registry import DatasetSpec, RawSplits, data_dirs

KEYS = ("train_images", "train_labels", "test_images", "test_labels")


def locate(data_dir):
    for base in data_dirs(data_dir):
        if (base / "tabular.npz").is_file():
            return base / "tabular.npz"
    return None


def load(path: Path) -> RawSplits:
    with np.load(path, allow_pickle=False) as arrays:
        parts = [arrays[k] for k in ("x_train", "y_train", "x_test", "y_test")]
    return RawSplits(*parts, {key: str(path) for key in KEYS})


register_dataset(DatasetSpec(name="tabular", classes=3, shape=(1, 1, 13), load=load, locate=locate, val_size=30,
                             how_to_get="write tabular.npz into --data-dir", description="13 features, 3 classes"))


def mlp(in_shape, num_classes):
    import torch

    c, h, w = in_shape
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(c * h * w, 32), torch.nn.ReLU(), torch.nn.Linear(32, num_classes))


def small_conv(in_shape, num_classes):  # declares nothing about its inputs: the driver builds it on meta to check
    import torch

    return torch.nn.Sequential(torch.nn.Conv2d(in_shape[0], 8, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                               torch.nn.Flatten(), torch.nn.Linear(8, num_classes))


register_model("mlp2", mlp, description="two-layer MLP")
register_model("small_conv", small_conv)
'''
MLP_PARAMETERS = 13 * 32 + 32 + 32 * 3 + 3
CLEAN_ENV = {"SEEDBENCH_DATA": "", "SEEDBENCH_CATALOG": "", "MACHINABLE_INDEX": "", "RAY_ADDRESS": ""}


@pytest.fixture
def user_dir(tmp_path: Path) -> Path:
    """A user's folder outside the repository: the plugin and data/tabular.npz."""
    (tmp_path / "tabular.py").write_text(TABULAR_PLUGIN)
    rng = np.random.default_rng(0)

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.integers(0, 3, n)
        samples = rng.integers(0, 60, (n, 1, 1, 13)).astype(np.uint8)
        samples[np.arange(n), 0, 0, labels] = 255  # the class is readable from one feature
        return samples, labels

    (x_train, y_train), (x_test, y_test) = split(150), split(60)
    (tmp_path / "data").mkdir()
    np.savez(tmp_path / "data" / "tabular.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return tmp_path


def tabular_sweep(user_dir: Path, model: str, *extra: str) -> list[str]:
    return [
        "sweep",
        "--plugin",
        str(user_dir / "tabular.py"),
        "--method",
        "sgd",
        "--model",
        model,
        "--dataset",
        "tabular",
        "--seeds",
        "0-1",
        "--data-dir",
        str(user_dir / "data"),
        "--store",
        str(user_dir / "store"),
        "--epochs",
        "2",
        "--set",
        "lr=0.1",
        "--quiet",
        *extra,
    ]


def snapshot(root: Path) -> dict[str, str | None]:
    """Every folder and every file's sha256 under `root`."""
    out: dict[str, str | None] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        out[dirpath + "/"] = None
        for name in filenames:
            out[os.path.join(dirpath, name)] = hashlib.sha256(Path(dirpath, name).read_bytes()).hexdigest()
    return out


def refused_in_one_line(result: subprocess.CompletedProcess) -> str:
    everything = result.stdout + result.stderr
    assert result.returncode == 2, f"exit {result.returncode}\n{everything}"
    assert "Traceback" not in everything, everything
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


# -- through the command line ---------------------------------------------------------------------------


def test_a_plugin_dataset_and_model_train_on_the_local_engine(user_dir: Path) -> None:
    result = run_cli(*tabular_sweep(user_dir, "mlp2"), cwd=user_dir, env=CLEAN_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 cells: trained 2" in result.stdout
    records = [json.loads(p.read_text()) for p in (user_dir / "store").rglob("run.json")]
    assert [r["status"] for r in records] == ["finished", "finished"]
    assert {r["config"]["model"] for r in records} == {"mlp2"} and {r["config"]["dataset"] for r in records} == {"tabular"}
    assert {r["D"] for r in records} == {MLP_PARAMETERS}
    assert all(r["test_acc"] is not None for r in records)


def test_a_plugin_workload_trains_on_the_ray_engine(user_dir: Path, ray_cluster) -> None:
    """A worker finds the plugin's data through the cell's --data-dir and builds the plugin's model."""
    result = run_cli(*tabular_sweep(user_dir, "mlp2", "--seeds", "0", "--ray-address", ray_cluster.address), cwd=user_dir, env=CLEAN_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 cells: trained 1" in result.stdout and "ray engine" in result.stdout
    (record,) = [json.loads(p.read_text()) for p in (user_dir / "store").rglob("run.json")]
    assert record["status"] == "finished" and record["D"] == MLP_PARAMETERS


@pytest.mark.parametrize(
    "model, extra, fragments",
    [
        # declared facts: the cnn says it needs 18x18, nothing is built and torch is not imported
        ("cnn", (), ("model cnn does not fit dataset tabular (input 1x1x13)", "at least 18x18", "pick another model or set image_size=18")),
        ("cnn", ("--dry-run",), ("model cnn does not fit dataset tabular (input 1x1x13)", "set image_size=18")),
        # a plugin model that declares nothing: built on the meta device, its forward pass fails
        ("small_conv", (), ("model small_conv does not fit dataset tabular (input 1x1x13)", "Kernel size can't be greater", "set image_size=8")),
    ],
)
def test_a_model_that_does_not_fit_is_refused_before_anything_exists(
    user_dir: Path, model: str, extra: tuple[str, ...], fragments: tuple[str, ...]
) -> None:
    before = snapshot(user_dir)
    line = refused_in_one_line(run_cli(*tabular_sweep(user_dir, model, *extra), cwd=user_dir, env=CLEAN_ENV))
    assert line.startswith("error: ")
    for fragment in fragments:
        assert fragment in line, line
    assert not (user_dir / "store").exists()
    assert snapshot(user_dir) == before


def test_the_suggested_image_size_makes_the_grid_fit(user_dir: Path) -> None:
    """The fix the refusal names works: with image_size=18 the cnn trains on the (resized) table."""
    result = run_cli(*tabular_sweep(user_dir, "cnn", "--set", "image_size=18", "--seeds", "0"), cwd=user_dir, env=CLEAN_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    (record,) = [json.loads(p.read_text()) for p in (user_dir / "store").rglob("run.json")]
    assert record["status"] == "finished"


def test_methods_and_datasets_list_a_plugin_workload_and_its_declared_facts(user_dir: Path) -> None:
    result = run_cli("methods", "--plugin", str(user_dir / "tabular.py"), "--format", "json", cwd=user_dir)
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    models = {m["name"]: m for m in listing["models"]}
    assert models["mlp2"]["description"] == "two-layer MLP" and models["mlp2"]["min_side"] is None
    assert (models["cnn"]["min_side"], models["cnn"]["frameworks"]) == (18, ["torch", "tensorflow"])
    assert "tabular" in listing["datasets"]
    datasets = run_cli("datasets", "--plugin", str(user_dir / "tabular.py"), "--data-dir", str(user_dir / "data"), "--format", "json", cwd=user_dir)
    assert datasets.returncode == 0, datasets.stderr
    (row,) = [r for r in json.loads(datasets.stdout) if r["dataset"] == "tabular"]
    assert (row["status"], row["shape"], row["classes"], row["description"]) == ("available", "1x1x13", 3, "13 features, 3 classes")


def test_planning_built_in_models_stays_torch_free() -> None:
    """Declared facts decide the built-ins: checking them against every built-in dataset imports no torch."""
    code = (
        "import sys\n"
        "from seedbench.sweep.fit import fit_refusal\n"
        "verdicts = [fit_refusal(m, d, s) for m in ('fc', 'cnn', 'alexnet', 'resnet18') for d in ('digits', 'cifar10') for s in (None, 64)]\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print(sum(v is None for v in verdicts), len(verdicts))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["14", "16"]  # alexnet takes neither 28x28 nor 32x32


# -- the check itself, in process --------------------------------------------------------------------------


@pytest.fixture
def registries() -> Iterator[None]:
    """Models and datasets a test registers are gone afterwards (the registries are process-wide)."""
    registry.model_names(), data_registry.dataset_names()  # built-ins in
    models, datasets = dict(registry._MODELS), dict(data_registry._DATASETS)
    yield
    registry._MODELS.clear()
    registry._MODELS.update(models)
    data_registry._DATASETS.clear()
    data_registry._DATASETS.update(datasets)
    fit._VERDICTS.clear()


def _table(classes: int = 3, shape: tuple[int, int, int] = (1, 1, 13)) -> DatasetSpec:
    def load(location: Path) -> RawSplits:
        x = np.zeros((40, *shape), np.uint8)
        y = np.arange(40) % classes
        return RawSplits(x, y, x[:10], y[:10])

    return register_dataset(DatasetSpec(name=f"t{classes}_{'x'.join(map(str, shape))}", classes=classes, shape=shape, load=load, val_size=5))


def _linear(in_shape, num_classes):
    import torch

    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(int(np.prod(in_shape)), num_classes))


def _seven_outputs(in_shape, num_classes):
    import torch

    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(int(np.prod(in_shape)), 7))


def _tuple_out(in_shape, num_classes):
    import torch

    class Both(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.head = torch.nn.Linear(int(np.prod(in_shape)), num_classes)

        def forward(self, x):
            logits = self.head(x.flatten(1))
            return logits, logits

    return Both()


def _needs_a_value(in_shape, num_classes):
    """Reads a number out of a tensor while it is built: impossible on the meta device, fine on a CPU."""
    import torch

    width = int(torch.ones(1).sum().item()) * int(np.prod(in_shape))
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(width, num_classes))


@pytest.mark.parametrize(
    "spec, fragments",
    [
        (ModelSpec("seven", _seven_outputs), ("returns shape 2x7 for a batch of 2, not 2x3", "pick another model")),
        (ModelSpec("pair", _tuple_out), ("returns a tuple, not a tensor of logits", "pick another model")),
        (ModelSpec("rgb_only", _linear, channels=3), ("takes 3-channel inputs", "pick another model")),
        (ModelSpec("imagenet_head", _linear, classes=1000), ("fixed head of 1000 classes, the dataset has 3", "pick another model")),
        (ModelSpec("big_input", _linear, min_side=40), ("at least 40x40", "set image_size=40")),
    ],
)
def test_what_does_not_fit_is_named_with_its_fix(registries: None, spec: ModelSpec, fragments: tuple[str, ...]) -> None:
    registry.register_model(spec)
    data = _table()
    refusal = fit.fit_refusal(spec.name, data.name)
    assert refusal is not None and refusal.startswith(f"model {spec.name} does not fit dataset {data.name} (input 1x1x13): ")
    for fragment in fragments:
        assert fragment in refusal, refusal


def test_what_fits_passes(registries: None) -> None:
    registry.register_model(ModelSpec("linear", _linear))
    registry.register_model(ModelSpec("valued", _needs_a_value))  # fails on meta, so it is retried on the CPU
    registry.register_model(ModelSpec("rgb_only", _linear, channels=3))
    assert fit.fit_refusal("linear", _table().name) is None
    assert fit.fit_refusal("valued", _table().name) is None
    assert fit.fit_refusal("rgb_only", "cifar10") is None
    assert "drop grayscale=true" in fit.fit_refusal("rgb_only", "cifar10", grayscale=True)  # grayscale feeds it 1 channel
    registry.register_model(ModelSpec("gray_only", _linear, channels=1))
    assert "set grayscale=true" in fit.fit_refusal("gray_only", "cifar10")


def test_the_check_runs_once_per_group_not_per_cell(registries: None) -> None:
    from seedbench.sweep.api import Sweep
    from seedbench.sweep.plan import resolve_grid

    registry.register_model(ModelSpec("linear", _linear))
    fit._VERDICTS.clear()
    resolve_grid(Sweep("sgd", ["linear", "fc"], "digits", seeds=range(500), overrides={"lr": 0.1}).cells())
    assert len(fit._VERDICTS) == 2
    with pytest.raises(ConfigError, match="model cnn does not fit dataset digits \\(input 1x8x8\\)"):
        resolve_grid(Sweep("sgd", ["fc", "cnn"], "digits", seeds=range(500), overrides={"image_size": 8}).cells())


def test_input_shape_is_what_the_transforms_feed() -> None:
    """DatasetSpec.input_shape (no data) agrees with what resize_dataset really produces."""
    import torch

    from seedbench.data.datasets import Dataset
    from seedbench.data.transforms import resize_dataset

    for shape in ((3, 32, 32), (1, 28, 28), (1, 1, 13)):
        spec = DatasetSpec(name="probe", classes=2, shape=shape, load=lambda location: None, val_size=0)
        x, y = torch.zeros(2, *shape), torch.zeros(2, dtype=torch.int64)
        data = Dataset("probe", x, y, x, y, x, y, 2, "memory")
        for size in (None, 8, 18):
            for gray in (False, True):
                assert resize_dataset(data, size, gray).in_shape == spec.input_shape(size, gray)


# -- the built-ins' declarations are true ------------------------------------------------------------------


@pytest.mark.parametrize("spec", MODELS, ids=lambda s: s.name)
def test_a_built_in_model_takes_exactly_the_inputs_it_declares(spec: ModelSpec) -> None:
    """At min_side (square and oblong, 1 and 3 channels) the model runs on meta and gives (N, classes); one below it does not."""
    side = spec.min_side
    assert side is not None, f"{spec.name} should declare min_side so planning it stays torch-free"
    for shape in ((1, side, side), (3, side, side), (1, side, side + 5), (3, side + 5, side)):
        assert fit.forward_failure(spec, shape, 10) is None, (spec.name, shape)
    if side > 1:
        for shape in ((3, side - 1, side - 1), (1, side - 1, side + 5), (1, side + 5, side - 1)):
            assert fit.forward_failure(spec, shape, 10) is not None, (spec.name, shape)


def test_smallest_side_finds_what_the_zoo_measures() -> None:
    """The probe behind an undeclared model's suggestion agrees with the declared figures."""
    for name in ("cnn", "squeezenet"):
        spec = registry.get_model(name)
        undeclared = ModelSpec(name, spec.build)
        assert fit.smallest_side(undeclared, 1, 10) == spec.min_side


def test_a_model_name_registered_twice_is_refused_unless_replaced(registries: None) -> None:
    registry.register_model("linear", _linear)
    registry.register_model("linear", _linear)  # the same plugin imported twice: the same spec
    with pytest.raises(ConfigError, match="registered twice"):
        registry.register_model("linear", _seven_outputs)
    with pytest.raises(ConfigError, match="registered twice"):
        registry.register_model("fc", _linear)
    registry.register_model("linear", _seven_outputs, replace=True)
    assert registry.get_model("linear").build is _seven_outputs


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"min_side": 0}, "min_side=0"),
        ({"channels": "3"}, "channels='3'"),
        ({"classes": 1}, "classes=1"),
        ({"tensorflow": "no_colon"}, "tensorflow"),
        ({"build": 5}, "build"),
    ],
)
def test_a_malformed_declaration_is_refused_when_registered(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        ModelSpec(**{"name": "bad", "build": _linear, **kwargs})


# -- no built-in workload is named outside its declaration ----------------------------------------------------

NAMES = {m.name for m in MODELS} | {d.name for d in BUILTINS}
OWN = ("seedbench/models/", "seedbench/data/")
# Names that stay outside the declarations on purpose, each with its reason.
ALLOWED = {
    "seedbench/config.py": "TrialConfig's defaults: a config that names no model or dataset",
    "seedbench/sweep/api.py": "Sweep()'s default grid",
    "seedbench/sweep/tune.py": "Tune()'s default grid, the same as Sweep()'s",
    "seedbench/analysis/tables.py": "how the paper spells dataset names in Table-1 row labels (reports work without plugins)",
    "seedbench/analysis/api.py": "'base', the arm label of a study's reference arm, not the model",
}


def _named(path: Path) -> list[tuple[int, str]]:
    return named_constants(path, NAMES)


def test_no_built_in_model_or_dataset_is_named_outside_its_declaration() -> None:
    files = [p for p in sorted((ROOT / "seedbench").rglob("*.py")) if not str(p.relative_to(ROOT)).startswith(OWN)]
    scanned = {str(p.relative_to(ROOT)) for p in files}
    assert {"seedbench/sweep/plan.py", "seedbench/train/pack_rules.py", "seedbench/train/tf_models.py", "seedbench/train/tf_runner.py"} <= scanned
    found = {name: hits for p in files if (name := str(p.relative_to(ROOT))) not in ALLOWED and (hits := _named(p))}
    assert found == {}, f"built-in model or dataset names hard-coded outside their declarations: {found}"


def test_the_name_scan_can_fail(tmp_path: Path) -> None:
    planted = tmp_path / "planted.py"
    planted.write_text('"""Mentions cnn in prose."""\nif model == "cnn" or dataset == "cifar10":\n    pass\n')
    assert _named(planted) == [(2, "cnn"), (2, "cifar10")]
