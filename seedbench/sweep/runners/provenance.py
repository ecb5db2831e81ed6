"""Code provenance captured once per sweep: machinable manifests, keyed by manifest module.

In a module of its own because machinable re-executes the module of an Execution class whenever it
resolves it (seedbench/sweep/runners/execution.py); state kept there would be lost between cells.
"""

from __future__ import annotations

from typing import Any

# code-provenance manifests captured by this driver, per manifest module
MANIFESTS: dict[str, Any] = {}


def begin_sweep() -> None:
    """Forget manifests captured by an earlier sweep of this process (the code may have changed)."""
    MANIFESTS.clear()
