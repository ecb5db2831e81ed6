"""One cell of a grid, end to end: data -> model -> initializer -> optimizer -> training -> record.

Usable without machinable: `run_trial(SGDConfig(model="cnn", seed=3), Path("out"))`. The machinable
components call exactly this, so a study run by hand and one run by the engine are the same code.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import time
import traceback
from pathlib import Path
from typing import Any

import torch

from seedbench.config import TrialConfig
from seedbench.data import load_dataset
from seedbench.data.transforms import resize_dataset
from seedbench.methods.legacy import make_optimizer
from seedbench.models import build_model, count_parameters
from seedbench.seeding import stream_seeds
from seedbench.train.loop import DivergenceRules, TrainSettings, train

RUN_FILE = "run.json"
EPOCHS_FILE = "epochs.jsonl"
TRACEBACK_FILE = "traceback.txt"


def resolve_device(requested: str) -> str:
    """'auto': the device the engine assigned ($SEEDBENCH_DEVICE: "cuda" only for a cell that was given a GPU,
    which Ray exposes as the only visible one), else the GPU when this process can see one."""
    if requested == "auto":
        assigned = os.environ.get("SEEDBENCH_DEVICE")
        if assigned:
            return assigned
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def build_initialised_model(cfg: TrialConfig, in_shape: tuple[int, int, int], num_classes: int, init_seed: int) -> torch.nn.Module:
    """Build the model with weights drawn from the init stream only."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        model = build_model(cfg.model, in_shape, num_classes)
    if cfg.init != "xavier_uniform" or cfg.stabilize or cfg.rewire:
        from seedbench.init import init_model_

        init_model_(
            model,
            base=cfg.init,
            stabilize=cfg.stabilize,
            rewire=cfg.rewire,
            generator=torch.Generator().manual_seed(init_seed),
            tries=cfg.stabilize_tries,
        )
    return model


def pretrain_hook(cfg: TrialConfig, model: torch.nn.Module, data, device: str) -> dict[str, Any] | None:
    """Methods that change the model before main training (Sup-Walsh) do it here."""
    if getattr(cfg, "method", None) != "sup_walsh":
        return None
    from seedbench.train.supwalsh_trial import supwalsh_pretraining

    return supwalsh_pretraining(cfg, model, data, device)


def write_record(out_dir: Path, record: dict[str, Any]) -> None:
    """Write run.json atomically: readers see the old or the new record, never half of one."""
    tmp = out_dir / (RUN_FILE + ".tmp")
    tmp.write_text(json.dumps(record, indent=1, default=str))
    os.replace(tmp, out_dir / RUN_FILE)


def run_trial(cfg: TrialConfig, out_dir: Path, lr: float | None = None, run_id: str | None = None) -> dict[str, Any]:
    """Run one trial and record it in `out_dir` (run.json, epochs.jsonl, traceback.txt on failure)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    lr = lr if lr is not None else cfg.lr
    record: dict[str, Any] = {
        "run_id": run_id,
        "method": getattr(cfg, "method", None),
        "config": cfg.model_dump(),
        "lr": lr,
        "status": "running",
        "host": socket.gethostname(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "started_at": time.time(),
    }
    write_record(out_dir, record)
    epochs_path = out_dir / EPOCHS_FILE
    if epochs_path.exists():  # a retried run starts its curve afresh
        epochs_path.unlink()
    (out_dir / TRACEBACK_FILE).unlink(missing_ok=True)  # and drops the traceback of a failed earlier try
    try:
        if lr is None:
            raise ValueError("no learning rate: set lr in the config or in machinable.yaml's learning_rates")
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        device = resolve_device(cfg.device)
        seeds = stream_seeds(cfg.seed, {"init": cfg.init_seed, "data": cfg.data_seed, "augment": cfg.augment_seed})
        data = load_dataset(cfg.dataset, cfg.data_dir, cfg.val_size, cfg.limit_train)
        data = resize_dataset(data, cfg.image_size, cfg.grayscale)
        model = build_initialised_model(cfg, data.in_shape, data.num_classes, seeds["init"]).to(device)
        record["pretraining"] = pretrain_hook(cfg, model, data, device)
        optimizer = make_optimizer(model.parameters(), lr, cfg, seeds["method"])
        settings = TrainSettings(
            epochs=cfg.epochs,
            batch_size=cfg.batch_size,
            data_seed=seeds["data"],
            augment_seed=seeds["augment"],
            augment=cfg.augment,
            device=device,
            divergence=DivergenceRules(enabled=cfg.diverge_stop),
            metrics_path=epochs_path,
        )
        result = train(model, optimizer, data, settings)
        record.update(result)
        record.update({"D": count_parameters(model), "device": device, "seeds": seeds})
    except (KeyboardInterrupt, SystemExit) as exc:
        # stopped from outside (Ctrl-C; Ray ending the task of a driver that died): not the cell's fault,
        # so not "failed" - the next run of the sweep redoes it
        record.update({"status": "interrupted", "error": f"{type(exc).__name__}: {exc}"})
        raise
    except BaseException as exc:
        (out_dir / TRACEBACK_FILE).write_text(traceback.format_exc())
        record.update({"status": "failed", "error": f"{type(exc).__name__}: {exc}"})
        raise
    finally:
        record["finished_at"] = time.time()
        record["seconds"] = record["finished_at"] - record["started_at"]
        write_record(out_dir, record)
    return record
