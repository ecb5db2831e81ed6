"""init_model_: base -> stabilize? -> rewire? on every Conv/Linear weight, reproducibly."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from seedbench.init import init_model_, pa_rewire_, stabilize_strength_, strength_score
from seedbench.init.baselines import get_initializer


def make_model() -> nn.Module:
    return nn.Sequential(
        nn.Conv1d(3, 4, 3),
        nn.Flatten(),
        nn.Unflatten(1, (1, 4, 4)),  # shapes do not matter: the model is never run
        nn.Conv3d(1, 5, 2),
        nn.Conv2d(5, 6, 3),
        nn.BatchNorm2d(6),
        nn.Linear(24, 10),
        nn.Linear(10, 3, bias=False),
    )


def weights(model: nn.Module) -> list[torch.Tensor]:
    return [m.weight.detach().clone() for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear))]


def all_params(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def test_touches_every_conv_and_linear_weight_and_nothing_else() -> None:
    model = make_model()
    before = weights(model)
    bn_before = (model[5].weight.detach().clone(), model[5].bias.detach().clone())
    out = init_model_(model, "orthogonal", rewire=True, generator=0)
    assert out is model
    after = weights(model)
    assert len(after) == 5 and all(not torch.equal(a, b) for a, b in zip(after, before))
    assert torch.equal(model[5].weight, bn_before[0]) and torch.equal(model[5].bias, bn_before[1])
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)) and m.bias is not None:
            assert torch.count_nonzero(m.bias) == 0


@pytest.mark.parametrize("flags", [{}, {"rewire": True}, {"stabilize": True, "tries": 4}, {"stabilize": True, "rewire": True, "tries": 4}])
def test_reproducible_from_a_seed(flags: dict) -> None:
    a = all_params(init_model_(make_model(), "kaiming_normal", generator=3, **flags))
    b = all_params(init_model_(make_model(), "kaiming_normal", generator=torch.Generator().manual_seed(3), **flags))
    c = all_params(init_model_(make_model(), "kaiming_normal", generator=4, **flags))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert any(not torch.equal(x, y) for x, y in zip(a, c))


def test_order_is_base_then_stabilize_then_rewire_per_layer() -> None:
    """Replays the pipeline by hand with one generator: pins the order of random draws."""
    model = init_model_(make_model(), "xavier_uniform", stabilize=True, rewire=True, generator=9, tries=3)
    gen = torch.Generator().manual_seed(9)
    expected = []
    for w in weights(make_model()):
        stabilize_strength_(w, "xavier_uniform", tries=3, generator=gen)
        expected.append(pa_rewire_(w, gen))
    assert all(torch.equal(x, y) for x, y in zip(weights(model), expected))

    plain = init_model_(make_model(), "xavier_uniform", rewire=True, generator=9)
    gen = torch.Generator().manual_seed(9)
    expected = [pa_rewire_(get_initializer("xavier_uniform")(w, gen), gen) for w in weights(make_model())]
    assert all(torch.equal(x, y) for x, y in zip(weights(plain), expected))


def test_stabilize_and_rewire_lower_strength_scores() -> None:
    def total_score(model: nn.Module) -> float:
        return sum(float(strength_score(w)) for w in weights(model))

    base = total_score(init_model_(make_model(), "orthogonal", generator=1))
    stabilized = total_score(init_model_(make_model(), "orthogonal", stabilize=True, tries=20, generator=1))
    rewired = total_score(init_model_(make_model(), "orthogonal", rewire=True, generator=1))
    assert stabilized < base and rewired < base


def test_default_base_keeps_framework_biases() -> None:
    model = init_model_(make_model(), "default", generator=0)
    conv2d: nn.Conv2d = model[4]
    bound = 1 / math.sqrt(5 * 9)
    assert torch.count_nonzero(conv2d.bias) == conv2d.bias.numel()
    assert conv2d.bias.abs().max() <= bound and conv2d.weight.abs().max() <= bound


def test_tied_weights_are_initialised_once() -> None:
    a, b = nn.Linear(6, 6), nn.Linear(6, 6)
    b.weight = a.weight
    model = nn.Sequential(a, b)
    init_model_(model, "orthogonal", rewire=True, generator=0)
    single = init_model_(nn.Sequential(nn.Linear(6, 6)), "orthogonal", rewire=True, generator=0)
    assert torch.equal(model[0].weight, single[0].weight)


def test_callable_base_and_bad_name() -> None:
    model = init_model_(make_model(), lambda t: nn.init.constant_(t, 0.5), generator=0)
    assert all(torch.all(w == 0.5) for w in weights(model))
    with pytest.raises(ValueError, match="unknown initializer"):
        init_model_(make_model(), "glorot")
