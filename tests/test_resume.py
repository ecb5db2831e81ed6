"""A cell killed mid-training resumes from its last epoch-end checkpoint and ends with the uninterrupted record.

The library tests interrupt train() from its epoch callback (after the epoch's row is written, before that
epoch's checkpoint), so the resumed run must also drop the row of the epoch it trains again. The CLI test
SIGKILLs a real sweep from inside its cell at epoch 7 of 10 and runs the same command again.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from seedbench.registry import get_method
from seedbench.train.checkpoint import CHECKPOINT_FILE, Checkpointing
from seedbench.train.loop import DivergenceRules, TrainSettings, train
from seedbench.train.trial import build_initialised_model, method_parts
from tests.conftest import run_cli

TIMING = {"seconds", "images_per_s", "train_seconds", "resumed_from_epoch"}


class Interrupted(Exception):
    pass


@pytest.fixture(scope="module")
def digits():
    from seedbench.data import load_dataset

    return load_dataset("digits", None, 100, 256)


def _run(
    method_name: str, digits, folder: Path, epochs: int, stop_at: int | None = None, augment: bool = False, **config
) -> tuple[dict, list[dict], torch.nn.Module]:
    """One cell as run_trial builds it; `stop_at` raises from the epoch callback of that epoch."""
    method = get_method(method_name)
    cfg = method.resolve({"model": "fc", "dataset": "digits", "epochs": epochs, **config})
    model, _ = build_initialised_model(cfg, digits.in_shape, digits.num_classes, init_seed=5, method=method)
    optimizer = method.optimizer(model.parameters(), cfg.lr, cfg, 9)
    parts = method_parts(method, cfg, optimizer, len(digits.x_train) // cfg.batch_size, 9)
    folder.mkdir(exist_ok=True)

    def on_epoch(row: dict) -> None:
        if stop_at is not None and row["epoch"] == stop_at:
            raise Interrupted

    settings = TrainSettings(
        epochs=epochs,
        batch_size=cfg.batch_size,
        data_seed=3,
        augment_seed=4,
        augment=augment,
        divergence=DivergenceRules(mode="none"),
        metrics_path=folder / "epochs.jsonl",
        on_epoch=on_epoch,
        checkpoint=Checkpointing(folder / CHECKPOINT_FILE, every=1),
    )
    result = train(model, optimizer, digits, settings, parts)
    rows = [json.loads(line) for line in (folder / "epochs.jsonl").read_text().splitlines()]
    return result, rows, model


def _same(a: dict, b: dict) -> None:
    assert {k: v for k, v in a.items() if k not in TIMING} == {k: v for k, v in b.items() if k not in TIMING}


@pytest.mark.parametrize(
    "method, config",
    [
        ("sgd", {"momentum": 0.9, "weight_decay": 1e-4}),
        ("rbd", {"dims": 20, "lr": 0.5}),
        ("nes", {"dims": 8, "lr": 0.2}),
    ],
)
def test_a_resumed_cell_equals_the_uninterrupted_one(method, config, digits, tmp_path: Path) -> None:
    whole, whole_rows, whole_model = _run(method, digits, tmp_path / "whole", 4, augment=True, **config)
    with pytest.raises(Interrupted):
        _run(method, digits, tmp_path / "cut", 4, stop_at=3, augment=True, **config)
    assert len((tmp_path / "cut" / "epochs.jsonl").read_text().splitlines()) == 3, "epoch 3's row was written"
    resumed, rows, model = _run(method, digits, tmp_path / "cut", 4, augment=True, **config)
    assert resumed["resumed_from_epoch"] == 2, "the last checkpoint is epoch 2's"
    _same(resumed, whole)
    assert len(rows) == 4
    for a, b in zip(rows, whole_rows, strict=True):
        _same(a, b)
    for p, q in zip(model.parameters(), whole_model.parameters(), strict=True):
        assert torch.equal(p, q)


def test_a_checkpoint_of_another_format_is_ignored(digits, tmp_path: Path) -> None:
    folder = tmp_path / "cell"
    folder.mkdir()
    (folder / CHECKPOINT_FILE).write_bytes(b"not a checkpoint")
    result, rows, _ = _run("sgd", digits, folder, 2)
    assert result["resumed_from_epoch"] is None and len(rows) == 2


KILLER = """
import os, signal
from pathlib import Path
from seedbench import register_method
from seedbench.methods.sgd import SGDConfig, sgd_optimizer
from seedbench import Method

FLAG = Path(__file__).with_name("kill-at-epoch-7")


def epoch(run):
    if run.epoch == 7 and FLAG.exists():
        FLAG.unlink()
        os.kill(os.getpid(), signal.SIGKILL)  # the whole sweep dies, as on a preempted node
    for _ in range(run.steps):
        run.step()


register_method(Method(name="sgd_killed", config=SGDConfig, optimizer=sgd_optimizer, epoch=epoch,
                       learning_rates={"default": {"*": 0.05}}))
"""


def _sweep(store: Path, plugin: Path) -> subprocess.CompletedProcess:
    args = ["sweep", "--plugin", str(plugin), "--method", "sgd_killed", "--model", "fc", "--dataset", "digits", "--seeds", "0"]
    return run_cli(*args, "--store", str(store), "--epochs", "10", "--set", "limit_train=192", "--set", "val_size=64", "--quiet", cwd=plugin.parent)


def test_killing_a_sweep_at_epoch_7_of_10_resumes_there(tmp_path: Path) -> None:
    plugin = tmp_path / "plugin" / "killer.py"
    plugin.parent.mkdir()
    plugin.write_text(KILLER)
    whole = _sweep(tmp_path / "whole", plugin)
    assert whole.returncode == 0, whole.stderr
    (plugin.parent / "kill-at-epoch-7").touch()
    killed = _sweep(tmp_path / "store", plugin)
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr[-500:])
    (folder,) = [p.parent for p in (tmp_path / "store").rglob("epochs.jsonl")]
    before = [json.loads(line) for line in (folder / "epochs.jsonl").read_text().splitlines()]
    assert len(before) == 6 and (folder / CHECKPOINT_FILE).exists()

    again = _sweep(tmp_path / "store", plugin)
    assert again.returncode == 0, again.stderr
    assert "resumed from a checkpoint 1" in again.stdout, again.stdout
    record = json.loads((folder / "run.json").read_text())
    (reference,) = [json.loads(p.read_text()) for p in (tmp_path / "whole").rglob("run.json")]
    assert record["status"] == "finished" and record["resumed_from_epoch"] == 6
    rows = [json.loads(line) for line in (folder / "epochs.jsonl").read_text().splitlines()]
    assert rows[:6] == before, "epochs 1-6 were not trained again (their rows, timings included, are the first run's)"
    whole_rows = [json.loads(line) for line in next((tmp_path / "whole").rglob("epochs.jsonl")).read_text().splitlines()]
    for a, b in zip(rows, whole_rows, strict=True):
        _same(a, b)
    for key in ("val_acc", "val_loss", "test_acc", "test_loss", "train_loss", "best_val_acc", "updates", "epochs_completed"):
        assert record[key] == reference[key], key
    assert not (folder / CHECKPOINT_FILE).exists(), "a finished cell's checkpoint is removed"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))


# ---- packs ------------------------------------------------------------------------------------------------


def _pack(method_name: str, digits, folder: Path, epochs: int, stop_at: int | None = None, **config) -> tuple[list[dict], list[list[dict]]]:
    """Two members of `method_name` trained as a pack, each checkpointing into its own folder."""
    from seedbench.train.packed import PackMember, PackSettings, train_packed

    method = get_method(method_name)
    members = []
    for k in range(2):
        cfg = method.resolve({"model": "fc", "dataset": "digits", "epochs": epochs, "seed": k, **config})
        model, _ = build_initialised_model(cfg, digits.in_shape, digits.num_classes, init_seed=10 + k, method=method)
        own = folder / f"member{k}"
        own.mkdir(parents=True, exist_ok=True)

        def on_epoch(row: dict, k: int = k) -> None:
            if stop_at is not None and k == 1 and row["epoch"] == stop_at:
                raise Interrupted

        members.append(
            PackMember(
                model=model,
                optimizer=method.optimizer(model.parameters(), cfg.lr, cfg, 20 + k),
                data_seed=30 + k,
                augment_seed=40 + k,
                metrics_path=own / "epochs.jsonl",
                divergence=DivergenceRules(mode="none"),
                on_epoch=on_epoch,
                checkpoint=Checkpointing(own / CHECKPOINT_FILE, every=1),
            )
        )
    settings = PackSettings(epochs=epochs, batch_size=32, augment=True, packed_step=method.packed_step)
    results = train_packed(members, digits, settings)
    rows = [[json.loads(line) for line in (folder / f"member{k}" / "epochs.jsonl").read_text().splitlines()] for k in range(2)]
    return results, rows


@pytest.mark.parametrize("method, config", [("sgd", {"momentum": 0.9}), ("rbd", {"dims": 20, "lr": 0.5})])
def test_a_resumed_pack_equals_the_uninterrupted_pack(method, config, digits, tmp_path: Path) -> None:
    whole, whole_rows = _pack(method, digits, tmp_path / "whole", 4, **config)
    with pytest.raises(Interrupted):
        _pack(method, digits, tmp_path / "cut", 4, stop_at=3, **config)
    resumed, rows = _pack(method, digits, tmp_path / "cut", 4, **config)
    assert [r["resumed_from_epoch"] for r in resumed] == [2, 2]
    for a, b in zip(resumed, whole, strict=True):
        _same(a, b)
    for member_rows, member_whole in zip(rows, whole_rows, strict=True):
        assert len(member_rows) == 4
        for a, b in zip(member_rows, member_whole, strict=True):
            _same(a, b)


def test_members_stopped_at_different_epochs_resume_solo(digits, tmp_path: Path) -> None:
    with pytest.raises(Interrupted):
        _pack("sgd", digits, tmp_path / "cut", 4, stop_at=3)
    (tmp_path / "cut" / "member0" / CHECKPOINT_FILE).unlink()
    with pytest.raises(ValueError, match="different epochs"):
        _pack("sgd", digits, tmp_path / "cut", 4)
    # each member's checkpoint is in the solo loop's format: the solo path resumes it
    payload = torch.load(tmp_path / "cut" / "member1" / CHECKPOINT_FILE, weights_only=True)
    assert len(payload["history"]) == 2 and set(payload) >= {"model", "optimizer", "rng", "batches", "history"}


# ---- TensorFlow ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method, config", [("sgd", {"momentum": 0.9}), ("nes", {"dims": 8, "lr": 0.2})])
def test_a_tensorflow_cell_resumes_exactly(method, config, digits, tmp_path: Path) -> None:
    """The last epoch is never checkpointed, so a second run of a 3-epoch cell resumes from epoch 2's
    checkpoint and trains epoch 3 again: it must end exactly where the first run ended."""
    pytest.importorskip("tensorflow", reason="the tensorflow group is not installed (make test installs it)")
    from seedbench.seeding import stream_seeds
    from seedbench.train.tf_runner import train_tensorflow

    m = get_method(method)
    cfg = m.resolve({"model": "fc", "dataset": "digits", "epochs": 3, "framework": "tensorflow", "augment": True, **config})
    seeds = stream_seeds(4)
    checkpoint = Checkpointing(tmp_path / CHECKPOINT_FILE, every=1)
    first = train_tensorflow(m, cfg, digits, seeds, metrics_path=tmp_path / "epochs.jsonl", checkpoint=checkpoint)
    first_rows = [json.loads(line) for line in (tmp_path / "epochs.jsonl").read_text().splitlines()]
    assert first["resumed_from_epoch"] is None and (tmp_path / CHECKPOINT_FILE).exists()
    again = train_tensorflow(m, cfg, digits, seeds, metrics_path=tmp_path / "epochs.jsonl", checkpoint=checkpoint)
    rows = [json.loads(line) for line in (tmp_path / "epochs.jsonl").read_text().splitlines()]
    assert again["resumed_from_epoch"] == 2
    _same(again, first)
    assert len(rows) == 3
    for a, b in zip(rows, first_rows, strict=True):
        _same(a, b)
