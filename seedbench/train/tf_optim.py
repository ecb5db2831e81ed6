"""Random directions, RBD projection and NES noise in TensorFlow, regenerated from integer seeds.

The same idea as seedbench.optim.directions, but every random number is drawn by TensorFlow's
stateless generators (Philox, chosen explicitly so CPU and GPU draw the same stream): a direction
costs a (seed, step, compartment, chunk) tuple, never D stored floats, and memory stays
O(chunk * D) however large d is (the reference draws 50 directions at a time).

The torch and TF runners draw *different* streams for the same seed (different generators); they
agree in distribution, which is what the statistical tests check.
"""

from __future__ import annotations

import math

import numpy as np

from seedbench.optim.directions import DEFAULT_CHUNK, SECOND_MOMENT
from seedbench.train.tf_models import tf

DISTRIBUTIONS: tuple[str, ...] = tuple(SECOND_MOMENT)
ALG = "philox"
_MASK32 = (1 << 32) - 1


def base_key(seed: int) -> tf.Tensor:
    """A stateless-RNG key [hi, lo] (int64) from a non-negative seed of up to 64 bits."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0 or seed >> 64:
        raise ValueError(f"seed must be an integer in [0, 2**64), got {seed!r}")
    seed = int(seed)
    return tf.constant([seed >> 32, seed & _MASK32], dtype=tf.int64)


def fold(key: tf.Tensor, *data) -> tf.Tensor:
    """key -> key' for each integer (or int64 tensor) in `data`: one independent stream per tuple."""
    for value in data:
        key = tf.random.experimental.stateless_fold_in(key, tf.cast(value, tf.int64), alg=ALG)
    return key


def draw(key: tf.Tensor, shape: list[int], distribution: str) -> tf.Tensor:
    """i.i.d. float32 entries: standard normal, uniform on [-1, 1], or Bernoulli +-1."""
    if distribution == "normal":
        return tf.random.stateless_normal(shape, seed=key, alg=ALG)
    if distribution == "uniform":
        return tf.random.stateless_uniform(shape, seed=key, minval=-1.0, maxval=1.0, alg=ALG)
    if distribution == "bernoulli":
        bits = tf.random.stateless_uniform(shape, seed=key, minval=0, maxval=2, dtype=tf.int32, alg=ALG)
        return tf.cast(2 * bits - 1, tf.float32)
    raise ValueError(f"unknown distribution {distribution!r}; choose one of {', '.join(DISTRIBUTIONS)}")


def chunk_rows(dims: int, chunk: int) -> list[tuple[int, int]]:
    """(first row, rows) of each chunk of a dims x D direction matrix."""
    return [(start, min(chunk, dims - start)) for start in range(0, dims, chunk)]


def rbd_scale_sq(normalization: str, distribution: str, total: int, dims: int) -> float:
    """s^2 with phi = s * e, so g_hat = s^2 E E^T g (docs/methods.md, "RBD").

    auto: entries / sqrt(D) with D the whole network (E[g_hat] = (d/D) g); unbiased: 1/(d E[e^2]),
    so E[g_hat] = g for every distribution. The same for network and layer compartments: under
    "auto" the reference divides by the whole network's D even per layer.
    """
    if normalization == "auto":
        return 1.0 / total
    if normalization == "unbiased":
        return 1.0 / (dims * SECOND_MOMENT[distribution])
    raise ValueError(f"unknown normalization {normalization!r}; choose auto or unbiased")


def rbd_project(
    g: tf.Tensor,
    key: tf.Tensor,
    step,
    blocks: list[tuple[int, int]],
    dims: int,
    distribution: str,
    scale_sq: float,
    chunk: int = DEFAULT_CHUNK,
) -> tf.Tensor:
    """g_hat = s^2 sum_i <g, e_i> e_i per block, with fresh directions for each (step, block).

    `blocks` are (offset, size) of the compartments in the flat vector: one block for "network",
    one per tensor for "layer". Each chunk is drawn, used for its coordinates and its share of the
    update, and dropped, so no d x D matrix ever exists. Traceable inside tf.function (shapes static).
    """
    parts = []
    for k, (offset, size) in enumerate(blocks):
        gk = g[offset : offset + size]
        step_key = fold(key, step, k)
        acc = tf.zeros([size], dtype=g.dtype)
        for c, (_, rows) in enumerate(chunk_rows(dims, chunk)):
            e = draw(fold(step_key, c), [rows, size], distribution)
            coords = tf.linalg.matvec(e, gk)
            acc = acc + tf.linalg.matvec(e, coords, transpose_a=True)
        parts.append(acc * scale_sq)
    return tf.concat(parts, axis=0) if len(parts) > 1 else parts[0]


def nes_noise(key: tf.Tensor, step, chunk_index: int, rows: int, dim: int, distribution: str) -> tf.Tensor:
    """Raw noise rows e (rows x D) of one chunk of one NES step; regenerated, never stored."""
    return draw(fold(key, step, chunk_index), [rows, dim], distribution)


def nes_ascent(key: tf.Tensor, step, weights: tf.Tensor, dim: int, distribution: str, chunk: int = DEFAULT_CHUNK) -> tf.Tensor:
    """sum_i w_i e_i in raw noise units, regenerating the step's noise chunk by chunk."""
    noise_vectors = int(weights.shape[0])
    acc = tf.zeros([dim], dtype=tf.float32)
    for c, (start, rows) in enumerate(chunk_rows(noise_vectors, chunk)):
        e = nes_noise(key, step, c, rows, dim, distribution)
        acc = acc + tf.linalg.matvec(e, weights[start : start + rows], transpose_a=True)
    return acc


def rank_utilities(losses: np.ndarray) -> np.ndarray:
    """u_i = rank_i/(d-1) - 0.5 with the lowest loss +0.5 and the highest -0.5 (sums to zero).

    Ties go by position (stable sort) and NaN counts as the worst loss, as in seedbench.optim.nes,
    so a member that blew up never pulls the update towards itself.
    """
    losses = np.asarray(losses, dtype=np.float64).reshape(-1)
    d = losses.size
    if d < 2:
        raise ValueError(f"rank utilities need at least 2 losses, got {d}")
    order = np.argsort(np.where(np.isnan(losses), np.inf, losses), kind="stable")
    position = np.empty(d, dtype=np.int64)
    position[order] = np.arange(d)
    return 0.5 - position / (d - 1)


def nes_noise_scale(normalization: str, dim: int) -> float:
    """eps = scale * e in the update only: 1/sqrt(D) under "auto" (docs/methods.md, "NES"), 1 under "none"."""
    if normalization == "auto":
        return 1.0 / math.sqrt(dim)
    if normalization == "none":
        return 1.0
    raise ValueError(f"unknown NES normalization {normalization!r}; choose auto or none")


__all__ = [
    "ALG",
    "DISTRIBUTIONS",
    "base_key",
    "chunk_rows",
    "draw",
    "fold",
    "nes_ascent",
    "nes_noise",
    "nes_noise_scale",
    "rank_utilities",
    "rbd_project",
    "rbd_scale_sq",
]
