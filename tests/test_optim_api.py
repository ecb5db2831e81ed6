"""The optimizers behave like torch optimizers: two-line use, validated arguments, checkpoints, diagnostics."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch
from torch import nn

from seedbench.optim import FPD, NES, RBD


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 2))  # D = 44


def _flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


X = torch.randn(16, 4, generator=torch.Generator().manual_seed(3))


def _step(model: nn.Module, opt: torch.optim.Optimizer) -> None:
    if isinstance(opt, NES):
        opt.step(lambda: model(X).pow(2).mean())
    else:
        opt.zero_grad()
        model(X).pow(2).mean().backward()
        opt.step()


def test_two_line_usage_like_sgd() -> None:
    model = _model()
    before = _flat(model)
    opt = RBD(model.parameters(), lr=0.5, dims=250)
    model(X).pow(2).mean().backward()
    opt.step()
    assert not torch.equal(before, _flat(model))
    assert opt.steps_taken == 1 and opt.num_params == 44


BAD_ARGS: list[tuple[type, dict, str]] = [
    (RBD, {"lr": 0.0}, "lr must be"),
    (RBD, {"lr": -1.0}, "lr must be"),
    (RBD, {"lr": float("nan")}, "lr must be"),
    (RBD, {"lr": "0.1"}, "lr must be"),
    (RBD, {"lr": 0.1, "dims": 0}, "dims must be"),
    (RBD, {"lr": 0.1, "dims": 2.5}, "dims must be"),
    (RBD, {"lr": 0.1, "dims": True}, "dims must be"),
    (RBD, {"lr": 0.1, "distribution": "gauss"}, "unknown distribution 'gauss'"),
    (RBD, {"lr": 0.1, "normalization": "l2"}, "unknown normalization"),
    (RBD, {"lr": 0.1, "compartments": "block"}, "unknown compartments"),
    (RBD, {"lr": 0.1, "bases": "fourier"}, "unknown bases"),
    (RBD, {"lr": 0.1, "chunk": 0}, "chunk must be"),
    (RBD, {"lr": 0.1, "seed": -3}, "seed must be"),
    (RBD, {"lr": 0.1, "bases": "hadamard", "distribution": "uniform"}, "Hadamard"),
    (RBD, {"lr": 0.1, "bases": "hadamard", "dims": 65}, "at most 64"),
    (FPD, {"lr": -0.1}, "lr must be"),
    (FPD, {"lr": 0.1, "distribution": "cauchy"}, "unknown distribution"),
    (NES, {"lr": 0.1, "sigma": 0.0}, "sigma must be"),
    (NES, {"lr": 0.1, "dims": 1}, "dims .* >= 2"),
    (NES, {"lr": 0.1, "dims": 5, "antithetic": True}, "must be even"),
    (NES, {"lr": 0.1, "antithetic": "yes"}, "antithetic must be"),
    (NES, {"lr": 0.1, "normalization": "unbiased"}, "unknown normalization"),
    (NES, {"lr": 0}, "lr must be"),
]


@pytest.mark.parametrize("cls,kwargs,message", BAD_ARGS)
def test_bad_constructor_arguments_raise_a_clear_value_error(cls: type, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cls(_model().parameters(), **kwargs)


def test_param_groups_may_set_only_the_learning_rate() -> None:
    model = _model()
    with pytest.raises(ValueError, match="may only set 'lr'"):
        RBD([{"params": model[0].parameters(), "dims": 3}], lr=0.1)
    with pytest.raises(ValueError, match="no trainable parameters"):
        RBD([nn.Parameter(torch.zeros(3), requires_grad=False)], lr=0.1)


def test_per_group_learning_rates_scale_the_update_of_their_group() -> None:
    def run(lr_second: float) -> torch.Tensor:
        model = _model()
        before = _flat(model)
        opt = RBD([{"params": model[0].parameters()}, {"params": model[2].parameters(), "lr": lr_second}], lr=0.5, dims=10, seed=1)
        _step(model, opt)
        return _flat(model) - before

    a, b = run(0.5), run(1.0)
    torch.testing.assert_close(a[:30], b[:30])  # first layer: same lr, same directions
    torch.testing.assert_close(2 * a[30:], b[30:])


def test_parameters_without_gradient_are_left_alone_by_rbd_but_moved_by_fpd() -> None:
    for cls, moves in ((RBD, False), (FPD, True)):
        model = _model()
        frozen_before = model[2].weight.detach().clone()
        opt = cls(model.parameters(), lr=0.5, dims=5, seed=0)
        model(X)  # no backward through the graph; give only the first layer a gradient
        for p in model[0].parameters():
            p.grad = torch.ones_like(p)
        opt.step()
        unchanged = torch.equal(model[2].weight.detach(), frozen_before)
        assert unchanged is not moves, cls.__name__


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: RBD(ps, lr=0.3, dims=7, seed=4),
        lambda ps: RBD(ps, lr=0.3, dims=7, bases="hadamard", seed=4),
        lambda ps: FPD(ps, lr=0.3, dims=7, seed=4),
        lambda ps: NES(ps, lr=0.3, dims=6, antithetic=True, seed=4),
    ],
    ids=["rbd", "rbd-hadamard", "fpd", "nes"],
)
def test_state_dict_round_trips_and_resumes_the_same_trajectory(make: Callable) -> None:
    model = _model()
    opt = make(model.parameters())
    for _ in range(3):
        _step(model, opt)
    saved_model, saved_opt = copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict())
    assert saved_opt["random_bases"]["steps_taken"] == 3 and saved_opt["random_bases"]["seed"] == 4
    _step(model, opt)
    expected = _flat(model)

    resumed = _model()
    resumed.load_state_dict(saved_model)
    other = make(resumed.parameters())
    other.seed = 999  # must be overwritten by the checkpoint
    other.load_state_dict(saved_opt)
    assert other.seed == 4 and other.steps_taken == 3
    _step(resumed, other)
    torch.testing.assert_close(_flat(resumed), expected, rtol=0, atol=1e-6)
    if isinstance(opt, FPD):
        torch.testing.assert_close(other.theta0, opt.theta0)


def test_loading_a_state_dict_from_a_different_configuration_fails() -> None:
    model = _model()
    state = RBD(model.parameters(), lr=0.1, dims=5).state_dict()
    with pytest.raises(ValueError, match="configured"):
        RBD(model.parameters(), lr=0.1, dims=6).load_state_dict(state)
    with pytest.raises(ValueError, match="random_bases"):
        RBD(model.parameters(), lr=0.1).load_state_dict(torch.optim.SGD(model.parameters(), lr=0.1).state_dict())


def test_pop_diagnostics_returns_the_mean_cosine_since_the_last_call() -> None:
    model = _model()
    opt = RBD(model.parameters(), lr=0.1, dims=5, seed=2)
    cosines = []
    for _ in range(4):
        opt.zero_grad()
        model(X).pow(2).mean().backward()
        g = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
        before = _flat(model)
        opt.step()
        update = before - _flat(model)
        cosines.append(torch.nn.functional.cosine_similarity(g, update, dim=0).item())
    diag = opt.pop_diagnostics()
    assert set(diag) == {"cosine"}
    assert diag["cosine"] == pytest.approx(sum(cosines) / 4, abs=1e-5)
    assert opt.pop_diagnostics() == {}


def test_rbd_step_accepts_a_closure_like_other_optimizers() -> None:
    model = _model()
    opt = RBD(model.parameters(), lr=0.1, dims=5, seed=2)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = model(X).pow(2).mean()
        loss.backward()
        return loss

    assert isinstance(opt.step(closure), torch.Tensor)
    assert opt.steps_taken == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("bases", ["gaussian", "hadamard"])
def test_directions_are_generated_on_the_parameters_device(bases: str) -> None:
    model = _model().cuda()
    opt = RBD(model.parameters(), lr=0.1, dims=5, bases=bases, seed=2)
    opt.zero_grad()
    model(X.cuda()).pow(2).mean().backward()
    opt.step()
    assert opt.directions(0)[0].device.type == "cuda"
    assert opt.last_coordinates[0].device.type == "cuda"
    assert torch.equal(opt.directions(0)[0], opt.directions(0)[0])
    nes = NES(model.parameters(), lr=0.1, dims=4, seed=0)
    nes.step(lambda: model(X.cuda()).pow(2).mean())
    assert "nes_loss_mean" in nes.pop_diagnostics()
