"""A cell's identity is its science: placement never changes it, aliases do not duplicate it, names are checked first."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from seedbench.sweep.grid import Cell, SweepSpec
from seedbench.sweep.plan import resolve_cell
from tests.conftest import make_idx_dataset, run_cli, sweep_args

FAST = ["--epochs", "1", "--set", "limit_train=64", "--set", "val_size=32", "--quiet"]


def _run_folders(store: Path) -> set[Path]:
    return {p.parent for p in store.rglob("run.json")}


def test_moving_a_finished_sweep_reuses_every_cell(tmp_path: Path) -> None:
    """Other device, other thread count, another copy of the same data: the same cells, all reused."""
    first_copy = make_idx_dataset(tmp_path / "a" / "mnist").parent
    second_copy = tmp_path / "b"
    shutil.copytree(first_copy, second_copy)
    store = str(tmp_path / "store")
    grid = ["sweep", "--method", "sgd,rbd", "--model", "fc", "--dataset", "mnist", "--seeds", "0-1", "--store", store, *FAST]
    first = run_cli(*grid, "--data-dir", str(first_copy))
    assert first.returncode == 0, first.stderr
    assert "trained 4" in first.stdout
    again = run_cli(*grid, "--data-dir", str(second_copy), "--set", "device=cpu", "--set", "num_threads=1", "--resources", '{"num_cpus": 2}')
    assert again.returncode == 0, again.stderr
    assert "trained 0" in again.stdout and "reused 4" in again.stdout
    placement = json.loads(next(Path(store).rglob("run.json")).read_text())["placement"]
    assert placement["data_dir"] == str(first_copy)  # the record says where it really ran


def test_an_alias_is_the_same_training_as_its_method(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    alias = run_cli(*sweep_args(store, *FAST, method="pa_rewiring"))
    assert alias.returncode == 0, alias.stderr
    same = run_cli(*sweep_args(store, "--set", "init=orthogonal", "--set", "rewire=true", *FAST))
    assert same.returncode == 0, same.stderr
    assert "reused 1" in same.stdout
    (record,) = [json.loads(p.read_text()) for p in Path(store).rglob("run.json")]
    assert record["method"] == "sgd" and record["arm"] == "sgd init=orthogonal +rewire"


def test_the_record_names_the_initializer_that_ran() -> None:
    """FC applies Keras's Glorot-uniform itself; a zoo model keeps PyTorch's default unless asked otherwise."""
    assert resolve_cell(Cell("sgd", "fc", "digits")).config.init == "xavier_uniform"
    assert resolve_cell(Cell("sgd", "base", "digits")).config.init == "default"
    assert resolve_cell(Cell("sgd", "base", "digits", overrides=(("init", "orthogonal"),))).config.init == "orthogonal"


def test_placement_is_not_part_of_the_identity() -> None:
    plain = resolve_cell(Cell("sgd", "fc", "digits"))
    placed = resolve_cell(Cell("sgd", "fc", "digits", overrides=(("device", "cpu"), ("num_threads", 1), ("num_gpus", 0.5))))
    assert plain.version == placed.version
    assert placed.placement.num_gpus == 0.5 and placed.placement.device == "cpu"


def test_crossed_seed_streams_make_one_cell_per_combination() -> None:
    spec = SweepSpec(methods=["sgd"], models=["fc"], datasets=["digits"], init_seeds=[0, 1, 2], data_seeds=[5, 6])
    cells = spec.cells()
    assert len(cells) == 6
    configs = [resolve_cell(c).config for c in cells]
    assert {(c.init_seed, c.data_seed) for c in configs} == {(i, d) for i in (0, 1, 2) for d in (5, 6)}
    assert {c.seed for c in configs} == {0}


GRID = {"--method": "sgd", "--model": "fc", "--dataset": "digits"}


@pytest.mark.parametrize(
    "changes, extra, fragment",
    [
        ({"--method": "sgdd"}, [], "did you mean 'sgd'"),
        ({"--model": "fcc"}, [], "unknown model 'fcc'"),
        ({"--dataset": "digitz"}, [], "unknown dataset 'digitz'"),
        ({}, ["--set", "init=orthgonal"], "did you mean 'orthogonal'"),
        ({}, ["--set", "device=gpu"], "device"),
        ({}, ["--set", "lr=.inf"], "finite"),
        ({}, ["--set", "momentm=0.9"], "momentm"),
        ({}, ["--preset", "tabel1"], "did you mean ~table1"),
        ({}, ["--set", "framework=jax"], "framework"),
    ],
)
def test_a_typo_exits_2_in_one_line_and_creates_no_run_folder(tmp_path: Path, changes: dict, extra: list[str], fragment: str) -> None:
    grid = {**GRID, **changes}
    store = tmp_path / "store"
    result = run_cli("sweep", *[x for kv in grid.items() for x in kv], "--seeds", "0", "--store", str(store), *extra)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert fragment in result.stderr
    assert not store.exists()
