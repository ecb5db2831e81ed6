"""One cell of a grid, end to end: data -> model -> initializer -> method hook -> optimizer -> training -> record.

Usable without machinable or Ray:

    from seedbench import run_trial
    from seedbench.methods.sgd import SGDConfig
    run_trial(SGDConfig(model="cnn", seed=3), "out")

The engines call exactly this, so a study run by hand and one run by the engine are the same code.
Nothing here knows any particular method: the Method (seedbench.methods) supplies the optimizer and
the optional model hook.
"""

from __future__ import annotations

import json
import os
import socket
import time
import traceback
from pathlib import Path
from typing import Any

from seedbench.config import DEVICE_ENV, PLACEMENT_ENV, Placement, TrialConfig
from seedbench.methods.base import Method
from seedbench.record import EPOCHS_FILE, TRACEBACK_FILE, RunRecord, write_record
from seedbench.seeding import seed_torch


def resolve_device(requested: str) -> str:
    """'auto': the device the engine assigned ($SEEDBENCH_DEVICE: "cuda" only for a cell that was given a GPU,
    which Ray exposes as the only visible one), else the GPU when this process can see one."""
    import torch

    if requested == "auto":
        assigned = os.environ.get(DEVICE_ENV)
        if assigned:
            return assigned
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def method_of(cfg: TrialConfig) -> Method:
    """The registered method whose config class `cfg` is (for run_trial(SGDConfig(...), ...))."""
    from seedbench.errors import ConfigError
    from seedbench.registry import get_method, method_names

    for name in method_names(aliases=False):
        method = get_method(name)
        if type(cfg) is method.config:
            return method
    raise ConfigError(f"{type(cfg).__name__} is no registered method's config; pass method=NAME")


def build_initialised_model(
    cfg: TrialConfig, in_shape: tuple[int, int, int], num_classes: int, init_seed: int, method: Method | None = None
) -> tuple[Any, str]:
    """The model with weights drawn from the init stream only, and the name of the init that really ran.

    A method's `initialize` hook runs last, on the init stream too, so an initializer of a user's own
    is seeded, reproducible and packed like the built-in pipelines.
    """
    import torch

    from seedbench.registry import get_model

    spec = get_model(cfg.model)
    with torch.random.fork_rng(devices=[]):
        seed_torch(init_seed)
        model = spec.builder()(tuple(in_shape), num_classes)
    base = cfg.init or spec.default_init
    if base != spec.default_init or cfg.stabilize or cfg.rewire:
        from seedbench.init import init_model_

        init_model_(
            model,
            base=base,
            stabilize=cfg.stabilize,
            rewire=cfg.rewire,
            generator=torch.Generator().manual_seed(init_seed),
            tries=cfg.stabilize_tries,
        )
    if method is not None and method.initialize is not None:
        from seedbench.seeding import child_seed

        method.initialize(model, cfg, torch.Generator().manual_seed(child_seed(init_seed, "initialize")))
    return model, base


def method_parts(method: Method, cfg: TrialConfig, optimizer: Any, steps_per_epoch: int, method_seed: int):
    """What the loop needs of `method` for this cell besides its optimizer (seedbench.train.loop.MethodParts)."""
    import torch

    from seedbench.seeding import child_seed
    from seedbench.train.loop import MethodParts
    from seedbench.train.steps import cross_entropy

    return MethodParts(
        loss=method.loss(cfg) if method.loss is not None else cross_entropy,
        step=method.step,
        epoch=method.epoch,
        init_state=method.init_state,
        schedule=method.schedule(optimizer, cfg, steps_per_epoch) if method.schedule is not None else None,
        schedule_interval=method.schedule_interval,
        cfg=cfg,
        # the method's own stream, apart from the optimizer's (which is seeded from the method seed itself)
        generator=torch.Generator().manual_seed(child_seed(method_seed, "state")),
    )


def divergence_rules(cfg: TrialConfig):
    from seedbench.train.loop import DivergenceRules

    return DivergenceRules.from_config(cfg.stop_rule or "accuracy", cfg.stop_min_acc, cfg.stop_acc_after_epoch)


def new_record(method: Method, cfg: TrialConfig, place: Placement, run_id: str | None) -> RunRecord:
    """A run's record as it starts: what runs, where, and the code and software that run it (seedbench.provenance)."""
    from seedbench.provenance import record_fields
    from seedbench.registry import loaded_plugins

    return RunRecord(
        run_id=run_id,
        method=method.name,
        config=cfg.model_dump(),
        lr=cfg.lr,
        framework=cfg.framework,
        host=socket.gethostname(),
        started_at=time.time(),
        placement=place.model_dump(),
        plugins=loaded_plugins() or None,
        **record_fields(method, cfg.framework, resolve_device(place.device)),
    )


def run_trial(
    cfg: TrialConfig,
    out_dir: str | Path,
    method: Method | str | None = None,
    placement: Placement | dict[str, Any] | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    """Run one trial and record it in `out_dir` (run.json, epochs.jsonl, traceback.txt on failure).

    `cfg` is validated again through the method (lr and stop rule filled from the method's defaults).
    """

    from seedbench.registry import get_method

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    method = get_method(method) if isinstance(method, str) else (method or method_of(cfg))
    cfg = method.resolve(cfg.model_dump())
    place = placement if isinstance(placement, Placement) else Placement(**(placement or {}))
    record = new_record(method, cfg, place, run_id)
    write_record(out_dir, record)
    epochs_path = out_dir / EPOCHS_FILE
    epochs_path.unlink(missing_ok=True)  # a retried run starts its curve afresh
    (out_dir / TRACEBACK_FILE).unlink(missing_ok=True)  # and drops the traceback of a failed earlier try
    try:
        result = _train(cfg, method, place, epochs_path, record)
        for key, value in result.items():
            setattr(record, key, value)
    except (KeyboardInterrupt, SystemExit) as exc:
        # stopped from outside (Ctrl-C; Ray ending the task of a driver that died): not the cell's fault,
        # so not "failed" - the next run of the sweep redoes it
        record.status, record.error = "interrupted", f"{type(exc).__name__}: {exc}"
        raise
    except BaseException as exc:
        (out_dir / TRACEBACK_FILE).write_text(traceback.format_exc())
        record.status, record.error = "failed", f"{type(exc).__name__}: {exc}"
        raise
    finally:
        record.finished_at = time.time()
        record.seconds = record.finished_at - (record.started_at or record.finished_at)
        write_record(out_dir, record)
    if record.status in ("finished", "diverged") and not place.keep_checkpoint:
        from seedbench.train.checkpoint import CHECKPOINT_FILE

        (out_dir / CHECKPOINT_FILE).unlink(missing_ok=True)  # only once the record that replaces it is written
    return record.model_dump()


def _train(cfg: TrialConfig, method: Method, place: Placement, epochs_path: Path, record: RunRecord) -> dict[str, Any]:
    import torch

    from seedbench.data import load_dataset
    from seedbench.data.augment import augment_options
    from seedbench.data.transforms import resize_dataset
    from seedbench.models import count_parameters
    from seedbench.registry import get_model
    from seedbench.seeding import stream_seeds
    from seedbench.train.loop import TrainSettings, train

    if place.num_threads:
        torch.set_num_threads(place.num_threads)
    device = resolve_device(place.device)
    seeds = stream_seeds(cfg.seed, {"init": cfg.init_seed, "data": cfg.data_seed, "augment": cfg.augment_seed})
    data = load_dataset(cfg.dataset, place.data_dir, cfg.val_size, cfg.limit_train, cfg.val_split, seeds["data"])
    data = resize_dataset(data, cfg.image_size, cfg.grayscale)
    data.augment_options = augment_options(cfg)
    model, init_applied = build_initialised_model(cfg, data.in_shape, data.num_classes, seeds["init"], method)
    record.init_applied, record.seeds, record.device = init_applied, seeds, device
    record.arm = method.arm_label(cfg, get_model(cfg.model).default_init)
    from seedbench.train.checkpoint import CHECKPOINT_FILE, Checkpointing, peek_meta

    if cfg.framework == "tensorflow":
        # the same initial weights as the torch cell (the same init stream), in Keras's layout: with the
        # same batches and augmentation, the framework is the only difference between the two cells
        from seedbench.train.tf_models import keras_weights_from_torch
        from seedbench.train.tf_runner import train_tensorflow

        weights = keras_weights_from_torch(model, data.in_shape)
        checkpointing = Checkpointing(epochs_path.parent / CHECKPOINT_FILE, every=place.checkpoint_every, keep=place.keep_checkpoint)
        return train_tensorflow(method, cfg, data, seeds, metrics_path=epochs_path, initial_weights=weights, checkpoint=checkpointing)
    model = model.to(device)

    checkpoint_path = epochs_path.parent / CHECKPOINT_FILE
    resumed = peek_meta(checkpoint_path)
    if resumed is not None:  # the weights after prepare are in the checkpoint: a pretraining hook runs once
        record.prepare = resumed.get("prepare")
    elif method.prepare is not None:
        record.prepare = method.prepare(cfg, model, data, device, seeds)
    optimizer = method.optimizer(model.parameters(), cfg.lr, cfg, seeds["method"]) if method.optimizer is not None else None
    parts = method_parts(method, cfg, optimizer, len(data.x_train) // cfg.batch_size, seeds["method"])
    settings = TrainSettings(
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        data_seed=seeds["data"],
        augment_seed=seeds["augment"],
        augment=cfg.augment,
        device=device,
        divergence=divergence_rules(cfg),
        metrics_path=epochs_path,
        checkpoint=Checkpointing(checkpoint_path, every=place.checkpoint_every, keep=place.keep_checkpoint, meta={"prepare": record.prepare}),
    )
    result = train(model, optimizer, data, settings, parts)
    result["D"] = count_parameters(model)
    return result


def run_cell(method: str, params: dict[str, Any], out_dir: str | Path, run_id: str | None = None) -> dict[str, Any]:
    """What an engine's worker runs: plugins and placement come from the environment the driver set."""
    from seedbench.registry import load_plugins_from_env, resolve_method

    load_plugins_from_env()
    done = packed_result(out_dir)
    if done is not None:  # trained moments ago as a member of a pack: machinable only records it
        return done
    found, _ = resolve_method(method)
    placement = json.loads(os.environ.get(PLACEMENT_ENV) or "{}")
    return run_trial(found.resolve(params), out_dir, found, placement, run_id)


PACK_ENV = "SEEDBENCH_PACK_ID"  # set while a worker finalises the members of a pack it just trained


def packed_result(out_dir: str | Path) -> dict[str, Any] | None:
    """The record a pack of this task wrote into `out_dir`, if it holds a complete one (then no retraining)."""
    from seedbench.record import read_record_dict

    pack_id = os.environ.get(PACK_ENV)
    if not pack_id:
        return None
    record = read_record_dict(out_dir)
    return record if record.get("pack_id") == pack_id and record.get("status") in ("finished", "diverged") else None


def run_pack(
    members: list[tuple[Method, TrialConfig, str | Path, str | None]],
    placement: Placement | dict[str, Any] | None,
    pack_id: str,
) -> list[dict[str, Any]]:
    """Train cells that differ only in their seeds as one vectorized pack; each gets its own ordinary record.

    Every member is built exactly as run_trial builds it (its own init, data, augmentation and method
    streams), so its record matches its solo run within the tolerance in docs/benchmarks.md
    ("Seed packing"). A member that diverges is recorded as diverged at that epoch; the others go on.
    Raises when the pack as a whole cannot be trained; the caller then runs the members solo.
    """
    import torch

    from seedbench.data import load_dataset
    from seedbench.data.augment import augment_options
    from seedbench.data.transforms import resize_dataset
    from seedbench.models import count_parameters
    from seedbench.registry import get_model
    from seedbench.seeding import stream_seeds
    from seedbench.train.checkpoint import CHECKPOINT_FILE, Checkpointing, peek_meta
    from seedbench.train.packed import PackMember, PackSettings, train_packed

    place = placement if isinstance(placement, Placement) else Placement(**(placement or {}))
    if place.num_threads:
        torch.set_num_threads(place.num_threads)
    device = resolve_device(place.device)
    resolved = [(method, method.resolve(cfg.model_dump()), Path(out), run_id) for method, cfg, out, run_id in members]
    first = resolved[0][1]
    methods = {method.name for method, *_ in resolved}
    if len(methods) != 1 or not resolved[0][0].packable:
        raise ValueError(f"a pack trains cells of one packable method, got {sorted(methods)}")
    if first.val_split != "fixed" and len(resolved) > 1:  # each member would hold out other images
        raise ValueError(f"val_split={first.val_split} gives every seed its own validation split: train these cells solo (--pack 1)")
    split_seed = stream_seeds(first.seed, {"data": first.data_seed})["data"]
    data = load_dataset(first.dataset, place.data_dir, first.val_size, first.limit_train, first.val_split, split_seed)
    data = resize_dataset(data, first.image_size, first.grayscale)
    data.augment_options = augment_options(first)
    records, pack = [], []
    for method, cfg, out_dir, run_id in resolved:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / EPOCHS_FILE).unlink(missing_ok=True)
        (out_dir / TRACEBACK_FILE).unlink(missing_ok=True)
        seeds = stream_seeds(cfg.seed, {"init": cfg.init_seed, "data": cfg.data_seed, "augment": cfg.augment_seed})
        model, init_applied = build_initialised_model(cfg, data.in_shape, data.num_classes, seeds["init"], method)
        model = model.to(device)
        record = new_record(method, cfg, place, run_id)
        record.arm = method.arm_label(cfg, get_model(cfg.model).default_init)
        record.init_applied, record.seeds, record.device = init_applied, seeds, device
        record.pack_size, record.pack_id = len(members), pack_id
        checkpoint_path = out_dir / CHECKPOINT_FILE
        resumed = peek_meta(checkpoint_path)
        if resumed is not None:  # its weights after prepare are in its checkpoint
            record.prepare = resumed.get("prepare")
        elif method.prepare is not None:  # per member, on its own model, as its solo run does before training
            record.prepare = method.prepare(cfg, model, data, device, seeds)
        write_record(out_dir, record)
        records.append(record)
        pack.append(
            PackMember(
                model=model,
                optimizer=method.optimizer(model.parameters(), cfg.lr, cfg, seeds["method"]),
                data_seed=seeds["data"],
                augment_seed=seeds["augment"],
                metrics_path=out_dir / EPOCHS_FILE,
                divergence=divergence_rules(cfg),
                name=str(out_dir),
                checkpoint=Checkpointing(checkpoint_path, every=place.checkpoint_every, keep=place.keep_checkpoint, meta={"prepare": record.prepare}),
            )
        )
    settings = PackSettings(
        epochs=first.epochs,
        batch_size=first.batch_size,
        augment=first.augment,
        device=device,
        pack_id=pack_id,
        packed_step=resolved[0][0].packed_step,
    )
    results = train_packed(pack, data, settings)
    for (_, _, out_dir, _), record, result, member in zip(resolved, records, results, pack, strict=True):
        for key, value in result.items():
            setattr(record, key, value)
        record.D = count_parameters(member.model)
        record.finished_at = time.time()
        record.seconds = record.finished_at - (record.started_at or record.finished_at)
        write_record(out_dir, record)
        if record.status in ("finished", "diverged") and not place.keep_checkpoint:
            (out_dir / CHECKPOINT_FILE).unlink(missing_ok=True)
    return [r.model_dump() for r in records]
