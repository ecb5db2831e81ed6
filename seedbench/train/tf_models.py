"""The random-bases study's FC and CNN in Keras 3 (TensorFlow backend), their loss, and weight conversion from torch.

The networks match seedbench.models.fc_cnn layer for layer (docs/methods.md, "Networks") so that a study can
swap the framework and nothing else. TensorFlow works in NHWC and stores kernels input-major, torch in
NCHW and output-major; `keras_weights_from_torch` does that conversion in one place so the parity tests
and anyone loading torch weights into the TF runner use the same, tested code.

Importing this module sets TensorFlow's logging and backend variables first (see `_quiet_tensorflow`),
which only works when it is the first to import TensorFlow in the process.
"""

from __future__ import annotations

import os


def _quiet_tensorflow() -> None:
    """Keep TF's C++ start-up chatter off stderr (a sweep's logs are read by people).

    TF_ENABLE_ONEDNN_OPTS=0 also silences the oneDNN notice that TF_CPP_MIN_LOG_LEVEL does not reach,
    and turns off oneDNN's reordered float sums, so a seed gives the same numbers run after run.
    setdefault: a user who sets these variables keeps their choice.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")


_quiet_tensorflow()

import logging  # noqa: E402
from collections.abc import Callable  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


class _NoRetracingNotice(logging.Filter):
    """Drop TF's "N out of the last M calls ... triggered tf.function retracing" notice only.

    Every run builds a new model and so new tf.functions from the same Python code, which that
    heuristic counts as retracing; each graph is in fact traced once per run. Other warnings pass.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


tf.get_logger().addFilter(_NoRetracingNotice())


def layer_seed(init_seed: int, layer: int) -> int:
    """A seed per layer for the Glorot initializer: Keras draws identical kernels from identical integer
    seeds, so two same-shaped layers must not share one. Derived, not `init_seed + layer`, so that
    neighbouring init seeds do not share layers."""
    state = np.random.SeedSequence([int(init_seed), int(layer)]).generate_state(1, dtype=np.uint32)
    return int(state[0] >> np.uint32(1))


def _glorot(init_seed: int) -> Callable[[], keras.initializers.Initializer]:
    """Glorot-uniform initializers for the layers in order, each drawn from its own seed of `init_seed`."""
    seeds = iter(range(100))
    return lambda: keras.initializers.GlorotUniform(seed=layer_seed(init_seed, next(seeds)))


def keras_fc(in_shape: tuple[int, int, int], num_classes: int, init_seed: int) -> keras.Model:
    """The FC of seedbench.models.fc_cnn in Keras: flatten -> Dense(128, relu) -> Dense(classes)."""
    c, h, w = in_shape
    glorot = _glorot(init_seed)
    layers = [
        keras.Input(shape=(h, w, c)),
        keras.layers.Flatten(),
        keras.layers.Dense(128, activation="relu", kernel_initializer=glorot()),
        keras.layers.Dense(num_classes, kernel_initializer=glorot()),
    ]
    return keras.Sequential(layers, name="fc_tf")


def keras_cnn(in_shape: tuple[int, int, int], num_classes: int, init_seed: int) -> keras.Model:
    """The CNN of seedbench.models.fc_cnn in Keras: three valid 3x3 convs, two max-pools, Dense(64), Dense(classes)."""
    c, h, w = in_shape
    glorot = _glorot(init_seed)
    layers = [
        keras.Input(shape=(h, w, c)),
        keras.layers.Conv2D(32, 3, activation="relu", kernel_initializer=glorot()),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(64, 3, activation="relu", kernel_initializer=glorot()),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(64, 3, activation="relu", kernel_initializer=glorot()),
        keras.layers.Flatten(),
        keras.layers.Dense(64, activation="relu", kernel_initializer=glorot()),
        keras.layers.Dense(num_classes, kernel_initializer=glorot()),
    ]
    return keras.Sequential(layers, name="cnn_tf")


def build_keras_model(name: str, in_shape: tuple[int, int, int], num_classes: int, init_seed: int) -> keras.Model:
    """The Keras counterpart of registered model `name`: its declared `tensorflow=` builder.

    `in_shape` is torch's (C, H, W), the Keras input is (H, W, C). The built-in counterparts draw
    Glorot-uniform kernels and zero biases, as the reference's Keras defaults, every draw from
    `init_seed`, so the same seed builds the same network.
    """
    from seedbench.registry import get_model

    return get_model(name).keras_builder()(tuple(in_shape), num_classes, init_seed)


def cross_entropy(logits: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """Per-example cross-entropy: the built-in methods' training loss, and every TF run's validation loss."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)


def correct_count(logits: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """How many of the batch's labels the logits rank first (int64)."""
    return tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, axis=1, output_type=tf.int64), y), tf.int64))


def count_parameters(model: keras.Model) -> int:
    """D, counted like seedbench.models.count_parameters (trainable entries only)."""
    return int(sum(int(np.prod(v.shape)) for v in model.trainable_variables))


def keras_weights_from_torch(torch_model, in_shape: tuple[int, int, int]) -> list[np.ndarray]:
    """The weights of a torch FC/CNN (seedbench.models) in Keras' `get_weights()` order and layout.

    Conv2d (out, in, kh, kw) -> (kh, kw, in, out); Linear (out, in) -> (in, out). A Linear that reads
    a flattened image or feature map (C, H, W) sees it in NCHW order, Keras flattens NHWC: its input
    rows are permuted from (c, h, w) to (h, w, c) order. That is the conversion easiest to get wrong,
    and it matters for the CNN and for FC on colour images (for one channel both orders coincide).
    """
    import torch
    from torch import nn

    flat_shapes: dict[int, tuple[int, ...]] = {}  # id(Flatten) -> the (C, H, W) it flattened
    hooks = [
        m.register_forward_hook(lambda mod, args, out: flat_shapes.__setitem__(id(mod), tuple(args[0].shape[1:])))
        for m in torch_model.modules()
        if isinstance(m, nn.Flatten)
    ]
    try:
        with torch.no_grad():
            p = next(torch_model.parameters())
            torch_model(torch.zeros(1, *in_shape, dtype=p.dtype, device=p.device))
    finally:
        for hook in hooks:
            hook.remove()
    weights: list[np.ndarray] = []
    pending: tuple[int, ...] | None = None  # the shape a Flatten just produced, for the next Linear
    for module in torch_model.modules():
        if isinstance(module, nn.Flatten):
            pending = flat_shapes[id(module)]
        elif isinstance(module, nn.Conv2d):
            weights.append(module.weight.detach().cpu().numpy().transpose(2, 3, 1, 0).copy())
            weights.append(module.bias.detach().cpu().numpy().copy())
        elif isinstance(module, nn.Linear):
            kernel = module.weight.detach().cpu().numpy()
            if pending is not None and len(pending) == 3:
                cc, hh, ww = pending
                kernel = kernel.reshape(-1, cc, hh, ww).transpose(0, 2, 3, 1).reshape(kernel.shape[0], -1)
            pending = None
            weights.append(kernel.T.copy())
            weights.append(module.bias.detach().cpu().numpy().copy())
        elif isinstance(module, (nn.Conv1d, nn.Conv3d, nn.BatchNorm2d)):
            raise ValueError(f"no Keras counterpart for {type(module).__name__} in the study networks")
    return weights


def to_nhwc(images: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (N, H, W, C), contiguous float32 (what Keras layers take)."""
    return np.ascontiguousarray(np.asarray(images, dtype=np.float32).transpose(0, 2, 3, 1))


__all__ = [
    "build_keras_model",
    "correct_count",
    "count_parameters",
    "cross_entropy",
    "keras_cnn",
    "keras_fc",
    "keras_weights_from_torch",
    "layer_seed",
    "tf",
    "to_nhwc",
]
