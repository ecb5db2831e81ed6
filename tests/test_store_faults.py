"""Damage a store the way a full disk, a kill or an old seedbench leaves it; the next sweep must cope."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.conftest import run_cli

GRID = ["sweep", "--method", "sgd", "--model", "fc", "--dataset", "digits", "--seeds", "0-2", "--epochs", "1"]
GRID += ["--set", "limit_train=32", "--set", "val_size=16", "--quiet"]


def _cells(store: Path) -> list[Path]:
    """The cells' interface folders: the ones holding a run record."""
    return sorted(p.parent for p in store.rglob("run.json"))


def _sweep(store: Path):
    result = run_cli(*GRID, "--store", str(store))
    assert result.returncode == 0, result.stderr
    return result


def test_a_half_materialised_cell_is_rebuilt_and_the_grid_finishes_once(tmp_path: Path) -> None:
    """A full disk during preparation left an index entry whose folder lacks model.json (and everything else)."""
    store = tmp_path / "store"
    _sweep(store)
    broken = _cells(store)[0]
    for path in sorted(broken.rglob("*"), reverse=True):  # the folder as a full disk leaves it: empty
        path.rmdir() if path.is_dir() else path.unlink()
    again = _sweep(store)
    assert "trained 1" in again.stdout and "reused 2" in again.stdout
    records = [json.loads(p.read_text()) for p in store.rglob("run.json") if ".broken-" not in str(p)]
    assert sorted(r["config"]["seed"] for r in records) == [0, 1, 2]  # every cell exactly once
    assert all(r["status"] == "finished" for r in records)
    assert "trained 0" in _sweep(store).stdout


def test_a_truncated_record_is_redone_not_reused(tmp_path: Path) -> None:
    store = tmp_path / "store"
    _sweep(store)
    victim = _cells(store)[1] / "run.json"
    victim.write_text(victim.read_text()[:40])
    again = _sweep(store)
    assert "trained 1" in again.stdout and "reused 2" in again.stdout
    assert json.loads(victim.read_text())["status"] == "finished"


def test_a_store_from_seedbench_0_1_is_named_in_one_line(tmp_path: Path) -> None:
    """0.1's cells were one machinable module per method, each a subclass of components/trial.py's Trial; the
    sweep says so and how to keep them apart."""
    store = tmp_path / "store"
    _sweep(store)
    with sqlite3.connect(store / ".machinable.sqlite") as db:
        db.execute("""UPDATE 'index' SET inherits_json = '["components.trial","machinable.interface"]' WHERE module = 'components.sgd'""")
    result = run_cli(*GRID, "--store", str(store))
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "seedbench 0.1" in notes[0] and "--store" in notes[0]
    report = run_cli("report", "--store", str(store), "--format", "json")
    assert report.returncode == 0, report.stderr
