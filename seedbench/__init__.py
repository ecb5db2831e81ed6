"""seedbench: is a training method really better? Seeds x models x datasets grids with honest statistics.

The public API:

    from seedbench import Sweep, Tune, Store, run_trial, register_method, Method, TrialConfig

The library layers (data, models, init, optim, methods, train) work without machinable or Ray; only
seedbench.sweep (the engines) and components/ import machinable. Names are imported on first use, so
`import seedbench` stays cheap for a driver that never trains.
"""

from typing import Any

__version__ = "0.2.0"

_EXPORTS = {
    "Sweep": "seedbench.sweep.api",
    "Tune": "seedbench.sweep.tune",
    "tune": "seedbench.sweep.tune",
    "Store": "seedbench.analysis.api",
    "run_trial": "seedbench.train.trial",
    "Method": "seedbench.methods.base",
    "TrialConfig": "seedbench.config",
    "Placement": "seedbench.config",
    "register_method": "seedbench.registry",
    "register_alias": "seedbench.registry",
    "register_model": "seedbench.registry",
    "register_dataset": "seedbench.registry",
    "register_initializer": "seedbench.registry",
    "load_plugin": "seedbench.registry",
}
__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'seedbench' has no attribute {name!r}")
