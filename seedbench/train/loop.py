"""The one training loop every method shares; a method's own parts (seedbench/train/steps.py) plug into it.

Whole datasets live on the device as tensors and batches are gathered by index, so the loop costs
about what a bare PyTorch loop costs. Per-epoch metrics are appended to a JSONL file as they happen
(a crash loses at most the epoch in flight) and a diverging run ends with status "diverged" and a
reason instead of an exception, because a diverged seed is a result a study must count.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from seedbench.data.augment import Augmenter
from seedbench.data.datasets import Dataset
from seedbench.seeding import generator
from seedbench.train import checkpoint as ckpt_io
from seedbench.train.checkpoint import Checkpointing
from seedbench.train.steps import EpochRun, LossFn, TrainState, closure_step, cross_entropy, declared_evaluations, default_epoch

EVAL_BATCH = 1000


StopRule = Literal["accuracy", "nan", "none"]
STOP_RULES: tuple[str, ...] = ("accuracy", "nan", "none")


def optimizer_stop_rule(optimizer: Any) -> str:
    """The stop rule an optimizer asks for when a run leaves it unset: its `default_stop_rule`, else "accuracy".

    A sweep's cells always carry their method's rule (Method.stop_rule, filled on the driver); this is
    for train() called directly with an optimizer such as NES, which declares `default_stop_rule = "nan"`.
    """
    rule = getattr(optimizer, "default_stop_rule", "accuracy")
    return rule if rule in STOP_RULES else "accuracy"


@dataclass
class DivergenceRules:
    """When a run counts as diverged (it then ends with status "diverged" and a reason naming the rule).

    mode "accuracy" (the reference's rule for RBD/FPD/SGD): NaN/inf training or validation loss, or
        validation loss > max_val_loss, at any epoch; or validation accuracy <= min_val_acc in an epoch
        after `acc_after_epoch` (the reference tests `epoch > 4`, so by default from epoch 5 on).
    mode "nan" (the reference's rule for NES): NaN/inf training or validation loss only.
    mode "none": never stop.
    mode None: the optimizer's own default (optimizer_stop_rule), resolved by train().

    `enabled=False` is the older on/off switch (TrialConfig.diverge_stop) and means mode "none"; it is
    kept so callers written before `mode` existed keep working.
    """

    mode: StopRule | None = None
    min_val_acc: float = 0.15
    acc_after_epoch: int = 4
    max_val_loss: float = 1000.0
    enabled: bool = True

    def __post_init__(self) -> None:
        if self.mode is not None and self.mode not in STOP_RULES:
            raise ValueError(f"unknown stop rule {self.mode!r}; choose one of {', '.join(STOP_RULES)} (or None)")
        if isinstance(self.min_val_acc, bool) or not isinstance(self.min_val_acc, (int, float)) or not 0.0 <= self.min_val_acc <= 1.0:
            raise ValueError(f"min_val_acc must be a fraction in [0, 1], got {self.min_val_acc!r}")
        if isinstance(self.acc_after_epoch, bool) or not isinstance(self.acc_after_epoch, int) or self.acc_after_epoch < 0:
            raise ValueError(f"acc_after_epoch must be an integer >= 0, got {self.acc_after_epoch!r}")
        if (
            isinstance(self.max_val_loss, bool)
            or not isinstance(self.max_val_loss, (int, float))
            or math.isnan(self.max_val_loss)
            or self.max_val_loss <= 0
        ):
            raise ValueError(f"max_val_loss must be a number > 0, got {self.max_val_loss!r}")

    @classmethod
    def from_config(
        cls,
        stop_rule: str | None,
        min_acc: float = 0.15,
        after_epoch: int = 4,
    ) -> DivergenceRules:
        """The rules for config keys stop_rule / stop_min_acc / stop_acc_after_epoch (None: resolved by train())."""
        return cls(mode=stop_rule, min_val_acc=min_acc, acc_after_epoch=after_epoch)  # type: ignore[arg-type]

    def resolved(self, default: str = "accuracy") -> DivergenceRules:
        """A copy with a concrete mode: "none" when disabled, `default` (a stop rule) when mode is None."""
        if default not in STOP_RULES:
            raise ValueError(f"unknown stop rule {default!r}; choose one of {', '.join(STOP_RULES)}")
        mode = "none" if not self.enabled else (self.mode if self.mode is not None else default)
        return replace(self, mode=mode, enabled=True)

    def check(self, epoch: int, train_loss: float | None, val_loss: float, val_acc: float) -> str | None:
        """The reason to stop after `epoch`, or None. train_loss None: no update finished this epoch (NES)."""
        mode = "none" if not self.enabled else self.mode
        if mode is None:
            raise ValueError("DivergenceRules.mode is None (the method default): call resolved(method) first")
        if mode == "none":
            return None
        rule = f"stop rule {mode!r}: "
        if train_loss is not None and not math.isfinite(train_loss):
            return rule + f"non-finite training loss ({train_loss}) in epoch {epoch}"
        if not math.isfinite(val_loss):
            return rule + f"non-finite validation loss ({val_loss}) after epoch {epoch}"
        if mode == "nan":
            return None
        if val_loss > self.max_val_loss:
            return rule + f"validation loss {val_loss:.4g} > {self.max_val_loss:g} after epoch {epoch}"
        if epoch > self.acc_after_epoch and val_acc <= self.min_val_acc:
            return rule + f"validation accuracy {val_acc:.3f} <= {self.min_val_acc:g} after epoch {epoch}"
        return None


def gradient_free_updates(epochs: int, images_per_epoch: int, images_per_update: int) -> int:
    """Updates a population method has completed once `epochs` epochs' worth of images are consumed.

    One NES update consumes population x batch images, which rarely divides an epoch: the reference
    counts the budget in images, floor(epochs * images_per_epoch / images_per_update), so 100 epochs of
    50,000 images at d=250, batch 32 give 625 updates (rounding up per epoch would give 7 x 100 = 700).
    Works for fractional epochs of any length because it only ever floors the cumulative image count.
    """
    for name, value in (("epochs", epochs), ("images_per_epoch", images_per_epoch)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    if isinstance(images_per_update, bool) or not isinstance(images_per_update, int) or images_per_update < 1:
        raise ValueError(f"images_per_update must be an integer >= 1, got {images_per_update!r}")
    return epochs * images_per_epoch // images_per_update


@dataclass
class TrainSettings:
    epochs: int
    batch_size: int
    data_seed: int
    augment_seed: int
    augment: bool = False
    device: str = "cpu"
    divergence: DivergenceRules = field(default_factory=DivergenceRules)
    metrics_path: Path | None = None
    # called after every epoch with the epoch's metrics (progress reporting)
    on_epoch: Callable[[dict[str, Any]], None] | None = None
    # save the whole training state at epoch ends, and resume from it when the file exists
    checkpoint: Checkpointing | None = None


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, transform: Callable | None = None) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over a whole split, in large batches."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=x.device)
    correct = torch.zeros((), dtype=torch.int64, device=x.device)
    for start in range(0, len(x), EVAL_BATCH):
        xb, yb = x[start : start + EVAL_BATCH], y[start : start + EVAL_BATCH]
        if transform is not None:
            xb = transform(xb)
        logits = model(xb)
        loss_sum += nn.functional.cross_entropy(logits, yb, reduction="sum").double()
        correct += (logits.argmax(1) == yb).sum()
    model.train(was_training)
    n = max(len(x), 1)
    return float(loss_sum) / n, float(correct) / n


class _Batches:
    """An endless stream of shuffled training batches (last partial batch dropped, as in the study)."""

    def __init__(self, n: int, batch_size: int, gen: torch.Generator, device: torch.device):
        self.n, self.batch_size, self.gen, self.device = n, batch_size, gen, device
        self.per_epoch = n // batch_size
        self._order = torch.empty(0, dtype=torch.long)
        self._pos = 0

    def snapshot(self) -> dict[str, Any]:
        """The position in the current epoch's order (the generator's state is saved with the others)."""
        return {"order": self._order.cpu(), "pos": self._pos}

    def restore(self, snap: dict[str, Any]) -> None:
        self._order, self._pos = snap["order"].to(self.device), int(snap["pos"])

    def next(self) -> torch.Tensor:
        if self._pos + self.batch_size > len(self._order):
            self._order = torch.randperm(self.n, generator=self.gen)[: self.per_epoch * self.batch_size].to(self.device)
            self._pos = 0
        idx = self._order[self._pos : self._pos + self.batch_size]
        self._pos += self.batch_size
        return idx


def summarize_val_acc(history: list[dict[str, Any]], last: int = 10) -> dict[str, Any]:
    """best_val_acc, best_epoch (1-based, the first on ties) and val_acc_last10 (mean of the last `last`
    epochs, or of all when fewer ran): a run's final epoch alone hides both a peak and a late collapse."""
    if not history:
        return {"best_val_acc": None, "best_epoch": None, "val_acc_last10": None}
    accs = [float(h["val_acc"]) for h in history]
    best = max(range(len(accs)), key=lambda i: (accs[i], -i))  # highest, then earliest
    tail = accs[-last:]
    return {"best_val_acc": accs[best], "best_epoch": int(history[best]["epoch"]), "val_acc_last10": sum(tail) / len(tail)}


@dataclass
class MethodParts:
    """The parts of a method the loop calls besides its optimizer (seedbench.methods.Method, built per cell).

    Every field is optional: the defaults train with cross-entropy, the closure step and the plain
    epoch, which is what a method that only brings an optimizer gets.
    """

    loss: LossFn = cross_entropy
    step: Callable[..., Any] | None = None
    epoch: Callable[[EpochRun], None] | None = None
    init_state: Callable[[TrainState, nn.Module], None] | None = None
    schedule: Any = None
    schedule_interval: str = "step"
    cfg: Any = None
    generator: torch.Generator | None = None


def train(
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    data: Dataset,
    settings: TrainSettings,
    parts: MethodParts | None = None,
) -> dict[str, Any]:
    """Train for `settings.epochs` epochs and return the final metrics and status.

    The budget is the same whatever the method does in a step: gradient methods and methods with their
    own step take len(train) // batch steps per epoch (the last partial batch is dropped). Gradient-free
    optimizers (NES) are budgeted in images, as in the reference: each update consumes
    evaluations_per_step x batch images, the run makes gradient_free_updates(epochs, len(train), that)
    updates in all, and an update belongs to the epoch in which its last image is consumed. An epoch in
    which no update completes is still evaluated (its train_loss is None); every row carries the
    cumulative number of steps as "updates" and, with an optimizer, the lr it ended the epoch at.

    The result holds status/reason (reason names the stop rule), the last epoch's metrics, the test
    metrics of a finished run, the total `updates`, the resolved `stop_rule`, and best_val_acc,
    best_epoch and val_acc_last10 (see summarize_val_acc).
    """
    parts = parts or MethodParts()
    if optimizer is None and parts.step is None:
        raise ValueError("train() needs an optimizer, or MethodParts.step for a method that trains without one")
    device = torch.device(settings.device)
    if settings.batch_size > len(data.x_train):
        raise ValueError(f"batch size {settings.batch_size} exceeds the {len(data.x_train)} training images")
    model.to(device)
    data = data.to(device)
    aug = Augmenter(data, generator(settings.augment_seed, device)) if settings.augment else None
    eval_transform = aug.eval_transform if aug is not None else None
    batches = _Batches(len(data.x_train), settings.batch_size, generator(settings.data_seed), device)
    evaluations = declared_evaluations(optimizer) if parts.step is None else None
    rules = settings.divergence.resolved(optimizer_stop_rule(optimizer))
    images_per_update = (evaluations or 1) * settings.batch_size
    drawn = [0]  # images drawn from the data stream, whoever draws them (the loop, a closure, a step)

    def next_batch() -> tuple[torch.Tensor, torch.Tensor]:
        idx = batches.next()
        drawn[0] += len(idx)
        xb = data.x_train[idx]
        return (aug(xb) if aug is not None else xb), data.y_train[idx]

    state = TrainState(optimizer=optimizer, loss=parts.loss, next_batch=next_batch, cfg=parts.cfg, generator=parts.generator, schedule=parts.schedule)
    if parts.init_state is not None:
        parts.init_state(state, model)
    step_fn = parts.step or closure_step
    epoch_fn = parts.epoch or default_epoch
    per_step_schedule = parts.schedule is not None and parts.schedule_interval == "step"
    history: list[dict[str, Any]] = []
    status, reason = "finished", None
    updates = 0
    images_total, seconds_total, seconds_before = 0, 0.0, 0.0
    generators = {"data": batches.gen, "augment": aug.generator if aug is not None else None, "method": parts.generator}
    saved = ckpt_io.load(settings.checkpoint.path) if settings.checkpoint is not None else None
    if saved is not None:
        model.load_state_dict(saved["model"])
        if optimizer is not None:
            optimizer.load_state_dict(saved["optimizer"])
        if parts.schedule is not None:
            parts.schedule.load_state_dict(saved["schedule"])
        state.extra = saved["extra"]
        ckpt_io.restore_rng_states(saved["rng"], generators)
        batches.restore(saved["batches"])
        drawn[0] = int(saved["drawn"])
        history, updates = list(saved["history"]), int(saved["updates"])
        images_total, seconds_total, seconds_before = int(saved["images_total"]), float(saved["seconds_total"]), float(saved["train_seconds"])
    first_epoch = len(history) + 1
    # a resumed run rewrites its curve up to the checkpoint: rows of epochs after it are trained again
    metrics_file = open(settings.metrics_path, "w" if saved is not None else "a", encoding="utf-8") if settings.metrics_path else None
    if metrics_file is not None and saved is not None:
        metrics_file.writelines(json.dumps(_jsonable(row)) + "\n" for row in history)
        metrics_file.flush()
    started = time.perf_counter()
    model.train()
    try:
        for epoch in range(first_epoch, settings.epochs + 1):
            t0 = time.perf_counter()
            loss_sum = torch.zeros((), dtype=torch.float64, device=device)
            correct = torch.zeros((), dtype=torch.int64, device=device)
            scored, drawn_before = 0, drawn[0]
            steps_done = [0]
            target = gradient_free_updates(epoch, len(data.x_train), images_per_update) if evaluations else updates + batches.per_epoch

            def run_step() -> None:
                nonlocal loss_sum, correct, scored
                before = drawn[0]
                batch = next_batch()
                out = step_fn(model, batch, state, updates + steps_done[0])
                loss, logits = out if isinstance(out, tuple) else (out, None)
                loss_sum += torch.as_tensor(loss).detach().double() * (drawn[0] - before)
                if logits is not None:
                    correct += (logits.detach().argmax(1) == batch[1]).sum()
                    scored += len(batch[1])
                steps_done[0] += 1
                if per_step_schedule:
                    parts.schedule.step()

            run = EpochRun(model, state, epoch, max(target - updates, 0), run_step)
            epoch_fn(run)
            updates += steps_done[0]
            if parts.schedule is not None and not per_step_schedule:
                parts.schedule.step()
            seen = drawn[0] - drawn_before
            # None, not NaN, for an epoch without a finished update: NaN would read as divergence
            train_loss = float(loss_sum) / seen if seen and steps_done[0] else None
            val_loss, val_acc = evaluate(model, data.x_val, data.y_val, eval_transform)
            seconds = time.perf_counter() - t0
            images_total += seen
            seconds_total += seconds
            row: dict[str, Any] = {
                "epoch": epoch,
                "updates": updates,
                "train_loss": train_loss,
                # gradient-free updates evaluate perturbed models only: no clean training accuracy
                "train_acc": float(correct) / scored if scored else None,
                "val_loss": val_loss,
                "val_acc": val_acc,
                "seconds": seconds,
                "images_per_s": seen / seconds if seconds > 0 else None,
            }
            if optimizer is not None:
                row["lr"] = float(optimizer.param_groups[0]["lr"])
            pop = getattr(optimizer, "pop_diagnostics", None)
            if callable(pop):
                row.update(pop())
            history.append(row)
            if metrics_file is not None:
                metrics_file.write(json.dumps(_jsonable(row)) + "\n")
                metrics_file.flush()
            if settings.on_epoch is not None:
                settings.on_epoch(row)
            reason = rules.check(epoch, train_loss, val_loss, val_acc)
            if reason is not None:
                status = "diverged"
                break
            if settings.checkpoint is not None and settings.checkpoint.due(epoch, last=epoch == settings.epochs):
                ckpt_io.save(
                    settings.checkpoint.path,
                    {
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict() if optimizer is not None else None,
                        "schedule": parts.schedule.state_dict() if parts.schedule is not None else None,
                        "extra": state.extra,
                        "rng": ckpt_io.rng_states(generators),
                        "batches": batches.snapshot(),
                        "drawn": drawn[0],
                        "history": [_jsonable(r) for r in history],
                        "updates": updates,
                        "images_total": images_total,
                        "seconds_total": seconds_total,
                        "train_seconds": seconds_before + time.perf_counter() - started,
                        "meta": settings.checkpoint.meta or {},
                    },
                )
    finally:
        if metrics_file is not None:
            metrics_file.close()

    result: dict[str, Any] = {
        "status": status,
        "reason": reason,
        "stop_rule": rules.mode,
        "epochs_completed": len(history),
        "updates": updates,
        "train_seconds": seconds_before + time.perf_counter() - started,
        "resumed_from_epoch": first_epoch - 1 if saved is not None else None,
    }
    if history:
        last = history[-1]
        result.update({k: last[k] for k in ("train_loss", "train_acc", "val_loss", "val_acc")})
        # images over time, so an epoch without updates (NES) does not drag a mean of per-epoch rates
        result["images_per_s"] = images_total / seconds_total if seconds_total > 0 else None
    result.update(summarize_val_acc(history))
    if status == "finished":
        result["test_loss"], result["test_acc"] = evaluate(model, data.x_test, data.y_test, eval_transform)
    return _jsonable(result)


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    """NaN/inf are not JSON: store them as strings so the record stays readable by every tool."""
    out = {}
    for k, v in row.items():
        if isinstance(v, float) and not math.isfinite(v):
            v = str(v)
        out[k] = v
    return out
