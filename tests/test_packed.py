"""Seed packing: every member of a pack ends where the same cell run alone through loop.train ends.

Each test builds K members exactly as the solo path builds a cell (init stream -> model -> init
pipeline; optimizer from its method seed), deep-copies them for the solo reference, trains the
copies one by one through seedbench.train.loop.train and the originals together through
train_packed, and compares parameters. The error measure and its bound are
`packed.float_tolerance`: max|theta_pack - theta_solo| / max|theta_solo - theta_0| must stay below
steps * longest_sum * eps of the dtype. A negative control (a member with another data seed)
shows the comparison is sharp enough to catch a wrong stream.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from seedbench.config import TrialConfig
from seedbench.data import load_dataset
from seedbench.data.datasets import Dataset
from seedbench.init import init_model_
from seedbench.methods.base import Method
from seedbench.models import build_model
from seedbench.optim import FPD, NES, RBD
from seedbench.registry import get_method, resolve_method
from seedbench.seeding import stream_seeds
from seedbench.train.loop import TrainSettings, train
from seedbench.train.pack_rules import auto_pack_size, can_pack
from seedbench.train.packed import (
    PackMember,
    PackSettings,
    float_tolerance,
    longest_sum,
    train_packed,
)
from seedbench.train.packed_optim import SECOND_CLOSURE_CALL

EPOCHS, BATCH, N_TRAIN = 2, 32, 256
STEPS = EPOCHS * (N_TRAIN // BATCH)
SEEDS = (3, 4, 5)
IN_SHAPE = (1, 28, 28)
TIMING = {"seconds", "images_per_s"}


@pytest.fixture(scope="module")
def digits32() -> Dataset:
    return load_dataset("digits", val_size=100, limit_train=N_TRAIN)


@pytest.fixture(scope="module")
def digits64(digits32: Dataset) -> Dataset:
    splits = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")
    tensors = {k: getattr(digits32, k).double() if k.startswith("x") else getattr(digits32, k) for k in splits}
    return Dataset(name=digits32.name, num_classes=digits32.num_classes, source=digits32.source, **tensors)


def _first(data: Dataset, n: int) -> Dataset:
    return Dataset(
        name=data.name,
        num_classes=data.num_classes,
        source=data.source,
        x_train=data.x_train[:n],
        y_train=data.y_train[:n],
        x_val=data.x_val,
        y_val=data.y_val,
        x_test=data.x_test,
        y_test=data.y_test,
    )


def build(name: str, seed: int, dtype: torch.dtype, init: str = "xavier_uniform", stabilize=False, rewire=False) -> nn.Module:
    """A cell's model as seedbench.train.trial.build_initialised_model makes it, from the init stream."""
    init_seed = stream_seeds(seed)["init"]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        model = build_model(name, IN_SHAPE, 10)
    if init != "xavier_uniform" or stabilize or rewire:
        init_model_(model, base=init, stabilize=stabilize, rewire=rewire, generator=torch.Generator().manual_seed(init_seed), tries=3)
    return model.to(dtype)


OPTIMIZERS = {
    "sgd": lambda params, seed: torch.optim.SGD(params, lr=0.05, momentum=0.9, weight_decay=1e-3),
    "rbd": lambda params, seed: RBD(params, lr=0.5, dims=5, seed=seed),
    "rbd_hadamard": lambda params, seed: RBD(params, lr=0.5, dims=20, bases="hadamard", seed=seed),
    "rbd_layer": lambda params, seed: RBD(params, lr=0.5, dims=4, compartments="layer", seed=seed),
    "fpd": lambda params, seed: FPD(params, lr=0.5, dims=5, seed=seed),
    "nes": lambda params, seed: NES(params, lr=0.5, dims=6, seed=seed),
    "nes_antithetic": lambda params, seed: NES(params, lr=0.5, dims=6, antithetic=True, seed=seed),
    # any optimizer that keeps its state per parameter packs through the generic per-member stepper
    "adam": lambda params, seed: torch.optim.Adam(params, lr=1e-3, weight_decay=1e-4),
    "sgd_per_member": lambda params, seed: torch.optim.SGD(params, lr=0.05, momentum=0.9, weight_decay=1e-3),
}
# How each kind's pack steps: built-in SGD's declared packed step (one update over the stacked tensors);
# every other kind, and SGD under "sgd_per_member", steps each member's own optimizer (packed_step None).
SGD_STEP = get_method("sgd").packed_step
PACKED_STEPS = {"sgd": SGD_STEP}


def run_both(
    models,
    make_opt,
    data,
    augment=False,
    epochs=EPOCHS,
    seeds=SEEDS,
    tmp_path: Path | None = None,
    settings_extra: dict | None = None,
    data_seeds=None,
    packed_step: str | None = SGD_STEP,
):
    """Train deep copies solo and the originals as one pack; return (solo results, pack results, initial params).

    `packed_step` is the method's (PackSettings.packed_step): SGD's vectorized step unless a test says otherwise.
    """
    initial = [[p.detach().clone() for p in m.parameters()] for m in models]
    solo_models = [copy.deepcopy(m) for m in models]
    streams = [stream_seeds(s) for s in seeds]
    data_seeds = data_seeds or [s["data"] for s in streams]
    solo = []
    for i, (m, s) in enumerate(zip(solo_models, streams)):
        path = tmp_path / f"solo{i}.jsonl" if tmp_path else None
        settings = TrainSettings(epochs=epochs, batch_size=BATCH, data_seed=s["data"], augment_seed=s["augment"], augment=augment, metrics_path=path)
        solo.append(train(m, make_opt(m, i, s), data, settings))
    members = [
        PackMember(
            m, make_opt(m, i, s), data_seed=data_seeds[i], augment_seed=s["augment"], metrics_path=tmp_path / f"pack{i}.jsonl" if tmp_path else None
        )
        for i, (m, s) in enumerate(zip(models, streams))
    ]
    settings = PackSettings(epochs=epochs, batch_size=BATCH, augment=augment, packed_step=packed_step, **(settings_extra or {}))
    packed = train_packed(members, data, settings)
    return solo_models, solo, packed, initial


def drift(model: nn.Module, solo_model: nn.Module, initial: list[torch.Tensor]) -> float:
    """max|theta_pack - theta_solo| / max|theta_solo - theta_0| over all parameters of a member."""
    with torch.no_grad():
        diff = max(float((p - q).abs().max()) for p, q in zip(model.parameters(), solo_model.parameters()))
        moved = max(float((q - p0).abs().max()) for q, p0 in zip(solo_model.parameters(), initial))
    assert moved > 0, "training did not move the parameters: the comparison would be vacuous"
    return diff / moved


def method_optimizer(kind: str):
    make = OPTIMIZERS[kind]
    return lambda model, i, streams: make(model.parameters(), streams["method"])


def assert_members_match(models, solo_models, initial, tol):
    for i, (m, s, p0) in enumerate(zip(models, solo_models, initial)):
        err = drift(m, s, p0)
        assert err <= tol, f"member {i}: drift {err:.3g} > tolerance {tol:.3g}"


@pytest.mark.parametrize("kind", sorted(OPTIMIZERS))
def test_float64_members_equal_their_solo_runs(kind, digits64):
    models = [build("fc", s, torch.float64) for s in SEEDS]
    solo_models, solo, packed, initial = run_both(models, method_optimizer(kind), digits64, packed_step=PACKED_STEPS.get(kind))
    tol = float_tolerance(STEPS, longest_sum(models[0], IN_SHAPE, BATCH), torch.float64)
    assert_members_match(models, solo_models, initial, tol)
    for s, p in zip(solo, packed):
        assert p["status"] == s["status"] == "finished"
        assert p["updates"] == s["updates"] and p["epochs_completed"] == s["epochs_completed"]
        assert p["val_loss"] == pytest.approx(s["val_loss"], rel=1e-12)
        assert p["test_acc"] == pytest.approx(s["test_acc"], rel=1e-12)


def test_negative_control_another_data_seed_is_caught(digits64):
    """The same comparison must fail when one member draws another member's batches."""
    models = [build("fc", s, torch.float64) for s in SEEDS]
    swapped = [stream_seeds(s)["data"] for s in SEEDS]
    swapped[1] = swapped[0]
    solo_models, _, _, initial = run_both(models, method_optimizer("sgd"), digits64, data_seeds=swapped)
    tol = float_tolerance(STEPS, longest_sum(models[0], IN_SHAPE, BATCH), torch.float64)
    assert drift(models[0], solo_models[0], initial[0]) <= tol
    assert drift(models[1], solo_models[1], initial[1]) > 1e6 * tol


def test_sgd_members_with_their_own_hyperparameters(digits64):
    """Per-member lr / momentum / weight decay take the tensor path of the vectorized SGD."""
    rates = [(0.05, 0.9, 1e-3), (0.02, 0.5, 0.0), (0.08, 0.7, 1e-2)]

    made: list[torch.optim.Optimizer] = []

    def make(model, i, streams):
        lr, momentum, wd = rates[i]
        made.append(torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=wd, nesterov=True))
        return made[-1]

    models = [build("fc", s, torch.float64) for s in SEEDS]
    solo_models, _, packed, initial = run_both(models, make, digits64)
    tol = float_tolerance(STEPS, longest_sum(models[0], IN_SHAPE, BATCH), torch.float64)
    assert_members_match(models, solo_models, initial, tol)
    assert all(p["status"] == "finished" for p in packed)
    # each member's own optimizer ends holding its momentum buffers, as after its solo run
    solo_opts, pack_opts = made[: len(SEEDS)], made[len(SEEDS) :]
    for so, po, sm, pm in zip(solo_opts, pack_opts, solo_models, models):
        for q, p in zip(sm.parameters(), pm.parameters()):
            torch.testing.assert_close(po.state[p]["momentum_buffer"], so.state[q]["momentum_buffer"], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("pipeline", [dict(init="orthogonal", stabilize=True), dict(init="orthogonal", rewire=True)])
def test_init_pipelines_built_solo_are_kept(pipeline, digits64):
    models = [build("fc", s, torch.float64, **pipeline) for s in SEEDS]
    plain = build("fc", SEEDS[0], torch.float64)
    assert not torch.equal(models[0][1].weight, plain[1].weight), "the pipeline did not change the init"
    solo_models, _, _, initial = run_both(models, method_optimizer("sgd"), digits64)
    tol = float_tolerance(STEPS, longest_sum(models[0], IN_SHAPE, BATCH), torch.float64)
    assert_members_match(models, solo_models, initial, tol)


@pytest.mark.parametrize("kind,conv", [("sgd", "loop"), ("sgd", "grouped"), ("rbd_hadamard", "grouped")])
def test_cnn_with_augmentation(kind, conv, digits64, tmp_path):
    n_train = N_TRAIN // 4  # the CNN in float64 is slow on a CPU: 4 steps
    models = [build("cnn", s, torch.float64) for s in SEEDS[:2]]
    solo_models, solo, packed, initial = run_both(
        models,
        method_optimizer(kind),
        _first(digits64, n_train),
        augment=True,
        seeds=SEEDS[:2],
        tmp_path=tmp_path,
        settings_extra={"conv": conv},
        packed_step=PACKED_STEPS.get(kind),
    )
    tol = float_tolerance(EPOCHS * (n_train // BATCH), longest_sum(models[0], IN_SHAPE, BATCH), torch.float64)
    assert_members_match(models, solo_models, initial, tol)
    for i in range(2):
        rows = [json.loads(line) for line in (tmp_path / f"pack{i}.jsonl").read_text().splitlines()]
        solo_rows = [json.loads(line) for line in (tmp_path / f"solo{i}.jsonl").read_text().splitlines()]
        assert [set(r) for r in rows] == [set(r) for r in solo_rows]
        for r, s in zip(rows, solo_rows):
            for key in set(r) - TIMING:
                assert r[key] == pytest.approx(s[key], rel=1e-12), key


def test_augmentation_streams_are_per_member(digits64):
    """FC, SGD, augmentation on: each member's crops/brightness come from its own augment seed."""
    models = [build("fc", s, torch.float64) for s in SEEDS]
    solo_models, _, _, initial = run_both(models, method_optimizer("sgd"), digits64, augment=True)
    tol = float_tolerance(STEPS, longest_sum(models[0], IN_SHAPE, BATCH), torch.float64)
    assert_members_match(models, solo_models, initial, tol)


@pytest.mark.parametrize(
    "model_name,settings,n_train",
    [
        ("fc", {}, N_TRAIN),
        ("fc", {"forward": "vmap"}, N_TRAIN),
        # the CNN for two steps only: once the members differ from their solo runs by rounding, a max-pool or
        # ReLU that switches on a 1-ulp difference moves the CNN as far as it moves a solo run whose initial
        # weights are perturbed by one ulp (up to 5% after 16 steps, docs/benchmarks.md "Seed packing"): a
        # property of the training dynamics, not of packing, which no rounding tolerance can bound
        ("cnn", {"conv": "loop"}, BATCH),
        ("cnn", {"conv": "grouped"}, BATCH),
        ("cnn", {"forward": "vmap"}, BATCH),
    ],
)
def test_float32_within_derived_tolerance(model_name, settings, n_train, digits32):
    data = _first(digits32, n_train)
    models = [build(model_name, s, torch.float32) for s in SEEDS[:2]]
    solo_models, _, _, initial = run_both(models, method_optimizer("sgd"), data, seeds=SEEDS[:2], settings_extra=settings)
    tol = float_tolerance(EPOCHS * (n_train // BATCH), longest_sum(models[0], IN_SHAPE, BATCH), torch.float32)
    assert_members_match(models, solo_models, initial, tol)


@pytest.mark.parametrize("kind", ["sgd", "rbd"])
def test_diverging_member_is_frozen_and_the_others_continue(kind, digits64):
    """The vectorized SGD and the members' own RBD both shrink the pack when a member leaves."""
    rates = [0.05, 1e6, 0.05] if kind == "sgd" else [0.5, 1e8, 0.5]

    def make(model, i, streams):
        if kind == "sgd":
            return torch.optim.SGD(model.parameters(), lr=rates[i], momentum=0.9)
        return RBD(model.parameters(), lr=rates[i], dims=5, seed=streams["method"])

    models = [build("fc", s, torch.float64) for s in SEEDS]
    solo_models, solo, packed, initial = run_both(models, make, digits64, epochs=3, packed_step=PACKED_STEPS.get(kind))
    assert solo[1]["status"] == "diverged" and solo[1]["epochs_completed"] < 3, "the huge lr did not diverge solo"
    assert (packed[1]["status"], packed[1]["reason"], packed[1]["epochs_completed"]) == (
        solo[1]["status"],
        solo[1]["reason"],
        solo[1]["epochs_completed"],
    )
    assert "test_loss" not in packed[1]
    tol = float_tolerance(3 * STEPS // EPOCHS, longest_sum(models[0], IN_SHAPE, BATCH), torch.float64)
    # frozen where its solo run stopped, although the pack trained on: same NaNs, finite values within tolerance
    with torch.no_grad():
        pack_flat = torch.cat([p.flatten() for p in models[1].parameters()])
        solo_flat = torch.cat([q.flatten() for q in solo_models[1].parameters()])
        start = torch.cat([p0.flatten() for p0 in initial[1]])
    assert torch.equal(pack_flat.isnan(), solo_flat.isnan())
    finite = solo_flat.isfinite()
    assert torch.equal(pack_flat.isfinite(), finite) and finite.any()
    moved = (solo_flat - start)[finite].abs().max()
    assert float((pack_flat - solo_flat)[finite].abs().max() / moved) <= tol
    for i in (0, 2):
        assert packed[i]["status"] == "finished" and packed[i]["epochs_completed"] == 3
        assert drift(models[i], solo_models[i], initial[i]) <= tol


def test_results_carry_loop_keys_and_provenance(digits64):
    models = [build("fc", s, torch.float64) for s in SEEDS[:2]]
    _, solo, packed, _ = run_both(models, method_optimizer("sgd"), digits64, seeds=SEEDS[:2], settings_extra={"pack_id": "p-1"})
    for s, p in zip(solo, packed):
        assert set(p) == set(s) | {"pack_size", "pack_id"}
        assert (p["pack_size"], p["pack_id"]) == (2, "p-1")
    # no member keeps views into the pack: each parameter owns exactly its own storage
    for m in models:
        for p in m.parameters():
            assert p.untyped_storage().nbytes() == p.numel() * p.element_size()
            assert p.grad is None or p.grad.untyped_storage().nbytes() == p.numel() * p.element_size()


class _LayerNormMLP(nn.Module):
    """Not an nn.Sequential: goes through the generic functional_call + vmap path."""

    def __init__(self):
        super().__init__()
        self.fc1, self.norm, self.fc2 = nn.Linear(784, 32), nn.LayerNorm(32), nn.Linear(32, 10)

    def forward(self, x):
        return self.fc2(nn.functional.gelu(self.norm(self.fc1(x.flatten(1)))))


class _Noisy(_LayerNormMLP):
    def forward(self, x):
        return super().forward(x + 0.01 * torch.randn_like(x))


def test_generic_vmap_path_matches_solo(digits64):
    models = []
    for s in SEEDS:
        torch.manual_seed(s)
        models.append(_LayerNormMLP().double())
    solo_models, _, _, initial = run_both(models, method_optimizer("sgd"), digits64)
    tol = float_tolerance(STEPS, longest_sum(models[0], IN_SHAPE, BATCH), torch.float64)
    assert_members_match(models, solo_models, initial, tol)


def _members(models, make=lambda m: torch.optim.SGD(m.parameters(), lr=0.1)):
    return [PackMember(m, make(m), data_seed=i, augment_seed=i) for i, m in enumerate(models)]


def test_refusals(digits32):
    settings = PackSettings(epochs=1, batch_size=BATCH)
    vector = PackSettings(epochs=1, batch_size=BATCH, packed_step=SGD_STEP)
    with pytest.raises(ValueError, match="VectorSGD steps torch.optim.SGD, got Adam"):
        train_packed(_members([build("fc", s, torch.float32) for s in SEEDS], lambda m: torch.optim.Adam(m.parameters())), digits32, vector)
    with pytest.raises(ValueError, match="gradient-free"):
        train_packed(
            _members([build("fc", s, torch.float32) for s in SEEDS], lambda m: NES(m.parameters(), lr=0.1, dims=4, seed=1)), digits32, vector
        )
    bn = [nn.Sequential(nn.Flatten(), nn.Linear(784, 16), nn.BatchNorm1d(16), nn.Linear(16, 10)) for _ in SEEDS]
    with pytest.raises(ValueError, match="batch norm"):
        train_packed(_members(bn), digits32, settings)
    dropout = [nn.Sequential(nn.Flatten(), nn.Linear(784, 16), nn.Dropout(0.5), nn.Linear(16, 10)) for _ in SEEDS]
    with pytest.raises(ValueError, match="Dropout"):
        train_packed(_members(dropout), digits32, settings)
    shared = build("fc", 0, torch.float32)
    with pytest.raises(ValueError, match="share a parameter"):
        train_packed(_members([shared, shared]), digits32, settings)
    mixed = [build("fc", s, torch.float32) for s in SEEDS[:2]]
    with pytest.raises(ValueError, match="one optimizer class"):
        train_packed(
            [
                PackMember(mixed[0], torch.optim.SGD(mixed[0].parameters(), lr=0.1), 0, 0),
                PackMember(mixed[1], RBD(mixed[1].parameters(), lr=0.1, dims=4, seed=1), 1, 1),
            ],
            digits32,
            settings,
        )
    # a forward that draws random numbers has no per-member stream: vmap refuses it at the first step
    noisy = [_Noisy() for _ in SEEDS[:2]]
    with pytest.raises(RuntimeError, match="randomness"):
        train_packed(_members(noisy), digits32, settings)
    # a refused pack leaves its members' models usable on their own
    assert all(p.untyped_storage().nbytes() == p.numel() * p.element_size() for m in noisy for p in m.parameters())


class _TwiceConfig(TrialConfig):
    pass


def _plugin(packable: bool, **facts) -> Method:
    """A method as a plugin declares it (not registered: the rules read only the object)."""
    return Method(
        name="mine", config=_TwiceConfig, optimizer=lambda params, lr, cfg, seed: torch.optim.Adam(params, lr=lr), packable=packable, **facts
    )


def test_can_pack_reads_what_the_method_and_the_model_declare():
    sgd, nes, sup_walsh = get_method("sgd"), get_method("nes"), get_method("sup_walsh")
    assert can_pack(sgd, {"model": "fc"})[0]
    assert can_pack(nes, {"model": "cnn", "dataset": "fmnist"})[0]
    alias, patch = resolve_method("pa_rewiring")  # an alias packs as the method it names
    assert can_pack(alias, {"model": "fc", **patch})[0]
    ok, why = can_pack(sup_walsh, {"model": "fc"})
    assert not ok and sup_walsh.pack_note in why and "sup_walsh" in why
    ok, why = can_pack(_plugin(False), {"model": "fc"})
    assert not ok and "method mine" in why and "packable=True" in why
    assert can_pack(_plugin(True), {"model": "fc"})[0]  # a plugin's declaration is honoured like a built-in's
    ok, why = can_pack(sgd, {"model": "resnet18", "dataset": "cifar10"})
    assert not ok and "model resnet18" in why and "packable=True" in why
    ok, why = can_pack(sgd, {"model": "fc", "framework": "tensorflow"})
    assert not ok and "torch" in why
    assert can_pack(sgd, {"model": "mine"}, model=_LayerNormMLP())[0]
    ok, why = can_pack(sgd, {"model": "bn"}, model=nn.Sequential(nn.Flatten(), nn.Linear(784, 16), nn.BatchNorm1d(16)))
    assert not ok and "batch norm" in why


def test_auto_pack_size_is_the_methods_measured_size_else_solo():
    # the measured rule (docs/benchmarks.md, "Seed packing"): the FC packs on a CPU, the CNN does not pay there
    sgd = get_method("sgd")
    assert auto_pack_size(sgd, "fc", "cpu") == sgd.pack_sizes["fc/cpu"] > 1
    assert auto_pack_size(sgd, "cnn", "cpu") == 1
    assert auto_pack_size(sgd, "resnet18", "cpu") == 1
    assert auto_pack_size(sgd, "fc", "cuda:1") == auto_pack_size(sgd, "fc", "cuda")
    assert auto_pack_size(resolve_method("pa_rewiring")[0], "fc", "cpu") == auto_pack_size(sgd, "fc", "cpu")
    assert auto_pack_size(_plugin(True, pack_sizes={"fc/cpu": 4}), "fc", "cpu") == 4
    assert auto_pack_size(_plugin(True), "fc", "cpu") == 1  # packable, but nothing measured: solo under auto
    assert auto_pack_size(_plugin(False, pack_sizes={"fc/cpu": 4}), "fc", "cpu") == 1


class _Twice(torch.optim.SGD):
    """Re-evaluates the loss as SAM does: a pack, whose forward/backward is shared, cannot."""

    def step(self, closure=None):
        closure()
        return super().step(closure)


class _NoClosure(torch.optim.SGD):
    def step(self, closure=None):
        return super().step()


def test_a_members_closure_returns_its_loss_once(digits32):
    settings = PackSettings(epochs=1, batch_size=BATCH)
    losses: list[float] = []

    class _Recording(torch.optim.SGD):
        def step(self, closure=None):
            losses.append(float(closure()))
            return super().step()

    models = [build("fc", s, torch.float32) for s in SEEDS[:2]]
    train_packed(_members(models, lambda m: _Recording(m.parameters(), lr=0.1)), digits32, settings)
    assert len(losses) == 2 * (N_TRAIN // BATCH) and all(0 < v < 10 for v in losses)
    with pytest.raises(RuntimeError, match=r"evaluated once per step.*packable=False"):
        train_packed(_members([build("fc", s, torch.float32) for s in SEEDS[:2]], lambda m: _Twice(m.parameters(), lr=0.1)), digits32, settings)
    assert "SAM" in SECOND_CLOSURE_CALL
    with pytest.raises(RuntimeError, match="without calling the closure"):
        train_packed(_members([build("fc", s, torch.float32) for s in SEEDS[:2]], lambda m: _NoClosure(m.parameters(), lr=0.1)), digits32, settings)


def test_epoch_rows_log_each_members_lr(digits64, tmp_path):
    rates = [0.05, 0.02]
    models = [build("fc", s, torch.float64) for s in SEEDS[:2]]
    run_both(models, lambda m, i, streams: torch.optim.SGD(m.parameters(), lr=rates[i]), digits64, seeds=SEEDS[:2], tmp_path=tmp_path)
    for i, lr in enumerate(rates):
        rows = [json.loads(line) for line in (tmp_path / f"pack{i}.jsonl").read_text().splitlines()]
        solo_rows = [json.loads(line) for line in (tmp_path / f"solo{i}.jsonl").read_text().splitlines()]
        assert [r["lr"] for r in rows] == [r["lr"] for r in solo_rows] == [lr] * EPOCHS
