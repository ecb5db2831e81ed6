"""The one training loop every method shares.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from seedbench.data.augment import Augmenter
from seedbench.data.datasets import Dataset
from seedbench.seeding import generator

EVAL_BATCH = 1000


@dataclass
class DivergenceRules:
    """METHODS.md section 3: NaN/inf loss, val loss > 1000, or val acc <= 15% from epoch 4 on."""

    enabled: bool = True
    max_val_loss: float = 1000.0
    min_val_acc: float = 0.15
    min_acc_epoch: int = 4

    def check(self, epoch: int, train_loss: float, val_loss: float, val_acc: float) -> str | None:
        if not self.enabled:
            return None
        if not math.isfinite(train_loss):
            return f"non-finite training loss ({train_loss}) in epoch {epoch}"
        if not math.isfinite(val_loss):
            return f"non-finite validation loss ({val_loss}) after epoch {epoch}"
        if val_loss > self.max_val_loss:
            return f"validation loss {val_loss:.4g} > {self.max_val_loss:g} after epoch {epoch}"
        if epoch >= self.min_acc_epoch and val_acc <= self.min_val_acc:
            return f"validation accuracy {val_acc:.3f} <= {self.min_val_acc:g} after epoch {epoch}"
        return None


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


def _gradient_free(optimizer: torch.optim.Optimizer) -> bool:
    """Optimizers such as NES only evaluate losses; they declare it with `gradient_free = True`."""
    return bool(getattr(optimizer, "gradient_free", False))


class _Batches:
    """An endless stream of shuffled training batches (last partial batch dropped, as in the study)."""

    def __init__(self, n: int, batch_size: int, gen: torch.Generator, device: torch.device):
        self.n, self.batch_size, self.gen, self.device = n, batch_size, gen, device
        self.per_epoch = n // batch_size
        self._order = torch.empty(0, dtype=torch.long)
        self._pos = 0

    def next(self) -> torch.Tensor:
        if self._pos + self.batch_size > len(self._order):
            self._order = torch.randperm(self.n, generator=self.gen)[: self.per_epoch * self.batch_size].to(self.device)
            self._pos = 0
        idx = self._order[self._pos : self._pos + self.batch_size]
        self._pos += self.batch_size
        return idx


def train(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: Dataset,
    settings: TrainSettings,
) -> dict[str, Any]:
    """Train for `settings.epochs` epochs and return the final metrics and status.

    An "epoch" is always one pass worth of images (len(train) // batch * batch), also for NES,
    whose updates each consume `population x batch` images.
    """
    device = torch.device(settings.device)
    if settings.batch_size > len(data.x_train):
        raise ValueError(f"batch size {settings.batch_size} exceeds the {len(data.x_train)} training images")
    model.to(device)
    data = data.to(device)
    aug = Augmenter(data.name, generator(settings.augment_seed, device)) if settings.augment else None
    eval_transform = aug.eval_transform if aug is not None else None
    batches = _Batches(len(data.x_train), settings.batch_size, generator(settings.data_seed), device)
    loss_fn = nn.CrossEntropyLoss()
    gradient_free = _gradient_free(optimizer)
    images_per_epoch = batches.per_epoch * settings.batch_size
    metrics_file = open(settings.metrics_path, "a", encoding="utf-8") if settings.metrics_path else None
    history: list[dict[str, Any]] = []
    status, reason = "finished", None
    started = time.perf_counter()
    model.train()
    try:
        for epoch in range(1, settings.epochs + 1):
            t0 = time.perf_counter()
            loss_sum = torch.zeros((), dtype=torch.float64, device=device)
            correct = torch.zeros((), dtype=torch.int64, device=device)
            seen = 0

            def next_batch() -> tuple[torch.Tensor, torch.Tensor]:
                idx = batches.next()
                xb = data.x_train[idx]
                return (aug(xb) if aug is not None else xb), data.y_train[idx]

            while seen < images_per_epoch:
                if gradient_free:
                    losses: list[torch.Tensor] = []

                    @torch.no_grad()
                    def closure() -> torch.Tensor:
                        xb, yb = next_batch()
                        loss = loss_fn(model(xb), yb)
                        losses.append(loss)
                        return loss

                    optimizer.step(closure)
                    loss_sum += torch.stack(losses).double().sum() * settings.batch_size
                    seen += len(losses) * settings.batch_size
                else:
                    xb, yb = next_batch()
                    logits = model(xb)
                    loss = loss_fn(logits, yb)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    loss_sum += loss.detach().double() * len(yb)
                    correct += (logits.detach().argmax(1) == yb).sum()
                    seen += len(yb)

            train_loss = float(loss_sum) / max(seen, 1)
            val_loss, val_acc = evaluate(model, data.x_val, data.y_val, eval_transform)
            seconds = time.perf_counter() - t0
            row: dict[str, Any] = {
                "epoch": epoch,
                "train_loss": train_loss,
                # gradient-free updates evaluate perturbed models only: no clean training accuracy
                "train_acc": None if gradient_free else float(correct) / max(seen, 1),
                "val_loss": val_loss,
                "val_acc": val_acc,
                "seconds": seconds,
                "images_per_s": seen / seconds if seconds > 0 else None,
            }
            pop = getattr(optimizer, "pop_diagnostics", None)
            if callable(pop):
                row.update(pop())
            history.append(row)
            if metrics_file is not None:
                metrics_file.write(json.dumps(_jsonable(row)) + "\n")
                metrics_file.flush()
            if settings.on_epoch is not None:
                settings.on_epoch(row)
            reason = settings.divergence.check(epoch, train_loss, val_loss, val_acc)
            if reason is not None:
                status = "diverged"
                break
    finally:
        if metrics_file is not None:
            metrics_file.close()

    result: dict[str, Any] = {
        "status": status,
        "reason": reason,
        "epochs_completed": len(history),
        "train_seconds": time.perf_counter() - started,
    }
    if history:
        last = history[-1]
        result.update({k: last[k] for k in ("train_loss", "train_acc", "val_loss", "val_acc")})
        result["images_per_s"] = sum(h["images_per_s"] or 0 for h in history) / len(history)
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
