"""Output paths are checked before any work, with one line naming the path, the problem and the fix."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from seedbench.cli.outputs import check_output, check_output_dir
from seedbench.errors import ConfigError
from tests.conftest import ROOT
from tests.test_store import small_store

TABLES = {".csv", ".json"}


def refused(path: str | Path, *fragments: str, allowed: set[str] = TABLES) -> str:
    with pytest.raises(ConfigError) as info:
        check_output(str(path), allowed)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"-o {path}"), message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


def listing(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()}


def test_a_new_file_in_an_existing_folder_is_accepted_and_not_created(tmp_path: Path) -> None:
    before = listing(tmp_path)
    target = check_output(str(tmp_path / "table.CSV"), {"csv", ".json"})  # with or without the dot, any case
    assert target == tmp_path / "table.CSV" and target.is_absolute()
    assert listing(tmp_path) == before  # the write probe left nothing behind


def test_relative_paths_become_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert check_output("out.json", TABLES) == tmp_path / "out.json"


def test_an_existing_file_is_not_clobbered(tmp_path: Path) -> None:
    path = tmp_path / "old.csv"
    path.write_text("precious\n")
    before = path.stat()
    assert check_output(str(path), TABLES) == path
    after = path.stat()
    assert path.read_text() == "precious\n" and (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


def test_missing_folder(tmp_path: Path) -> None:
    refused(tmp_path / "nope" / "deeper" / "t.csv", "the folder", "does not exist", "mkdir -p")


def test_folder_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "report.txt").write_text("x")
    refused(tmp_path / "report.txt" / "t.csv", "is a file, not a folder")


def test_a_folder_instead_of_a_file(tmp_path: Path) -> None:
    (tmp_path / "out.csv").mkdir()
    refused(tmp_path / "out.csv", "is a folder, not a file", "give a file name")
    refused(f"{tmp_path}/", "is a folder")


def test_unsupported_or_missing_extension(tmp_path: Path) -> None:
    refused(tmp_path / "t.xlsx", "'.xlsx' is not supported", ".csv, .json")
    refused(tmp_path / "table", "has no extension", ".csv, .json")


def test_empty_path() -> None:
    with pytest.raises(ConfigError, match="empty output path"):
        check_output("", TABLES)


def test_a_device_is_not_a_file() -> None:
    refused("/dev/null", "not a regular file", allowed={""} | TABLES | {".null"})
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_an_unwritable_folder(tmp_path: Path) -> None:
    if os.geteuid() == 0:  # root writes through permission bits; /proc refuses new files to everyone
        refused("/proc/seedbench-output.csv", "cannot write in /proc")
        return
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        refused(locked / "t.csv", "cannot write in", "permission denied")
    finally:
        locked.chmod(0o700)


def test_output_folders(tmp_path: Path) -> None:
    assert check_output_dir(str(tmp_path / "new")) == tmp_path / "new" and not (tmp_path / "new").exists()
    assert check_output_dir(str(tmp_path)) == tmp_path
    (tmp_path / "file.csv").write_text("x")
    with pytest.raises(ConfigError, match="is a file, but this writes several files"):
        check_output_dir(str(tmp_path / "file.csv"))
    with pytest.raises(ConfigError, match="does not exist"):
        check_output_dir(str(tmp_path / "a" / "b"))


# -- the commands check -o before they read the store -------------------------------------------------


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "seedbench.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def one_error_line(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and "Traceback" not in result.stderr and len(lines) == 1, result.stderr
    return lines[0]


def test_export_checks_the_output_before_opening_the_store(tmp_path: Path) -> None:
    missing_store = tmp_path / "no-store"  # would be an error too, but -o is checked first
    line = one_error_line(cli("export", "--format", "csv", "-o", str(tmp_path / "nope" / "runs.csv"), "--store", str(missing_store)))
    assert line.startswith("error: -o ") and "does not exist" in line
    line = one_error_line(cli("export", "--format", "csv", "-o", str(tmp_path / "runs.parquet"), "--store", str(missing_store)))
    assert "'.parquet' is not supported here; use one of .csv" in line
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    line = one_error_line(cli("export", "--format", "csv", "-o", "/dev/null", "--store", str(missing_store)))
    assert "not a regular file" in line and stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_query_writes_to_a_checked_file(tmp_path: Path) -> None:
    store = small_store(tmp_path / "store")
    sql = "SELECT run_id, model FROM runs ORDER BY run_id"
    stdout = cli("query", sql, "--format", "csv", "--store", str(store))
    assert stdout.returncode == 0, stdout.stderr
    written = cli("query", sql, "-o", str(tmp_path / "runs.csv"), "--store", str(store))  # format from the extension
    assert written.returncode == 0, written.stderr
    assert (tmp_path / "runs.csv").read_text() == stdout.stdout and "wrote 5 rows" in written.stderr
    line = one_error_line(cli("query", "SELEC nonsense", "-o", str(tmp_path / "runs.xlsx"), "--store", str(store)))
    assert "'.xlsx' is not supported here" in line  # refused before the (bad) SQL ran
    line = one_error_line(cli("query", sql, "--format", "json", "-o", str(tmp_path / "runs.csv"), "--store", str(store)))
    assert "use one of .json" in line
