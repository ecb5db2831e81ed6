"""Sup-Walsh: an auxiliary Walsh-code network as a pretraining initializer (docs/methods.md, "Sup-Walsh").

The arms (with, without, ablations, compute-matched control) differ only in the `prepare` hook, which
runs before main training, so the comparison holds the main training (optimizer, budget, data order)
identical across arms. Main training is SGD.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from seedbench.methods.base import Method
from seedbench.methods.sgd import SGDConfig, sgd_optimizer
from seedbench.methods.space import log_uniform, uniform
from seedbench.seeding import derive_seed


class SupWalshConfig(SGDConfig):
    supwalsh: bool = Field(True, description="False: the 'without' arm (same main training)")
    pretrain_epochs: int = Field(2, ge=0)
    pretrain_lr: float = Field(3e-5, gt=0)
    pretrain_batch: int = Field(200, ge=10)
    pretrain_inputs: Literal["tsne", "random"] = "tsne"
    codes: Literal["walsh", "onehot", "random"] = "walsh"
    keep: Literal["final", "best"] = "final"
    control: bool = Field(False, description="compute-matched control: same extra Adam steps on noise, no Sup-Walsh")
    pretrain_max_steps: int | None = Field(None, ge=1, description="cap pretraining steps (quick studies)")


def pretrain_steps(cfg: SupWalshConfig, n_train: int) -> int:
    steps = cfg.pretrain_epochs * max(n_train // cfg.pretrain_batch, 1)
    return min(steps, cfg.pretrain_max_steps) if cfg.pretrain_max_steps else steps


def supwalsh_prepare(cfg: SupWalshConfig, model, data, device: str, seeds: dict[str, int]) -> dict[str, Any]:
    """Pretrain `model` in place through Sup-Walsh (or run the control); returns the record's summary."""
    import torch

    from seedbench.init.walsh import make_codes
    from seedbench.train.supwalsh import SupWalsh, compute_matched_control, pretrain

    if cfg.control:
        steps = pretrain_steps(cfg, len(data.x_train))
        stats = compute_matched_control(
            model, steps, in_shape=data.in_shape, num_classes=data.num_classes, lr=cfg.pretrain_lr, seed=cfg.seed, device=device
        )
        return {"arm": "control", "steps": steps, **_scalars(stats)}
    if not cfg.supwalsh or cfg.pretrain_epochs == 0:
        return {"arm": "without"}
    gen = torch.Generator().manual_seed(derive_seed(cfg.seed, "method"))
    codes = make_codes(cfg.codes, data.num_classes, generator=gen)
    aux = SupWalsh(data.in_shape, codes, generator=gen)
    stats = pretrain(
        model,
        aux,
        data.x_train,
        data.y_train,
        epochs=cfg.pretrain_epochs,
        batch_size=cfg.pretrain_batch,
        lr=cfg.pretrain_lr,
        seed=cfg.seed,
        inputs=cfg.pretrain_inputs,
        keep=cfg.keep,
        device=device,
        max_steps=cfg.pretrain_max_steps,
    )
    del aux  # Sup-Walsh is discarded: the main model keeps its pretrained weights
    return {"arm": "with", "inputs": cfg.pretrain_inputs, "codes": cfg.codes, **_scalars(stats)}


def _scalars(stats: dict[str, Any]) -> dict[str, Any]:
    """Keep the summary numbers; per-step loss lists stay out of run.json."""
    return {k: v for k, v in stats.items() if isinstance(v, (int, float, str, bool)) or v is None}


SUP_WALSH = Method(
    name="sup_walsh",
    config=SupWalshConfig,
    optimizer=sgd_optimizer,
    prepare=supwalsh_prepare,
    learning_rates={"default": {"*": 0.05}},
    presets={
        "without": {"supwalsh": False},
        "random_inputs": {"pretrain_inputs": "random"},
        "onehot": {"codes": "onehot"},
        "random_codes": {"codes": "random"},
        "control": {"supwalsh": False, "control": True},
    },
    stop_rule="accuracy",
    arm_keys=("supwalsh", "control", "pretrain_inputs", "codes", "keep", "momentum"),
    # main training is SGD (its ranges); the pretraining lr spans the reference 3e-5 and our 1e-3 (docs/supwalsh-study.md)
    tunable={"lr": log_uniform(1e-4, 1.0), "momentum": uniform(0.0, 0.99), "pretrain_lr": log_uniform(1e-5, 1e-2)},
    packable=False,
    pack_note="its pretraining runs an Adam loop of its own per model, which the pack's equivalence tests do not cover; it runs solo",
    description="Sup-Walsh pretraining through a Walsh-code auxiliary network, then SGD",
)
