"""Seed studies through the sweep: crossed seed streams into `decompose`, and sequential seeds that stop early."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli

TINY = ["--epochs", "1", "--set", "limit_train=128", "--set", "val_size=64", "--quiet"]


def test_until_decided_stops_well_before_max_seeds_when_arms_clearly_differ(tmp_path: Path) -> None:
    """SGD at a sensible rate against SGD at a rate so small it does not move: decided long before 20 seeds."""
    plugin = tmp_path / "slow.py"
    plugin.write_text(
        "from seedbench import Method, register_method\n"
        "from seedbench.methods.sgd import SGDConfig, sgd_optimizer\n"
        "register_method(Method(name='frozen_sgd', config=SGDConfig, optimizer=sgd_optimizer, learning_rates={'default': {'*': 1e-6}}))\n"
    )
    store = tmp_path / "store"
    result = run_cli(
        "sweep",
        "--plugin",
        str(plugin),
        "--method",
        "sgd,frozen_sgd",
        "--model",
        "fc",
        "--dataset",
        "digits",
        "--until-decided",
        "--metric",
        "val_acc",
        "--max-seeds",
        "20",
        "--step",
        "3",
        "--store",
        str(store),
        *TINY,
    )
    assert result.returncode == 0, result.stderr
    assert "every pair decided" in result.stdout and "O'Brien-Fleming" in result.stdout
    runs = [json.loads(p.read_text()) for p in store.rglob("run.json")]
    assert len(runs) < 2 * 20  # stopped early: fewer runs than the fixed design
    assert len(runs) % 2 == 0 and len({r["config"]["seed"] for r in runs}) == len(runs) // 2


def test_crossed_seed_streams_feed_decompose(tmp_path: Path) -> None:
    store = tmp_path / "store"
    swept = run_cli(
        "sweep", "--method", "sgd", "--model", "fc", "--dataset", "digits", "--init-seeds", "0-2", "--data-seeds", "0-2", "--store", str(store), *TINY
    )
    assert swept.returncode == 0, swept.stderr
    assert "9 cells: trained 9" in swept.stdout
    result = run_cli("decompose", "--metric", "val_acc", "--store", str(store), "--format", "json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["components"]
    assert {r["component"] for r in rows} >= {"init", "data", "total"}
    assert all(r["design"] == "3 init x 3 data, 1 run per cell" for r in rows)
    for row in rows:
        assert 0 <= row["ci_low"] <= row["ci_high"]
    total = next(r for r in rows if r["component"] == "total")
    assert abs(sum(r["variance"] for r in rows if r["component"] != "total") - total["variance"]) < 1e-9


def test_until_decided_bad_input_is_one_line_and_creates_nothing(tmp_path: Path) -> None:
    store = tmp_path / "store"
    for extra, fragment in ((["--method", "sgd"], "one arm"), (["--method", "sgd,rbd", "--alpha", "1.5"], "--alpha")):
        result = run_cli("sweep", *extra, "--model", "fc", "--dataset", "digits", "--until-decided", "--store", str(store), *TINY)
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1 and fragment in result.stderr
        assert not store.exists()
