"""A cell's whole training state at an epoch end, saved atomically, so a killed or preempted cell resumes there.

What a resumed run needs to continue exactly as if it had never stopped: the model, the optimizer (its
state_dict: momentum buffers, and the random-bases optimizers' step counters from which their directions
are regenerated), the schedule, the method's own state (`TrainState.extra`), every random generator the
loop draws from (data order, augmentation, the method's stream, torch's global one for dropout), the
position in the current data order, the history so far and the loop's counters. With all of these a
resumed record equals an uninterrupted one metric for metric (tests/test_resume.py); only timings differ.

The file is written to a temporary name in the same folder and renamed over the old one, so a kill in
the middle of a save leaves the previous checkpoint intact. It is read with `torch.load(weights_only=True)`,
which builds tensors and plain containers only and never runs code from the file: a method's
`state.extra` must therefore hold tensors, numbers, strings, lists and dicts.

A save is made durable (fsync before the rename) once at least DURABLE_AFTER seconds of training have
passed since the last durable save of that file. A kill, a preemption or a time-out never loses a
written file (the kernel still has it), so the fsync only matters if the machine itself crashes; for a
cell whose epochs take milliseconds it cost more than the epochs (a 0.8 MB checkpoint: ~10 ms with the
fsync, ~2 ms without, on a busy disk), and what such a crash can cost it is a few seconds of training
(a checkpoint that did not reach the disk is ignored on resume, and the cell starts afresh, exactly).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

CHECKPOINT_FILE = "checkpoint.pt"
FORMAT = 1
DURABLE_AFTER = 2.0  # seconds of training since the last fsync'ed save of a file before the next save is fsync'ed
_DURABLE_AT: dict[str, float] = {}  # checkpoint path -> its training seconds at its last fsync'ed save (this process)


@dataclass
class Checkpointing:
    """Where a cell checkpoints and how often.

    path: the checkpoint file (in the cell's run folder); every: save after every `every` epochs (0: never);
    keep: leave the last checkpoint on disk when the cell ends (by default it is removed, so a study's disk
    use stays that of its records); meta: what the caller needs back on resume (e.g. the record's
    `prepare` summary of a pretraining hook that must not run twice).
    """

    path: Path
    every: int = 1
    keep: bool = False
    meta: dict[str, Any] | None = None

    def due(self, epoch: int, last: bool) -> bool:
        return self.every > 0 and not last and epoch % self.every == 0


def save(path: Path, payload: dict[str, Any]) -> None:
    """Write `payload` to `path` atomically (temporary file, rename), fsync'ed when due (see the module docstring).

    `payload["train_seconds"]` (every caller's) is the training time the checkpoint holds.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    trained = float(payload.get("train_seconds") or 0.0)
    last = _DURABLE_AT.get(str(path), 0.0)
    durable = trained - (last if last <= trained else 0.0) >= DURABLE_AFTER  # less than before: the file's cell started afresh
    try:
        with open(tmp, "wb") as fh:
            torch.save({"format": FORMAT, **payload}, fh)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    if durable:
        if len(_DURABLE_AT) > 10_000:  # a long-lived worker trains many cells: forget the finished ones
            _DURABLE_AT.clear()
        _DURABLE_AT[str(path)] = trained


def load(path: Path) -> dict[str, Any] | None:
    """The checkpoint at `path`, or None when there is none or it is not one this version can resume from."""
    if not path.exists():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - a truncated or foreign file: start afresh rather than fail the cell
        return None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        return None
    return payload


def peek_meta(path: Path) -> dict[str, Any] | None:
    """The caller's `meta` of the checkpoint at `path`, or None (no resumable checkpoint there)."""
    payload = load(path)
    return None if payload is None else dict(payload.get("meta") or {})


def rng_states(generators: dict[str, torch.Generator | None]) -> dict[str, Any]:
    states: dict[str, Any] = {name: g.get_state() for name, g in generators.items() if g is not None}
    states["torch_global"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["torch_cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any], generators: dict[str, torch.Generator | None]) -> None:
    for name, g in generators.items():
        if g is not None and name in states:
            g.set_state(states[name])
    torch.set_rng_state(states["torch_global"])
    if "torch_cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["torch_cuda"])
