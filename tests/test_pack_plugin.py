"""A plugin's method that declares packable=True packs, on both engines, and its members match solo runs.

The plugin is written outside the repository, as a user writes one: sign-SGD with decoupled weight
decay, an element-wise optimizer with nothing shared across members, stepped in the pack by each
member's own optimizer object (packed_step None) through its once-only loss closure. Its records must
say pack_size 4, and every epoch of every packed record must match the same cell trained solo, to the
tolerances tests/test_pack_engine.py uses for the built-in SGD.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seedbench.sweep.grid import SweepSpec
from tests.conftest import run_cli
from tests.test_pack_engine import LOSS_RTOL

PLUGIN = '''
import torch
from pydantic import Field

from seedbench import Method, TrialConfig, register_method


class SignSGD(torch.optim.Optimizer):
    """w <- w * (1 - lr * wd) - lr * sign(grad): element-wise, so each member's own copy steps its slice."""

    def __init__(self, params, lr, weight_decay=0.0):
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None):
        with torch.enable_grad():
            loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.mul_(1 - group["lr"] * group["weight_decay"])
                    p.add_(torch.sign(p.grad), alpha=-group["lr"])
        return loss


class PackSignConfig(TrialConfig):
    weight_decay: float = Field(0.01, ge=0)


register_method(
    Method(
        name="packsign",
        config=PackSignConfig,
        optimizer=lambda params, lr, cfg, seed: SignSGD(params, lr=lr, weight_decay=cfg.weight_decay),
        learning_rates={"default": {"*": 0.002}},
        packable=True,
        pack_sizes={"fc/cpu": 4},
    )
)
'''
SEEDS = 4
OVERRIDES = {"epochs": 2, "limit_train": 512, "val_size": 200}


def _grid(plugin: Path, store: Path, *extra: str) -> list[str]:
    sets = [arg for key, value in OVERRIDES.items() for arg in ("--set", f"{key}={value}")]
    return ["sweep", "--plugin", str(plugin), "--method", "packsign", "--model", "fc", "--dataset", "digits", "--seeds", f"0-{SEEDS - 1}"] + [
        *sets,
        "--store",
        str(store),
        "--quiet",
        *extra,
    ]


def _records(store: Path) -> dict[int, tuple[dict, list[dict]]]:
    """seed -> (run.json, its epoch rows)."""
    out = {}
    for path in store.rglob("run.json"):
        record = json.loads(path.read_text())
        rows = [json.loads(line) for line in (path.parent / "epochs.jsonl").read_text().splitlines()]
        out[record["config"]["seed"]] = (record, rows)
    return out


def assert_match_solo(packed: dict[int, tuple[dict, list[dict]]], solo: dict[int, tuple[dict, list[dict]]]) -> None:
    assert sorted(packed) == sorted(solo) == list(range(SEEDS))
    for seed in range(SEEDS):
        (a, a_rows), (b, b_rows) = packed[seed], solo[seed]
        assert (a["pack_size"], b["pack_size"]) == (SEEDS, None), seed
        assert (a["status"], a["config"], a["seeds"]) == (b["status"], b["config"], b["seeds"]) == ("finished", b["config"], b["seeds"])
        assert len(a_rows) == len(b_rows) == OVERRIDES["epochs"]
        n_val = OVERRIDES["val_size"]
        for row, solo_row in zip(a_rows, b_rows):
            assert row["lr"] == solo_row["lr"] == 0.002
            assert row["updates"] == solo_row["updates"]
            for key in ("train_loss", "val_loss"):
                assert row[key] == pytest.approx(solo_row[key], rel=LOSS_RTOL), (seed, row["epoch"], key)
            assert abs(row["val_acc"] - solo_row["val_acc"]) <= 1.0 / n_val + 1e-12, (seed, row["epoch"])
        # a test the comparison can fail: the seeds' curves differ from each other far beyond the tolerance
    losses = {round(solo[s][1][-1]["val_loss"], 4) for s in range(SEEDS)}
    assert len(losses) == SEEDS


@pytest.fixture(scope="module")
def plugin(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("outside") / "packsign.py"
    path.write_text(PLUGIN)
    return path


@pytest.fixture(scope="module")
def solo_store(plugin: Path, tmp_path_factory) -> Path:
    store = tmp_path_factory.mktemp("solo") / "store"
    done = run_cli(*_grid(plugin, store), cwd=plugin.parent)
    assert done.returncode == 0, done.stderr
    return store


def test_a_packable_plugin_packs_and_matches_solo_locally(plugin, solo_store, tmp_path):
    store = tmp_path / "packed"
    done = run_cli(*_grid(plugin, store, "--pack", "4"), cwd=plugin.parent)
    assert done.returncode == 0, done.stderr
    assert "trained 4" in done.stdout and "1 packs" in done.stdout, done.stdout
    packed = _records(store)
    assert len({record["pack_id"] for record, _ in packed.values()}) == 1
    assert_match_solo(packed, _records(solo_store))


def test_pack_auto_takes_the_plugins_measured_size(plugin, tmp_path):
    done = run_cli(*_grid(plugin, tmp_path / "never", "--pack", "auto", "--dry-run"), cwd=plugin.parent)
    assert done.returncode == 0, done.stderr
    assert "1 packs (4 cells) and 0 solo cells" in " ".join(done.stdout.split())


def test_a_packable_plugin_packs_on_ray(ray_cluster, plugin, solo_store, tmp_path):
    from seedbench.sweep.run import run_sweep

    spec = SweepSpec(
        methods=["packsign"],
        models=["fc"],
        datasets=["digits"],
        seeds=list(range(SEEDS)),
        overrides=dict(OVERRIDES),
        store=str(tmp_path / "ray"),
        plugins=[str(plugin)],
    )
    spec.pack = SEEDS
    summary = run_sweep(spec, quiet=True, engine="ray")
    assert summary.ok and summary.trained == SEEDS and summary.packs == [SEEDS]
    assert_match_solo(_records(tmp_path / "ray"), _records(solo_store))
