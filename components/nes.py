"""NES: natural evolution strategies with rank-based fitness shaping (METHODS.md section 5)."""

from seedbench.config import NESConfig

from components.trial import Trial


class Nes(Trial):
    Config = NESConfig

    def version_antithetic(self) -> dict:
        """Mirrored sampling: every epsilon is evaluated with its negation."""
        return {"antithetic": True}
