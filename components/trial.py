"""The shared base of every method's machinable Interface.

Thin on purpose: a pydantic Config from seedbench.config, presets (`~cnn`, `~table1`, ...) served from
machinable.yaml, and __call__ handing the resolved config to seedbench.train.trial.run_trial.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from machinable import Interface

from seedbench.sweep.presets import load_catalog
from seedbench.config import LR_ALIASES, TrialConfig


class Trial(Interface):
    Config = TrialConfig

    def __getattr__(self, name: str) -> Any:
        # `~name` versions resolve to version_<name>; serve every preset of machinable.yaml that way
        if name.startswith("version_"):
            preset = name[len("version_") :]
            catalog = load_catalog()
            if preset in catalog.presets:
                return lambda: catalog.preset(preset)
        raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")

    def on_configure(self) -> None:
        """Fill a missing learning rate from machinable.yaml, so it is part of the run's identity."""
        cfg = self._config
        if cfg.get("lr") is None:
            method = LR_ALIASES.get(cfg.method, cfg.method)
            cfg.lr = load_catalog().learning_rate(cfg.get("lr_table", "default"), method, cfg.model, cfg.dataset)

    def on_seeding(self) -> bool:
        """Global RNGs get the run seed too; training itself uses the per-stream generators."""
        import numpy as np
        import torch  # here, not at the top: the driver builds every cell's config and must not pay for torch

        seed = int(self.config.seed)
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
        return True

    def trial_config(self) -> TrialConfig:
        data = {k: v for k, v in dict(self.config).items() if not k.startswith("_")}
        return type(self).Config(**data)

    def __call__(self) -> None:
        from seedbench.train.trial import run_trial

        run_trial(self.trial_config(), Path(self.local_directory()), run_id=self.uuid)
