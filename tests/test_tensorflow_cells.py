"""framework=tensorflow cells through the CLI: every random-bases method and SGD finish with D = 101,770 for FC."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli

TINY = [
    "--model",
    "fc",
    "--dataset",
    "digits",
    "--seeds",
    "0",
    "--epochs",
    "1",
    "--set",
    "framework=tensorflow",
    "--set",
    "limit_train=128",
    "--set",
    "val_size=64",
    "--quiet",
]


def test_tensorflow_cells_finish_and_record_their_framework(tmp_path: Path) -> None:
    store = tmp_path / "store"
    for args in (["--method", "sgd"], ["--method", "rbd,fpd,nes", "--set", "dims=16"]):
        result = run_cli("sweep", *args, *TINY, "--store", str(store))
        assert result.returncode == 0, result.stderr
    records = {r["method"]: r for r in (json.loads(p.read_text()) for p in store.rglob("run.json"))}
    assert set(records) == {"sgd", "rbd", "fpd", "nes"}
    for method, record in records.items():
        assert record["status"] == "finished", (method, record.get("error"))
        assert record["framework"] == "tensorflow" and record["config"]["framework"] == "tensorflow"
        assert record["D"] == 101_770
        assert record["arm"].endswith("[tensorflow]")
    # the same cell on torch is another cell (framework is part of the identity), recorded side by side
    torch_args = [a for a in TINY if a != "framework=tensorflow"]
    torch_args.remove("--set")  # the one that preceded framework=tensorflow
    torch_run = run_cli("sweep", "--method", "sgd", *torch_args, "--store", str(store))
    assert torch_run.returncode == 0, torch_run.stderr
    assert "trained 1" in torch_run.stdout


def test_tensorflow_refuses_what_its_runner_lacks(tmp_path: Path) -> None:
    result = run_cli("sweep", "--method", "rbd", "--preset", "hadamard", *TINY, "--store", str(tmp_path / "s"))
    assert result.returncode == 2 and "Hadamard" in result.stderr and len(result.stderr.strip().splitlines()) == 1
