"""Every method runs end to end as a trial (library level) and as a machinable cell (CLI level)."""

import json
from pathlib import Path

import pytest

from seedbench.registry import get_method, method_names, resolve_method
from seedbench.train.trial import run_trial
from tests.conftest import run_cli

TINY = dict(dataset="digits", limit_train=96, val_size=48, epochs=1, batch_size=16, lr=0.05)
EXTRA = {
    "rbd": dict(dims=8),
    "fpd": dict(dims=8),
    "nes": dict(dims=4),
    "stabilized_strength": dict(stabilize_tries=3),
    "sup_walsh": dict(image_size=32, pretrain_epochs=1, pretrain_batch=48),
}


@pytest.mark.parametrize("method", method_names())
def test_every_method_trains_and_records(tmp_path, method):
    found, patch = resolve_method(method)  # aliases (pa_rewiring, ...) are their method with a patch
    cfg = found.config(model="fc", **TINY, **patch, **EXTRA.get(method, {}))
    record = run_trial(cfg, tmp_path, found)
    assert record["status"] == "finished", record
    assert record["method"] == found.name and 0.0 <= record["test_acc"] <= 1.0
    rows = [json.loads(line) for line in (tmp_path / "epochs.jsonl").read_text().splitlines()]
    assert len(rows) == 1
    if method in ("rbd", "fpd"):
        assert 0.0 < abs(rows[0]["cosine"]) <= 1.0  # the gradient/update cosine is logged per epoch
    if method == "nes":
        assert "nes_loss_mean" in rows[0]
    if method == "sup_walsh":
        assert record["prepare"]["arm"] == "with" and record["prepare"]["steps"] >= 1


def test_sup_walsh_arms_differ_only_before_main_training(tmp_path):
    base = dict(model="fc", **TINY, image_size=32, pretrain_epochs=1, pretrain_batch=48)
    cls = get_method("sup_walsh").config
    without = run_trial(cls(**base, supwalsh=False), tmp_path / "without")
    control = run_trial(cls(**base, supwalsh=False, control=True), tmp_path / "control")
    assert without["prepare"] == {"arm": "without"}
    assert control["prepare"]["arm"] == "control" and control["prepare"]["steps"] >= 1
    assert control["val_loss"] != without["val_loss"]  # the extra steps changed the starting weights


def test_rbd_and_pa_cells_through_the_cli(tmp_path):
    store = tmp_path / "store"
    result = run_cli(
        "sweep",
        "--method",
        "rbd,pa_rewiring",
        "--model",
        "fc",
        "--dataset",
        "digits",
        "--seeds",
        "0",
        "--store",
        str(store),
        "--epochs",
        "1",
        "--set",
        "limit_train=64",
        "--set",
        "val_size=32",
        "--quiet",
    )
    assert result.returncode == 0, result.stderr + result.stdout
    records = {r["method"]: r for r in (json.loads(p.read_text()) for p in Path(store).rglob("run.json"))}
    assert records["rbd"]["lr"] == 1.0  # the method's own default for fc-digits
    assert records["sgd"]["config"]["rewire"] is True and records["sgd"]["config"]["init"] == "orthogonal"  # pa_rewiring = sgd + pipeline
    assert records["sgd"]["arm"] == "sgd init=orthogonal +rewire"
