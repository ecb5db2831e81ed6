"""The TensorFlow runner against the torch one: same step, same estimator statistics, same records.

(a) One SGD step from the same weights on the same batch gives the same parameters in both frameworks
    within a float32 error bound derived below (no hand-picked tolerance).
(b) TF's RBD estimator has the expected mean (unbiased under "unbiased"), by the z-score test of
    tests/test_optim_estimator.py, which must also reject a 15 % wrong scale.
(c) TF's NES update points downhill: mean cosine with -g is positive beyond a one-sided bound.
(d) Every method trains end to end, writes the rows and result keys loop.train writes, and sees the
    very batches loop.train feeds its model.
(e) The runner reads everything from the method and the model registry: what they cannot do is refused
    with the reason, asked on the driver without TensorFlow (tests/test_tf_plugin.py runs a plugin's own).
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import norm
from torch import nn

from seedbench.config import TrialConfig
from seedbench.data import load_dataset
from seedbench.errors import ConfigError
from seedbench.methods.base import Method
from seedbench.methods.random_bases import NESConfig
from seedbench.methods.sgd import SGDConfig
from seedbench.models import build_model
from seedbench.optim.directions import FOURTH_MOMENT, SECOND_MOMENT
from seedbench.registry import get_method
from seedbench.seeding import stream_seeds
from seedbench.train.loop import DivergenceRules, TrainSettings, train
from seedbench.train.tf_methods import nes, sgd
from seedbench.train.tf_models import build_keras_model, count_parameters, keras_weights_from_torch, tf, to_nhwc
from seedbench.train.tf_optim import base_key, nes_ascent, nes_noise, rank_utilities, rbd_project, rbd_scale_sq
from seedbench.train.tf_runner import BatchStream, train_tensorflow

U32 = 2.0**-24  # unit roundoff of float32: fl(a op b) = (a op b)(1 + e), |e| <= U32
ALPHA = 1e-4  # family-wise false-alarm rate of the statistical tests, as in test_optim_estimator
WRONG_SCALE = 1.15
# the one-step test must resolve a learning rate this much too large (what "same step" is worth)
RESOLUTION = 0.05
# docs/methods.md, "Networks": the study's parameter counts for 1x28x28 inputs
D_FC, D_CNN = 784 * 128 + 128 + 128 * 10 + 10, (9 * 32 + 32) + (288 * 64 + 64) + (576 * 64 + 64) + (576 * 64 + 64) + (64 * 10 + 10)
IN_SHAPE = (1, 28, 28)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", limit_train=256)


def _torch_model(name: str, seed: int) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(name, IN_SHAPE, 10)


# ------------------------------------------------------------------------------------------- models
@pytest.mark.parametrize(("name", "expected"), [("fc", D_FC), ("cnn", D_CNN)])
def test_keras_models_have_the_study_parameter_counts(name: str, expected: int) -> None:
    assert expected == (101_770 if name == "fc" else 93_322)
    net = build_keras_model(name, IN_SHAPE, 10, init_seed=0)
    assert count_parameters(net) == expected
    assert sum(p.numel() for p in _torch_model(name, 0).parameters()) == expected


def test_keras_init_is_glorot_uniform_with_zero_biases_and_follows_the_seed() -> None:
    a = build_keras_model("cnn", IN_SHAPE, 10, init_seed=7).get_weights()
    b = build_keras_model("cnn", IN_SHAPE, 10, init_seed=7).get_weights()
    c = build_keras_model("cnn", IN_SHAPE, 10, init_seed=8).get_weights()
    for wa, wb in zip(a, b):
        np.testing.assert_array_equal(wa, wb)
    assert any(not np.array_equal(wa, wc) for wa, wc in zip(a, c))
    kernels = a[0::2]
    for kernel, bias in zip(kernels, a[1::2]):
        assert not bias.any()
        receptive = int(np.prod(kernel.shape[:-2]))
        fan_in, fan_out = kernel.shape[-2] * receptive, kernel.shape[-1] * receptive
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        assert np.abs(kernel).max() <= limit
        # uniform on [-limit, limit]: variance limit^2 / 3; the sample variance of n entries has
        # standard error ~ limit^2 sqrt(4/45 / n) (fourth central moment limit^4 / 5)
        se = limit**2 * math.sqrt((1 / 5 - 1 / 9) / kernel.size)
        assert abs(kernel.var() - limit**2 / 3) < norm.isf(ALPHA / (2 * len(kernels))) * se
    # distinct layers with the same shape must not share a draw
    assert not np.array_equal(kernels[2].ravel()[:100], kernels[1].ravel()[:100])


# ------------------------------------------------------------------------------ (a) one-step parity
def _gamma(n: int) -> float:
    """gamma_n = n u / (1 - n u): |fl(sum of n products) - exact| <= gamma_n * sum of |products|."""
    return n * U32 / (1 - n * U32)


def _one_step_bound(model: nn.Module, x: torch.Tensor, y: torch.Tensor, lr: float) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """theta1 = theta0 - lr g in float64, and a bound on |fl32(theta1) - theta1| per entry.

    A first-order running error analysis of the float32 forward and backward pass (Higham, Accuracy
    and Stability of Numerical Algorithms, ch. 3), done layer by layer in float64 beside the exact pass:
      forward    z = W a + b:      E_z = gamma_{k+1} (|W||a| + |b|) + |W| E_a    (k = reduction length)
                 ReLU, max-pool:   errors pass through the active units / the chosen input
                                   (max-pool is 1-Lipschitz, so pooling E bounds the pooled error)
      loss       dL/dz = (p - y)/B, and a logit error moves p_k by at most p_k (E_z_k + sum_j p_j E_z_j);
                 the softmax's own exp/sum/divide add gamma_{K+2} p
      backward   delta_in = W^T delta:  E = gamma_k |W|^T|delta| + |W|^T E_delta
                 grad W = delta a^T summed over n terms (batch x positions):
                            E = gamma_n |delta||a| + |delta| E_a + E_delta |a| + E_delta E_a
      update     theta0 - lr g rounds twice: u (|theta1| + lr |g|).
    Assumes no ReLU or max-pool decision flips between the float32 and the exact pass (a pre-
    activation within rounding of a kink); a flip would make the test fail, not pass wrongly. The
    float64 reference's own error (2^-29 times smaller) is neglected.
    """
    from torch.nn.grad import conv2d_input, conv2d_weight

    f = nn.functional
    a, ea = x.double(), torch.zeros_like(x, dtype=torch.float64)
    tape: list[tuple] = []
    for m in model:
        if isinstance(m, nn.Linear):
            w, b = m.weight.detach().double(), m.bias.detach().double()
            tape.append(("linear", m, a, ea))
            a, ea = a @ w.T + b, _gamma(m.in_features + 1) * (a.abs() @ w.abs().T + b.abs()) + ea @ w.abs().T
        elif isinstance(m, nn.Conv2d):
            w, b = m.weight.detach().double(), m.bias.detach().double()
            k = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
            tape.append(("conv", m, a, ea))
            a, ea = f.conv2d(a, w, b), _gamma(k + 1) * (f.conv2d(a.abs(), w.abs(), b.abs())) + f.conv2d(ea, w.abs())
        elif isinstance(m, nn.ReLU):
            mask = (a > 0).double()
            tape.append(("relu", mask))
            a, ea = a * mask, ea * mask
        elif isinstance(m, nn.MaxPool2d):
            shape = a.shape
            a, index = f.max_pool2d(a, 2, return_indices=True)
            tape.append(("pool", index, shape))
            ea = f.max_pool2d(ea, 2)
        elif isinstance(m, nn.Flatten):
            tape.append(("flatten", a.shape))
            a, ea = a.flatten(1), ea.flatten(1)
        else:
            raise TypeError(f"no error model for {type(m).__name__}")
    batch, classes = a.shape
    p = torch.softmax(a, dim=1)
    onehot = f.one_hot(y, classes).double()
    delta = (p - onehot) / batch
    e_delta = (p * (ea + (p * ea).sum(1, keepdim=True)) + _gamma(classes + 2) * p) / batch

    grads: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = {}
    for entry in reversed(tape):
        kind = entry[0]
        if kind == "linear":
            _, m, a_in, e_in = entry
            w = m.weight.detach().double()
            gw = delta.T @ a_in
            egw = _gamma(batch) * delta.abs().T @ a_in.abs() + delta.abs().T @ e_in + e_delta.T @ a_in.abs() + e_delta.T @ e_in
            gb, egb = delta.sum(0), _gamma(batch) * delta.abs().sum(0) + e_delta.sum(0)
            grads[id(m)] = (gw, egw, gb, egb)
            delta, e_delta = delta @ w, _gamma(m.out_features) * delta.abs() @ w.abs() + e_delta @ w.abs()
        elif kind == "conv":
            _, m, a_in, e_in = entry
            w = m.weight.detach().double()
            n = batch * delta.shape[2] * delta.shape[3]
            gw = conv2d_weight(a_in, w.shape, delta)
            egw = (
                _gamma(n) * conv2d_weight(a_in.abs(), w.shape, delta.abs())
                + conv2d_weight(e_in, w.shape, delta.abs())
                + conv2d_weight(a_in.abs(), w.shape, e_delta)
                + conv2d_weight(e_in, w.shape, e_delta)
            )
            gb, egb = delta.sum((0, 2, 3)), _gamma(n) * delta.abs().sum((0, 2, 3)) + e_delta.sum((0, 2, 3))
            grads[id(m)] = (gw, egw, gb, egb)
            k = m.out_channels * m.kernel_size[0] * m.kernel_size[1]
            delta, e_delta = (
                conv2d_input(a_in.shape, w, delta),
                _gamma(k) * conv2d_input(a_in.shape, w.abs(), delta.abs()) + conv2d_input(a_in.shape, w.abs(), e_delta),
            )
        elif kind == "relu":
            delta, e_delta = delta * entry[1], e_delta * entry[1]
        elif kind == "pool":
            _, index, shape = entry
            delta = f.max_unpool2d(delta, index, 2, output_size=shape[2:])
            e_delta = f.max_unpool2d(e_delta, index, 2, output_size=shape[2:])
        else:
            delta, e_delta = delta.view(entry[1]), e_delta.view(entry[1])

    theta1, bound = [], []
    for m in model:
        if id(m) in grads:
            gw, egw, gb, egb = grads[id(m)]
            for param, g, eg in ((m.weight, gw, egw), (m.bias, gb, egb)):
                t1 = param.detach().double() - lr * g
                theta1.append(t1)
                bound.append(lr * eg + U32 * (t1.abs() + lr * g.abs()))
    return theta1, bound


def _as_keras(template: nn.Module, tensors: list[torch.Tensor]) -> list[np.ndarray]:
    """Per-parameter tensors (torch layout) -> Keras layout, via the converter (a pure permutation)."""
    holder = copy.deepcopy(template).double()
    with torch.no_grad():
        for p, t in zip(holder.parameters(), tensors):
            p.copy_(t)
    return [w.astype(np.float64) for w in keras_weights_from_torch(holder, IN_SHAPE)]


def _worst_ratio(actual: list[np.ndarray], expected: list[np.ndarray], bound: list[np.ndarray]) -> float:
    """max |actual - expected| / bound; a zero bound (a dead unit's untouched zero bias) must match exactly."""
    tiny = np.finfo(np.float64).tiny
    return max(float((np.abs(a - e) / np.maximum(b, tiny)).max()) for a, e, b in zip(actual, expected, bound))


def _tf_one_step(torch_model: nn.Module, weights: list[np.ndarray], name: str, x: torch.Tensor, y: torch.Tensor, lr: float) -> list[np.ndarray]:
    net = build_keras_model(name, IN_SHAPE, 10, init_seed=0)
    net.set_weights(weights)
    sgd(net, SGDConfig(), lr, method_seed=0).train_step(to_nhwc(x.numpy()), y.numpy())
    return [w.astype(np.float64) for w in net.get_weights()]


def _torch_one_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, lr: float) -> list[torch.Tensor]:
    model = copy.deepcopy(model)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    return [p.detach().double() for p in model.parameters()]


@pytest.mark.parametrize(("name", "lr"), [("fc", 0.25), ("cnn", 0.0625)])
def test_one_sgd_step_gives_the_same_parameters_in_torch_and_tensorflow(digits, name: str, lr: float) -> None:
    model = _torch_model(name, seed=3)
    x, y = digits.x_train[:32], digits.y_train[:32]
    theta1, bound = _one_step_bound(model, x, y, lr)
    torch_after = _torch_one_step(model, x, y, lr)
    for t32, t64, b in zip(torch_after, theta1, bound):  # the bound holds for torch's own float32 step
        assert ((t32 - t64).abs() <= b).all()
    tf_after = _tf_one_step(model, keras_weights_from_torch(model, IN_SHAPE), name, x, y, lr)
    expected, tol = _as_keras(model, theta1), _as_keras(model, bound)
    worst = _worst_ratio(tf_after, expected, tol)
    assert worst <= 1.0, f"TF step off by {worst:.2f}x the float32 bound"
    # and the bound is tight enough to matter: a step with a RESOLUTION larger learning rate breaks it
    steps = _as_keras(model, [t - p.detach().double() for t, p in zip(theta1, model.parameters())])
    wrong_lr = [e + RESOLUTION * s for e, s in zip(expected, steps)]
    assert _worst_ratio(wrong_lr, expected, tol) > 1.0


def test_the_one_step_check_catches_a_wrong_flatten_order(digits) -> None:
    """The (c,h,w) -> (h,w,c) row permutation of the CNN's first dense layer is what the converter
    exists for; skipping it must break the comparison, or the test above proves nothing about it."""
    model = _torch_model("cnn", seed=3)
    x, y = digits.x_train[:32], digits.y_train[:32]
    theta1, bound = _one_step_bound(model, x, y, 0.0625)
    weights = keras_weights_from_torch(model, IN_SHAPE)
    dense = model[-3].weight.detach().numpy()  # Linear(576, 64) right after the flatten
    weights[6] = dense.T.copy()  # NCHW row order, as a converter that forgot the permutation would give
    tf_after = _tf_one_step(model, weights, "cnn", x, y, 0.0625)
    expected, tol = _as_keras(model, theta1), _as_keras(model, bound)
    assert _worst_ratio(tf_after, expected, tol) > 1.0


# --------------------------------------------------------------------------- (b) RBD estimator mean
DRAWS = 3000


def _gradient(dim: int) -> np.ndarray:
    g = np.linspace(-1.0, 1.0, dim) ** 3
    g[dim // 3] = 1.5  # one dominant coordinate, so an estimator drifting towards it would show
    return g / np.linalg.norm(g)


def _rbd_samples(g: np.ndarray, blocks, dims: int, distribution: str, normalization: str, seed: int) -> np.ndarray:
    key = base_key(seed)
    scale_sq = rbd_scale_sq(normalization, distribution, g.size, dims)
    g_tf = tf.constant(g, tf.float32)
    one = tf.function(lambda t: rbd_project(g_tf, key, t, blocks, dims, distribution, scale_sq, chunk=3))
    return np.stack([one(tf.constant(t, tf.int64)).numpy() for t in range(DRAWS)]).astype(np.float64)


def _theory(g: np.ndarray, distribution: str, dims: int, coef: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sd of one draw of g_hat = coef * sum_{i<d} e_i <e_i, g> with i.i.d. entries."""
    m2, m4 = SECOND_MOMENT[distribution], FOURTH_MOMENT[distribution]
    var = m2**2 * (np.sum(g**2) - g**2) + (m4 - m2**2) * g**2
    return coef * dims * m2 * g, coef * np.sqrt(dims * var)


@pytest.mark.parametrize(
    ("distribution", "normalization", "compartments"),
    [
        ("normal", "auto", "network"),
        ("normal", "unbiased", "network"),
        ("uniform", "unbiased", "network"),
        ("bernoulli", "unbiased", "network"),
        ("uniform", "auto", "network"),
        ("normal", "unbiased", "layer"),
    ],
)
def test_tf_rbd_update_has_the_predicted_mean(distribution: str, normalization: str, compartments: str) -> None:
    sizes, dims = [4, 5], 4  # dims > chunk (3): the chunked stream is what is tested
    dim = sum(sizes)
    g = _gradient(dim)
    blocks = [(0, dim)] if compartments == "network" else [(0, sizes[0]), (sizes[0], sizes[1])]
    samples = _rbd_samples(g, blocks, dims, distribution, normalization, seed=11)
    coef = rbd_scale_sq(normalization, distribution, dim, dims)
    if compartments == "network":
        mean, sd = _theory(g, distribution, dims, coef)
    else:  # each block is its own d-dimensional estimator of its slice of g
        parts = [_theory(g[o : o + n], distribution, dims, coef) for o, n in blocks]
        mean, sd = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    if normalization == "unbiased":
        np.testing.assert_allclose(mean, g)  # E[g_hat] = g is the claim being tested
    se = sd / math.sqrt(DRAWS)
    bound = norm.isf(ALPHA / (2 * dim))
    z = (samples.mean(0) - mean) / se
    assert np.abs(z).max() < bound, f"max |z| = {np.abs(z).max():.2f} >= {bound:.2f}"
    assert np.abs((samples.mean(0) - WRONG_SCALE * mean) / se).max() > bound, "cannot tell a 15% wrong scale"


def test_tf_directions_are_regenerated_from_the_seed_and_differ_between_steps() -> None:
    g = tf.constant(_gradient(7), tf.float32)
    scale = rbd_scale_sq("auto", "normal", 7, 5)
    a = rbd_project(g, base_key(5), 2, [(0, 7)], 5, "normal", scale, chunk=2)
    b = rbd_project(g, base_key(5), 2, [(0, 7)], 5, "normal", scale, chunk=2)
    c = rbd_project(g, base_key(5), 3, [(0, 7)], 5, "normal", scale, chunk=2)
    d = rbd_project(g, base_key(6), 2, [(0, 7)], 5, "normal", scale, chunk=2)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.array_equal(a.numpy(), c.numpy()) and not np.array_equal(a.numpy(), d.numpy())


# ---------------------------------------------------------------------------------- (c) NES descent
def test_rank_utilities_favour_low_losses_and_rank_nan_last() -> None:
    u = rank_utilities(np.array([3.0, float("nan"), 1.0, 2.0]))
    np.testing.assert_allclose(u, [-1 / 6, -0.5, 0.5, 1 / 6])
    assert u.sum() == pytest.approx(0.0, abs=1e-12)


def _mean_cosine_z(cosines: np.ndarray) -> float:
    return float(cosines.mean() / (cosines.std(ddof=1) / math.sqrt(len(cosines))))


def test_nes_core_points_downhill_on_a_quadratic() -> None:
    """f(theta) = 0.5 sum a_j (theta_j - c_j)^2: E[cos(update, -g)] > 0 by a one-sided z bound, and the
    same statistic with the ranks reversed (a sign error) is as clearly negative."""
    dim, pop, sigma, steps = 40, 20, 0.01, 20
    rng = np.random.default_rng(0)
    a = rng.uniform(0.5, 2.0, dim)
    centre = rng.normal(size=dim)
    theta = np.zeros(dim)
    g = a * (theta - centre)
    key = base_key(9)
    cos_right, cos_reversed = [], []
    for t in range(steps):
        e = nes_noise(key, t, 0, pop, dim, "normal").numpy().astype(np.float64)
        losses = 0.5 * (a * (theta + sigma * e - centre) ** 2).sum(1)
        for u, out in ((rank_utilities(losses), cos_right), (rank_utilities(-losses), cos_reversed)):
            update = nes_ascent(key, t, tf.constant(u, tf.float32), dim, "normal", chunk=pop).numpy()
            out.append(float(update @ -g / (np.linalg.norm(update) * np.linalg.norm(g))))
    bound = norm.isf(ALPHA)
    assert _mean_cosine_z(np.array(cos_right)) > bound
    assert _mean_cosine_z(np.array(cos_reversed)) < -bound


def test_nes_trainer_update_aligns_with_the_negative_gradient(digits) -> None:
    """The runner's own NES step (raw perturbation, model evaluation, chunked regeneration, update sign)
    on FC with one fixed batch, so the loss is a fixed smooth-almost-everywhere function of theta."""
    x, y = to_nhwc(digits.x_train[:32].numpy()), digits.y_train[:32].numpy()
    net = build_keras_model("fc", IN_SHAPE, 10, init_seed=1)
    w0 = net.get_weights()
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=net(x)))
    g = tf.concat([tf.reshape(t, [-1]) for t in tape.gradient(loss, net.trainable_variables)], 0).numpy()
    trainer = nes(net, NESConfig(dims=20, chunk=8), lr=1.0, method_seed=4)  # 3 chunks, last one short
    theta0 = trainer.flat_params().numpy()
    cosines = []
    for _ in range(10):  # steps at the same theta0: i.i.d. draws of the update (z ~ 18 measured, bound ~3.7)
        net.set_weights(w0)
        trainer.population_step(lambda: (x, y))
        step = trainer.flat_params().numpy().astype(np.float64) - theta0
        cosines.append(float(step @ -g / (np.linalg.norm(step) * np.linalg.norm(g))))
    assert _mean_cosine_z(np.array(cosines)) > norm.isf(ALPHA)


# ------------------------------------------------------------------------------ (d) end to end
def _cfg(method: str, **values):
    """The method's resolved config for a TF cell on digits (Method.resolve, as the driver resolves a cell)."""
    return get_method(method).resolve({"model": "fc", "dataset": "digits", "framework": "tensorflow", **values})


# dims 60 > chunk 50: two chunks per step, at a quarter of the default's cost; NES's population of 4
# makes 128-image updates, so 256 training images give 2 per epoch
METHOD_CASES = [("sgd", {}, 0.25), ("rbd", {"dims": 60}, 0.5), ("fpd", {"dims": 60}, 0.5), ("nes", {"dims": 4}, 0.5)]


@pytest.mark.parametrize(("method", "options", "lr"), METHOD_CASES, ids=[c[0] for c in METHOD_CASES])
def test_each_method_trains_end_to_end_with_loop_train_records(digits, tmp_path: Path, method: str, options: dict, lr: float) -> None:
    seeds = stream_seeds(2)
    epochs, batch = 2, 32
    tf_path, torch_path = tmp_path / "tf.jsonl", tmp_path / "torch.jsonl"
    cfg = _cfg(method, lr=lr, epochs=epochs, batch_size=batch, augment=True, **options)
    result = train_tensorflow(get_method(method), cfg, digits, seeds, metrics_path=tf_path)
    assert result["status"] == "finished", result.get("reason")
    assert result["D"] == D_FC == 101_770 and result["framework"] == "tensorflow"
    assert result["epochs_completed"] == epochs
    per_update = batch * options.get("dims", 1)
    expected_updates = epochs * len(digits.x_train) // per_update if method == "nes" else epochs * (len(digits.x_train) // batch)
    assert result["updates"] == expected_updates > 0
    for key in ("val_acc", "test_acc", "best_val_acc", "val_acc_last10"):
        assert 0.0 <= result[key] <= 1.0
    rows = [json.loads(line) for line in tf_path.read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(1, epochs + 1))
    assert result["best_val_acc"] == max(r["val_acc"] for r in rows)
    assert result["val_acc_last10"] == pytest.approx(sum(r["val_acc"] for r in rows) / len(rows))

    # the same cell on torch, built from the same method declaration
    model = _torch_model("fc", seeds["init"])
    opt = get_method(method).optimizer(model.parameters(), lr, cfg, seeds["method"])
    settings = TrainSettings(
        epochs=epochs,
        batch_size=batch,
        data_seed=seeds["data"],
        augment_seed=seeds["augment"],
        augment=True,
        metrics_path=torch_path,
        divergence=DivergenceRules(mode=cfg.stop_rule),
    )
    reference = train(model, opt, digits, settings)
    torch_rows = [json.loads(line) for line in torch_path.read_text().splitlines()]
    assert set(result) == set(reference) | {"D", "framework"}
    assert [set(r) for r in rows] == [set(r) for r in torch_rows]
    assert result["updates"] == reference["updates"] and result["stop_rule"] == reference["stop_rule"]


def test_tf_runner_sees_exactly_the_batches_loop_train_feeds_torch(digits) -> None:
    """Same seeds -> the same images (augmented by the same generator draws) in the same order, across
    an epoch boundary (where _Batches draws a new permutation)."""
    seeds = stream_seeds(5)
    batch, epochs = 32, 2
    model = _torch_model("fc", 0)
    seen: list[torch.Tensor] = []
    model.register_forward_hook(lambda mod, args, out: seen.append(args[0].detach().clone()) if mod.training else None)
    settings = TrainSettings(epochs=epochs, batch_size=batch, data_seed=seeds["data"], augment_seed=seeds["augment"], augment=True)
    train(model, torch.optim.SGD(model.parameters(), lr=0.01), digits, settings)
    stream = BatchStream(digits, batch, seeds["data"], seeds["augment"], augment=True)
    assert len(seen) == epochs * stream.per_epoch
    for xb in seen:
        x, _ = stream.next()
        np.testing.assert_array_equal(x, to_nhwc(xb.numpy()))


def test_what_the_method_or_the_model_cannot_do_in_tensorflow_is_refused_with_the_reason(digits) -> None:
    seeds = stream_seeds(0)
    torch_only = Method(name="torch_only", config=TrialConfig, optimizer=lambda params, lr, cfg, seed: torch.optim.SGD(params, lr=lr))
    with pytest.raises(ConfigError, match="torch_only has no TensorFlow implementation"):
        train_tensorflow(torch_only, TrialConfig(lr=0.1, epochs=1), digits, seeds)
    with pytest.raises(ConfigError, match="Hadamard bases are torch-only"):  # the implementation's own supports(cfg)
        train_tensorflow(get_method("rbd"), _cfg("rbd", bases="hadamard", epochs=1), digits, seeds)
    with pytest.raises(ConfigError, match="needs a model with a Keras counterpart"):  # asked of the model registry
        train_tensorflow(get_method("sgd"), _cfg("sgd", model="resnet18", epochs=1), digits, seeds)
    broken = Method(name="broken", config=TrialConfig, optimizer=torch_only.optimizer, tensorflow="seedbench.train.tf_methods:no_such")
    with pytest.raises(ConfigError, match="cannot be imported"):
        train_tensorflow(broken, TrialConfig(lr=0.1, epochs=1, framework="tensorflow"), digits, seeds)


def test_the_driver_asks_an_implementation_without_importing_tensorflow() -> None:
    """supports(cfg) is asked when a sweep is planned, in a process that must not pay TensorFlow's import."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from seedbench.registry import get_method\n"
        "from seedbench.train.tf_check import tensorflow_refusal\n"
        "m = get_method('rbd')\n"
        "print(tensorflow_refusal(m, m.resolve({'framework': 'tensorflow', 'bases': 'hadamard'})))\n"
        "print(tensorflow_refusal(m, m.resolve({'framework': 'tensorflow'})))\n"
        "print('tensorflow' in sys.modules, 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert "Hadamard" in out[0] and out[1] == "None" and out[2] == "False False"


def test_nes_epoch_without_a_finished_update_is_evaluated_with_train_loss_none(digits, tmp_path: Path) -> None:
    """12 members x 32 images = 384 > 256 images per epoch: the first update finishes in epoch 2, as in
    loop.train's image budget (floor(e * N / (d * batch)) updates after epoch e)."""
    seeds = stream_seeds(3)
    path = tmp_path / "nes.jsonl"
    result = train_tensorflow(get_method("nes"), _cfg("nes", dims=12, lr=0.5, epochs=3), digits, seeds, metrics_path=path)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    per_update = 12 * 32
    assert [r["updates"] for r in rows] == [e * len(digits.x_train) // per_update for e in (1, 2, 3)] == [0, 1, 2]
    assert rows[0]["train_loss"] is None and rows[1]["train_loss"] is not None
    assert result["status"] == "finished" and result["updates"] == 2
