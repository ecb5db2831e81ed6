"""Seed packing through the engines, and the planning that makes 10,000-cell grids cheap.

The numerical equivalence of a pack's members with solo runs is tested at the trainer level in
tests/test_packed.py; here the same question is asked of what a user runs and keeps: `seedbench sweep
--pack K` stores ordinary records that match the solo sweep's, a rerun redoes only unfinished
members, a pack is one Ray task, and `--dry-run` reports without writing.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from seedbench.record import CACHED_MARKER
from seedbench.sweep.grid import SweepSpec
from tests.conftest import run_cli

GRID = ["--method", "sgd", "--model", "fc", "--dataset", "digits", "--seeds", "0-15", "--set", "epochs=2", "--quiet"]
# float32 members add the same terms in another order than solo runs (docs/benchmarks.md, "Seed
# packing"): after 2 epochs of SGD the FC's losses agree to ~1e-6 relative; an accuracy may differ by
# an image whose two best logits are that close.
LOSS_RTOL = 1e-4


def _records(store: Path) -> dict[int, dict]:
    out = {}
    for path in store.rglob("run.json"):
        record = json.loads(path.read_text())
        out[record["config"]["seed"]] = record
    return out


def _tree_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def packed_and_solo(tmp_path_factory) -> tuple[Path, Path, str]:
    """The issue's command, --pack 8 over seeds 0-15, and the same grid solo."""
    base = tmp_path_factory.mktemp("pack")
    packed, solo = base / "packed", base / "solo"
    first = run_cli("sweep", *GRID, "--pack", "8", "--store", str(packed))
    assert first.returncode == 0, first.stderr
    second = run_cli("sweep", *GRID, "--store", str(solo))
    assert second.returncode == 0, second.stderr
    return packed, solo, first.stdout


def test_packed_sweep_stores_ordinary_records_that_match_solo(packed_and_solo):
    packed, solo, stdout = packed_and_solo
    assert "trained 16" in stdout and "2 packs" in stdout
    p, s = _records(packed), _records(solo)
    assert sorted(p) == sorted(s) == list(range(16))
    pack_ids = {r["pack_id"] for r in p.values()}
    assert len(pack_ids) == 2 and {r["pack_size"] for r in p.values()} == {8}
    n_val = s[0]["config"]["val_size"] or 1
    for seed in range(16):
        a, b = p[seed], s[seed]
        assert b["pack_id"] is None and b["pack_size"] is None
        assert (a["status"], a["config"], a["seeds"], a["arm"]) == (b["status"], b["config"], b["seeds"], b["arm"])  # same identity
        for key in ("train_loss", "val_loss", "test_loss"):
            assert a[key] == pytest.approx(b[key], rel=LOSS_RTOL), (seed, key)
        assert abs(a["val_acc"] - b["val_acc"]) <= 1.0 / n_val + 1e-12, seed


def test_a_rerun_redoes_only_the_unfinished_members(packed_and_solo, tmp_path):
    """As after a pack killed before machinable recorded three of its members as finished."""
    import shutil

    packed, _, _ = packed_and_solo
    store = tmp_path / "store"
    shutil.copytree(packed, store)
    folders = {r["config"]["seed"]: p.parent for r, p in ((json.loads(p.read_text()), p) for p in store.rglob("run.json"))}
    for seed in (3, 9, 10):
        (folders[seed] / CACHED_MARKER).unlink()
    kept = {seed: (folders[seed] / "run.json").read_bytes() for seed in folders if seed not in (3, 9, 10)}
    again = run_cli("sweep", *GRID, "--pack", "8", "--store", str(store))
    assert again.returncode == 0, again.stderr
    assert "trained 3" in again.stdout and "reused 13" in again.stdout
    assert all((folders[seed] / "run.json").read_bytes() == data for seed, data in kept.items())
    redone = _records(store)
    assert all(redone[seed]["status"] == "finished" and redone[seed]["pack_size"] == 3 for seed in (3, 9, 10))


def test_dry_run_counts_cells_and_packs_and_writes_nothing(packed_and_solo, tmp_path):
    import shutil

    packed, _, _ = packed_and_solo
    store = tmp_path / "store"
    shutil.copytree(packed, store)
    before = _tree_hash(store)
    wider = [*GRID[:-4], "0-39", *GRID[-3:]]  # seeds 0-39: 16 finished, 24 new
    done = run_cli("sweep", *wider, "--pack", "8", "--store", str(store), "--dry-run")
    assert done.returncode == 0, done.stderr
    said = " ".join(done.stdout.split())  # the terminal may wrap the line
    assert "40 cells: 24 new, 16 finished (reused), 0 failed before" in said
    assert "3 packs (24 cells) and 0 solo cells" in said
    assert _tree_hash(store) == before
    fresh = run_cli("sweep", *wider, "--pack", "auto", "--store", str(tmp_path / "never"), "--dry-run")
    assert fresh.returncode == 0 and "40 new" in fresh.stdout and "3 packs (40 cells)" in " ".join(fresh.stdout.split())
    assert not (tmp_path / "never").exists()


def _machinable_lookup(resolved) -> tuple[str, Path | None]:
    """The oracle: machinable's own keyed look-up of one cell (an interface built, one query)."""
    from machinable import Index, Project
    from machinable.utils import sanitize_filename, uri_to_path

    from seedbench.record import is_complete, read_record_dict
    from seedbench.sweep.plan import build_interface

    Project.get().ensure_project_root()
    interface = build_interface(resolved)
    entry = Index.get().get_entry(
        interface.parent.record_id, sanitize_filename(interface.catalog_identity_key(), max_len=128), interface.predicate_key
    )
    if entry is None:
        return "pending", None
    folder = Path(uri_to_path(entry.local_uri or entry.storage_uri))
    if (folder / CACHED_MARKER).exists() and is_complete(folder):
        return "finished", folder
    return ("failed" if read_record_dict(folder).get("status") == "failed" else "pending"), folder


def test_bulk_lookup_finds_what_machinable_finds(packed_and_solo):
    """plan_cells reads the index once; machinable looks each cell up itself: same states and folders."""
    from seedbench.sweep.plan import plan_cells, resolve_grid
    from seedbench.sweep.runners.locking import index_path
    from seedbench.sweep.runners.store_context import index_database, open_store, project_root

    packed, _, _ = packed_and_solo
    spec = SweepSpec(methods=["sgd", "rbd"], models=["fc"], datasets=["digits"], seeds=list(range(20)), overrides={"epochs": 2}, store=str(packed))
    with open_store(spec.store) as directory:
        resolved = resolve_grid(spec.cells())
        bulk = plan_cells(resolved, index_path(directory, index_database(spec.store), project_root()), repair=False)
        one_by_one = [_machinable_lookup(r) for r in resolved]
    assert [(p.state, p.path) for p in bulk] == one_by_one
    assert sum(p.state == "finished" for p in bulk) == 16 and all(p.path is None for p in bulk if p.state == "pending")


def test_grid_resolution_reuses_a_group_and_still_checks_every_cell():
    from seedbench.errors import ConfigError
    from seedbench.sweep.grid import Cell
    from seedbench.sweep.plan import resolve_cell, resolve_grid

    spec = SweepSpec(methods=["sgd", "pa_rewiring"], models=["fc"], datasets=["digits"], seeds=[0, 1], init_seeds=[3, 4], overrides={"epochs": 1})
    cells = spec.cells()
    fast = resolve_grid(cells)
    assert [r.params for r in fast] == [resolve_cell(c).params for c in cells]
    assert len({json.dumps(r.params, sort_keys=True) for r in fast}) == len(cells)
    bad = [cells[0], Cell(cells[0].method, "fc", "digits", (("seed", 0), ("init_seed", -1)))]
    with pytest.raises(ConfigError, match="init_seed"):
        resolve_grid(bad)


def test_a_pack_is_one_ray_task(ray_cluster, tmp_path):
    from seedbench.sweep.run import run_sweep

    spec = SweepSpec(methods=["sgd"], models=["fc"], datasets=["digits"], seeds=list(range(6)), overrides={"epochs": 1}, store=str(tmp_path / "s"))
    spec.pack = 4
    summary = run_sweep(spec, quiet=True, engine="ray")
    assert summary.ok and summary.trained == 6 and sorted(summary.packs) == [2, 4]
    records = _records(tmp_path / "s")
    assert sorted(r["pack_size"] for r in records.values()) == [2, 2, 4, 4, 4, 4]
    assert len({r["pack_id"] for r in records.values()}) == 2
    tasks: dict[str, set[str]] = {}
    for path in (tmp_path / "s").rglob("run.json"):
        pack_id = json.loads(path.read_text())["pack_id"]
        (worker,) = path.parent.rglob("worker.json")
        tasks.setdefault(pack_id, set()).add(json.loads(worker.read_text())["task_id"])
    assert len(tasks) == 2 and all(len(ids) == 1 for ids in tasks.values())  # every member of a pack ran in its one task
