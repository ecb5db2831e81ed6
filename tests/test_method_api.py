"""A method can own any part of training: the examples/ plugins, in the library and through the CLI on both engines.

Library tests load each example from its file and train it with seedbench.train.loop.train, checking
what its hook must change (and, against a plain run, that nothing else changes). The CLI tests copy
the examples outside the repository, as a user would, and sweep, report, compare and render them.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
from pathlib import Path

import pytest
import torch

from seedbench.registry import get_method
from seedbench.train.loop import DivergenceRules, MethodParts, TrainSettings, train
from seedbench.train.trial import build_initialised_model, method_parts
from tests.conftest import ROOT, run_cli, sweep_args
from tests.test_report_html import _Images, chromium

EXAMPLES = ("sam", "cosine", "smoothing", "mixup", "phases", "signsgd")
METHOD_OF = {"sam": "sam", "cosine": "cosine", "smoothing": "smoothing", "mixup": "mixup", "phases": "probe_then_tune", "signsgd": "signsgd"}
FAST = ["--epochs", "2", "--set", "limit_train=96", "--set", "val_size=48"]


def _load_example(name: str):
    """Import examples/<name>.py as a plugin would be imported (it registers its method)."""
    from seedbench.registry import load_plugins

    load_plugins([str(ROOT / "examples" / f"{name}.py")])
    return get_method(METHOD_OF[name])


@pytest.fixture(scope="module")
def digits():
    from seedbench.data import load_dataset

    return load_dataset("digits", None, 200, 320)


def _train(method, digits, tmp_path: Path, epochs: int = 2, **config) -> tuple[dict, list[dict], torch.nn.Module]:
    """One cell of `method`, built as run_trial builds it, trained by the shared loop."""
    cfg = method.resolve({"model": "fc", "dataset": "digits", "epochs": epochs, **config})
    model, _ = build_initialised_model(cfg, digits.in_shape, digits.num_classes, init_seed=7, method=method)
    optimizer = method.optimizer(model.parameters(), cfg.lr, cfg, 11) if method.optimizer else None
    parts = method_parts(method, cfg, optimizer, len(digits.x_train) // cfg.batch_size, 11)
    path = tmp_path / f"{method.name}-{len(list(tmp_path.iterdir()))}.jsonl"
    settings = TrainSettings(epochs=epochs, batch_size=32, data_seed=3, augment_seed=4, divergence=DivergenceRules(mode="none"), metrics_path=path)
    result = train(model, optimizer, digits, settings, parts)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return result, rows, model


def _linear(data) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(math.prod(data.in_shape), data.num_classes))


# ---- the closure contract -------------------------------------------------------------------------------


class _Counting(torch.optim.SGD):
    """SGD that evaluates the closure `calls` times per step and keeps the gradient each call left."""

    def __init__(self, params, lr: float, calls: int):
        super().__init__(params, lr=lr)
        self.calls, self.grads = calls, []

    @torch.no_grad()
    def step(self, closure=None):
        for _ in range(self.calls):
            with torch.enable_grad():
                closure()
            self.grads.append([p.grad.clone() for g in self.param_groups for p in g["params"]])
        return super().step()


def test_every_optimizer_gets_a_closure_that_zeroes_the_grads_each_call(digits) -> None:
    model = _linear(digits)
    opt = _Counting(model.parameters(), lr=0.0 + 1e-9, calls=3)
    settings = TrainSettings(epochs=1, batch_size=32, data_seed=0, augment_seed=0, divergence=DivergenceRules(mode="none"))
    result = train(model, opt, digits, settings)
    steps = len(digits.x_train) // 32
    assert result["updates"] == steps and len(opt.grads) == 3 * steps
    # the same batch every call and the grads zeroed before each: three identical gradients, not 1x, 2x, 3x
    for a, b in zip(opt.grads[0], opt.grads[2]):
        assert torch.equal(a, b)


def test_an_optimizer_that_ignores_the_closure_is_told_so(digits) -> None:
    class Lazy(torch.optim.SGD):
        def step(self, closure=None):
            return super().step()

    model = _linear(digits)
    settings = TrainSettings(epochs=1, batch_size=32, data_seed=0, augment_seed=0)
    with pytest.raises(RuntimeError, match="without calling the closure"):
        train(model, Lazy(model.parameters(), lr=0.1), digits, settings)


def test_sam_evaluates_twice_per_step_and_differs_from_sgd(digits, tmp_path: Path) -> None:
    sam = _load_example("sam")
    result, rows, _ = _train(sam, digits, tmp_path, lr=0.05)
    assert result["status"] == "finished" and math.isfinite(result["train_loss"])
    # SAM with a tiny rho is SGD up to O(rho): the curves agree closely but not exactly
    near_sgd, _, _ = _train(sam, digits, tmp_path, lr=0.05, rho=1e-9)
    sgd_result, _, _ = _train(get_method("sgd"), digits, tmp_path, lr=0.05)
    assert near_sgd["val_loss"] == pytest.approx(sgd_result["val_loss"], rel=1e-5)
    assert result["val_loss"] != pytest.approx(sgd_result["val_loss"], rel=1e-5)


# ---- schedule, loss, own step, own epoch, initializer ---------------------------------------------------


def test_cosine_logs_the_lr_of_its_warmup_cosine_schedule(digits, tmp_path: Path) -> None:
    cosine = _load_example("cosine")
    epochs, lr = 4, 0.1
    _, rows, _ = _train(cosine, digits, tmp_path, epochs=epochs, lr=lr, warmup_epochs=1.0)
    per_epoch = len(digits.x_train) // 32
    total = epochs * per_epoch
    # after epoch e the scheduler has stepped e * per_epoch times; the lr is the factor at that step
    for row in rows:
        step = row["epoch"] * per_epoch
        expected = lr * 0.5 * (1 + math.cos(math.pi * min((step - per_epoch) / (total - per_epoch), 1.0)))
        assert row["lr"] == pytest.approx(expected, abs=1e-12), row
    assert rows[0]["lr"] == pytest.approx(lr) and rows[-1]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_a_loss_hook_changes_only_the_loss(digits, tmp_path: Path) -> None:
    smoothing = _load_example("smoothing")
    plain, plain_rows, _ = _train(smoothing, digits, tmp_path, lr=0.05, smoothing=0.0, l2=0.0)
    sgd, sgd_rows, _ = _train(get_method("sgd"), digits, tmp_path, lr=0.05)
    assert [r["val_loss"] for r in plain_rows] == [r["val_loss"] for r in sgd_rows], "smoothing 0, l2 0 is SGD exactly"
    smoothed, _, _ = _train(smoothing, digits, tmp_path, lr=0.05, smoothing=0.3, l2=1e-3)
    assert smoothed["train_loss"] > plain["train_loss"], "a smoothed target cannot be fit to zero loss"
    assert smoothed["val_loss"] != plain["val_loss"]


def test_an_own_step_gets_the_state_and_is_reproducible(digits, tmp_path: Path) -> None:
    mixup = _load_example("mixup")
    seen = {}
    step = mixup.step

    def spy(model, batch, state, number):
        seen.setdefault("numbers", []).append(number)
        seen["state"] = state
        return step(model, batch, state, number)

    from dataclasses import replace

    spied = replace(mixup, step=spy)
    first, rows, _ = _train(spied, digits, tmp_path, epochs=2)
    per_epoch = len(digits.x_train) // 32
    assert seen["numbers"] == list(range(2 * per_epoch)), "the step number counts across epochs"
    assert seen["state"].extra["mixed_steps"] == 2 * per_epoch, "init_state's state reaches every step"
    again, _, _ = _train(spied, digits, tmp_path, epochs=2)
    assert again["val_loss"] == first["val_loss"], "the mixing draws come from the cell's own generator"
    assert rows[-1]["train_acc"] is None, "a step that returns only its loss reports no training accuracy"


def test_an_own_epoch_trains_in_phases_and_initialize_runs_on_the_init_stream(digits, tmp_path: Path) -> None:
    phases = _load_example("phases")
    cfg = phases.resolve({"model": "fc", "dataset": "digits", "head_scale": 0.5})
    plain, _ = build_initialised_model(cfg, digits.in_shape, digits.num_classes, init_seed=7)
    scaled, _ = build_initialised_model(cfg, digits.in_shape, digits.num_classes, init_seed=7, method=phases)
    (w0, *_), (w1, *_) = [[p for n, p in m.named_parameters() if n.endswith("weight")][-1:] for m in (plain, scaled)]
    assert torch.allclose(w1, 0.5 * w0), "the last layer's weights are scaled, from the same draw"

    _, rows, model = _train(phases, digits, tmp_path, epochs=1, probe_epochs=1)
    first = [p for n, p in model.named_parameters()][0]
    assert torch.equal(first, [p for n, p in scaled.named_parameters()][0]), "the probe epoch leaves the body frozen"
    _, rows, model = _train(phases, digits, tmp_path, epochs=2, probe_epochs=1)
    assert not torch.equal([p for _, p in model.named_parameters()][0], first), "the tune epoch trains the body"


def test_an_epoch_hook_cannot_exceed_the_budget(digits, tmp_path: Path) -> None:
    from dataclasses import replace

    def greedy(run):
        for _ in range(run.steps + 1):
            run.step()

    method = replace(get_method("sgd"), name="greedy", epoch=greedy, packable=False)
    with pytest.raises(RuntimeError, match="budget"):
        _train(method, digits, tmp_path, epochs=1)


def test_a_method_without_an_optimizer_must_bring_a_step() -> None:
    from seedbench import Method, TrialConfig
    from seedbench.errors import ConfigError

    with pytest.raises(ConfigError, match="give an optimizer"):
        Method(name="nothing", config=TrialConfig)
    with pytest.raises(ConfigError, match="packable"):
        Method(name="packs", config=TrialConfig, optimizer=lambda *a: None, loss=lambda cfg: None, packable=True)


def test_library_train_still_takes_a_bare_optimizer(digits) -> None:
    model = _linear(digits)
    settings = TrainSettings(epochs=1, batch_size=32, data_seed=0, augment_seed=0)
    result = train(model, torch.optim.SGD(model.parameters(), lr=0.1), digits, settings, MethodParts())
    assert result["status"] == "finished" and result["train_acc"] is not None


# ---- through the CLI, outside the repository, on both engines ------------------------------------------


@pytest.fixture(scope="module")
def plugins(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("my_methods")
    copies = []
    for name in EXAMPLES:
        shutil.copy(ROOT / "examples" / f"{name}.py", folder / f"{name}.py")
        copies.append(folder / f"{name}.py")
    return copies


def _plugin_args(plugins: list[Path]) -> list[str]:
    return [arg for p in plugins for arg in ("--plugin", str(p))]


def _sweep(store: Path, plugins: list[Path], *extra: str) -> str:
    methods = ",".join([*METHOD_OF.values(), "sgd"])
    args = sweep_args(store, *_plugin_args(plugins), "--quiet", *FAST, *extra, method=methods, seeds="0-1")
    result = run_cli(*args, cwd=plugins[0].parent)
    assert result.returncode == 0, result.stderr
    assert "14 cells: trained 14" in result.stdout, result.stdout
    return result.stdout


def _check_records(store: Path, plugins: list[Path]) -> None:
    records = [json.loads(p.read_text()) for p in store.rglob("run.json")]
    assert sorted(r["method"] for r in records) == sorted([*METHOD_OF.values(), "sgd"] * 2)
    assert all(r["status"] == "finished" for r in records), [(r["method"], r.get("error")) for r in records]
    cosine_dir = next(p.parent for p in store.rglob("run.json") if json.loads(p.read_text())["method"] == "cosine")
    lrs = [json.loads(line)["lr"] for line in (cosine_dir / "epochs.jsonl").read_text().splitlines()]
    assert len(lrs) == 2 and lrs[1] < lrs[0], "the cosine schedule's lr is logged per epoch and falls"
    signsgd = [r for r in records if r["method"] == "signsgd"]
    assert {r["lr"] for r in signsgd} == {0.002}, "the plugin's own default lr for fc-digits"
    mine = str(next(p for p in plugins if p.name == "signsgd.py").resolve())
    assert all(mine in {entry["ref"] for entry in r["plugins"]} for r in signsgd), "the record names the plugin's file"


def _check_store(store: Path, plugins: list[Path], tmp_path: Path) -> None:
    _check_records(store, plugins)

    report = run_cli("report", "--store", str(store), *_plugin_args(plugins), "--format", "json", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert {r["method"] for r in json.loads(report.stdout)} == {*METHOD_OF.values(), "sgd"}
    compare = run_cli("compare", "--store", str(store), "--by", "arm", "--metric", "val_acc", "--format", "json", *_plugin_args(plugins))
    assert compare.returncode == 0, compare.stderr
    arms = {row[k] for row in json.loads(compare.stdout) for k in ("arm_a", "arm_b")}
    assert {"sam", "cosine", "smoothing", "mixup", "probe_then_tune", "sgd"} <= arms

    html = tmp_path / "methods.html"
    made = run_cli("report", "--store", str(store), *_plugin_args(plugins), "--metric", "val_acc", "--html", str(html))
    assert made.returncode == 0, made.stderr
    shown = chromium(tmp_path, "--window-size=1200,3000", "--dump-dom", html.as_uri())
    assert shown.returncode == 0, shown.stderr[-2000:]
    parser = _Images()
    parser.feed(shown.stdout)
    text = " ".join(parser.text)
    for method in [*METHOD_OF.values()]:
        assert method in text, method


def test_the_examples_run_report_and_render_on_the_local_engine(plugins: list[Path], tmp_path: Path) -> None:
    store = tmp_path / "store"
    _sweep(store, plugins)
    _check_store(store, plugins, tmp_path)


def test_the_examples_run_on_the_ray_engine(plugins: list[Path], tmp_path: Path, ray_cluster) -> None:
    """Ray workers import every plugin from its file; what is read back from the store is the local test's."""
    store = tmp_path / "store"
    assert "ray engine" in _sweep(store, plugins, "--ray-address", ray_cluster.address)
    _check_records(store, plugins)
    # a Ray worker is another process: it hashes the plugins it was handed and agrees with the driver
    records = [json.loads(p.read_text()) for p in store.rglob("run.json")]
    assert all(r["code_driver_sha256"] is None for r in records), "a worker's code differed from the driver's"
    for r in records:
        if r["method"] != "sgd":
            assert {str(p.resolve()) for p in plugins} & {f["path"] for f in r["code_files"]}, r["method"]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
