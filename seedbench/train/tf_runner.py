"""`framework: tensorflow`: the random-bases study's methods trained in TensorFlow 2 / Keras 3.

Why a second framework: the study was published from TensorFlow code, and "our torch port gives other
numbers" must be separable from "the framework gives other numbers". So this runner changes the
framework and nothing else: it takes its minibatches from the very torch objects loop.train uses
(`_Batches` with the data-order generator, `Augmenter` with the augmentation generator), converts each
batch to NHWC for Keras, and writes the same per-epoch rows and result keys as loop.train, with the
same divergence rules object. What differs by construction: the weight-init draws (Keras Glorot from
`init_seed`, unless `initial_weights` are given) and the direction/noise streams (TensorFlow stateless
Philox, see seedbench.train.tf_optim) - equal in distribution, not in value.

Methods: sgd (momentum/weight decay with torch.optim.SGD's semantics), rbd, fpd (the directions of one
fixed step, reused: theta stays in theta0 + span(P)), nes (docs/methods.md, "NES": raw perturbation
theta + sigma e_i, eps_i = e_i/sqrt(D) only in the update under "auto", budget counted in images).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from seedbench.data.augment import Augmenter
from seedbench.data.datasets import Dataset
from seedbench.optim.directions import DEFAULT_CHUNK
from seedbench.seeding import generator
from seedbench.train.loop import EVAL_BATCH, _Batches, _jsonable, summarize_val_acc
from seedbench.train.tf_models import build_keras_model, count_parameters, tf, to_nhwc
from seedbench.train.tf_optim import (
    DISTRIBUTIONS,
    base_key,
    chunk_rows,
    nes_ascent,
    nes_noise,
    nes_noise_scale,
    rank_utilities,
    rbd_project,
    rbd_scale_sq,
)

METHODS = ("sgd", "rbd", "fpd", "nes")
# option -> default, per method; anything else in `options` is an error (a typo must not train silently)
DEFAULTS: dict[str, dict[str, Any]] = {
    "sgd": {"momentum": 0.0, "weight_decay": 0.0},
    "rbd": {"dims": 250, "distribution": "normal", "normalization": "auto", "compartments": "network", "bases": "gaussian", "chunk": DEFAULT_CHUNK},
    "nes": {"dims": 250, "sigma": 0.01, "antithetic": False, "distribution": "normal", "normalization": "auto", "chunk": DEFAULT_CHUNK},
}
DEFAULTS["fpd"] = dict(DEFAULTS["rbd"])


class DivergenceCheck(Protocol):
    def check(self, epoch: int, train_loss: float, val_loss: float, val_acc: float) -> str | None: ...


def resolve_options(method: str, options: dict[str, Any] | None) -> dict[str, Any]:
    """The method's defaults overlaid with `options`, validated."""
    if method not in METHODS:
        raise ValueError(f"the TensorFlow runner trains {', '.join(METHODS)}, not {method!r}")
    options = dict(options or {})
    unknown = set(options) - set(DEFAULTS[method])
    if unknown:
        raise ValueError(f"unknown {method} options {sorted(unknown)}; known: {sorted(DEFAULTS[method])}")
    opts = {**DEFAULTS[method], **options}
    if method == "sgd":
        for name in ("momentum", "weight_decay"):
            if not (isinstance(opts[name], (int, float)) and math.isfinite(opts[name]) and opts[name] >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {opts[name]!r}")
        return opts
    if isinstance(opts["dims"], bool) or not isinstance(opts["dims"], int) or opts["dims"] < 1:
        raise ValueError(f"dims must be an integer >= 1, got {opts['dims']!r}")
    if isinstance(opts["chunk"], bool) or not isinstance(opts["chunk"], int) or opts["chunk"] < 1:
        raise ValueError(f"chunk must be an integer >= 1, got {opts['chunk']!r}")
    if opts["distribution"] not in DISTRIBUTIONS:
        raise ValueError(f"unknown distribution {opts['distribution']!r}; choose one of {', '.join(DISTRIBUTIONS)}")
    if method in ("rbd", "fpd"):
        if opts["normalization"] not in ("auto", "unbiased"):
            raise ValueError(f"unknown normalization {opts['normalization']!r}; choose auto or unbiased")
        if opts["compartments"] not in ("network", "layer"):
            raise ValueError(f"unknown compartments {opts['compartments']!r}; choose network or layer")
        if opts["bases"] != "gaussian":
            raise ValueError(f"the TensorFlow runner draws i.i.d. (gaussian-type) bases only, not {opts['bases']!r}")
    else:
        if opts["normalization"] not in ("auto", "none"):
            raise ValueError(f"unknown NES normalization {opts['normalization']!r}; choose auto or none")
        if not (isinstance(opts["sigma"], (int, float)) and math.isfinite(opts["sigma"]) and opts["sigma"] > 0):
            raise ValueError(f"sigma must be a finite number > 0, got {opts['sigma']!r}")
        if opts["dims"] < 2:
            raise ValueError(f"dims (the NES population) must be >= 2 to rank members, got {opts['dims']}")
        if not isinstance(opts["antithetic"], bool):
            raise ValueError(f"antithetic must be True or False, got {opts['antithetic']!r}")
        if opts["antithetic"] and opts["dims"] % 2:
            raise ValueError(f"antithetic NES pairs members, so dims must be even, got {opts['dims']}")
    return opts


def _loss_terms(logits: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)


def _correct(logits: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    return tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, axis=1, output_type=tf.int64), y), tf.int64))


class Trainer:
    """One method's update on one Keras model, compiled with tf.function.

    `train_step(x, y)` (gradient methods) takes an NHWC float32 batch and int64 labels and returns
    (mean loss, correct count, diagnostics); `nes_step(batches)` (NES) takes a zero-argument callable
    that returns the next member's batch and returns the members' losses.
    """

    def __init__(self, model, method: str, options: dict[str, Any] | None, lr: float, method_seed: int):
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
            raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
        self.model, self.method, self.lr = model, method, float(lr)
        self.options = resolve_options(method, options)
        self.variables = list(model.trainable_variables)
        self.shapes = [tuple(v.shape) for v in self.variables]
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        self.D = sum(self.sizes)
        self.key = base_key(method_seed)
        self.steps_taken = 0
        self.gradient_free = method == "nes"
        if method == "sgd":
            self._momentum = [tf.Variable(tf.zeros(s), trainable=False) for s in self.shapes] if self.options["momentum"] else None
            self._step_fn = tf.function(self._sgd_step)
        elif method in ("rbd", "fpd"):
            o = self.options
            if o["compartments"] == "network":
                self.blocks = [(0, self.D)]
            else:
                offsets = np.cumsum([0] + self.sizes[:-1]).tolist()
                self.blocks = list(zip(offsets, self.sizes))
            self.scale_sq = rbd_scale_sq(o["normalization"], o["distribution"], self.D, o["dims"])
            self._step_fn = tf.function(self._rbd_step)
        else:
            o = self.options
            self.noise_vectors = o["dims"] // 2 if o["antithetic"] else o["dims"]
            self.update_factor = nes_noise_scale(o["normalization"], self.D) / (o["sigma"] * o["dims"])
            self._member_losses_fn = tf.function(self._member_losses)
            self._nes_apply_fn = tf.function(self._nes_apply)

    # ------------------------------------------------------------------ flat view of the parameters
    def flat_params(self) -> tf.Tensor:
        return tf.concat([tf.reshape(v, [-1]) for v in self.variables], axis=0)

    def _split(self, flat: tf.Tensor) -> list[tf.Tensor]:
        return [tf.reshape(p, s) for p, s in zip(tf.split(flat, self.sizes), self.shapes)]

    def _grads(self, x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, list[tf.Tensor]]:
        with tf.GradientTape() as tape:
            logits = self.model(x, training=True)
            loss = tf.reduce_mean(_loss_terms(logits, y))
        grads = tape.gradient(loss, self.variables)
        return loss, _correct(logits, y), grads

    # ------------------------------------------------------------------ SGD
    def _sgd_step(self, x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """torch.optim.SGD: g += wd theta; buf = momentum buf + g (buf = g at the first step); theta -= lr buf."""
        loss, correct, grads = self._grads(x, y)
        wd, mom = self.options["weight_decay"], self.options["momentum"]
        for i, (v, g) in enumerate(zip(self.variables, grads)):
            if wd:
                g = g + wd * v
            if self._momentum is not None:
                buf = self._momentum[i]
                buf.assign(mom * buf + g)  # zeros at the start: mom * 0 + g = g, as torch's first step
                g = buf
            v.assign_sub(self.lr * g)
        return loss, correct

    # ------------------------------------------------------------------ RBD / FPD
    def _rbd_step(self, x: tf.Tensor, y: tf.Tensor, step: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        loss, correct, grads = self._grads(x, y)
        g = tf.concat([tf.reshape(gr, [-1]) for gr in grads], axis=0)
        o = self.options
        g_hat = rbd_project(g, self.key, step, self.blocks, o["dims"], o["distribution"], self.scale_sq, o["chunk"])
        denom = tf.maximum(tf.norm(g) * tf.norm(g_hat), np.finfo(np.float32).tiny)
        cosine = tf.tensordot(g, g_hat, 1) / denom
        for v, part in zip(self.variables, self._split(g_hat)):
            v.assign_sub(self.lr * part)
        return loss, correct, cosine

    def direction_step(self) -> int:
        """Which entry of the seed stream the next step uses: FPD always the same (its fixed P)."""
        return 0 if self.method == "fpd" else self.steps_taken

    def train_step(self, x: np.ndarray | tf.Tensor, y: np.ndarray | tf.Tensor) -> tuple[float, int, dict[str, float]]:
        if self.gradient_free:
            raise TypeError("NES takes no gradient step; call nes_step")
        x = tf.convert_to_tensor(x, dtype=tf.float32)
        y = tf.convert_to_tensor(y, dtype=tf.int64)
        diagnostics: dict[str, float] = {}
        if self.method == "sgd":
            loss, correct = self._step_fn(x, y)
        else:
            loss, correct, cosine = self._step_fn(x, y, tf.constant(self.direction_step(), tf.int64))
            diagnostics["cosine"] = float(cosine)
        self.steps_taken += 1
        return float(loss), int(correct), diagnostics

    # ------------------------------------------------------------------ NES
    def _member_losses(self, xs: tf.Tensor, ys: tf.Tensor, step: tf.Tensor, chunk_index: int) -> tf.Tensor:
        """Loss of each member of one noise chunk, member j at theta + sigma * (+-) e_j on its own batch."""
        o = self.options
        rows = int(xs.shape[0]) // (2 if o["antithetic"] else 1)
        e = nes_noise(self.key, step, chunk_index, rows, self.D, o["distribution"])
        if o["antithetic"]:
            e = tf.reshape(tf.stack([e, -e], axis=1), [2 * rows, self.D])  # members (+e_k, -e_k) in turn
        theta = self.flat_params()

        def member(args: tuple[tf.Tensor, tf.Tensor, tf.Tensor]) -> tf.Tensor:
            noise, x, y = args
            params = self._split(theta + o["sigma"] * noise)
            logits, _ = self.model.stateless_call(params, [], x, training=False)
            return tf.reduce_mean(_loss_terms(logits, y))

        return tf.map_fn(member, (e, xs, ys), fn_output_signature=tf.float32)

    def _nes_apply(self, weights: tf.Tensor, step: tf.Tensor) -> None:
        o = self.options
        ascent = nes_ascent(self.key, step, weights, self.D, o["distribution"], o["chunk"])
        for v, part in zip(self.variables, self._split(ascent)):
            v.assign_add((self.lr * self.update_factor) * part)

    def nes_step(self, next_batch: Callable[[], tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """One NES update; `next_batch()` is called once per member, in member order, as torch's closure is."""
        if not self.gradient_free:
            raise TypeError(f"{self.method} takes gradient steps; call train_step")
        o = self.options
        per_noise = 2 if o["antithetic"] else 1
        step = tf.constant(self.steps_taken, tf.int64)
        losses = []
        for c, (_, rows) in enumerate(chunk_rows(self.noise_vectors, o["chunk"])):
            batches = [next_batch() for _ in range(rows * per_noise)]
            xs = tf.convert_to_tensor(np.stack([b[0] for b in batches]), dtype=tf.float32)
            ys = tf.convert_to_tensor(np.stack([b[1] for b in batches]), dtype=tf.int64)
            losses.append(self._member_losses_fn(xs, ys, step, c).numpy())
        fitness = np.concatenate(losses).astype(np.float64)
        utilities = rank_utilities(fitness)
        weights = utilities[0::2] - utilities[1::2] if o["antithetic"] else utilities
        self._nes_apply_fn(tf.constant(weights, tf.float32), step)
        self.steps_taken += 1
        return fitness


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
        self.aug = Augmenter(data.name, generator(augment_seed, "cpu")) if augment else None
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
        return tf.reduce_sum(_loss_terms(logits, y)), _correct(logits, y)

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
    method: str,
    options: dict[str, Any] | None,
    model: str,
    data: Dataset,
    *,
    lr: float,
    epochs: int,
    batch_size: int,
    data_seed: int,
    augment_seed: int,
    method_seed: int,
    init_seed: int,
    augment: bool,
    divergence: DivergenceCheck,
    metrics_path: Path | None,
    initial_weights: list[np.ndarray] | None = None,
) -> dict[str, Any]:
    """Train `model` ("fc"/"cnn") with `method` in TensorFlow; return loop.train's keys plus D and framework.

    Per epoch: one row (epoch, train_loss, train_acc, val_loss, val_acc, seconds, images_per_s, plus
    the method's diagnostics: cosine for rbd/fpd, nes_loss_* for nes) appended to `metrics_path`, then
    `divergence.check(...)`. `initial_weights` (Keras get_weights() order and layout, e.g. from
    tf_models.keras_weights_from_torch) replace the Glorot draw from `init_seed`.

    `divergence` is loop.DivergenceRules (resolved for `method` when it has `resolved`) or any object
    with its `check`. NES is budgeted in images as loop.train does it: an update consumes dims * batch
    images and the run makes floor(epochs * len(train) / (dims * batch)) updates, each belonging to the
    epoch in which its last image is used; an epoch without one is still evaluated, train_loss None.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
    data = data.to("cpu")
    stream = BatchStream(data, batch_size, data_seed, augment_seed, augment)
    evals = _eval_arrays(data, augment_seed, augment)
    net = build_keras_model(model, data.in_shape, data.num_classes, init_seed)
    if initial_weights is not None:
        net.set_weights([np.asarray(w, dtype=np.float32) for w in initial_weights])
    trainer = Trainer(net, method, options, lr, method_seed)
    evaluate = make_evaluator(net)
    per_update = trainer.options["dims"] * batch_size if trainer.gradient_free else batch_size
    rules = divergence.resolved(method) if hasattr(divergence, "resolved") else divergence

    metrics_file = open(metrics_path, "a", encoding="utf-8") if metrics_path else None
    history: list[dict[str, Any]] = []
    status, reason = "finished", None
    images_total, seconds_total = 0, 0.0
    started = time.perf_counter()
    try:
        for epoch in range(1, epochs + 1):
            t0 = time.perf_counter()
            loss_sum, correct, seen = 0.0, 0, 0
            diag_sums: dict[str, float] = {}
            diag_count = 0
            if trainer.gradient_free:
                # updates due once `epoch` epochs of len(train) images are consumed (the reference's budget)
                target = epoch * len(data.x_train) // per_update
                while trainer.steps_taken < target:
                    fitness = trainer.nes_step(stream.next)
                    loss_sum += float(fitness.sum()) * batch_size
                    seen += per_update
                    stats = {
                        "nes_loss_mean": fitness.mean(),
                        "nes_loss_min": fitness.min(),
                        "nes_loss_max": fitness.max(),
                        "nes_loss_std": fitness.std(ddof=1),
                    }
                    for k, v in stats.items():
                        diag_sums[k] = diag_sums.get(k, 0.0) + float(v)
                    diag_count += 1
            else:
                for _ in range(stream.per_epoch):
                    x, y = stream.next()
                    loss, c, diag = trainer.train_step(x, y)
                    loss_sum += loss * len(y)
                    correct += c
                    seen += len(y)
                    for k, v in diag.items():
                        diag_sums[k] = diag_sums.get(k, 0.0) + v
                    diag_count += 1
            # None, not NaN, for an epoch in which no NES update finished: NaN would read as divergence
            train_loss = loss_sum / seen if seen else None
            val_loss, val_acc = evaluate(*evals["val"])
            seconds = time.perf_counter() - t0
            images_total += seen
            seconds_total += seconds
            row: dict[str, Any] = {
                "epoch": epoch,
                "updates": trainer.steps_taken,
                "train_loss": train_loss,
                # NES evaluates perturbed models only: no clean training accuracy
                "train_acc": None if trainer.gradient_free or not seen else correct / seen,
                "val_loss": val_loss,
                "val_acc": val_acc,
                "seconds": seconds,
                "images_per_s": seen / seconds if seconds > 0 else None,
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
    finally:
        if metrics_file is not None:
            metrics_file.close()

    result: dict[str, Any] = {
        "status": status,
        "reason": reason,
        "stop_rule": getattr(rules, "mode", None),
        "epochs_completed": len(history),
        "updates": trainer.steps_taken,
        "train_seconds": time.perf_counter() - started,
    }
    if history:
        last = history[-1]
        result.update({k: last[k] for k in ("train_loss", "train_acc", "val_loss", "val_acc")})
        # images over time, so an epoch without a NES update does not drag down a mean of rates
        result["images_per_s"] = images_total / seconds_total if seconds_total > 0 else None
    result.update(summarize_val_acc(history))
    if status == "finished":
        result["test_loss"], result["test_acc"] = evaluate(*evals["test"])
    result.update({"D": count_parameters(net), "framework": "tensorflow"})
    return _jsonable(result)


__all__ = ["BatchStream", "DEFAULTS", "METHODS", "Trainer", "make_evaluator", "resolve_options", "train_tensorflow"]
