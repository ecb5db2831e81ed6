"""The built-in models, registered as a plugin registers its own (by "module:attr", so no torch here)."""

from seedbench.registry import register_model

# The random-bases networks apply Keras's defaults themselves (Glorot-uniform kernels, zero biases).
register_model("fc", "seedbench.models.fc_cnn:FC", default_init="xavier_uniform", packable=True, description="784-128-10 MLP of the random-bases study")
register_model("cnn", "seedbench.models.fc_cnn:CNN", default_init="xavier_uniform", packable=True, description="3-conv CNN of the random-bases study")
# The zoo keeps PyTorch's own layer initialization unless a cell asks for another.
for _name in ("base", "alexnet", "resnet50", "vgg19", "googlenet", "squeezenet", "nvidia", "convmixer", "resnet18"):
    register_model(_name, f"seedbench.models.zoo:ZOO.{_name}", default_init="default")
