"""The built-in models, declared the way a plugin declares its own (seedbench.registry registers them).

Builders are named by "module:attr", so nothing here imports torch. `min_side` is each network's
smallest input side (it takes every size from there up, in height and width alike, with any number
of channels; tests/test_workloads.py checks every figure on the meta device), so the driver checks a
grid of built-in models against its datasets without building anything.

The random-bases networks apply Keras's defaults themselves (Glorot-uniform kernels, zero biases) and
have Keras counterparts; the zoo keeps PyTorch's own layer initialization unless a cell asks for another.
"""

from __future__ import annotations

from seedbench.models.spec import ModelSpec

_ZOO = {  # name: (smallest input side, description)
    "base": (1, "Sup-Walsh's MLP, flatten-640-320-50-classes with dropout"),
    "alexnet": (57, "AlexNet, 1-channel stem"),
    "resnet50": (1, "ResNet-50 (v1.5 bottlenecks, batch norm)"),
    "vgg19": (32, "VGG-19 (configuration E), no batch norm"),
    "googlenet": (15, "GoogLeNet / Inception v1 with batch norm, no auxiliary heads"),
    "squeezenet": (21, "SqueezeNet 1.0"),
    "nvidia": (29, "SegFormer MiT-b0 encoder with a linear classifier"),
    "convmixer": (2, "ConvMixer 128/4, kernel 5, patch 2"),
    "resnet18": (1, "ResNet-18 with a CIFAR-style stem"),
}

MODELS: list[ModelSpec] = [
    ModelSpec(
        name="fc",
        build="seedbench.models.fc_cnn:FC",
        default_init="xavier_uniform",
        packable=True,
        min_side=1,
        tensorflow="seedbench.train.tf_models:keras_fc",
        description="784-128-10 MLP of the random-bases study",
    ),
    ModelSpec(
        name="cnn",
        build="seedbench.models.fc_cnn:CNN",
        default_init="xavier_uniform",
        packable=True,
        min_side=18,  # three valid 3x3 convs and two 2x2 max-pools
        tensorflow="seedbench.train.tf_models:keras_cnn",
        description="3-conv CNN of the random-bases study",
    ),
    *(
        ModelSpec(name=name, build=f"seedbench.models.zoo:ZOO.{name}", default_init="default", min_side=side, description=text)
        for name, (side, text) in _ZOO.items()
    ),
]
