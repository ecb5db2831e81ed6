import json
from pathlib import Path

import pytest
import torch

from seedbench.data.datasets import Dataset
from seedbench.methods.sgd import SGDConfig
from seedbench.seeding import derive_seed, stream_seeds
from seedbench.train.loop import DivergenceRules, TrainSettings, summarize_val_acc, train
from seedbench.train.trial import build_initialised_model, run_trial

TINY = dict(dataset="digits", limit_train=256, val_size=100, epochs=2, batch_size=32, lr=0.05)


def _epochs(path: Path) -> list[dict]:
    return [json.loads(line) for line in (path / "epochs.jsonl").read_text().splitlines()]


def test_run_records_epochs_and_final_metrics(tmp_path):
    record = run_trial(SGDConfig(model="fc", **TINY), tmp_path)
    assert record["status"] == "finished" and record["D"] == 101_770
    assert 0.0 <= record["test_acc"] <= 1.0
    rows = _epochs(tmp_path)
    assert [r["epoch"] for r in rows] == [1, 2]
    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "seconds", "images_per_s"):
        assert rows[-1][key] is not None
    on_disk = json.loads((tmp_path / "run.json").read_text())
    assert on_disk["status"] == "finished" and on_disk["val_acc"] == rows[-1]["val_acc"]


def test_same_seed_same_result_and_different_seed_differs(tmp_path):
    a = run_trial(SGDConfig(model="cnn", seed=7, **TINY), tmp_path / "a")
    b = run_trial(SGDConfig(model="cnn", seed=7, **TINY), tmp_path / "b")
    c = run_trial(SGDConfig(model="cnn", seed=8, **TINY), tmp_path / "c")
    timing = {"seconds", "images_per_s"}
    strip = lambda rows: [{k: v for k, v in r.items() if k not in timing} for r in rows]  # noqa: E731
    assert strip(_epochs(tmp_path / "a")) == strip(_epochs(tmp_path / "b"))
    assert a["val_loss"] == b["val_loss"]
    assert c["val_loss"] != a["val_loss"]


def test_streams_are_independent_so_only_init_can_vary():
    base = stream_seeds(3)
    varied = stream_seeds(3, {"init": 99})
    assert varied["init"] != base["init"]
    assert {k: v for k, v in varied.items() if k != "init"} == {k: v for k, v in base.items() if k != "init"}
    assert len(set(base.values())) == len(base)  # four distinct streams
    assert derive_seed(0, "init") != derive_seed(1, "init")


def test_init_seed_changes_weights_only():
    cfg_a = SGDConfig(model="fc", seed=1, init_seed=5)
    cfg_b = SGDConfig(model="fc", seed=2, init_seed=5)
    seeds_a = stream_seeds(cfg_a.seed, {"init": cfg_a.init_seed})
    seeds_b = stream_seeds(cfg_b.seed, {"init": cfg_b.init_seed})
    wa, _ = build_initialised_model(cfg_a, (1, 28, 28), 10, seeds_a["init"])
    wb, _ = build_initialised_model(cfg_b, (1, 28, 28), 10, seeds_b["init"])
    assert all(torch.equal(p, q) for p, q in zip(wa.parameters(), wb.parameters()))
    assert seeds_a["data"] != seeds_b["data"]


def test_divergence_is_recorded_not_raised(tmp_path):
    record = run_trial(SGDConfig(model="fc", **{**TINY, "lr": 1e6}), tmp_path)
    assert record["status"] == "diverged"
    assert "loss" in record["reason"] or "accuracy" in record["reason"]
    assert record.get("test_acc") is None  # no test evaluation of a diverged run
    assert json.loads((tmp_path / "run.json").read_text())["status"] == "diverged"


def test_low_accuracy_after_epoch_four_counts_as_divergence(tmp_path):
    # lr so small nothing is learned: accuracy stays at chance (<= 15%); the reference tests `epoch > 4`,
    # so epochs 1-4 are spared and the run stops after epoch 5
    record = run_trial(SGDConfig(model="fc", **{**TINY, "lr": 1e-9, "epochs": 7}), tmp_path)
    assert record["status"] == "diverged"
    assert record["reason"].startswith("stop rule 'accuracy': validation accuracy")
    assert record["reason"].endswith("after epoch 5")
    assert record["epochs_completed"] == 5
    off = run_trial(SGDConfig(model="fc", **{**TINY, "lr": 1e-9, "epochs": 6, "stop_rule": "none"}), tmp_path / "off")
    assert off["status"] == "finished" and off["epochs_completed"] == 6


def test_summary_of_validation_accuracy():
    rows = [{"epoch": e, "val_acc": a} for e, a in enumerate([0.1, 0.5, 0.3, 0.5, 0.2], start=1)]
    assert summarize_val_acc(rows) == {
        "best_val_acc": 0.5,
        "best_epoch": 2,  # the first of the tied best
        "val_acc_last10": pytest.approx(1.6 / 5),
    }  # fewer than 10: all of them
    twelve = [{"epoch": e, "val_acc": e / 100} for e in range(1, 13)]
    summary = summarize_val_acc(twelve)
    assert summary["best_epoch"] == 12 and summary["best_val_acc"] == 0.12
    assert summary["val_acc_last10"] == pytest.approx(sum(range(3, 13)) / 1000)  # epochs 3..12
    assert summarize_val_acc([]) == {"best_val_acc": None, "best_epoch": None, "val_acc_last10": None}


def test_train_reports_best_and_recent_validation_accuracy():
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(300, 1, 4, 4, generator=gen), torch.randint(0, 3, (300,), generator=gen)
    data = Dataset(
        name="synthetic",
        x_train=x[:100],
        y_train=y[:100],
        x_val=x[100:200],
        y_val=y[100:200],
        x_test=x[200:],
        y_test=y[200:],
        num_classes=3,
        source="test",
    )
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    rows = []
    settings = TrainSettings(epochs=12, batch_size=10, data_seed=1, augment_seed=2, divergence=DivergenceRules(mode="none"), on_epoch=rows.append)
    result = train(model, torch.optim.SGD(model.parameters(), lr=0.5), data, settings)
    accs = [r["val_acc"] for r in rows]
    assert len(accs) == 12 and len(set(accs)) > 1, "the run must move for the check to mean anything"
    assert result["best_val_acc"] == max(accs)
    assert result["best_epoch"] == accs.index(max(accs)) + 1
    assert result["val_acc_last10"] == pytest.approx(sum(accs[2:]) / 10)
    assert result["updates"] == rows[-1]["updates"] == 12 * 10


def test_failure_is_recorded_with_traceback(tmp_path):
    from seedbench.errors import SeedbenchError

    with pytest.raises(SeedbenchError, match="unknown model 'nope'"):
        run_trial(SGDConfig(model="nope", **TINY), tmp_path)
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["status"] == "failed" and "nope" in record["error"]
    assert "Traceback" in (tmp_path / "traceback.txt").read_text()


def test_augmented_training_runs(tmp_path):
    record = run_trial(SGDConfig(model="cnn", augment=True, **TINY), tmp_path)
    assert record["status"] == "finished"
