"""Sup-Walsh: an auxiliary Walsh-code network used as a pretraining initializer (METHODS.md section 10)."""

from seedbench.config import SupWalshConfig

from components.trial import Trial


class SupWalsh(Trial):
    Config = SupWalshConfig

    def version_without(self) -> dict:
        """The baseline arm: the same main training, no pretraining."""
        return {"supwalsh": False}

    def version_random_inputs(self) -> dict:
        """Ablation: random 2-D points instead of t-SNE."""
        return {"pretrain_inputs": "random"}

    def version_onehot(self) -> dict:
        return {"codes": "onehot"}

    def version_random_codes(self) -> dict:
        return {"codes": "random"}

    def version_control(self) -> dict:
        """Compute-matched control: the same number of extra Adam steps on noise, without Sup-Walsh."""
        return {"supwalsh": False, "control": True}
