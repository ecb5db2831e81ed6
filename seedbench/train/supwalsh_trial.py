"""Sup-Walsh arms of a trial: pretraining through the auxiliary network, or its compute-matched control.

The arms differ only before main training, so the with/without/ablation comparison holds the main
training (optimizer, budget, data order) identical across arms.
"""

from __future__ import annotations

from typing import Any

import torch

from seedbench.config import SupWalshConfig
from seedbench.seeding import derive_seed


def pretrain_steps(cfg: SupWalshConfig, n_train: int) -> int:
    steps = cfg.pretrain_epochs * max(n_train // cfg.pretrain_batch, 1)
    return min(steps, cfg.pretrain_max_steps) if cfg.pretrain_max_steps else steps


def supwalsh_pretraining(cfg: SupWalshConfig, model: torch.nn.Module, data, device: str) -> dict[str, Any] | None:
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
