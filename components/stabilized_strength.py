"""Stabilized strength: best of K base-init draws by strength variance (METHODS.md section 8), then SGD."""

from seedbench.config import StabilizedStrengthConfig

from components.trial import Trial


class StabilizedStrength(Trial):
    Config = StabilizedStrengthConfig

    def version_kaiming(self) -> dict:
        return {"init": "kaiming_normal"}
