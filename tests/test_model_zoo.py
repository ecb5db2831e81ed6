"""The Sup-Walsh model zoo: exact parameter counts, a forward/backward pass each, input-size checks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from seedbench.errors import ConfigError
from seedbench.models.zoo import ZOO, minimum_side

NAMES = ["base", "alexnet", "resnet50", "vgg19", "googlenet", "squeezenet", "nvidia", "convmixer", "resnet18"]

# Exact counts for 1x64x64 inputs and 10 classes (docs/model-zoo.md), next to the figures of docs/methods.md ("Sup-Walsh").
COUNTS_64 = {
    "base": (2_843_760, 2_843_760),
    "alexnet": (57_023_178, 57.0e6),
    "resnet50": (23_522_250, 23.5e6),
    "vgg19": (139_610_058, 139.6e6),
    "googlenet": (5_603_882, 5.6e6),
    "squeezenet": (731_146, 0.73e6),
    "nvidia": (3_318_826, 3.3e6),
    "convmixer": (83_594, None),
    "resnet18": (11_172_810, None),
}
COUNTS_SMALL = {
    ("convmixer", (1, 28, 28)): 83_594,
    ("convmixer", (3, 32, 32)): 84_618,
    ("resnet18", (1, 28, 28)): 11_172_810,
    ("resnet18", (3, 32, 32)): 11_173_962,
    ("base", (1, 28, 28)): 724_080,
}
# Smallest square side each model accepts (1 channel); a forward/backward runs at exactly this size.
MIN_SIDE = {"alexnet": 57, "resnet50": 1, "vgg19": 32, "googlenet": 15, "squeezenet": 21, "nvidia": 29, "convmixer": 2, "resnet18": 1}
PARAMETER_OWNERS = (nn.Conv2d, nn.Linear, nn.BatchNorm2d, nn.LayerNorm)


def meta_count(name: str, shape: tuple[int, int, int], classes: int = 10) -> int:
    """Parameter count without allocating or initialising weights (VGG-19 alone is 0.56 GB)."""
    with torch.device("meta"):
        model = ZOO[name](shape, classes)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_registry_names():
    assert sorted(ZOO) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_parameter_counts_at_64x64(name):
    exact, approx = COUNTS_64[name]
    count = meta_count(name, (1, 64, 64))
    assert count == exact
    if approx is not None:
        assert abs(count - approx) / approx < 0.02


@pytest.mark.parametrize("name, shape", list(COUNTS_SMALL))
def test_parameter_counts_of_small_inputs(name, shape):
    assert meta_count(name, shape) == COUNTS_SMALL[(name, shape)]


def _forward_backward(name: str, shape: tuple[int, int, int], classes: int = 10) -> None:
    torch.manual_seed(0)
    model = ZOO[name](shape, classes)
    out = model(torch.rand(2, *shape))
    assert out.shape == (2, classes)
    assert torch.isfinite(out).all()
    out.logsumexp(1).sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads)
    assert any(float(g.abs().sum()) > 0 for g in grads)


@pytest.mark.parametrize("name", sorted(MIN_SIDE))
def test_forward_backward_at_smallest_input(name):
    side = MIN_SIDE[name]
    _forward_backward(name, (1, side, side), classes=3)


@pytest.mark.parametrize("name", ["base", "resnet50", "googlenet", "squeezenet", "nvidia"])
def test_forward_backward_at_64x64(name):
    _forward_backward(name, (1, 64, 64))


@pytest.mark.parametrize("name", ["convmixer", "resnet18"])
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_small_models_on_mnist_and_cifar_shapes(name, shape):
    _forward_backward(name, shape)


@pytest.mark.parametrize("name", sorted(MIN_SIDE))
def test_minimum_side_is_what_the_registry_enforces(name):
    side = MIN_SIDE[name]
    assert minimum_side(name) == side
    if side > 1:
        with pytest.raises(ConfigError, match=f"at least {side}x{side}"):
            ZOO[name]((1, side - 1, side - 1))


def test_too_small_input_names_the_fix():
    with pytest.raises(ConfigError, match=r"'alexnet' cannot take 1x28x28 inputs: it needs at least 57x57; resize"):
        ZOO["alexnet"]((1, 28, 28))
    with pytest.raises(ConfigError, match="positive sizes"):
        ZOO["base"]((1, 0, 28))


@pytest.mark.parametrize("name", NAMES)
def test_every_parameter_sits_in_a_standard_layer(name):
    """A model-level initializer walks Conv2d/Linear modules: no weight may hide in a custom Parameter."""
    with torch.device("meta"):
        model = ZOO[name]((1, 64, 64), 10)
    for module in model.modules():
        if any(True for _ in module.parameters(recurse=False)):
            assert isinstance(module, PARAMETER_OWNERS), type(module).__name__
    assert any(isinstance(m, (nn.Conv2d, nn.Linear)) for m in model.modules())


def test_initializer_walking_conv_and_linear_reaches_every_weight_matrix():
    model = ZOO["nvidia"]((1, 32, 32), 10)
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.zeros_(module.weight)
    assert all(float(p.detach().abs().sum()) == 0 for p in model.parameters() if p.dim() > 1)


def test_reference_initialisations():
    """Families start where the reference's models did (docs/model-zoo.md, 'Initialisation')."""
    with torch.no_grad():  # reading weights, not training them
        torch.manual_seed(0)
        mit = ZOO["nvidia"]((1, 64, 64))
        fc1 = mit.stages[2].blocks[0].ffn.fc1
        assert abs(float(fc1.weight.std()) - 0.02) < 0.002 and float(fc1.bias.abs().sum()) == 0
        google = ZOO["googlenet"]((1, 64, 64))
        conv = google.inceptions[0].branch2[1][0]
        assert abs(float(conv.weight.std()) - 0.01) < 0.001
        # The layers the reference swapped in keep PyTorch's defaults (bound 1/sqrt(fan_in)).
        assert float(google.fc.weight.abs().max()) > 0.02
        resnet = ZOO["resnet50"]((1, 64, 64))
        conv = resnet.stages[0][0].body[3]  # a 3x3 conv: He-normal over fan-out
        expected = (2 / (conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1])) ** 0.5
        assert abs(float(conv.weight.std()) / expected - 1) < 0.05


def test_num_classes_and_dropout_in_base():
    model = ZOO["base"]((1, 64, 64), 7)
    assert model[-1].out_features == 7
    assert sum(isinstance(m, nn.Dropout) and m.p == 0.5 for m in model.modules()) == 1
    model.eval()
    x = torch.rand(3, 1, 64, 64)
    assert torch.equal(model(x), model(x))


@pytest.mark.parametrize("name", ["base", "resnet50", "googlenet", "squeezenet", "nvidia", "convmixer", "resnet18"])
@pytest.mark.parametrize("initializer", ["zeros", "kaiming_normal", "orthogonal", "default"])
def test_models_train_after_any_project_initializer(name, initializer):
    from seedbench.init import init_model_

    side = max(MIN_SIDE.get(name, 1), 28)
    model = init_model_(ZOO[name]((1, side, side)), initializer, generator=0)
    out = model(torch.rand(2, 1, side, side))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    out.sum().backward()
