"""Plain SGD: the baseline every other method is measured against (METHODS.md section 2)."""

from seedbench.config import SGDConfig

from components.trial import Trial


class Sgd(Trial):
    Config = SGDConfig

    def version_momentum(self) -> dict:
        """SGD with heavy-ball momentum 0.9 (not used by the published table)."""
        return {"momentum": 0.9}
