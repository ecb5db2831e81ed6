"""PA rewiring: base init (orthogonal by default) -> PA rewiring of every Conv/Linear weight, then SGD."""

from seedbench.config import PARewiringConfig

from components.trial import Trial


class PaRewiring(Trial):
    Config = PARewiringConfig

    def version_kaiming(self) -> dict:
        return {"init": "kaiming_normal"}

    def version_stabilized(self) -> dict:
        """Stabilize then rewire, the order METHODS.md section 8 prescribes."""
        return {"stabilize": True}
