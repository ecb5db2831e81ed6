"""The built-in methods' TensorFlow implementations: SGD, RBD, FPD and NES (docs/methods.md).

Each of `sgd`, `rbd`, `fpd`, `nes` is the factory a built-in Method names in its `tensorflow` field:
`factory(model, cfg, lr, method_seed) -> update`, under the protocol seedbench/train/tf_runner.py
describes. `cfg` is the method's validated pydantic config, so the defaults and the validation live
in one place (seedbench/methods/), and a factory's `supports(cfg)` says which valid configs it
cannot train.

The driver imports this module to ask `supports` when it plans a sweep, so TensorFlow is imported
only when the first update is built (`_import_tensorflow`): planning a TensorFlow sweep does not pay
TensorFlow's start-up (seconds, hundreds of MB) in the driver.

`GradientUpdate` is the base of the gradient methods and a plugin may use it too: a subclass writes
`apply(grads, step)` and gets the forward pass, the loss, its gradient and the accuracy count,
compiled with tf.function together with its own update.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import tensorflow as tf

    from seedbench.train import tf_models as nets
    from seedbench.train import tf_optim as ops
else:
    tf = nets = ops = None  # bound by _import_tensorflow() when the first update is built


def _import_tensorflow() -> None:
    """Bind `tf`, `nets` (tf_models) and `ops` (tf_optim) in this module on first use (see the module docstring)."""
    global tf, nets, ops
    if tf is None:
        from seedbench.train import tf_models, tf_optim

        tf, nets, ops = tf_models.tf, tf_models, tf_optim


class _FlatView:
    """The model's trainable variables as one flat vector of length D (the random-bases methods' space)."""

    def __init__(self, model: Any) -> None:
        _import_tensorflow()
        self.model = model
        self.variables = list(model.trainable_variables)
        self.shapes = [tuple(v.shape) for v in self.variables]
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        self.D = sum(self.sizes)
        self.steps_taken = 0

    def flat_params(self) -> tf.Tensor:
        return tf.concat([tf.reshape(v, [-1]) for v in self.variables], axis=0)

    def state(self) -> dict[str, Any]:
        """What a checkpoint must hold to resume this update exactly: the step count (the random streams
        are stateless, keyed by step) and any slot variables a subclass keeps (see SGDUpdate)."""
        return {"steps_taken": self.steps_taken}

    def load_state(self, state: dict[str, Any]) -> None:
        self.steps_taken = int(state["steps_taken"])

    def _split(self, flat: tf.Tensor) -> list[tf.Tensor]:
        return [tf.reshape(p, s) for p, s in zip(tf.split(flat, self.sizes), self.shapes)]


class GradientUpdate(_FlatView):
    """A gradient method: `train_step(x, y) -> (loss, correct, diagnostics)`; subclasses write `apply`.

    The loss, gradient and `apply` run in one tf.function, traced once per run.
    """

    gradient_free = False

    def __init__(self, model: Any, lr: float) -> None:
        super().__init__(model)
        self.lr = float(lr)
        self._step_fn = tf.function(self._step)

    def apply(self, grads: list[tf.Tensor], step: tf.Tensor) -> dict[str, tf.Tensor]:
        """Update `self.variables` from their gradients (traced); return this step's diagnostics as scalars."""
        raise NotImplementedError

    def direction_step(self) -> int:
        """Which entry of the method's random stream the next step uses (the step count, by default)."""
        return self.steps_taken

    def _grads(self, x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, list[tf.Tensor]]:
        with tf.GradientTape() as tape:
            logits = self.model(x, training=True)
            loss = tf.reduce_mean(nets.cross_entropy(logits, y))
        grads = tape.gradient(loss, self.variables)
        return loss, nets.correct_count(logits, y), grads

    def _step(self, x: tf.Tensor, y: tf.Tensor, step: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, dict[str, tf.Tensor]]:
        loss, correct, grads = self._grads(x, y)
        return loss, correct, self.apply(grads, step)

    def train_step(self, x: np.ndarray | tf.Tensor, y: np.ndarray | tf.Tensor) -> tuple[float, int, dict[str, float]]:
        x = tf.convert_to_tensor(x, dtype=tf.float32)
        y = tf.convert_to_tensor(y, dtype=tf.int64)
        loss, correct, diagnostics = self._step_fn(x, y, tf.constant(self.direction_step(), tf.int64))
        self.steps_taken += 1
        return float(loss), int(correct), {k: float(v) for k, v in diagnostics.items()}


# ---------------------------------------------------------------------------------------------- SGD
class SGDUpdate(GradientUpdate):
    """torch.optim.SGD: g += wd theta; buf = momentum buf + g (buf = g at the first step); theta -= lr buf."""

    def __init__(self, model: Any, lr: float, momentum: float, weight_decay: float) -> None:
        super().__init__(model, lr)
        self.momentum, self.weight_decay = momentum, weight_decay
        self._buffers = [tf.Variable(tf.zeros(s), trainable=False) for s in self.shapes] if momentum else None

    def state(self) -> dict[str, Any]:
        buffers = [np.array(b.numpy()) for b in self._buffers] if self._buffers is not None else []
        return {**super().state(), "momentum_buffers": buffers}

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        for buf, value in zip(self._buffers or [], state["momentum_buffers"], strict=True):
            buf.assign(np.asarray(value, dtype=np.float32))

    def apply(self, grads: list[tf.Tensor], step: tf.Tensor) -> dict[str, tf.Tensor]:
        for i, (v, g) in enumerate(zip(self.variables, grads)):
            if self.weight_decay:
                g = g + self.weight_decay * v
            if self._buffers is not None:
                buf = self._buffers[i]
                buf.assign(self.momentum * buf + g)  # zeros at the start: mom * 0 + g = g, as torch's first step
                g = buf
            v.assign_sub(self.lr * g)
        return {}


def sgd(model: Any, cfg: Any, lr: float, method_seed: int) -> SGDUpdate:
    return SGDUpdate(model, lr, cfg.momentum, cfg.weight_decay)


# ------------------------------------------------------------------------------------------ RBD / FPD
class RBDUpdate(GradientUpdate):
    """The gradient projected on `dims` random directions regenerated from (method_seed, step); logs its cosine with g."""

    def __init__(self, model: Any, cfg: Any, lr: float, method_seed: int) -> None:
        super().__init__(model, lr)
        self.dims, self.distribution, self.chunk = cfg.dims, cfg.distribution, cfg.chunk
        self.key = ops.base_key(method_seed)
        if cfg.compartments == "network":
            self.blocks = [(0, self.D)]
        else:
            offsets = np.cumsum([0] + self.sizes[:-1]).tolist()
            self.blocks = list(zip(offsets, self.sizes))
        self.scale_sq = ops.rbd_scale_sq(cfg.normalization, cfg.distribution, self.D, cfg.dims)

    def apply(self, grads: list[tf.Tensor], step: tf.Tensor) -> dict[str, tf.Tensor]:
        g = tf.concat([tf.reshape(gr, [-1]) for gr in grads], axis=0)
        g_hat = ops.rbd_project(g, self.key, step, self.blocks, self.dims, self.distribution, self.scale_sq, self.chunk)
        denom = tf.maximum(tf.norm(g) * tf.norm(g_hat), np.finfo(np.float32).tiny)
        cosine = tf.tensordot(g, g_hat, 1) / denom
        for v, part in zip(self.variables, self._split(g_hat)):
            v.assign_sub(self.lr * part)
        return {"cosine": cosine}


class FPDUpdate(RBDUpdate):
    """RBD with the directions of one fixed step, reused: theta stays in theta0 + span(P)."""

    def direction_step(self) -> int:
        return 0


def _iid_bases_only(cfg: Any) -> str | None:
    """The TF runner draws i.i.d. directions (tf_optim); a structured basis would be another method."""
    bases = getattr(cfg, "bases", "gaussian")
    if bases != "gaussian":
        return f"the TensorFlow implementation draws i.i.d. bases only, not {bases} (Hadamard bases are torch-only); use framework=torch"
    return None


def rbd(model: Any, cfg: Any, lr: float, method_seed: int) -> RBDUpdate:
    return RBDUpdate(model, cfg, lr, method_seed)


def fpd(model: Any, cfg: Any, lr: float, method_seed: int) -> FPDUpdate:
    return FPDUpdate(model, cfg, lr, method_seed)


rbd.supports = _iid_bases_only  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------- NES
class NESUpdate(_FlatView):
    """NES (docs/methods.md, "NES"): raw perturbation theta + sigma e_i, eps_i = e_i/sqrt(D) only in the
    update under "auto", rank utilities, optional antithetic pairs; the population is `evaluations_per_step`."""

    gradient_free = True
    default_stop_rule = "nan"

    def __init__(self, model: Any, cfg: Any, lr: float, method_seed: int) -> None:
        super().__init__(model)
        self.lr = float(lr)
        self.dims, self.sigma, self.antithetic = cfg.dims, cfg.sigma, cfg.antithetic
        self.distribution, self.chunk = cfg.distribution, cfg.chunk
        self.evaluations_per_step = cfg.dims
        self.key = ops.base_key(method_seed)
        self.noise_vectors = cfg.dims // 2 if cfg.antithetic else cfg.dims
        self.update_factor = ops.nes_noise_scale(cfg.normalization, self.D) / (cfg.sigma * cfg.dims)
        self._member_losses_fn = tf.function(self._member_losses)
        self._apply_fn = tf.function(self._apply)

    def _member_losses(self, xs: tf.Tensor, ys: tf.Tensor, step: tf.Tensor, chunk_index: int) -> tf.Tensor:
        """Loss of each member of one noise chunk, member j at theta + sigma * (+-) e_j on its own batch."""
        rows = int(xs.shape[0]) // (2 if self.antithetic else 1)
        e = ops.nes_noise(self.key, step, chunk_index, rows, self.D, self.distribution)
        if self.antithetic:
            e = tf.reshape(tf.stack([e, -e], axis=1), [2 * rows, self.D])  # members (+e_k, -e_k) in turn
        theta = self.flat_params()

        def member(args: tuple[tf.Tensor, tf.Tensor, tf.Tensor]) -> tf.Tensor:
            noise, x, y = args
            params = self._split(theta + self.sigma * noise)
            logits, _ = self.model.stateless_call(params, [], x, training=False)
            return tf.reduce_mean(nets.cross_entropy(logits, y))

        return tf.map_fn(member, (e, xs, ys), fn_output_signature=tf.float32)

    def _apply(self, weights: tf.Tensor, step: tf.Tensor) -> None:
        ascent = ops.nes_ascent(self.key, step, weights, self.D, self.distribution, self.chunk)
        for v, part in zip(self.variables, self._split(ascent)):
            v.assign_add((self.lr * self.update_factor) * part)

    def population_step(self, next_batch: Callable[[], tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, dict[str, float]]:
        """One NES update; `next_batch()` is called once per member, in member order, as torch's closure is."""
        per_noise = 2 if self.antithetic else 1
        step = tf.constant(self.steps_taken, tf.int64)
        losses = []
        for c, (_, rows) in enumerate(ops.chunk_rows(self.noise_vectors, self.chunk)):
            batches = [next_batch() for _ in range(rows * per_noise)]
            xs = tf.convert_to_tensor(np.stack([b[0] for b in batches]), dtype=tf.float32)
            ys = tf.convert_to_tensor(np.stack([b[1] for b in batches]), dtype=tf.int64)
            losses.append(self._member_losses_fn(xs, ys, step, c).numpy())
        fitness = np.concatenate(losses).astype(np.float64)
        utilities = ops.rank_utilities(fitness)
        weights = utilities[0::2] - utilities[1::2] if self.antithetic else utilities
        self._apply_fn(tf.constant(weights, tf.float32), step)
        self.steps_taken += 1
        diagnostics = {
            "nes_loss_mean": float(fitness.mean()),
            "nes_loss_min": float(fitness.min()),
            "nes_loss_max": float(fitness.max()),
            "nes_loss_std": float(fitness.std(ddof=1)),
        }
        return fitness, diagnostics


def nes(model: Any, cfg: Any, lr: float, method_seed: int) -> NESUpdate:
    return NESUpdate(model, cfg, lr, method_seed)


__all__ = ["FPDUpdate", "GradientUpdate", "NESUpdate", "RBDUpdate", "SGDUpdate", "fpd", "nes", "rbd", "sgd"]
