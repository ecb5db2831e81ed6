"""Sup-Walsh: class codes, per-class picks, seeded t-SNE, the support network and pretraining."""

from __future__ import annotations

import copy

import pytest
import torch

from seedbench.init.walsh import code_length, make_codes, onehot_codes, random_codes, walsh_codes
from seedbench.models.zoo import ZOO
from seedbench.train.supwalsh import (
    SupWalsh,
    _plan,
    compute_matched_control,
    default_perplexity,
    pretrain,
    random_2d,
    select_one_per_class,
    tsne_2d,
)


def sylvester(n: int) -> torch.Tensor:
    """H_n by repeated Kronecker products with [[1, 1], [1, -1]], independent of scipy."""
    h = torch.ones(1, 1)
    while len(h) < n:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h


def tiny_data(n: int = 60, shape: tuple[int, int, int] = (1, 8, 8), classes: int = 10, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    return torch.rand(n, *shape, generator=g), y[torch.randperm(n, generator=g)]


def setup(shape: tuple[int, int, int] = (1, 8, 8), classes: int = 10, seed: int = 0):
    torch.manual_seed(seed)
    model = ZOO["base"](shape, classes)
    supwalsh = SupWalsh(shape, walsh_codes(classes), generator=torch.Generator().manual_seed(seed))
    return model, supwalsh


def states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------------------------- codes
def test_walsh_codes_for_ten_classes_are_rows_1_to_10_of_h16():
    codes = walsh_codes(10)
    assert codes.shape == (10, 16)
    assert torch.equal(codes, sylvester(16)[1:11])
    assert set(codes.unique().tolist()) == {-1.0, 1.0}
    assert torch.equal(codes @ codes.T, 16 * torch.eye(10))
    assert not (codes == 1).all(1).any()  # row 0, all ones, is skipped


@pytest.mark.parametrize("classes, n", [(1, 2), (3, 4), (4, 8), (7, 8), (8, 16), (15, 16), (16, 32)])
def test_code_length_is_the_smallest_power_of_two_above_k(classes, n):
    assert code_length(classes) == n
    codes = walsh_codes(classes)
    assert codes.shape == (classes, n)
    assert torch.equal(codes, sylvester(n)[1 : classes + 1])


def test_ablation_codes():
    onehot = onehot_codes(10)
    assert onehot.shape == (10, 16) and torch.equal(onehot.sum(1), torch.ones(10)) and onehot[3, 3] == 1
    first = random_codes(10, generator=torch.Generator().manual_seed(1))
    again = random_codes(10, generator=torch.Generator().manual_seed(1))
    assert first.shape == (10, 16) and torch.equal(first, again)
    assert set(first.unique().tolist()) == {-1.0, 1.0}
    assert torch.equal(make_codes("walsh", 10), walsh_codes(10))
    assert make_codes("onehot", 3).shape == (3, 4)
    with pytest.raises(ValueError, match="unknown code kind"):
        make_codes("gray", 10)
    with pytest.raises(ValueError, match="n >= 10"):
        onehot_codes(10, 8)


# ------------------------------------------------------------------------------------- picks
def test_select_one_per_class_picks_a_member_of_each_class():
    labels = torch.tensor([3, 0, 1, 0, 2, 3, 1, 2, 2])
    positions, classes = select_one_per_class(labels, 4, torch.Generator().manual_seed(0))
    assert classes.tolist() == [0, 1, 2, 3]
    assert torch.equal(labels[positions], classes)


def test_select_one_per_class_is_random_and_seeded():
    labels = torch.zeros(50, dtype=torch.long)
    picks = {int(select_one_per_class(labels, 1, torch.Generator().manual_seed(s))[0]) for s in range(20)}
    assert len(picks) > 5
    a = select_one_per_class(labels, 1, torch.Generator().manual_seed(7))[0]
    b = select_one_per_class(labels, 1, torch.Generator().manual_seed(7))[0]
    assert torch.equal(a, b)


def test_missing_class_does_not_crash():
    labels = torch.tensor([0, 2, 2, 0])
    positions, classes = select_one_per_class(labels, 3)
    assert classes.tolist() == [0, 2]
    assert torch.equal(labels[positions], classes)
    positions, classes = select_one_per_class(torch.tensor([], dtype=torch.long), 3)
    assert len(positions) == len(classes) == 0


def test_pretraining_fills_a_class_missing_from_the_batch_from_the_training_set():
    y = torch.tensor([0] * 40 + [1] * 40 + [2])  # class 2 appears in at most one batch of 8 per epoch
    steps = list(_plan(y, 3, epochs=2, batch_size=8, seed=0, max_steps=None))
    assert len(steps) == 2 * 11  # ceil(81 / 8) per epoch: the partial batch is kept
    for _, indices, classes in steps:
        assert classes.tolist() == [0, 1, 2]
        assert torch.equal(y[indices], classes)


def test_class_absent_from_training_set_is_skipped():
    x, y = tiny_data(40, classes=4)
    model, supwalsh = setup(classes=5)  # codes for 5 classes, data has 4
    stats = pretrain(model, supwalsh, x, y, epochs=1, batch_size=10, seed=0, inputs="random")
    assert stats["steps"] == 4
    for _, _, classes in _plan(y, 5, 1, 10, 0, None):
        assert classes.tolist() == [0, 1, 2, 3]


# ------------------------------------------------------------------------------------- points
def test_tsne_is_seeded():
    x = torch.rand(10, 64)
    a, b = tsne_2d(x, seed=3), tsne_2d(x, seed=3)
    assert a.shape == (10, 2) and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert not torch.equal(a, tsne_2d(torch.rand(10, 64), seed=3))  # it does depend on the images


def test_tsne_perplexity_below_the_number_of_points():
    assert default_perplexity(10) == 5 and default_perplexity(3) == 2 and default_perplexity(2) == 1
    assert tsne_2d(torch.rand(3, 16), seed=0).shape == (3, 2)
    assert torch.equal(tsne_2d(torch.rand(1, 16), seed=0), torch.zeros(1, 2))


def test_random_points_are_seeded_and_of_tsne_scale():
    a = random_2d(1000, torch.Generator().manual_seed(0))
    assert torch.equal(a, random_2d(1000, torch.Generator().manual_seed(0)))
    assert 30 < float(a.std()) < 50


# ------------------------------------------------------------------------------------- network
@pytest.mark.parametrize("shape", [(1, 64, 64), (3, 32, 32), (1, 28, 28)])
def test_supwalsh_output_has_the_input_shape(shape):
    supwalsh = SupWalsh(shape, walsh_codes(10))
    out = supwalsh(torch.randn(4, 2), torch.tensor([0, 3, 9, 3]))
    assert out.shape == (4, *shape)


def test_supwalsh_is_linear_and_the_code_decides_the_image():
    supwalsh = SupWalsh((1, 8, 8), walsh_codes(10), generator=torch.Generator().manual_seed(0))
    layers = [m for m in supwalsh.modules() if len(list(m.children())) == 0]
    assert all(isinstance(m, torch.nn.Linear) for m in layers)
    assert [(m.in_features, m.out_features) for m in layers] == [(2, 4), (4, 8), (8, 16), (16, 64)]
    points = torch.randn(1, 2).repeat(2, 1)
    out = supwalsh(points, torch.tensor([1, 2]))
    assert not torch.equal(out[0], out[1])
    assert "codes" in dict(supwalsh.named_buffers()) and "codes" not in dict(supwalsh.named_parameters())


def test_supwalsh_generator_init_is_reproducible():
    a = SupWalsh((1, 8, 8), walsh_codes(10), generator=torch.Generator().manual_seed(5))
    b = SupWalsh((1, 8, 8), walsh_codes(10), generator=torch.Generator().manual_seed(5))
    assert states_equal(a.state_dict(), b.state_dict())


# ------------------------------------------------------------------------------------- pretraining
def test_pretrain_changes_the_main_model_and_reports_stats():
    x, y = tiny_data()
    model, supwalsh = setup()
    before = copy.deepcopy(model.state_dict())
    stats = pretrain(model, supwalsh, x, y, epochs=2, batch_size=20, seed=0, lr=1e-3)
    assert not states_equal(before, model.state_dict())
    assert stats["steps"] == 6 and len(stats["losses"]) == 6
    assert stats["final_loss"] == stats["losses"][-1]
    assert stats["seconds"] > 0 and stats["tsne_seconds"] > 0 and stats["batches_per_s"] > 0
    assert 0 < stats["tsne_share"] <= 1
    assert model.training


def test_pretrain_is_deterministic_in_the_seed_and_keeps_the_callers_rng():
    x, y = tiny_data()
    results = []
    for seed in (1, 1, 2):
        model, supwalsh = setup()
        torch.manual_seed(seed * 100)  # dropout must not depend on the global RNG state
        expected_next = torch.get_rng_state()
        stats = pretrain(model, supwalsh, x, y, epochs=1, batch_size=20, seed=seed, lr=1e-3)
        assert torch.equal(torch.get_rng_state(), expected_next)
        results.append((stats["losses"], model.state_dict()))
    assert results[0][0] == results[1][0] and states_equal(results[0][1], results[1][1])
    assert results[0][0] != results[2][0]


def test_random_inputs_skip_tsne():
    x, y = tiny_data()
    model, supwalsh = setup()
    stats = pretrain(model, supwalsh, x, y, epochs=1, batch_size=20, seed=0, inputs="random")
    assert stats["steps"] == 3 and stats["tsne_seconds"] == 0 and stats["inputs"] == "random"


def test_max_steps_caps_the_run():
    x, y = tiny_data()
    model, supwalsh = setup()
    assert pretrain(model, supwalsh, x, y, epochs=5, batch_size=20, seed=0, max_steps=4)["steps"] == 4


def test_keep_best_restores_the_weights_that_gave_the_lowest_loss():
    """The best snapshot is the model before the best step's update: a run stopped there must match it."""
    x, y = tiny_data(shape=(1, 4, 4))
    model, supwalsh = setup(shape=(1, 4, 4))
    start_model, start_supwalsh = copy.deepcopy(model), copy.deepcopy(supwalsh)
    kwargs = dict(epochs=4, batch_size=10, seed=0, lr=0.05, inputs="random")
    best = pretrain(model, supwalsh, x, y, keep="best", **kwargs)
    assert best["best_step"] < best["steps"] - 1, "the test needs a run whose best loss is not its last"
    assert best["best_loss"] == min(best["losses"]) < best["final_loss"]
    stopped = pretrain(start_model, start_supwalsh, x, y, keep="final", max_steps=best["best_step"], **kwargs)
    assert stopped["steps"] == best["best_step"]
    assert states_equal(model.state_dict(), start_model.state_dict())


def test_bad_arguments():
    x, y = tiny_data()
    model, supwalsh = setup()
    with pytest.raises(ValueError, match="inputs"):
        pretrain(model, supwalsh, x, y, epochs=1, seed=0, inputs="pca")
    with pytest.raises(ValueError, match="keep"):
        pretrain(model, supwalsh, x, y, epochs=1, seed=0, keep="last")
    with pytest.raises(ValueError, match="labels must lie in 0..9"):
        pretrain(model, supwalsh, x, y + 5, epochs=1, seed=0)


def test_compute_matched_control_takes_the_same_number_of_adam_steps():
    x, y = tiny_data()
    model, supwalsh = setup()
    sup = pretrain(model, supwalsh, x, y, epochs=1, batch_size=20, seed=0)
    control, _ = setup()
    before = copy.deepcopy(control.state_dict())
    stats = compute_matched_control(control, sup["steps"], in_shape=(1, 8, 8), seed=0)
    assert stats["steps"] == sup["steps"] == len(stats["losses"])
    assert not states_equal(before, control.state_dict())
    again, _ = setup()
    compute_matched_control(again, sup["steps"], in_shape=(1, 8, 8), seed=0)
    assert states_equal(control.state_dict(), again.state_dict())


@pytest.mark.slow
def test_tsne_in_worker_processes_gives_the_same_run():
    x, y = tiny_data(40)
    runs = []
    for workers in (0, 1):
        model, supwalsh = setup()
        stats = pretrain(model, supwalsh, x, y, epochs=1, batch_size=10, seed=0, lr=1e-3, tsne_workers=workers)
        runs.append((stats, model.state_dict()))
    assert runs[0][0]["losses"] == runs[1][0]["losses"]
    assert states_equal(runs[0][1], runs[1][1])
