import pytest
import torch

from seedbench.errors import ConfigError
from seedbench.models import build_model, count_parameters


@pytest.mark.parametrize(
    "name, shape, expected",
    [("fc", (1, 28, 28), 101_770), ("fc", (3, 32, 32), 394_634), ("cnn", (1, 28, 28), 93_322), ("cnn", (3, 32, 32), 122_570)],
)
def test_parameter_counts_match_the_study(name, shape, expected):
    model = build_model(name, shape)
    assert count_parameters(model) == expected
    assert model(torch.zeros(2, *shape)).shape == (2, 10)


def test_keras_default_init_glorot_uniform_zero_bias():
    model = build_model("fc", (1, 28, 28))
    first = model[1]
    weight = first.weight.detach()
    bound = (6 / (784 + 128)) ** 0.5
    assert float(weight.abs().max()) <= bound
    assert float(weight.abs().max()) > 0.9 * bound  # uniform over the whole range, not a smaller init
    assert torch.count_nonzero(first.bias) == 0


def test_unknown_model():
    with pytest.raises(ConfigError, match="unknown model 'fcc'"):
        build_model("fcc", (1, 28, 28))
