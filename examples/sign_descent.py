"""A plugin method that runs in both frameworks: sign descent, w <- w - lr * sign(grad).

    seedbench sweep --plugin sign_descent.py --method sign_descent,sgd --model fc --dataset digits --seeds 0-4 \
        --set framework=tensorflow

The torch side is an ordinary optimizer. The TensorFlow side is named by `tensorflow="module:attr"`:
a factory `(model, cfg, lr, method_seed) -> update` (seedbench/train/tf_runner.py describes the
protocol). A plugin file is imported under a module name seedbench generates (the same on the driver
and on every worker), which is this module's `__name__`, so the reference is built from it.
TensorFlow is imported inside the factory: the driver imports this file to plan a sweep, and only a
cell that trains in TensorFlow should pay for TensorFlow.
"""

from __future__ import annotations

import torch

from seedbench import Method, TrialConfig, register_method


class SignDescent(torch.optim.Optimizer):
    """w <- w - lr * sign(g)."""

    def __init__(self, params, lr: float):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure):
        with torch.enable_grad():
            loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(torch.sign(p.grad), alpha=-group["lr"])
        return loss


def sign_descent_tensorflow(model, cfg, lr: float, method_seed: int):
    """The same update in TensorFlow, on seedbench's GradientUpdate (forward, loss and gradient done)."""
    import tensorflow as tf

    from seedbench.train.tf_methods import GradientUpdate

    class SignDescentTF(GradientUpdate):
        def apply(self, grads, step):
            signs = [tf.sign(g) for g in grads]
            for v, s in zip(self.variables, signs):
                v.assign_sub(self.lr * s)
            # a diagnostic, averaged per epoch into epochs.jsonl: the share of weights that moved this step
            return {"moved": tf.add_n([tf.reduce_sum(tf.abs(s)) for s in signs]) / self.D}

    return SignDescentTF(model, lr)


register_method(
    Method(
        name="sign_descent",
        config=TrialConfig,
        optimizer=lambda params, lr, cfg, seed: SignDescent(params, lr=lr),
        tensorflow=f"{__name__}:sign_descent_tensorflow",
        learning_rates={"default": {"*": 0.001}},
        description="sign descent, in torch and in TensorFlow",
    )
)
