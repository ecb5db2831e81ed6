"""The results store as SQL: views, the incremental cache, corrupt folders, errors, and the CLI.

Stores are built from run folders written in the real format (run.json as seedbench.train.trial writes it,
epochs.jsonl as seedbench.train.loop writes it) plus one real sweep; queries run on the real DuckDB.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

try:
    from seedbench.methods.sgd import SGDConfig  # the method registry keeps each config with its method
except ImportError:  # a tree from before the method registry
    from seedbench.config import SGDConfig  # type: ignore[attr-defined,no-redef]
from seedbench.errors import StoreError
from seedbench.store import CACHE_DIRNAME, EPOCH_COLUMNS, Store, StoreWarning, open_store_db, run_columns
from seedbench.store import cache as cache_module
from tests.conftest import ROOT

# -- writing run folders in the real format ---------------------------------------------------------


def epoch_row(epoch: int, acc: float = 0.5, **extra: Any) -> dict[str, Any]:
    return {
        "epoch": epoch,
        "train_loss": 1.0 / epoch,
        "train_acc": acc,
        "val_loss": 1.1 / epoch,
        "val_acc": acc - 0.01,
        "seconds": 0.5,
        "images_per_s": 1000.0,
        **extra,
    }


def make_record(
    run_id: str, model: str = "fc", seed: int = 0, status: str = "finished", acc: float = 0.5, method: str = "sgd", extra_config: dict | None = None
) -> dict[str, Any]:
    config = SGDConfig(model=model, dataset="digits", seed=seed, epochs=3).model_dump()
    config.setdefault("device", "auto")  # a config key the record also has at top level (kept as config_device)
    config.update(method=method, **(extra_config or {}))
    record: dict[str, Any] = {
        "run_id": run_id,
        "method": method,
        "config": config,
        "lr": 0.05,
        "status": status,
        "host": "testhost",
        "python": "3.11.7",
        "torch": "2.13.0",
        "started_at": 1.7e9,
    }
    if status == "running":
        return record
    record.update(
        {
            "reason": None,
            "epochs_completed": 3,
            "train_seconds": 1.5,
            "train_loss": 0.3,
            "train_acc": acc,
            "val_loss": 0.4,
            "val_acc": acc - 0.01,
            "images_per_s": 1000.0,
            "D": 101770,
            "device": "cpu",
            "seeds": {"init": 11 + seed, "data": 12 + seed, "augment": 13 + seed, "method": 14 + seed},
            "finished_at": 1.7e9 + 2,
            "seconds": 2.0,
        }
    )
    if status == "finished":
        record.update(test_loss=0.45, test_acc=acc + 0.01)
    elif status == "diverged":
        record.update(reason="nan loss", train_loss="nan", val_loss="inf")
    elif status == "failed":
        record.update(error="RuntimeError: boom")
    return record


def write_run(store: Path, rel: str, record: dict[str, Any], epochs: list[dict[str, Any]] | None = None) -> Path:
    """A run folder as machinable + seedbench.train.trial leave it (machinable's files included)."""
    folder = store / rel
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.json").write_text('{"module": "components.sgd"}')
    (folder / "run.json").write_text(json.dumps(record, indent=1))
    if epochs is not None:
        (folder / "epochs.jsonl").write_text("".join(json.dumps(e) + "\n" for e in epochs))
    return folder


def small_store(root: Path) -> Path:
    """Four runs: two sgd seeds, a diverged run with non-finite values, a running run; one rbd-like
    run with its own config key and an optimizer diagnostic per epoch."""
    write_run(root, "p/a/run0", make_record("r0", seed=0, acc=0.6), [epoch_row(e) for e in (1, 2, 3)])
    write_run(root, "p/a/run1", make_record("r1", seed=1, acc=0.7), [epoch_row(e) for e in (1, 2, 3)])
    diverged = [epoch_row(1), {**epoch_row(2), "train_loss": "nan", "val_loss": "inf"}]
    write_run(root, "p/b/run2", make_record("r2", model="cnn", status="diverged"), diverged)
    write_run(root, "p/b/run3", make_record("r3", model="cnn", status="running"), [epoch_row(1)])
    write_run(root, "p/c/run4", make_record("r4", method="rbd", extra_config={"num_bases": 250}), [epoch_row(e, cosine=0.1 * e) for e in (1, 2, 3)])
    return root


def tree_digest(root: Path) -> dict[str, str]:
    """Content hash of every file outside the cache: what `nothing is modified` means."""
    out = {}
    for path in sorted(root.rglob("*")):
        if CACHE_DIRNAME in path.parts or not path.is_file():
            continue
        st = path.stat()
        out[str(path.relative_to(root))] = f"{hashlib.sha256(path.read_bytes()).hexdigest()}:{st.st_mtime_ns}"
    return out


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return small_store(tmp_path / "store")


def sorted_frame(df: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    return df.sort_values(by).reset_index(drop=True)


# -- views --------------------------------------------------------------------------------------------


def test_runs_view_has_one_row_per_run_with_config_flattened(store_dir: Path) -> None:
    store = Store(store_dir)
    runs = store.query("SELECT * FROM runs ORDER BY run_id")
    assert list(runs["run_id"]) == ["r0", "r1", "r2", "r3", "r4"]
    assert list(runs["status"]) == ["finished", "finished", "diverged", "running", "finished"]
    assert list(runs["method"]) == ["sgd", "sgd", "sgd", "sgd", "rbd"]
    assert list(runs["model"]) == ["fc", "fc", "cnn", "cnn", "fc"]
    assert list(runs["seed"]) == [0, 1, 0, 0, 0]
    # declared columns first, in order; method-specific keys and flattened objects after
    declared = list(run_columns())
    assert store.columns("runs")[: len(declared)] == declared
    for extra in ("momentum", "weight_decay", "num_bases", "seeds_init", "config_method"):
        assert extra in store.columns("runs")
    assert runs.loc[0, "path"] == str(store_dir / "p/a/run0")
    assert runs.loc[0, "lr"] == 0.05 and math.isnan(runs.loc[0, "config_lr"])  # resolved vs requested
    assert runs.loc[0, "device"] == "cpu" and runs.loc[0, "config_device"] == "auto"
    assert runs.loc[1, "seeds_init"] == 12 and runs.loc[4, "num_bases"] == 250
    assert runs.loc[0, "test_acc"] == pytest.approx(0.61)
    # non-finite strings are floats; the running run has no final metrics yet
    assert math.isnan(runs.loc[2, "train_loss"]) and math.isinf(runs.loc[2, "val_loss"])
    assert pd.isna(runs.loc[3, "test_acc"]) and pd.isna(runs.loc[3, "finished_at"])
    types = dict(store.con.execute("SELECT column_name, column_type FROM (DESCRIBE runs)").fetchall())
    assert types["val_acc"] == "DOUBLE" and types["seed"] == "BIGINT" and types["error"] == "VARCHAR"
    assert types["augment"] == "BOOLEAN"
    assert {c: types[c] for c in run_columns()} == run_columns()  # every declared column has its declared type


def test_epochs_view_has_one_row_per_run_per_epoch(store_dir: Path) -> None:
    store = Store(store_dir)
    epochs = store.query("SELECT * FROM epochs ORDER BY run_id, epoch")
    assert len(epochs) == 3 + 3 + 2 + 1 + 3
    assert store.columns("epochs")[: len(EPOCH_COLUMNS)] == list(EPOCH_COLUMNS)
    assert "cosine" in store.columns("epochs")
    rbd = epochs[epochs["run_id"] == "r4"]
    assert list(rbd["cosine"]) == pytest.approx([0.1, 0.2, 0.3])
    assert epochs[epochs["run_id"] == "r0"]["cosine"].isna().all()
    r2 = epochs[(epochs["run_id"] == "r2") & (epochs["epoch"] == 2)].iloc[0]
    assert math.isnan(r2["train_loss"]) and math.isinf(r2["val_loss"])
    joined = store.query(
        "SELECT r.method, e.epoch, count(*) AS n FROM epochs e JOIN runs r USING (run_id) WHERE r.status = 'finished' GROUP BY ALL ORDER BY ALL"
    )
    assert joined.to_dict("records")[:3] == [
        {"method": "rbd", "epoch": 1, "n": 1},
        {"method": "rbd", "epoch": 2, "n": 1},
        {"method": "rbd", "epoch": 3, "n": 1},
    ]


def test_empty_store_gives_empty_views_with_known_columns(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    store = Store(tmp_path / "empty")
    runs = store.query("SELECT * FROM runs")
    assert runs.empty and list(runs.columns) == list(run_columns())
    assert store.query("SELECT * FROM epochs").empty and store.columns("epochs") == list(EPOCH_COLUMNS)
    agg = store.query("SELECT method, avg(test_acc) AS m FROM runs GROUP BY method")
    assert agg.empty
    assert store.skipped == []


def test_missing_store_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        Store(tmp_path / "nope")


def test_open_store_db_gives_a_duckdb_connection(store_dir: Path) -> None:
    con = open_store_db(store_dir)
    assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 5
    assert con.execute("SELECT count(*) FROM epochs WHERE epoch = 1").fetchone()[0] == 5


# -- incremental cache -----------------------------------------------------------------------------


@pytest.fixture
def count_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every run folder whose files the cache actually opens."""
    reads: list[str] = []
    original = cache_module.read_folder

    def counting(root: Path, rel: str, sigs: Any) -> Any:
        reads.append(rel)
        return original(root, rel, sigs)

    monkeypatch.setattr(cache_module, "read_folder", counting)
    return reads


def test_refresh_rereads_only_changed_folders(store_dir: Path, count_reads: list[str]) -> None:
    first = Store(store_dir)
    assert sorted(count_reads) == ["p/a/run0", "p/a/run1", "p/b/run2", "p/b/run3", "p/c/run4"]
    assert first.last_refresh.full and first.last_refresh.runs == 5

    count_reads.clear()
    again = Store(store_dir)
    assert count_reads == [] and again.last_refresh.reused == 5 and not again.last_refresh.full

    # add a run
    write_run(store_dir, "p/d/run5", make_record("r5", seed=5), [epoch_row(1)])
    store = Store(store_dir)
    assert count_reads == ["p/d/run5"]
    assert store.query("SELECT count(*) AS n FROM runs")["n"][0] == 6

    # the running run finishes: run.json replaced, epochs.jsonl appended
    count_reads.clear()
    folder = store_dir / "p/b/run3"
    with open(folder / "epochs.jsonl", "a") as f:
        f.write(json.dumps(epoch_row(2)) + "\n")
    tmp = folder / "run.json.tmp"
    tmp.write_text(json.dumps(make_record("r3", model="cnn", status="finished", acc=0.9)))
    os.replace(tmp, folder / "run.json")
    store = Store(store_dir)
    assert count_reads == ["p/b/run3"]
    row = store.query("SELECT status, test_acc FROM runs WHERE run_id = 'r3'").iloc[0]
    assert row["status"] == "finished" and row["test_acc"] == pytest.approx(0.91)
    assert store.query("SELECT max(epoch) AS m FROM epochs WHERE run_id = 'r3'")["m"][0] == 2

    # only epochs.jsonl grows (a live run between epochs)
    count_reads.clear()
    with open(store_dir / "p/a/run0/epochs.jsonl", "a") as f:
        f.write(json.dumps(epoch_row(4)) + "\n")
    store = Store(store_dir)
    assert count_reads == ["p/a/run0"]
    assert store.query("SELECT count(*) AS n FROM epochs WHERE run_id = 'r0'")["n"][0] == 4

    # delete a run folder: it disappears from both views without reading anything
    count_reads.clear()
    shutil.rmtree(store_dir / "p/a/run1")
    store = Store(store_dir)
    assert count_reads == [] and store.last_refresh.removed == ["p/a/run1"]
    assert "r1" not in set(store.query("SELECT run_id FROM runs")["run_id"])
    assert store.query("SELECT count(*) AS n FROM epochs WHERE run_id = 'r1'")["n"][0] == 0

    # an open Store picks up changes on refresh()
    write_run(store_dir, "p/d/run6", make_record("r6", seed=6))
    stats = store.refresh()
    assert stats.read == ["p/d/run6"] and store.query("SELECT count(*) AS n FROM runs")["n"][0] == 6


def test_known_folder_losing_its_files(store_dir: Path) -> None:
    Store(store_dir)
    (store_dir / "p/a/run0/run.json").unlink()  # epochs.jsonl stays: half a run
    for name in ("run.json", "epochs.jsonl"):
        (store_dir / "p/a/run1" / name).unlink()  # nothing left but machinable's files
    store = Store(store_dir, warn=None)
    assert [str(s.path.relative_to(store_dir)) for s in store.skipped] == ["p/a/run0"]
    assert store.last_refresh.removed == ["p/a/run1"]
    assert sorted(store.query("SELECT run_id FROM runs")["run_id"]) == ["r2", "r3", "r4"]


def test_open_without_refresh_uses_the_cache_as_is(store_dir: Path, count_reads: list[str]) -> None:
    Store(store_dir)
    write_run(store_dir, "p/d/run5", make_record("r5", seed=5))
    count_reads.clear()
    stale = Store(store_dir, refresh=False)
    assert count_reads == [] and stale.last_refresh is None and len(stale.runs()) == 5
    assert len(Store(store_dir).runs()) == 6


def test_deleting_the_cache_rebuilds_identical_results(store_dir: Path) -> None:
    store = Store(store_dir)
    write_run(store_dir, "p/d/run5", make_record("r5", seed=5), [epoch_row(1)])
    store.refresh()  # an incrementally refreshed cache ...
    runs, epochs = store.runs(), store.epochs()
    cached_files = sorted(p.name for p in (store_dir / CACHE_DIRNAME).glob("*.parquet"))
    shutil.rmtree(store_dir / CACHE_DIRNAME)
    rebuilt = Store(store_dir)  # ... equals one built from scratch
    assert rebuilt.last_refresh.full
    pd.testing.assert_frame_equal(rebuilt.runs(), runs)
    pd.testing.assert_frame_equal(rebuilt.epochs(), epochs)
    assert cached_files and sorted(p.name for p in (store_dir / CACHE_DIRNAME).glob("*.parquet")) != cached_files
    forced = Store(store_dir, rebuild=True)
    assert len(forced.last_refresh.read) == 6
    pd.testing.assert_frame_equal(forced.runs(), runs)


def test_a_broken_manifest_means_a_full_rebuild(store_dir: Path) -> None:
    Store(store_dir)
    (store_dir / CACHE_DIRNAME / "manifest.json").write_text("{not json")
    store = Store(store_dir)
    assert store.last_refresh.full and len(store.runs()) == 5


def test_damaged_cache_files_are_rebuilt_from_the_folders(store_dir: Path) -> None:
    expected = Store(store_dir).runs()
    shards = sorted((store_dir / CACHE_DIRNAME).glob("runs-*.parquet"))
    shards[0].write_bytes(b"not parquet")  # damaged behind the manifest's back
    pd.testing.assert_frame_equal(Store(store_dir).runs(), expected)
    shard, name = next(iter(cache_module.load_manifest(store_dir / CACHE_DIRNAME).epochs_files.items()))
    (store_dir / CACHE_DIRNAME / name).unlink()  # missing; and a change in the same shard forces reading it
    rel = next(
        rel for rel in ("p/a/run0", "p/a/run1", "p/b/run2", "p/b/run3", "p/c/run4") if cache_module.shard_of(rel, cache_module.SHARDS) == shard
    )
    with open(store_dir / rel / "epochs.jsonl", "a") as f:
        f.write(json.dumps(epoch_row(9)) + "\n")
    store = Store(store_dir)
    assert store.last_refresh.full
    assert store.query("SELECT count(*) AS n FROM epochs")["n"][0] == 13


def test_type_changes_between_runs_widen_the_column(store_dir: Path) -> None:
    """A key that is a number in one run and text in another becomes text, in or across shards."""
    store = Store(store_dir)
    write_run(store_dir, "p/x/a", make_record("xa", extra_config={"width": 64}))
    store.refresh()
    assert store.query("SELECT width FROM runs WHERE run_id = 'xa'")["width"][0] == 64
    write_run(store_dir, "p/x/b", make_record("xb", extra_config={"width": "wide"}))
    store.refresh()
    widths = store.query("SELECT run_id, width FROM runs WHERE width IS NOT NULL ORDER BY run_id")
    assert list(widths["width"]) == ["64", "wide"]


def test_config_values_of_another_type_widen_instead_of_losing_the_run(store_dir: Path) -> None:
    """Config types may change between seedbench versions; the record's own keys may not."""
    record = make_record("odd")
    record["config"]["batch_size"] = "auto"  # declared BIGINT
    write_run(store_dir, "p/odd", record)
    store = Store(store_dir, warn=None)
    assert store.skipped == []
    sizes = store.query("SELECT run_id, batch_size FROM runs ORDER BY run_id")
    assert dict(zip(sizes["run_id"], sizes["batch_size"])) == {"odd": "auto", "r0": "32", "r1": "32", "r2": "32", "r3": "32", "r4": "32"}
    write_run(store_dir, "p/odd", {**make_record("odd"), "epochs_completed": 2.5})  # a record key: corrupt
    store = Store(store_dir, warn=None)
    assert [s.reason for s in store.skipped] == ["run.json: epochs_completed: 2.5 is not an integer"]
    assert store.con.execute("SELECT typeof(batch_size) FROM runs LIMIT 1").fetchone()[0] == "BIGINT"


def test_replaced_shards_stay_readable_for_open_stores(store_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An open Store answers from the snapshot it loaded; a view not loaded yet whose shard files were
    collected meanwhile makes it reopen on the current cache (both views, so they stay consistent)."""
    reader = Store(store_dir)
    write_run(store_dir, "p/a/run0", make_record("r0", acc=0.2), [epoch_row(1)])
    Store(store_dir)  # another process refreshes: run0's shard is rewritten under a new name
    assert len(reader.query("SELECT * FROM runs")) == 5  # the old files are still there (grace period)
    assert reader.query("SELECT test_acc FROM runs WHERE run_id = 'r0'")["test_acc"][0] == pytest.approx(0.61)
    monkeypatch.setattr(cache_module, "GRACE_SECONDS", -1.0)
    write_run(store_dir, "p/a/run0", make_record("r0", acc=0.3), [epoch_row(1)])
    Store(store_dir)  # now replaced files are deleted at once
    # runs is loaded: the same snapshot, even though its files are gone
    assert reader.query("SELECT test_acc FROM runs WHERE run_id = 'r0'")["test_acc"][0] == pytest.approx(0.61)
    # epochs is not: its old files are gone, so the reader reopens its views on the current cache
    assert reader.query("SELECT count(*) AS n FROM epochs WHERE run_id = 'r0'")["n"][0] == 1
    got = reader.query("SELECT test_acc FROM runs WHERE run_id = 'r0'")
    assert got["test_acc"][0] == pytest.approx(0.31)
    reader.refresh()
    assert reader.query("SELECT test_acc FROM runs WHERE run_id = 'r0'")["test_acc"][0] == pytest.approx(0.31)


def test_concurrent_openers_share_one_consistent_cache(store_dir: Path) -> None:
    code = "import sys; from seedbench.store import Store; s = Store(sys.argv[1]); print(len(s.runs()), len(s.epochs()))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(store_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    assert {out for out, _ in outputs} == {"5 12\n"}
    assert Store(store_dir).last_refresh.read == []  # the cache they left is complete


# -- corrupt and half-written folders --------------------------------------------------------------


def test_corrupt_and_half_written_folders_are_skipped_and_counted(store_dir: Path) -> None:
    (store_dir / "bad/json").mkdir(parents=True)
    (store_dir / "bad/json/run.json").write_text('{"run_id": "x", "status": "fini')
    write_run(store_dir, "bad/nostatus", {k: v for k, v in make_record("ns").items() if k != "status"})
    write_run(store_dir, "bad/noconfig", {k: v for k, v in make_record("nc").items() if k != "config"})
    write_run(store_dir, "bad/notanumber", {**make_record("nn"), "val_acc": "high"})
    truncated = write_run(store_dir, "bad/truncated", make_record("tr"), [epoch_row(1)])
    with open(truncated / "epochs.jsonl", "a") as f:
        f.write('{"epoch": 2, "train_lo')
    (store_dir / "bad/orphan").mkdir(parents=True)
    (store_dir / "bad/orphan/epochs.jsonl").write_text(json.dumps(epoch_row(1)) + "\n")
    (store_dir / "bad/empty").mkdir(parents=True)
    (store_dir / "bad/empty/run.json").write_text("")
    # a running run caught mid-append is not corrupt: its unfinished last line waits for the next refresh
    live = write_run(store_dir, "ok/live", make_record("live", status="running"), [epoch_row(1)])
    with open(live / "epochs.jsonl", "a") as f:
        f.write('{"epoch": 2, "tra')

    with pytest.warns(StoreWarning, match=r"skipped 7 unreadable run folder"):
        store = Store(store_dir)
    reasons = {str(s.path.relative_to(store_dir)): s.reason for s in store.skipped}
    assert set(reasons) == {"bad/json", "bad/nostatus", "bad/noconfig", "bad/notanumber", "bad/truncated", "bad/orphan", "bad/empty"}
    assert "bad JSON" in reasons["bad/json"]
    assert "missing key 'status'" in reasons["bad/nostatus"]
    assert "missing key 'config'" in reasons["bad/noconfig"]
    assert "val_acc" in reasons["bad/notanumber"]
    assert "truncated line 2" in reasons["bad/truncated"]
    assert "without run.json" in reasons["bad/orphan"]
    assert "empty file" in reasons["bad/empty"]
    assert all("\n" not in r for r in reasons.values())
    assert store.n_skipped == 7 and store.last_refresh.skipped == 7
    # queries run on the rest
    assert store.query("SELECT count(*) AS n FROM runs")["n"][0] == 6
    assert store.query("SELECT count(*) AS n FROM epochs WHERE run_id = 'live'")["n"][0] == 1

    # skipped folders stay counted on the next open without being read again; fixing one brings it in
    (store_dir / "bad/json/run.json").write_text(json.dumps(make_record("fixed")))
    (live / "epochs.jsonl").write_text("".join(json.dumps(epoch_row(e)) + "\n" for e in (1, 2)))
    store = Store(store_dir, warn=None)
    assert sorted(store.last_refresh.read) == ["bad/json", "ok/live"]
    assert store.n_skipped == 6
    assert store.query("SELECT count(*) AS n FROM runs WHERE run_id = 'fixed'")["n"][0] == 1
    assert store.query("SELECT count(*) AS n FROM epochs WHERE run_id = 'live'")["n"][0] == 2


# -- errors ----------------------------------------------------------------------------------------


def _one_line_error(store: Store, sql: str) -> str:
    with pytest.raises(StoreError) as info:
        store.query(sql)
    message = str(info.value)
    assert "\n" not in message, message
    assert "runs has: run_id, path, method" in message and "epochs has: run_id, path, epoch" in message
    return message


def test_unknown_column_names_it_and_lists_the_columns(store_dir: Path) -> None:
    store = Store(store_dir)
    message = _one_line_error(store, "SELECT tst_acc FROM runs")
    assert message.startswith("unknown column 'tst_acc' (did you mean 'test_acc'?); runs has:")
    assert "num_bases" in message and "cosine" in message  # the data's own columns are listed too
    assert _one_line_error(store, "SELECT r.nope FROM runs r").startswith("unknown column 'nope'")
    assert _one_line_error(store, "SELECT avg(val_acc) FROM epochs GROUP BY methd").startswith("unknown column 'methd'")


def test_bad_sql_and_other_errors_are_one_line(store_dir: Path) -> None:
    store = Store(store_dir)
    assert _one_line_error(store, "SELEC * FROM runs").startswith("bad SQL: syntax error")
    assert _one_line_error(store, "SELECT * FROM rnus").startswith("unknown table 'rnus'")
    assert _one_line_error(store, "SELECT sum(model) FROM runs").startswith("query failed: Binder Error")
    assert _one_line_error(store, "COPY runs TO 'x.csv'").startswith("only SELECT queries are allowed (got COPY)")
    assert _one_line_error(store, "DROP VIEW runs").startswith("only SELECT queries are allowed")
    assert _one_line_error(store, "SELECT 1; SELECT 2").startswith("give exactly one SQL statement (got 2)")
    assert len(store.query("SELECT * FROM runs")) == 5  # the session is unharmed


def test_describe_and_parameters(store_dir: Path) -> None:
    store = Store(store_dir)
    described = store.query("DESCRIBE runs")
    assert list(described["column_name"]) == store.columns("runs")
    got = store.query("SELECT run_id FROM runs WHERE seed = ? AND model = ? ORDER BY run_id", [0, "fc"])
    assert list(got["run_id"]) == ["r0", "r4"]


def test_queries_and_exports_leave_the_run_folders_untouched(store_dir: Path, tmp_path: Path) -> None:
    before = tree_digest(store_dir)
    store = Store(store_dir)
    store.query("SELECT method, avg(test_acc) FROM runs GROUP BY method")
    store.query("SELECT * FROM epochs")
    store.export(tmp_path / "out", table="both")
    store.refresh(rebuild=True)
    assert tree_digest(store_dir) == before


def test_file_names_match_the_writer() -> None:
    from seedbench.store import EPOCHS_FILE, RUN_FILE

    try:
        from seedbench import record as writer  # where the run record is written since the method registry
    except ImportError:
        from seedbench.train import trial as writer  # type: ignore[no-redef]
    assert (RUN_FILE, EPOCHS_FILE) == (writer.RUN_FILE, writer.EPOCHS_FILE)


# -- export ---------------------------------------------------------------------------------------


def test_export_parquet_and_csv(store_dir: Path, tmp_path: Path) -> None:
    store = Store(store_dir)
    [runs_file] = store.export(tmp_path / "runs.parquet")
    expected = store.con.sql("SELECT * FROM runs ORDER BY path").to_arrow_table()
    # DuckDB's writer marks columns without NULLs as required; the values are what matters
    pd.testing.assert_frame_equal(pq.read_table(runs_file).cast(expected.schema).to_pandas(), expected.to_pandas())
    files = store.export(tmp_path / "both", format="csv", table="both")
    assert [f.name for f in files] == ["runs.csv", "epochs.csv"]
    epochs = pd.read_csv(files[1])
    assert len(epochs) == 12 and list(epochs.columns) == store.columns("epochs")
    with pytest.raises(StoreError, match="unknown export format"):
        store.export(tmp_path / "x.xlsx", format="xlsx")  # type: ignore[arg-type]


# -- command line, against a real sweep ---------------------------------------------------------------


def store_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "seedbench.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


@pytest.fixture(scope="module")
def swept_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("swept") / "store"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "seedbench.cli",
            "sweep",
            "--method",
            "sgd",
            "--model",
            "fc",
            "--dataset",
            "digits",
            "--seeds",
            "0-1",
            "--epochs",
            "2",
            "--set",
            "limit_train=64",
            "--set",
            "val_size=32",
            "--store",
            str(store),
            "--quiet",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    return store


def test_real_sweep_is_queryable(swept_store: Path) -> None:
    store = Store(swept_store)
    runs = store.query("SELECT * FROM runs ORDER BY seed")
    assert list(runs["seed"]) == [0, 1] and set(runs["status"]) == {"finished"}
    assert set(runs["model"]) == {"fc"} and runs["test_acc"].between(0, 1).all()
    assert (runs["run_id"].str.len() > 0).all() and runs["seeds_init"].notna().all()
    epochs = store.query("SELECT run_id, epoch FROM epochs ORDER BY run_id, epoch")
    assert len(epochs) == 4 and set(epochs["run_id"]) == set(runs["run_id"])
    assert store.skipped == []


def test_query_cli_formats(swept_store: Path) -> None:
    sql = "SELECT model, seed, test_acc FROM runs ORDER BY seed"
    expected = Store(swept_store).query(sql)
    csv_out = store_cli("query", sql, "--store", str(swept_store), "--format", "csv")
    assert csv_out.returncode == 0, csv_out.stderr
    from io import StringIO

    pd.testing.assert_frame_equal(pd.read_csv(StringIO(csv_out.stdout)), expected, check_dtype=False)
    json_out = store_cli("query", sql, "--store", str(swept_store), "--format", "json")
    assert json_out.returncode == 0, json_out.stderr
    assert [r["seed"] for r in json.loads(json_out.stdout)] == [0, 1]
    assert json.loads(json_out.stdout)[0]["test_acc"] == pytest.approx(expected["test_acc"][0])
    md = store_cli("query", sql, "--store", str(swept_store), "--format", "markdown")
    lines = md.stdout.strip().splitlines()
    assert md.returncode == 0 and lines[0].startswith("| model") and set(lines[1]) <= set("|-: ") and len(lines) == 4
    table = store_cli("query", sql, "--store", str(swept_store))
    assert table.returncode == 0 and "test_acc" in table.stdout and "2 rows" in table.stdout


def test_query_cli_error_is_one_line_exit_2(swept_store: Path) -> None:
    result = store_cli("query", "SELECT tst_acc FROM runs", "--store", str(swept_store))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: unknown column 'tst_acc'") and "runs has:" in lines[0]


def test_export_cli_parquet_and_csv(swept_store: Path, tmp_path: Path) -> None:
    store = Store(swept_store)
    out = store_cli("export", "--format", "parquet", "--table", "both", "-o", str(tmp_path / "pq"), "--store", str(swept_store))
    assert out.returncode == 0, out.stderr
    assert "wrote runs (2 rows)" in out.stdout and "wrote epochs (4 rows)" in out.stdout
    expected = store.con.sql("SELECT * FROM epochs ORDER BY path, epoch").to_arrow_table()
    back = pq.read_table(tmp_path / "pq" / "epochs.parquet").cast(expected.schema)
    pd.testing.assert_frame_equal(back.to_pandas(), expected.to_pandas())
    out = store_cli("export", "--format", "csv", "-o", str(tmp_path / "runs.csv"), "--store", str(swept_store))
    assert out.returncode == 0, out.stderr
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert list(runs.columns) == store.columns("runs") and sorted(runs["seed"]) == [0, 1]


def test_cli_help_has_examples() -> None:
    for command in ("query", "export"):
        result = store_cli(command, "--help")
        assert result.returncode == 0 and "examples:" in result.stdout and "--store" in result.stdout
