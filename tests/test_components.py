"""Every method is a machinable component: machinable's own API finds runs by component, version and config field.

Also: a plugin's method gets its component without a file, the driver's shortcut through machinable's
config composition gives exactly machinable's layers and identity, and `seedbench store migrate`
re-keys a store of the one-component layout (and records made under other defaults) so that finished
cells are reused.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from seedbench.sweep.grid import SweepSpec
from tests.conftest import ROOT, run_cli

FAST = ["--epochs", "1", "--set", "limit_train=64", "--set", "val_size=32", "--quiet"]
SMALL = {"epochs": 1, "limit_train": 64, "val_size": 32}


def _index_rows(store: Path) -> list[tuple]:
    with sqlite3.connect(store / ".machinable.sqlite") as db:
        return db.execute("SELECT record_id, module, identity_key, config_version_json FROM 'index' WHERE kind = 'Interface'").fetchall()


def test_every_built_in_method_has_a_component_whose_config_is_the_method_config() -> None:
    import importlib

    from seedbench.registry import aliases, get_method, method_names
    from seedbench.sweep.component import MethodComponent

    for name in method_names(aliases=False):
        module = importlib.import_module(f"components.{name}")
        (cls,) = [v for v in vars(module).values() if isinstance(v, type) and issubclass(v, MethodComponent) and v.__module__ == module.__name__]
        assert cls.method_name == name and cls.Config is get_method(name).config
    for alias in aliases():  # PA rewiring and stabilized strength are sgd cells
        assert not (ROOT / "components" / f"{alias}.py").exists()


def test_presets_are_versions_and_placement_presets_are_not() -> None:
    from machinable import get

    from seedbench.sweep.runners.store_context import open_project

    with open_project():
        rbd = get.new("components.rbd", ["~hadamard", "~table1", {"seed": 3}])
        assert rbd.config.bases == "hadamard" and rbd.config.epochs == 100 and rbd.config.lr_table == "table1" and rbd.config.seed == 3
        names = type(rbd).version_names()
        assert {"hadamard", "layerwise", "table1", "quick", "cnn"} <= set(names) and "gpu" not in names and "momentum" not in names
        assert "momentum" in type(get.new("components.sgd")).version_names()


@pytest.mark.parametrize(
    "spec",
    [
        SweepSpec(methods=["rbd"], models=["fc"], datasets=["digits"], seeds=[0, 4], presets=["hadamard", "quick"]),
        SweepSpec(methods=["pa_rewiring", "nes"], models=["cnn"], datasets=["digits"], seeds=[1], presets=["table1"], overrides={"lr": 0.5}),
        SweepSpec(methods=["sup_walsh", "fpd"], models=["fc"], datasets=["digits"], init_seeds=[2], data_seeds=[3], overrides={"label": "x"}),
    ],
)
def test_the_driver_shortcut_gives_machinable_own_layers_and_identity(spec: SweepSpec) -> None:
    """build_interface skips machinable's composition; composing the same version the slow way must agree."""
    from machinable import get
    from machinable.utils import sanitize_filename

    from seedbench.sweep.plan import CellIndex, build_interface, resolve_grid
    from seedbench.sweep.runners.store_context import open_project

    with open_project():
        resolved = resolve_grid(spec.cells())
        index = CellIndex(resolved, None)
        for r in resolved:
            fast = build_interface(r)
            slow = get.new(r.module, r.version)  # machinable composes defaults + versions itself
            assert dict(slow.config) == dict(fast.config) == r.params
            assert slow.__model__.config == fast.__model__.config
            assert slow.config_layers() == fast.config_layers()
            assert slow.catalog_identity_key() == fast.catalog_identity_key()
            assert index.identity(r) == sanitize_filename(fast.catalog_identity_key(), max_len=128)


def test_machinable_lists_the_rbd_runs_with_hadamard_bases(tmp_path: Path) -> None:
    """A real small sweep; then machinable's Index and get() alone find its cells by component, version and field."""
    store = tmp_path / "store"
    for method, preset, seeds in (("rbd", "hadamard", "0-1"), ("rbd", "quick", "0"), ("sgd", "quick", "0")):
        result = run_cli(
            "sweep", "--method", method, "--preset", preset, "--model", "fc", "--dataset", "digits", "--seeds", seeds, "--store", str(store), *FAST
        )
        assert result.returncode == 0, result.stderr
    from machinable import Index, Interface, get
    from machinable.api.models import ConfigFilter, ConfigLayer, ConfigMatch, FindRequest

    from seedbench.sweep.runners.store_context import open_store

    with open_store(store):
        by_field = Index.get().find(FindRequest(module="components.rbd", config=ConfigMatch(filters=[ConfigFilter(path="bases", value="hadamard")])))
        by_version = Index.get().find(
            FindRequest(
                module="components.rbd",
                config=ConfigMatch(layer=ConfigLayer.version, filters=[ConfigFilter(path="", op="contains", value="~hadamard")]),
            )
        )
        assert by_field.total == by_version.total == 2
        assert {i.record_id for i in by_field.items} == {i.record_id for i in by_version.items}
        assert Index.get().find(FindRequest(module="components.rbd")).total == 3
        assert Index.get().find(FindRequest(module="components.sgd")).total == 1
        for item in by_field.items:
            cell = Interface.find_by_id(item.record_id)
            assert cell.config.bases == "hadamard" and cell.config.model == "fc" and cell.cached()
            assert cell.version()[0] == "~hadamard"
            again = get("components.rbd", cell.version())  # machinable's own look-up by module and version
            assert again.uuid == cell.uuid
        record = json.loads(next(Path(Interface.find_by_id(by_field.items[0].record_id).local_directory()).glob("model.json")).read_text())
        assert record["module"] == "components.rbd" and record["config"]["bases"] == "hadamard"  # model.json reads as the config


PLUGIN = """
from pydantic import Field
from seedbench import Method, TrialConfig, register_method


class HalfConfig(TrialConfig):
    shrink: float = Field(0.5, gt=0, le=1)


def optimizer(params, lr, cfg, seed):
    import torch

    return torch.optim.SGD(params, lr=lr * cfg.shrink)


register_method(Method(name="half_sgd", config=HalfConfig, optimizer=optimizer, learning_rates={"default": {"*": 0.05}},
                       presets={"gentle": {"shrink": 0.25}}))
"""


def test_a_plugin_method_is_a_component_without_a_file(tmp_path: Path) -> None:
    plugin = tmp_path / "mine" / "half.py"
    plugin.parent.mkdir()
    plugin.write_text(PLUGIN)
    assert not (ROOT / "components" / "half_sgd.py").exists()
    store = tmp_path / "store"
    grid = ["sweep", "--plugin", str(plugin), "--method", "half_sgd", "--preset", "gentle", "--model", "fc", "--dataset", "digits", "--seeds", "0-1"]
    result = run_cli(*grid, "--store", str(store), *FAST, cwd=plugin.parent)
    assert result.returncode == 0, result.stderr
    assert {row[1] for row in _index_rows(store)} == {"components.half_sgd"}
    assert all(json.loads(row[3])[0] == "~gentle" for row in _index_rows(store))
    again = run_cli(*grid, "--store", str(store), *FAST, cwd=plugin.parent)
    assert "reused 2" in again.stdout, again.stdout + again.stderr
    probe = textwrap.dedent(
        f"""
        import json
        from machinable import Index, Interface
        from machinable.api.models import ConfigFilter, ConfigMatch, FindRequest
        from seedbench.registry import load_plugin
        from seedbench.sweep.runners.store_context import open_store
        load_plugin({str(plugin)!r})
        with open_store({str(store)!r}):
            found = Index.get().find(FindRequest(module="components.half_sgd", config=ConfigMatch(filters=[ConfigFilter(path="shrink", value=0.25)])))
            cell = Interface.find_by_id(found.items[0].record_id)
            print(json.dumps({{"total": found.total, "class": type(cell).__name__, "config": type(cell).Config.__name__, "shrink": cell.config.shrink}}))
        """
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=plugin.parent, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"total": 2, "class": "HalfSgd", "config": "HalfConfig", "shrink": 0.25}


def test_a_plugin_method_named_like_another_file_in_components_is_refused(tmp_path: Path) -> None:
    plugin = tmp_path / "cell.py"
    plugin.write_text(PLUGIN.replace('name="half_sgd"', 'name="cell"'))
    store = tmp_path / "store"
    result = run_cli(
        "sweep", "--plugin", str(plugin), "--method", "cell", "--model", "fc", "--dataset", "digits", "--seeds", "0", "--store", str(store), *FAST
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "components/cell.py is not its component" in result.stderr
    assert not list(store.rglob("model.json"))


# -- seedbench store migrate ----------------------------------------------------------------------------


def _legacy_store(store: Path, spec: SweepSpec) -> list[Path]:
    """A store as the one-component layout wrote it: every cell a components/cell.py record, trained by the engine."""
    from seedbench.store.migrate import legacy_interface
    from seedbench.sweep.plan import PlannedCell, resolve_grid
    from seedbench.sweep.runners.dispatch import execute_cell, prepare_cell
    from seedbench.sweep.runners.locking import index_lock, index_path
    from seedbench.sweep.runners.store_context import index_database, open_store, project_root
    from seedbench.sweep.status import write_sweep

    with open_store(store) as directory:
        resolved = resolve_grid(spec.cells())
        with index_lock(index_path(directory, index_database(store), project_root())):
            planned = [PlannedCell(r, "pending", _interface=legacy_interface(r.method.name, r.params)) for r in resolved]
            jobs = [prepare_cell(p, directory, project_root()).job for p in planned]
    for job in jobs:
        assert execute_cell(job, wait_if_busy=True)["status"] == "finished"
    write_sweep(directory, [p.cell for p in planned], {job["label"]: Path(job["interface_dir"]) for job in jobs}, "local")
    return sorted(Path(job["interface_dir"]) for job in jobs)


def test_migrate_rekeys_a_one_component_store_and_its_finished_cells_are_reused(tmp_path: Path) -> None:
    store = tmp_path / "store"
    spec = SweepSpec(methods=["rbd", "sgd"], models=["fc"], datasets=["digits"], seeds=[0, 1], overrides=SMALL, store=str(store))
    folders = _legacy_store(store, spec)
    assert {row[1] for row in _index_rows(store)} == {"components.cell"}
    grid = ["sweep", "--method", "rbd,sgd", "--model", "fc", "--dataset", "digits", "--seeds", "0-1", "--store", str(store), *FAST]

    before = run_cli(*grid, "--dry-run")
    assert before.returncode == 0 and "4 new" in before.stdout + before.stderr  # today's sweep does not see them
    dry = run_cli("store", "migrate", "--store", str(store), "--dry-run")
    assert dry.returncode == 0 and "would re-key 4 cells" in dry.stdout
    assert {row[1] for row in _index_rows(store)} == {"components.cell"}  # a dry run writes nothing

    done = run_cli("store", "migrate", "--store", str(store))
    assert done.returncode == 0, done.stderr
    assert "re-keyed 4 cells" in done.stdout and "4 from the one-component layout" in done.stdout
    rows = _index_rows(store)
    assert sorted(row[1] for row in rows) == ["components.rbd", "components.rbd", "components.sgd", "components.sgd"]
    moved = sorted(p.parent for p in store.rglob("run.json"))
    assert len(moved) == 4 and not any(folder.exists() for folder in folders)
    for folder in moved:  # filed under the new identity, as machinable files a record; now a readable per-method record
        model = json.loads((folder / "model.json").read_text())
        assert model["module"] in ("components.rbd", "components.sgd") and model["config"]["epochs"] == 1
        identity = json.loads((folder / "id.json").read_text())["identity_key"]
        assert identity in {row[2] for row in rows} and folder.parent.name == identity
    status = run_cli("status", "--store", str(store), "--format", "json")
    assert json.loads(status.stdout)[0]["finished"] == 4, status.stdout + status.stderr  # the sweep's list follows the move

    reuse = run_cli(*grid)
    assert reuse.returncode == 0, reuse.stderr
    assert "trained 0" in reuse.stdout and "reused 4" in reuse.stdout
    assert sorted(p.parent for p in store.rglob("run.json")) == moved
    assert "already current" in (twice := run_cli("store", "migrate", "--store", str(store))).stdout and "re-keyed 0 cells" in twice.stdout


def test_a_sweep_names_unmigrated_cells_in_one_note(tmp_path: Path) -> None:
    store = tmp_path / "store"
    _legacy_store(store, SweepSpec(methods=["sgd"], models=["fc"], datasets=["digits"], seeds=[0], overrides=SMALL, store=str(store)))
    result = run_cli("sweep", "--method", "sgd", "--model", "fc", "--dataset", "digits", "--seeds", "1", "--store", str(store), *FAST)
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "1 cells recorded before each method had its own component" in notes[0] and "seedbench store migrate" in notes[0]
    (legacy,) = [p for p in store.rglob("model.json") if json.loads(p.read_text())["module"] == "components.cell"]
    model = json.loads(legacy.read_text())
    model["config"]["method"] = "mystery"  # a plugin's method, its plugin not given
    legacy.write_text(json.dumps(model))
    skipped = run_cli("store", "migrate", "--store", str(store))
    assert skipped.returncode == 0 and "re-keyed 0 cells" in skipped.stdout
    assert "skipped" in skipped.stdout and "'mystery' is not registered here; pass the plugin" in skipped.stdout


def test_a_record_made_under_other_defaults_is_refused_until_migrated(tmp_path: Path) -> None:
    """Identity leaves keys at their default out; a record from when `epochs` defaulted to 3 must not pass for today's 5."""
    store = tmp_path / "store"
    grid = ["sweep", "--method", "sgd", "--model", "fc", "--dataset", "digits", "--seeds", "0", "--store", str(store)]
    grid += ["--set", "limit_train=64", "--set", "val_size=32", "--quiet"]  # epochs: the default
    assert run_cli(*grid).returncode == 0
    (folder,) = [p.parent for p in store.rglob("run.json")]
    model = json.loads((folder / "model.json").read_text())
    model["config"]["epochs"] = model["config"]["_default_"]["epochs"] = 3  # what that older record would hold
    (folder / "model.json").write_text(json.dumps(model))
    with sqlite3.connect(store / ".machinable.sqlite") as db:
        for column in ("config_default_json", "config_resolved_json"):
            db.execute(f"UPDATE 'index' SET {column} = json_set({column}, '$.epochs', 3) WHERE module = 'components.sgd'")

    refused = run_cli(*grid)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert "other defaults (epochs)" in refused.stderr and "seedbench store migrate" in refused.stderr
    done = run_cli("store", "migrate", "--store", str(store))
    assert "re-keyed 1 cells" in done.stdout and "1 under today's defaults" in done.stdout, done.stdout + done.stderr
    again = run_cli(*grid)
    assert again.returncode == 0 and "trained 1" in again.stdout  # the 5-epoch cell is new science
    assert len(list(store.rglob("run.json"))) == 2  # the old record is kept, under its own identity now


def test_a_migration_stopped_before_the_index_was_updated_finishes_when_run_again(tmp_path: Path) -> None:
    """Files rewritten and folder moved, index not yet: the next run finds the folder and re-keys the row."""
    import shutil

    store = tmp_path / "store"
    _legacy_store(store, SweepSpec(methods=["sgd"], models=["fc"], datasets=["digits"], seeds=[0], overrides=SMALL, store=str(store)))
    database = store / ".machinable.sqlite"
    with sqlite3.connect(database) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copy(database, tmp_path / "before.sqlite")
    assert "re-keyed 1 cells" in run_cli("store", "migrate", "--store", str(store)).stdout
    shutil.copy(tmp_path / "before.sqlite", database)  # the index as it was when the run stopped
    for side in ("-wal", "-shm"):
        Path(str(database) + side).unlink(missing_ok=True)
    assert {row[1] for row in _index_rows(store)} == {"components.cell"}

    again = run_cli("store", "migrate", "--store", str(store))
    assert again.returncode == 0 and "re-keyed 1 cells" in again.stdout, again.stdout + again.stderr
    reuse = run_cli("sweep", "--method", "sgd", "--model", "fc", "--dataset", "digits", "--seeds", "0", "--store", str(store), *FAST)
    assert "trained 0" in reuse.stdout and "reused 1" in reuse.stdout, reuse.stdout + reuse.stderr
