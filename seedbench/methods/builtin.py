"""The built-in methods, aliases, models and initializers, declared as a plugin declares its own.

seedbench.registry registers them on first use. Models and initializers are named by "module:attr",
so the driver can check names without importing torch.
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

# The random-bases networks apply Keras's defaults themselves (Glorot-uniform kernels, zero biases);
# the zoo keeps PyTorch's own layer initialization unless a cell asks for another.
MODELS: list[dict] = [
    {
        "name": "fc",
        "build": "seedbench.models.fc_cnn:FC",
        "default_init": "xavier_uniform",
        "packable": True,
        "description": "784-128-10 MLP of the random-bases study",
    },
    {
        "name": "cnn",
        "build": "seedbench.models.fc_cnn:CNN",
        "default_init": "xavier_uniform",
        "packable": True,
        "description": "3-conv CNN of the random-bases study",
    },
    *(
        {"name": name, "build": f"seedbench.models.zoo:ZOO.{name}", "default_init": "default"}
        for name in ("base", "alexnet", "resnet50", "vgg19", "googlenet", "squeezenet", "nvidia", "convmixer", "resnet18")
    ),
]

INITIALIZERS: dict[str, str] = {
    name: f"seedbench.init.baselines:{name}_"
    for name in ("zeros", "normal", "uniform", "kaiming_normal", "kaiming_uniform", "xavier_normal", "xavier_uniform", "orthogonal", "default")
}
