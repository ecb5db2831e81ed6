"""`framework: tensorflow`: a method's TensorFlow implementation trained in TensorFlow 2 / Keras 3.

Why a second framework: the random-bases study was published from TensorFlow code, and "our torch
port gives other numbers" must be separable from "the framework gives other numbers". So this runner
changes the framework and nothing else: it takes its minibatches from the very torch objects loop.train
uses (`_Batches` with the data-order generator, `Augmenter` with the augmentation generator), converts
each batch to NHWC for Keras, and writes the same per-epoch rows and result keys as loop.train, with
the same divergence rules. What differs by construction: the weight-init draws (the model's Keras
builder draws from the init seed, unless `initial_weights` are given - a sweep's cell passes the torch
cell's initial weights) and the method's own random streams (the built-ins draw TensorFlow stateless
Philox, see seedbench.train.tf_optim) - equal in distribution, not in value.

The runner knows no method. A method brings its TensorFlow implementation by reference,
`Method.tensorflow = "module:attr"`, naming a factory

    factory(model, cfg, lr, method_seed) -> update

called once per run with the Keras model, the method's validated config (the pydantic object the
torch side gets: defaults and validation live once, on the method), the learning rate and the cell's
method stream seed. The update is one of two kinds:

    gradient method       update.train_step(x, y) -> (loss, correct, diagnostics)
                          x: an NHWC float32 batch, y: int64 labels; loss: the batch's mean training
                          loss before the update; correct: how many of the batch the model got right
    gradient-free method  update.gradient_free = True and update.evaluations_per_step = n
                          update.population_step(next_batch) -> (losses, diagnostics)
                          next_batch() -> (x, y) is a fresh minibatch; call it n times, one per member;
                          losses: the n members' losses. Budgeted in images, as loop.train does it

`diagnostics` is {name: float} for that step; the runner averages each name over the epoch's steps into
the epoch's row (a projection's cosine with the gradient, a population's loss spread). Optional: `update.default_stop_rule`
(used when the cell leaves stop_rule unset; "accuracy" if absent), `update.state() -> dict` and
`update.load_state(dict)` (what a checkpoint must hold to resume the update exactly - numbers and numpy
arrays; an update without them trains without checkpoints), and `factory.supports(cfg) -> str | None`,
why this config cannot train in TensorFlow (None: it can). The driver asks `supports` when it plans a
sweep (seedbench.train.tf_check), so the factory's module must import TensorFlow inside the factory, not
at its top. seedbench/train/tf_methods.py holds the built-in methods' implementations, and its `GradientUpdate`
base gives a plugin the forward pass, loss and gradient of a gradient method.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from seedbench.data.augment import Augmenter
from seedbench.data.datasets import Dataset
from seedbench.errors import ConfigError
from seedbench.registry import get_model
from seedbench.seeding import generator
from seedbench.train import checkpoint as ckpt_io
from seedbench.train.checkpoint import Checkpointing
from seedbench.train.loop import EVAL_BATCH, DivergenceRules, _Batches, _jsonable, gradient_free_updates, optimizer_stop_rule, summarize_val_acc
from seedbench.train.tf_check import tensorflow_factory, tensorflow_refusal
from seedbench.train.tf_models import correct_count, count_parameters, cross_entropy, tf, to_nhwc

if TYPE_CHECKING:
    from seedbench.config import TrialConfig
    from seedbench.methods.base import Method


# ---------------------------------------------------------------------- data and evaluation
class BatchStream:
    """loop.train's training batches, as NHWC numpy: same `_Batches` order, same `Augmenter` draws.

    Without augmentation the images are gathered from a once-transposed copy by the same indices (no
    per-step transpose); with it, the torch Augmenter transforms the NCHW batch and the result is
    transposed, so the augmentation generator advances exactly as in loop.train.
    """

    def __init__(self, data: Dataset, batch_size: int, data_seed: int, augment_seed: int, augment: bool):
        if batch_size > len(data.x_train):
            raise ValueError(f"batch size {batch_size} exceeds the {len(data.x_train)} training images")
        self.data = data
        self.batches = _Batches(len(data.x_train), batch_size, generator(data_seed), torch.device("cpu"))
        self.aug = Augmenter(data, generator(augment_seed, "cpu")) if augment else None
        self.per_epoch = self.batches.per_epoch
        self.images_per_epoch = self.per_epoch * batch_size
        self._x_nhwc = None if self.aug is not None else to_nhwc(data.x_train.numpy())
        self._y = data.y_train.numpy().astype(np.int64)

    def next(self) -> tuple[np.ndarray, np.ndarray]:
        idx = self.batches.next()
        index = idx.numpy()
        if self.aug is not None:
            x = to_nhwc(self.aug(self.data.x_train[idx]).numpy())
        else:
            x = self._x_nhwc[index]
        return x, self._y[index]


def _eval_arrays(data: Dataset, augment_seed: int, augment: bool) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Validation and test splits as evaluation sees them (the Augmenter's eval transform, if any)."""
    transform = Augmenter(data.name, generator(augment_seed, "cpu")).eval_transform if augment else None
    out = {}
    for split in ("val", "test"):
        x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        if transform is not None and len(x):
            x = torch.cat([transform(x[s : s + EVAL_BATCH]) for s in range(0, len(x), EVAL_BATCH)])
        out[split] = (to_nhwc(x.numpy()), y.numpy().astype(np.int64))
    return out


def make_evaluator(model) -> Callable[[np.ndarray, np.ndarray], tuple[float, float]]:
    """Mean cross-entropy and accuracy over a split in batches of EVAL_BATCH, as loop.evaluate."""

    # a signature with a free batch dimension: the last, shorter batch must not retrace the graph
    h, w, c = (int(d) for d in model.input_shape[1:])
    signature = [tf.TensorSpec([None, h, w, c], tf.float32), tf.TensorSpec([None], tf.int64)]

    @tf.function(input_signature=signature)
    def batch_terms(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        logits = model(x, training=False)
        return tf.reduce_sum(cross_entropy(logits, y)), correct_count(logits, y)

    def evaluate(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        loss_sum, correct = 0.0, 0
        for start in range(0, len(x), EVAL_BATCH):
            ls, c = batch_terms(tf.constant(x[start : start + EVAL_BATCH]), tf.constant(y[start : start + EVAL_BATCH]))
            loss_sum += float(ls)
            correct += int(c)
        n = max(len(x), 1)
        return loss_sum / n, correct / n

    return evaluate


# ---------------------------------------------------------------------- the runner
def train_tensorflow(
    method: Method,
    cfg: TrialConfig,
    data: Dataset,
    seeds: Mapping[str, int],
    *,
    metrics_path: Path | None = None,
    initial_weights: list[np.ndarray] | None = None,
    checkpoint: Checkpointing | None = None,
) -> dict[str, Any]:
    """Train `cfg.model` with `method`'s TensorFlow implementation; return loop.train's keys plus D and framework.

    `cfg` is the method's resolved config (Method.resolve: lr filled in) and supplies the budget: epochs,
    batch_size, augment, lr and the stop rule keys; `seeds` are the cell's streams (seeding.stream_seeds:
    init, data, augment, method). Per epoch: one row (epoch, updates, train_loss, train_acc, val_loss,
    val_acc, seconds, images_per_s, lr, plus the mean of each of the update's diagnostics) appended to
    `metrics_path`, then the stop rule. `initial_weights` (Keras get_weights() order and layout, e.g. from
    tf_models.keras_weights_from_torch) replace the Keras builder's draw from the init seed.

    A gradient-free update consumes evaluations_per_step x batch images, and the run makes
    floor(epochs * len(train) / that) updates, each belonging to the epoch in which its last image is
    used; an epoch without one is still evaluated, with train_loss None.
    """
    why = tensorflow_refusal(method, cfg)
    if why is not None:
        raise ConfigError(f"method {method.name}: {why}")
    lr = cfg.lr
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr must be a finite number > 0, got {lr!r} (Method.resolve fills in the method's default)")
    lr = float(lr)
    data = data.to("cpu")
    batch_size = cfg.batch_size
    stream = BatchStream(data, batch_size, seeds["data"], seeds["augment"], cfg.augment)
    evals = _eval_arrays(data, seeds["augment"], cfg.augment)
    net = get_model(cfg.model).keras_builder()(data.in_shape, data.num_classes, seeds["init"])
    if initial_weights is not None:
        net.set_weights([np.asarray(w, dtype=np.float32) for w in initial_weights])
    update = tensorflow_factory(method)(net, cfg, lr, seeds["method"])
    gradient_free = bool(getattr(update, "gradient_free", False))
    evaluate = make_evaluator(net)
    per_update = update.evaluations_per_step * batch_size if gradient_free else batch_size
    rules = DivergenceRules.from_config(cfg.stop_rule, cfg.stop_min_acc, cfg.stop_acc_after_epoch).resolved(optimizer_stop_rule(update))

    history: list[dict[str, Any]] = []
    status, reason = "finished", None
    updates, images_total, seconds_total, seconds_before = 0, 0, 0.0, 0.0
    if checkpoint is not None and not (callable(getattr(update, "state", None)) and callable(getattr(update, "load_state", None))):
        checkpoint = None  # an update that cannot say its state cannot resume exactly: train without checkpoints
    generators = {"data": stream.batches.gen, "augment": stream.aug.generator if stream.aug is not None else None}
    saved = ckpt_io.load(checkpoint.path) if checkpoint is not None else None
    if saved is not None:
        net.set_weights([w.numpy() for w in saved["model"]])
        update.load_state({k: ([t.numpy() for t in v] if isinstance(v, list) else v) for k, v in saved["optimizer"].items()})
        ckpt_io.restore_rng_states(saved["rng"], generators)
        stream.batches.restore(saved["batches"])
        history, updates = list(saved["history"]), int(saved["updates"])
        images_total, seconds_total, seconds_before = int(saved["images_total"]), float(saved["seconds_total"]), float(saved["train_seconds"])
    metrics_file = open(metrics_path, "w" if saved is not None else "a", encoding="utf-8") if metrics_path else None
    if metrics_file is not None and saved is not None:  # the curve up to the checkpoint; later rows train again
        metrics_file.writelines(json.dumps(_jsonable(row)) + "\n" for row in history)
        metrics_file.flush()
    first_epoch = len(history) + 1
    started = time.perf_counter()
    try:
        for epoch in range(first_epoch, cfg.epochs + 1):
            t0 = time.perf_counter()
            loss_sum, correct, seen = 0.0, 0, 0
            diag_sums: dict[str, float] = {}
            diag_count = 0
            if gradient_free:
                # updates due once `epoch` epochs of len(train) images are consumed (the reference's budget)
                target = gradient_free_updates(epoch, len(data.x_train), per_update)
                while updates < target:
                    losses, diag = update.population_step(stream.next)
                    loss_sum += float(np.asarray(losses, dtype=np.float64).sum()) * batch_size
                    seen += per_update
                    updates += 1
                    for k, v in diag.items():
                        diag_sums[k] = diag_sums.get(k, 0.0) + float(v)
                    diag_count += 1
            else:
                for _ in range(stream.per_epoch):
                    x, y = stream.next()
                    loss, c, diag = update.train_step(x, y)
                    loss_sum += loss * len(y)
                    correct += c
                    seen += len(y)
                    updates += 1
                    for k, v in diag.items():
                        diag_sums[k] = diag_sums.get(k, 0.0) + v
                    diag_count += 1
            # None, not NaN, for an epoch in which no population update finished: NaN would read as divergence
            train_loss = loss_sum / seen if seen else None
            val_loss, val_acc = evaluate(*evals["val"])
            seconds = time.perf_counter() - t0
            images_total += seen
            seconds_total += seconds
            row: dict[str, Any] = {
                "epoch": epoch,
                "updates": updates,
                "train_loss": train_loss,
                # a gradient-free method evaluates perturbed models only: no clean training accuracy
                "train_acc": None if gradient_free or not seen else correct / seen,
                "val_loss": val_loss,
                "val_acc": val_acc,
                "seconds": seconds,
                "images_per_s": seen / seconds if seconds > 0 else None,
                "lr": lr,  # as loop.train logs it; the protocol has no schedule, so the cell's lr throughout
            }
            if diag_count:
                row.update({k: v / diag_count for k, v in diag_sums.items()})
            history.append(row)
            if metrics_file is not None:
                metrics_file.write(json.dumps(_jsonable(row)) + "\n")
                metrics_file.flush()
            reason = rules.check(epoch, train_loss, val_loss, val_acc)
            if reason is not None:
                status = "diverged"
                break
            if checkpoint is not None and checkpoint.due(epoch, last=epoch == cfg.epochs):
                state = update.state()
                ckpt_io.save(
                    checkpoint.path,
                    {
                        "model": [torch.from_numpy(np.array(w)) for w in net.get_weights()],
                        "optimizer": {k: ([torch.from_numpy(np.array(a)) for a in v] if isinstance(v, list) else v) for k, v in state.items()},
                        "rng": ckpt_io.rng_states(generators),
                        "batches": stream.batches.snapshot(),
                        "history": [_jsonable(r) for r in history],
                        "updates": updates,
                        "images_total": images_total,
                        "seconds_total": seconds_total,
                        "train_seconds": seconds_before + time.perf_counter() - started,
                        "meta": checkpoint.meta or {},
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
        # images over time, so an epoch without a population update does not drag down a mean of rates
        result["images_per_s"] = images_total / seconds_total if seconds_total > 0 else None
    result.update(summarize_val_acc(history))
    if status == "finished":
        result["test_loss"], result["test_acc"] = evaluate(*evals["test"])
    result.update({"D": count_parameters(net), "framework": "tensorflow"})
    return _jsonable(result)


__all__ = ["BatchStream", "make_evaluator", "train_tensorflow"]
