"""The one machinable Interface every cell runs through, whatever its method.

Its config is the method's name and the method's fully resolved config (validated and completed on
the driver by seedbench.sweep.plan) as canonical JSON text, so a cell's identity is its science and nothing else: placement
(device, data directory, threads, resources) travels with the task, not in the config. Built-in
methods and a user's plugin methods go through this same file.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from machinable import Interface
from pydantic import BaseModel, ConfigDict


class Cell(Interface):
    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")

        method: str
        # canonical JSON (sorted keys): one string is ~50x cheaper for machinable's config machinery
        # than a nested mapping, which matters when a driver plans 10,000 cells
        params: str

    def on_seeding(self) -> bool:
        """Global RNGs get the run seed too; training itself uses the per-stream generators."""
        import numpy as np
        import torch  # here, not at the top: the driver builds every cell's config and must not pay for torch

        seed = int(json.loads(self.config.params).get("seed", 0))
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
        return True

    def __call__(self) -> None:
        from seedbench.sweep.runners.dispatch import contained
        from seedbench.train.trial import run_cell

        params = json.loads(self.config.params)
        directory = Path(self.local_directory())
        # a failure is recorded in the folder (status, traceback.txt) and reported by the engine in one line;
        # letting it through would make machinable print the whole traceback on the terminal
        contained(lambda: run_cell(str(self.config.method), params, directory, run_id=self.uuid), directory)
