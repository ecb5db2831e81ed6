"""User SQL cannot write, delete, copy, attach, install, load, change settings or read outside the store.

Each attempt goes through the Python API (Store.query / Store.select) and through the real command
line (`python -m seedbench.cli query ...` and `report --where ...`). Afterwards the store - run
folders and cache, every byte - is unchanged and no file appeared outside it. The two layers are
also tested apart: the statement check alone, and DuckDB's own settings alone (SQL sent straight to
the connection, skipping the check).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from seedbench.errors import StoreError
from seedbench.store import CACHE_DIRNAME, Store
from seedbench.store.sql import check_statement, where_sql
from tests.conftest import ROOT
from tests.test_store import small_store

SECRET = "TOP-SECRET-LINE"


def tree_state(root: Path) -> dict[str, str]:
    """Every entry under `root`, cache included: kind, and for files the SHA-256 of the content.

    Nothing is excluded: opening an up-to-date store writes nothing (no manifest rewrite, the lock
    file is created once when the cache is built and never changes size).
    """
    state = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            state[rel] = "link:" + os.readlink(path)
        elif path.is_dir():
            state[rel] = "dir"
        else:
            state[rel] = "file:" + hashlib.sha256(path.read_bytes()).hexdigest()
    return state


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A store with its cache built, and an `outside` folder holding files a query must not read."""
    base = tmp_path_factory.mktemp("safety")
    store = small_store(base / "store")
    Store(store, warn=None).close()  # build the cache once: later opens must change nothing
    outside = base / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET + "\n")
    (outside / "secret.csv").write_text(f"a,b\n{SECRET},2\n")
    con = duckdb.connect()
    con.execute(f"COPY (SELECT '{SECRET}' AS s) TO '{outside / 'secret.parquet'}' (FORMAT parquet)")
    con.close()
    shard = sorted((store / CACHE_DIRNAME).glob("runs-*.parquet"))[0]
    return {"base": base, "store": store, "outside": outside, "shard": shard, "run_json": store / "p/a/run0/run.json"}


def attempts(w: dict[str, Path]) -> dict[str, str]:
    """Statements that would write, delete, copy, attach, install, load, reconfigure or read files."""
    out, shard, run_json = w["outside"], w["shard"], w["run_json"]
    return {
        "copy-to": f"COPY runs TO '{out}/runs.csv'",
        "copy-query-to-parquet": f"COPY (SELECT * FROM runs) TO '{out}/runs.parquet' (FORMAT parquet)",
        "explain-analyze-copy": f"EXPLAIN ANALYZE COPY (SELECT * FROM runs) TO '{out}/explained.csv'",
        "copy-overwrite-shard": f"COPY (SELECT 1 AS x) TO '{shard}' (FORMAT parquet, OVERWRITE, USE_TMP_FILE false)",
        "explain-analyze-overwrite-shard": f"EXPLAIN ANALYZE COPY (SELECT 1 AS x) TO '{shard}' (FORMAT parquet, OVERWRITE, USE_TMP_FILE false)",
        "explain-analyze-overwrite-run-json": f"EXPLAIN ANALYZE COPY (SELECT 1 AS x) TO '{run_json}' (FORMAT csv, USE_TMP_FILE false)",
        "export-database": f"EXPORT DATABASE '{out}/exported'",
        "attach": f"ATTACH '{out}/attached.duckdb' AS other",
        "install": "INSTALL httpfs",
        "load": "LOAD httpfs",
        "load-path": f"LOAD '{out}/evil.duckdb_extension'",
        "create-table": "CREATE TABLE stolen AS SELECT * FROM runs",
        "create-view": "CREATE VIEW v AS SELECT 1",
        "create-persistent-secret": "CREATE PERSISTENT SECRET s (TYPE s3, KEY_ID 'a', SECRET 'b')",
        "drop-view": "DROP VIEW runs",
        "insert": "INSERT INTO runs (run_id) VALUES ('x')",
        "update": "UPDATE runs SET model = 'x'",
        "delete": "DELETE FROM runs",
        "explain-analyze-delete": "EXPLAIN ANALYZE DELETE FROM runs",
        "pragma": "PRAGMA enable_profiling",
        "set-external-access": "SET enable_external_access = true",
        "set-profiling-output": f"SET profiling_output = '{out}/profile.json'",
        "read-csv-passwd": "SELECT * FROM read_csv('/etc/passwd')",
        "read-text-outside": f"SELECT content FROM read_text('{out}/secret.txt')",
        "read-blob-outside": f"SELECT content FROM read_blob('{out}/secret.txt')",
        "read-parquet-outside": f"SELECT * FROM read_parquet('{out}/secret.parquet')",
        "replacement-scan-path": f"SELECT * FROM '{out}/secret.csv'",
        "glob": "SELECT * FROM glob('/etc/*')",
        "subquery-read-text": f"SELECT * FROM runs WHERE run_id IN (SELECT content FROM read_text('{out}/secret.txt'))",
        "stacked-copy": f"SELECT 1; COPY runs TO '{out}/stacked.csv'",
        "stacked-select": "SELECT 1; SELECT 2",
        "checkpoint": "CHECKPOINT",
        "call": "CALL pragma_version()",
    }


def where_attempts(w: dict[str, Path]) -> dict[str, str]:
    """`--where` texts that try to escape the condition."""
    out = w["outside"]
    return {
        "where-stacked-copy": f"1=1; COPY (SELECT * FROM runs) TO '{out}/where.csv'",
        "where-stacked-select": "1=1; SELECT 1",
        "where-read-text": f"run_id IN (SELECT content FROM read_text('{out}/secret.txt'))",
        "where-read-parquet": f"(SELECT count(*) FROM read_parquet('{out}/secret.parquet')) > 0",
        "where-read-csv-passwd": "run_id IN (SELECT column0 FROM read_csv('/etc/passwd', header=false))",
        "where-close-and-union": f"1=1) UNION ALL (SELECT * FROM read_csv('{out}/secret.csv')",
    }


def snapshot(w: dict[str, Path]) -> tuple[dict[str, str], dict[str, str], set[str], bool]:
    """The store, the outside folder, what sits beside them, and whether DuckDB's default spill folder exists."""
    return tree_state(w["store"]), tree_state(w["outside"]), {p.name for p in w["base"].iterdir()}, (ROOT / ".tmp").exists()


def assert_unchanged(w: dict[str, Path], before: tuple) -> None:
    store, outside, base, spill = snapshot(w)
    assert store == before[0], "the store changed"
    assert outside == before[1], "a file appeared (or changed) outside the store"
    assert (base, spill) == before[2:]


def test_there_are_enough_attempts(world: dict[str, Path]) -> None:
    assert len(attempts(world)) + len(where_attempts(world)) >= 20


# -- Python API ---------------------------------------------------------------------------------------


def test_python_api_refuses_every_attempt(world: dict[str, Path]) -> None:
    before = snapshot(world)
    store = Store(world["store"], warn=None)
    for name, sql in attempts(world).items():
        with pytest.raises(StoreError) as info:
            store.query(sql)
        message = str(info.value)
        assert "\n" not in message and SECRET not in message, (name, message)
    for name, condition in where_attempts(world).items():
        with pytest.raises(StoreError) as info:
            store.select("runs", where=condition)
        assert "\n" not in str(info.value), name
    assert len(store.query("SELECT * FROM runs")) == 5  # the session is unharmed
    store.close()
    assert_unchanged(world, before)


def test_where_is_one_expression(world: dict[str, Path]) -> None:
    store = Store(world["store"], warn=None)
    assert list(store.select("runs", where="model = 'fc' AND seed >= 0 -- a comment")["run_id"]) == ["r0", "r1", "r4"]
    assert where_sql("status = 'finished'") == "(status = 'finished')"
    for bad in ("1=1; SELECT 1", "1=1 UNION ALL SELECT 1", "1=1 ORDER BY 1", "1=1) OR (1=1", "a, b", ""):
        with pytest.raises(StoreError, match="--where"):
            where_sql(bad)


# -- each layer on its own ------------------------------------------------------------------------------


def test_statement_check_alone_refuses_writes(world: dict[str, Path]) -> None:
    for name in (
        "copy-to",
        "explain-analyze-copy",
        "export-database",
        "attach",
        "install",
        "load",
        "create-table",
        "drop-view",
        "insert",
        "update",
        "delete",
        "explain-analyze-delete",
        "pragma",
        "set-external-access",
        "stacked-copy",
        "checkpoint",
    ):
        with pytest.raises(StoreError, match="only SELECT|exactly one"):
            check_statement(attempts(world)[name], {})


def test_duckdb_settings_alone_refuse_file_access(world: dict[str, Path]) -> None:
    """SQL sent straight to the connection, skipping the statement check: DuckDB itself refuses."""
    before = snapshot(world)
    store = Store(world["store"], warn=None)
    con = store.con
    blocked = (
        "copy-to",
        "copy-query-to-parquet",
        "explain-analyze-copy",
        "copy-overwrite-shard",
        "explain-analyze-overwrite-shard",
        "explain-analyze-overwrite-run-json",
        "export-database",
        "attach",
        "install",
        "load",
        "load-path",
        "create-persistent-secret",
        "pragma",
        "set-external-access",
        "set-profiling-output",
        "read-csv-passwd",
        "read-text-outside",
        "read-blob-outside",
        "read-parquet-outside",
        "replacement-scan-path",
        "glob",
        "subquery-read-text",
    )
    for name in blocked:
        with pytest.raises(duckdb.Error):
            con.execute(attempts(world)[name]).fetchall()
    for setting in ("enable_external_access", "lock_configuration"):
        value = con.execute("SELECT value FROM duckdb_settings() WHERE name = ?", [setting]).fetchone()[0]
        assert value == ("false" if setting == "enable_external_access" else "true")
    with pytest.raises(duckdb.Error, match="locked"):
        con.execute("RESET enable_external_access")
    store.close()
    assert_unchanged(world, before)


def test_export_still_writes_where_asked(world: dict[str, Path], tmp_path: Path) -> None:
    store = Store(world["store"], warn=None)
    [target] = store.export(tmp_path / "runs.csv", format="csv")
    assert target.read_text().count("\n") == 1 + 5


# -- command line -------------------------------------------------------------------------------------


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "seedbench.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def assert_refused(result: subprocess.CompletedProcess, what: str) -> None:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, (what, result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and len(lines) == 1 and lines[0].startswith("error: "), (what, result.stderr)
    assert SECRET not in result.stdout + result.stderr and result.stdout.strip() == "", what


def in_process(capsys: pytest.CaptureFixture[str], *args: str) -> subprocess.CompletedProcess:
    """The command's own entry point in this interpreter: what `seedbench ARGS` does, without 0.7 s of start-up."""
    from seedbench.cli.main import main

    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(["seedbench", *args], code, out, err)


# Through a real process too (the exit status and stderr a shell sees): one attempt of each kind.
SUBPROCESS_QUERIES = ("copy-to", "attach", "create-table", "read-text-outside", "stacked-copy", "pragma")
SUBPROCESS_WHERES = ("where-stacked-copy", "where-read-text")


def test_cli_query_refuses_every_attempt(world: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(world)
    assert set(SUBPROCESS_QUERIES) <= attempts(world).keys()
    for name, sql in attempts(world).items():
        assert_refused(in_process(capsys, "query", sql, "--store", str(world["store"])), name)
        if name in SUBPROCESS_QUERIES:
            assert_refused(cli("query", sql, "--store", str(world["store"])), name)
    assert_unchanged(world, before)


def test_cli_report_where_refuses_every_attempt(world: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(world)
    assert set(SUBPROCESS_WHERES) <= where_attempts(world).keys()
    for name, condition in where_attempts(world).items():
        assert_refused(in_process(capsys, "report", "--where", condition, "--store", str(world["store"])), name)
        if name in SUBPROCESS_WHERES:
            assert_refused(cli("report", "--where", condition, "--store", str(world["store"])), name)
    assert_unchanged(world, before)


# -- timestamps ----------------------------------------------------------------------------------------


def test_timestamp_results(world: dict[str, Path]) -> None:
    """TIMESTAMP WITH TIME ZONE results need pytz in DuckDB's Python client (a declared dependency)."""
    store = Store(world["store"], warn=None)
    sql = "SELECT run_id, to_timestamp(started_at) AS started, to_timestamp(started_at)::TIMESTAMP AS naive FROM runs ORDER BY run_id"
    frame = store.query(sql)
    columns, rows = store.fetch(sql)
    assert columns == ["run_id", "started", "naive"] and len(rows) == 5
    started = rows[0][1]
    assert started.tzinfo is not None and started.timestamp() == pytest.approx(1.7e9)
    assert frame["started"].iloc[0].timestamp() == pytest.approx(1.7e9)
    result = cli("query", sql, "--store", str(world["store"]), "--format", "json")
    assert result.returncode == 0, result.stderr
    assert '"started": "2023-11-14 22:13:20+00:00"' in result.stdout
