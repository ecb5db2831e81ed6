"""Variance decomposition: mean squares against statsmodels, EMS algebra, interval coverage, errors, CLI on a real store."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from seedbench.analysis.study.variance import (
    RESIDUAL,
    Design,
    compare_designs,
    crossed_design,
    decompose_design,
    ems_coefficients,
    mean_squares,
    mean_squares_statsmodels,
    mls_interval,
    simulate_cube,
)
from seedbench.errors import ConfigError
from seedbench.store import Store
from tests.study_store import run_command, write_study_store

NOMINAL = 0.95


def _design(cube: np.ndarray) -> Design:
    names = ("init", "data", "augment")[: cube.ndim - 1]
    return Design(names, {f: list(range(n)) for f, n in zip(names, cube.shape[:-1])}, cube)


def _coverage_bound(n: int, p: float = NOMINAL) -> float:
    """Three binomial standard errors: a correct 95% interval misses this band with probability ~0.3%."""
    return 3 * math.sqrt(p * (1 - p) / n)


@pytest.mark.parametrize(
    "sizes, r, sds",
    [
        ((6, 5), 1, {(0,): 1.0, (1,): 0.5, RESIDUAL: 0.7}),
        ((4, 5), 3, {(0,): 1.0, (1,): 0.5, (0, 1): 0.4, RESIDUAL: 0.7}),
        ((4, 3, 5), 1, {(0,): 1.0, (1,): 0.5, (2,): 0.6, (0, 1): 0.3, RESIDUAL: 0.7}),
    ],
)
def test_mean_squares_agree_with_statsmodels_anova(sizes, r, sds):
    cube = simulate_cube(sizes, sds, np.random.default_rng(1), r=r)[0]
    reference = mean_squares_statsmodels(_design(cube))
    ms, df = mean_squares(cube)
    assert set(ms) == set(reference)
    for term, (ms_ref, df_ref) in reference.items():
        assert df[term] == df_ref
        assert ms[term] == pytest.approx(ms_ref, rel=1e-9)


def test_two_factor_components_are_the_textbook_ems_solutions():
    """a x b, one run per cell: init = (MS_i - MS_e)/b, data = (MS_d - MS_e)/a, residual = MS_e (hand-derived from the data)."""
    a, b = 7, 4
    y = simulate_cube((a, b), {(0,): 1.0, (1,): 0.5, RESIDUAL: 0.3}, np.random.default_rng(2))[0][..., 0]
    grand, rows, cols = y.mean(), y.mean(axis=1), y.mean(axis=0)
    ms_i = b * ((rows - grand) ** 2).sum() / (a - 1)
    ms_d = a * ((cols - grand) ** 2).sum() / (b - 1)
    ms_e = ((y - rows[:, None] - cols[None, :] + grand) ** 2).sum() / ((a - 1) * (b - 1))
    table = decompose_design(_design(y[..., None])).set_index("component")
    assert table.loc["init", "variance"] == pytest.approx((ms_i - ms_e) / b)
    assert table.loc["data", "variance"] == pytest.approx((ms_d - ms_e) / a)
    assert table.loc["residual (incl. init:data)", "variance"] == pytest.approx(ms_e)
    assert table.loc["total", "variance"] == pytest.approx(table["variance"].iloc[:3].sum())


def test_ems_coefficients_with_replicates_separate_the_interaction():
    coefs = ems_coefficients((5, 4), r=3)
    assert coefs[(0,)] == pytest.approx({(0,): 1 / 12, (0, 1): -1 / 12})
    assert coefs[(0, 1)] == pytest.approx({(0, 1): 1 / 3, RESIDUAL: -1 / 3})
    assert coefs[RESIDUAL] == {RESIDUAL: 1.0}


def test_mls_interval_of_one_mean_square_is_the_exact_chi_square_interval():
    low, high = mls_interval([1.0], [2.5], [12])
    assert low == pytest.approx(12 * 2.5 / stats.chi2.ppf(0.975, 12))
    assert high == pytest.approx(12 * 2.5 / stats.chi2.ppf(0.025, 12))


@pytest.mark.parametrize(
    "sizes, r, sds",
    [
        ((6, 5), 1, {(0,): 1.0, (1,): 0.5, RESIDUAL: 0.7}),
        ((5, 4, 4), 1, {(0,): 0.8, (1,): 0.5, (2,): 0.6, (0, 1): 0.3, (0, 2): 0.3, (1, 2): 0.3, RESIDUAL: 0.7}),
    ],
)
def test_mls_intervals_cover_known_components_at_the_nominal_rate(sizes, r, sds):
    n_sims = 200
    cubes = simulate_cube(sizes, sds, np.random.default_rng(3), r=r, n_sims=n_sims)
    ms, df = mean_squares(cubes, k=len(sizes))
    full = tuple(range(len(sizes)))
    for term, combo in ems_coefficients(sizes, r).items():
        truth = sds[RESIDUAL] ** 2 + sds.get(full, 0.0) ** 2 if term == RESIDUAL else sds.get(term, 0.0) ** 2
        keys = list(combo)
        low, high = mls_interval([combo[k] for k in keys], [ms[k] for k in keys], [df[k] for k in keys])
        covered = (np.maximum(low, 0) <= truth) & (truth <= np.maximum(high, 0))
        assert abs(covered.mean() - NOMINAL) <= _coverage_bound(n_sims), (term, covered.mean())


def test_generalized_interval_for_the_change_of_init_component_covers_the_truth():
    """Two arms sharing data seeds (shared data effects), init SD 1.0 vs 0.5: CIs for the std ratio and variance change."""
    rng = np.random.default_rng(4)
    n_sims, a, b = 200, 6, 5
    hits_ratio = hits_diff = 0
    for i in range(n_sims):
        data = rng.normal(0, 0.5, (1, b, 1))
        base = rng.normal(0, 1.0, (a, 1, 1)) + data + rng.normal(0, 0.7, (a, b, 1))
        arm = rng.normal(0, 0.5, (a, 1, 1)) + data + rng.normal(0, 0.7, (a, b, 1))
        row = compare_designs(_design(arm), _design(base), n_draws=2000, seed=i).set_index("component").loc["init"]
        hits_ratio += row["std_ratio_ci_low"] <= 0.5 <= row["std_ratio_ci_high"]
        hits_diff += row["var_diff_ci_low"] <= 0.25 - 1.0 <= row["var_diff_ci_high"]
    assert abs(hits_ratio / n_sims - NOMINAL) <= _coverage_bound(n_sims)
    assert abs(hits_diff / n_sims - NOMINAL) <= _coverage_bound(n_sims)


# -- designs the decomposition refuses, with one line each ---------------------------------------


def _runs(init_seeds=range(4), data_seeds=range(3), **columns) -> pd.DataFrame:
    rows = [
        {"seed": 0, "init_seed": i, "data_seed": d, "status": "finished", "acc": 0.9 + 0.01 * i + 0.001 * d} for i in init_seeds for d in data_seeds
    ]
    frame = pd.DataFrame(rows)
    for key, value in columns.items():
        frame[key] = value
    return frame


@pytest.mark.parametrize(
    "frame, message",
    [
        (_runs().drop(index=4), "not crossed"),
        (_runs(acc="high"), "not numeric"),
        (_runs().assign(data_seed=lambda f: f["init_seed"]), "vary together"),
        (_runs().assign(status=["diverged"] + ["finished"] * 11), "1 diverged"),
        (_runs(data_seeds=[0]), "only init varies"),
        (pd.concat([_runs(), _runs().iloc[:1]]), "unbalanced"),
    ],
)
def test_designs_that_cannot_be_decomposed_raise_one_line_config_errors(frame, message):
    with pytest.raises(ConfigError) as info:
        crossed_design(frame, "acc")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_runs_without_overrides_take_their_streams_from_the_seed():
    """init_seed given, data_seed not: the data stream follows `seed`, which here is crossed with init_seed."""
    frame = _runs(data_seeds=[0]).assign(data_seed=None).drop(columns=["seed"])
    frame = pd.concat([frame.assign(seed=s, acc=frame["acc"] + 0.002 * s) for s in range(3)], ignore_index=True)
    design = crossed_design(frame, "acc")
    assert design.factors == ("init", "data") and design.shape == (4, 3)


# -- the CLI on a real store ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return write_study_store(
        tmp_path_factory.mktemp("variance") / "store",
        methods={"sgd": 0.90, "pa": 0.90},
        init_sd={"sgd": 0.012, "pa": 0.002},
        init_seeds=range(6),
        data_seeds=range(5),
    )


def test_decompose_cli_reports_the_anova_components_of_the_stored_runs(store, capsys):
    assert run_command(["decompose", "--store", str(store), "--metric", "test_acc", "--by", "method", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    runs = Store(store).query("SELECT method, init_seed, data_seed, test_acc FROM runs")
    components = pd.DataFrame(out["components"])
    for method, group in runs.groupby("method"):
        y = group.pivot(index="init_seed", columns="data_seed", values="test_acc").to_numpy()
        a, b = y.shape
        rows, cols, grand = y.mean(axis=1), y.mean(axis=0), y.mean()
        ms_e = ((y - rows[:, None] - cols[None, :] + grand) ** 2).sum() / ((a - 1) * (b - 1))
        ms_i = b * ((rows - grand) ** 2).sum() / (a - 1)
        mine = components[components["method"] == method].set_index("component")
        assert mine.loc["init", "variance"] == pytest.approx((ms_i - ms_e) / b)
        assert mine.loc["init", "ci_low"] <= mine.loc["init", "variance"] <= mine.loc["init", "ci_high"]
    comparison = pd.DataFrame(out["comparisons"]).set_index("component").loc["init"]
    assert comparison["method"] == "sgd" and comparison["baseline"] == "pa"
    # sgd's init effects were drawn with 6x pa's SD: the interval must say "larger", not "unclear"
    assert comparison["std_ratio_ci_low"] > 1


def test_decompose_cli_table_names_the_change_in_words(store, capsys):
    run_command(["decompose", "--store", str(store), "--metric", "test_acc", "--by", "method"])
    out = capsys.readouterr().out
    assert "sgd vs pa: init std x" in out
    assert "MLS" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--metric", "host"], "not numeric"),
        (["--metric", "test_acc", "--by", "nonsense"], "unknown column"),
        (["--metric", "test_acc", "--by", "method", "--where", "NOT (init_seed = 2 AND data_seed = 1)"], "not crossed"),
    ],
)
def test_decompose_cli_errors_are_one_line(store, argv, message):
    with pytest.raises(ConfigError) as info:
        run_command(["decompose", "--store", str(store), *argv])
    assert message in str(info.value) and "\n" not in str(info.value)
