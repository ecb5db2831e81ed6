"""The built-in methods, registered exactly as a plugin registers its own."""

from seedbench.methods.random_bases import FPD, NES, RBD
from seedbench.methods.sgd import SGD
from seedbench.methods.sup_walsh import SUP_WALSH
from seedbench.registry import register_alias, register_method

for _method in (SGD, RBD, FPD, NES, SUP_WALSH):
    register_method(_method)

# PA rewiring and stabilized strength are initializer pipelines, not optimizers: under these names a
# cell is SGD with that pipeline, recorded as method "sgd" (docs/methods.md, "Names").
register_alias("pa_rewiring", "sgd", {"init": "orthogonal", "rewire": True})
register_alias("stabilized_strength", "sgd", {"init": "orthogonal", "stabilize": True})
