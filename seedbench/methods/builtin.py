"""The built-in methods, models and initializers, registered exactly as a plugin registers its own.

Models and initializers are registered by "module:attr" name, so the driver can check names without torch.
"""

from seedbench.methods.random_bases import FPD, NES, RBD
from seedbench.methods.sgd import SGD
from seedbench.methods.sup_walsh import SUP_WALSH
from seedbench.registry import register_alias, register_initializer, register_method, register_model

for _method in (SGD, RBD, FPD, NES, SUP_WALSH):
    register_method(_method)

# PA rewiring and stabilized strength are initializer pipelines, not optimizers: under these names a
# cell is SGD with that pipeline, recorded as method "sgd" (docs/methods.md, "Names").
register_alias("pa_rewiring", "sgd", {"init": "orthogonal", "rewire": True})
register_alias("stabilized_strength", "sgd", {"init": "orthogonal", "stabilize": True})



# The random-bases networks apply Keras's defaults themselves (Glorot-uniform kernels, zero biases).
register_model("fc", "seedbench.models.fc_cnn:FC", default_init="xavier_uniform", packable=True, description="784-128-10 MLP of the random-bases study")
register_model("cnn", "seedbench.models.fc_cnn:CNN", default_init="xavier_uniform", packable=True, description="3-conv CNN of the random-bases study")
# The zoo keeps PyTorch's own layer initialization unless a cell asks for another.
for _name in ("base", "alexnet", "resnet50", "vgg19", "googlenet", "squeezenet", "nvidia", "convmixer", "resnet18"):
    register_model(_name, f"seedbench.models.zoo:ZOO.{_name}", default_init="default")



for _name, _attr in {
    "zeros": "zeros_", "normal": "normal_", "uniform": "uniform_", "kaiming_normal": "kaiming_normal_",
    "kaiming_uniform": "kaiming_uniform_", "xavier_normal": "xavier_normal_", "xavier_uniform": "xavier_uniform_",
    "orthogonal": "orthogonal_", "default": "default_",
}.items():
    register_initializer(_name, f"seedbench.init.baselines:{_attr}")
