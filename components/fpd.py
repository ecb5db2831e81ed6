"""FPD: fixed projection descent in one random subspace drawn once (METHODS.md section 4)."""

from seedbench.config import FPDConfig

from components.trial import Trial


class Fpd(Trial):
    Config = FPDConfig
