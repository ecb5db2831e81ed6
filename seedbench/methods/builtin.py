"""The built-in methods, aliases and initializers, declared as a plugin declares its own.

seedbench.registry registers them on first use (the built-in models are declared in
seedbench/models/builtin.py). Initializers are named by "module:attr", so the driver can check names
without importing torch.
"""

from seedbench.methods.base import Method
from seedbench.methods.random_bases import FPD, NES, RBD
from seedbench.methods.sgd import SGD
from seedbench.methods.sup_walsh import SUP_WALSH

METHODS: list[Method] = [SGD, RBD, FPD, NES, SUP_WALSH]

# PA rewiring and stabilized strength are initializer pipelines, not optimizers: under these names a
# cell is SGD with that pipeline, recorded as method "sgd" (docs/methods.md, "Names").
ALIASES: dict[str, tuple[str, dict]] = {
    "pa_rewiring": ("sgd", {"init": "orthogonal", "rewire": True}),
    "stabilized_strength": ("sgd", {"init": "orthogonal", "stabilize": True}),
}

INITIALIZERS: dict[str, str] = {
    name: f"seedbench.init.baselines:{name}_"
    for name in ("zeros", "normal", "uniform", "kaiming_normal", "kaiming_uniform", "xavier_normal", "xavier_uniform", "orthogonal", "default")
}
