"""`seedbench store export` / `import`: finished cells move between stores with their identity and results intact."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import run_cli

GRID = ["--method", "sgd,rbd", "--model", "fc", "--dataset", "digits", "--seeds", "0-1", "--epochs", "2"]
SMALL = ["--set", "limit_train=64", "--set", "val_size=32", "--quiet"]
REPORT_SQL = (
    "SELECT run_id, method, arm, model, dataset, seed, status, lr, epochs_completed, val_acc, best_val_acc, best_epoch, "
    "val_acc_last10, test_acc, D FROM runs ORDER BY run_id"
)


def _sweep(store: Path, *extra: str):
    return run_cli("sweep", *GRID, "--store", str(store), *SMALL, *extra)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real store: SGD and RBD on FC-digits, two seeds, two epochs each."""
    store = tmp_path_factory.mktemp("transfer") / "a"
    result = _sweep(store)
    assert result.returncode == 0, result.stderr
    assert "trained 4" in result.stdout
    return store


def _export(store: Path, target: Path, *extra: str) -> Path:
    result = run_cli("store", "export", "--store", str(store), "-o", str(target), *extra)
    assert result.returncode == 0, result.stderr
    return target


def _import(target: Path, store: Path, *extra: str):
    return run_cli("store", "import", str(target), "--store", str(store), *extra)


def _lines(path: Path) -> list[dict]:
    with gzip.open(path, "rt") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _write(path: Path, lines: list[dict]) -> Path:
    with gzip.open(path, "wt") as fh:
        fh.write("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _tree_hash(store: Path) -> str:
    """Every file of a store but the query cache and lock files, by content."""
    digest = hashlib.sha256()
    if store.exists():
        for path in sorted(p for p in store.rglob("*") if p.is_file()):
            rel = path.relative_to(store)
            if rel.parts[0] in (".seedbench-cache", ".seedbench") or path.name.endswith((".lock", "-shm", "-wal")):
                continue
            digest.update(str(rel).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _report(store: Path) -> tuple[str, str]:
    report = run_cli("report", "--store", str(store), "--format", "json")
    assert report.returncode == 0, report.stderr
    query = run_cli("query", REPORT_SQL, "--store", str(store), "--format", "json")
    assert query.returncode == 0, query.stderr
    return report.stdout, query.stdout


def test_export_then_import_into_an_empty_store_gives_the_same_report_and_sweeps_reuse_the_cells(source: Path, tmp_path: Path) -> None:
    exported = _export(source, tmp_path / "cells.jsonl.gz")
    lines = _lines(exported)
    assert lines[0]["format"] == "seedbench-cells" and lines[0]["cells"] == 4
    assert sorted(line["method"] for line in lines[1:]) == ["rbd", "rbd", "sgd", "sgd"]
    assert all(len(line["epochs"]) == 2 and line["run"]["status"] == "finished" for line in lines[1:])

    target = tmp_path / "b"
    first = _import(exported, target)
    assert first.returncode == 0, first.stderr
    assert "imported 4 cells" in first.stdout
    report_a, rows_a = _report(source)
    report_b, rows_b = _report(target)
    assert json.loads(report_a) and report_b == report_a  # the report of the imported store is the source's
    assert len(json.loads(rows_a)) == 4 and rows_b == rows_a  # and so is every record, run ids included
    folders = sorted(p.parent for p in target.rglob("run.json"))
    assert len(folders) == 4

    # identity intact: the stored identity of every imported cell is the exported one, and exporting
    # the imported store gives the same file byte for byte
    identities = {json.loads((folder / "id.json").read_text())["identity_key"] for folder in folders}
    assert identities == {line["identity"] for line in lines[1:]}
    assert _export(target, tmp_path / "again.jsonl.gz").read_bytes() == exported.read_bytes()

    # imported twice: stored once
    second = _import(exported, target)
    assert second.returncode == 0, second.stderr
    assert "imported 0 cells" in second.stdout and "4 already there with the same result" in second.stdout
    assert sorted(p.parent for p in target.rglob("run.json")) == folders

    # a later identical sweep reuses every imported cell instead of training it
    sweep = _sweep(target)
    assert sweep.returncode == 0, sweep.stderr
    assert "trained 0" in sweep.stdout and "reused 4" in sweep.stdout
    assert _report(target) == (report_a, rows_a)


def test_a_cell_repeated_in_the_file_is_stored_once(source: Path, tmp_path: Path) -> None:
    lines = _lines(_export(source, tmp_path / "cells.jsonl.gz"))
    doubled = _write(tmp_path / "doubled.jsonl.gz", [{**lines[0], "cells": 5}, *lines[1:], lines[1]])
    result = _import(doubled, tmp_path / "c")
    assert result.returncode == 0, result.stderr
    assert "imported 4 cells" in result.stdout and "1 repeated in the file, stored once" in result.stdout
    assert len(list((tmp_path / "c").rglob("run.json"))) == 4


def _one_line_refusal(result, fragment: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert fragment in lines[0], lines[0]


def test_a_conflicting_record_is_refused_in_one_line_and_nothing_changes(source: Path, tmp_path: Path) -> None:
    exported = _export(source, tmp_path / "cells.jsonl.gz")
    target = tmp_path / "b"
    assert _import(exported, target).returncode == 0
    before = _tree_hash(target)
    lines = _lines(exported)
    changed = json.loads(json.dumps(lines))
    changed[2]["run"]["val_acc"] = 0.123  # the same cell, another result
    result = _import(_write(tmp_path / "changed.jsonl.gz", changed), target)
    _one_line_refusal(result, "conflicts with the cell this store holds")
    assert "another result: val_acc" in result.stderr and "0.123 in the file" in result.stderr
    assert _tree_hash(target) == before

    # another curve with the same final numbers is a conflict too; timings alone are not
    curve = json.loads(json.dumps(lines))
    curve[1]["epochs"][0]["val_loss"] += 1.0
    _one_line_refusal(_import(_write(tmp_path / "curve.jsonl.gz", curve), target), "conflicts")
    timing = json.loads(json.dumps(lines))
    timing[1]["epochs"][0]["seconds"] += 5.0
    timing[1]["run"]["train_seconds"] = 1e6
    same = _import(_write(tmp_path / "timing.jsonl.gz", timing), target)
    assert same.returncode == 0 and "4 already there with the same result" in same.stdout
    assert _tree_hash(target) == before

    # within one file: the same cell twice with two results
    twice = [{**lines[0], "cells": 5}, *lines[1:], changed[2]]
    empty = tmp_path / "empty"
    _one_line_refusal(_import(_write(tmp_path / "twice.jsonl.gz", twice), empty), "the same cell with another result")
    assert not list(empty.rglob("run.json"))


def _bad_files(lines: list[dict], tmp_path: Path) -> dict[str, tuple[Path, str]]:
    def edit(name: str, fn) -> Path:
        copy = json.loads(json.dumps(lines))
        fn(copy)
        return _write(tmp_path / f"{name}.jsonl.gz", copy)

    plain = tmp_path / "plain.jsonl.gz"
    plain.write_text("not gzip")
    garbage = tmp_path / "garbage.jsonl.gz"
    garbage.write_bytes(gzip.compress(b"{not json\n"))
    return {
        "missing": (tmp_path / "nope.jsonl.gz", "no such file"),
        "not gzip": (plain, "not a gzip-compressed export"),
        "not an export": (garbage, "not a seedbench cell export"),
        "truncated": (edit("truncated", lambda c: c.pop()), "the header announces 4 cells but the file holds 3"),
        "bad line": (edit("badline", lambda c: c[1].pop("config")), "'config' missing"),
        "unknown method": (edit("method", lambda c: c[1].update(method="mystery", module="components.mystery")), "'mystery' is not registered here"),
        "refused config": (edit("config", lambda c: c[1]["config"].update(batch_size=-3)), "config refuses batch_size"),
        "identity": (edit("identity", lambda c: c[1].update(identity="0" * 24)), "the export says 000000000000000000000000"),
        "not ended": (edit("running", lambda c: c[1]["run"].update(status="running")), "only finished or diverged cells"),
    }


def test_bad_input_is_refused_in_one_line_and_writes_nothing(source: Path, tmp_path: Path) -> None:
    lines = _lines(_export(source, tmp_path / "cells.jsonl.gz"))
    for case, (path, fragment) in _bad_files(lines, tmp_path).items():
        target = tmp_path / f"store-{case.replace(' ', '-')}"
        result = _import(path, target)
        _one_line_refusal(result, fragment)
        assert not list(target.rglob("run.json")), case

    # into a store that holds cells already: a bad line after good ones still changes nothing
    held = tmp_path / "held"
    shutil.copytree(source, held)
    before = _tree_hash(held)
    broken = json.loads(json.dumps(lines))
    broken[4]["config"]["batch_size"] = -3
    _one_line_refusal(_import(_write(tmp_path / "late.jsonl.gz", broken), held), "config refuses batch_size")
    assert _tree_hash(held) == before


def test_export_leaves_out_unfinished_cells_and_refuses_bad_paths(source: Path, tmp_path: Path) -> None:
    store = tmp_path / "partial"
    shutil.copytree(source, store)
    folder = sorted(p.parent for p in store.rglob("run.json"))[0]
    (folder / "cached").unlink()  # as a cell killed before machinable marked it done
    record = json.loads((folder / "run.json").read_text())
    (folder / "run.json").write_text(json.dumps({**record, "status": "running"}))
    result = run_cli("store", "export", "--store", str(store), "-o", str(tmp_path / "p.jsonl.gz"))
    assert result.returncode == 0, result.stderr
    assert "exported 3 cells" in result.stdout and "1 not ended" in result.stdout

    only = run_cli("store", "export", "--store", str(source), "--where", "method = 'rbd'", "-o", str(tmp_path / "rbd.jsonl.gz"))
    assert only.returncode == 0 and "exported 2 cells" in only.stdout
    assert {line["method"] for line in _lines(tmp_path / "rbd.jsonl.gz")[1:]} == {"rbd"}

    _one_line_refusal(run_cli("store", "export", "--store", str(source), "-o", str(tmp_path / "x.json")), "name it *.jsonl.gz")
    _one_line_refusal(run_cli("store", "export", "--store", str(tmp_path / "none"), "-o", str(tmp_path / "x.jsonl.gz")), "does not exist")


def test_a_held_record_made_by_other_code_is_kept_never_overwritten(source: Path, tmp_path: Path) -> None:
    """A finished cell of the target store that today's sweep calls stale (trained by other code) still
    holds its result: an import of the same result leaves it, of another result is a conflict."""
    exported = _export(source, tmp_path / "cells.jsonl.gz")
    target = tmp_path / "b"
    assert _import(exported, target).returncode == 0
    for path in target.rglob("run.json"):
        record = json.loads(path.read_text())
        record["code_sha256"] = "0" * 64  # as if another version of the code had trained it
        path.write_text(json.dumps(record))
    dry = _sweep(target, "--dry-run")
    assert "4 stale" in dry.stdout.replace("\n", " "), dry.stdout + dry.stderr
    before = _tree_hash(target)
    again = _import(exported, target)
    assert again.returncode == 0 and "4 already there with the same result" in again.stdout
    assert _tree_hash(target) == before
    changed = _lines(exported)
    changed[1]["run"]["test_acc"] = 0.5
    _one_line_refusal(_import(_write(tmp_path / "changed.jsonl.gz", changed), target), "conflicts with the cell this store holds")
    assert _tree_hash(target) == before
