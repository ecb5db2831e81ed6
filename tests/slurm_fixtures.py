"""One local Slurm per test session (cluster/slurm/up.sh, as `make slurm-up` starts it), for the Slurm engine's tests.

A Slurm already running from the same state folder is reused and left running; one this fixture
started is stopped at the end of the session. Where Slurm's packages are missing or its daemons cannot
start, every test that asks for `slurm_cluster` is skipped with one line saying why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UP, DOWN = ROOT / "cluster" / "slurm" / "up.sh", ROOT / "cluster" / "slurm" / "down.sh"
INSTALL = "apt-get install --no-install-recommends slurmctld slurmd slurm-client munge (make test does it as root)"


@dataclass
class SlurmCluster:
    conf: str  # its slurm.conf; SLURM_CONF points here for the session
    started: bool  # started by this session (and so stopped at its end)


@pytest.fixture(scope="session")
def slurm_cluster():
    missing = [tool for tool in ("munged", "slurmctld", "slurmd", "sbatch", "squeue") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"Slurm is not installed ({', '.join(missing)} missing): {INSTALL}")
    try:
        up = subprocess.run([str(UP)], capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.skip("the local Slurm did not start within 120 s (cluster/slurm/up.sh)")
    if up.returncode != 0:
        reason = (up.stderr.strip().splitlines() or ["no reason given"])[-1]
        pytest.skip(f"the local Slurm cannot run here: {reason}")
    conf = up.stdout.strip().splitlines()[-1].removeprefix("export SLURM_CONF=")
    before = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = conf  # for the tests' own squeue/scancel and the CLI subprocesses they start
    try:
        yield SlurmCluster(conf, up.stdout.startswith("started"))
    finally:
        if before is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = before
        if up.stdout.startswith("started"):
            subprocess.run([str(DOWN)], capture_output=True, text=True, timeout=120)
