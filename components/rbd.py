"""RBD: random bases descent, fresh random directions every step (METHODS.md section 3)."""

from seedbench.config import RBDConfig

from components.trial import Trial


class Rbd(Trial):
    Config = RBDConfig

    def version_hadamard(self) -> dict:
        """Structured bases: d rows of a randomised Walsh-Hadamard transform, O(D log D) per step."""
        return {"bases": "hadamard"}

    def version_layerwise(self) -> dict:
        """Per-layer compartments: every parameter tensor gets its own d coordinates."""
        return {"compartments": "layer"}
