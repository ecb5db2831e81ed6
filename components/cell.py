"""The one-component layout that preceded per-method components: every cell, whatever its method, was this Interface.

Kept so that stores made then can still be read and re-keyed: `seedbench store migrate` turns these
records into records of their method's component (components/<method>.py, seedbench/sweep/component.py),
and tests/test_components.py and bench/bench_plan.py build cells of this layout to test and time against.
New sweeps never create cells of this module. Its config was the method's name and the method's whole
resolved config as canonical JSON text.
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
