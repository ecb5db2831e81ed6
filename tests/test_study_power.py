"""Power: seeds for a mean difference (Cohen's table), F and Brown-Forsythe std-ratio power, MDE, the CLI on a real store."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.power import TTestIndPower

from seedbench.analysis.study.power import (
    minimal_detectable_effect,
    pooled_sd,
    power_std_ratio_bf,
    power_std_ratio_f,
    sd_upper_limit,
    seeds_for_difference,
    seeds_for_std_ratio,
)
from seedbench.errors import ConfigError
from seedbench.store import Store
from tests.study_store import run_command, write_study_store


@pytest.mark.parametrize("d, n", [(0.2, 394), (0.5, 64), (0.8, 26)])
def test_seeds_for_a_difference_match_cohens_table(d, n):
    """Cohen (1988), Table 2.4.1: n per group for alpha = 0.05 two-sided, power 0.80."""
    assert seeds_for_difference(d * 0.01, 0.01) == n


def test_minimal_detectable_effect_inverts_the_seed_count():
    sd = 0.004
    for n in (5, 10, 30):
        mde = minimal_detectable_effect(n, n, sd)
        power = TTestIndPower().power(effect_size=mde / sd, nobs1=n, ratio=1.0, alpha=0.05)
        assert power == pytest.approx(0.8, abs=1e-4)  # statsmodels' root finder tolerance
        assert seeds_for_difference(mde * 1.0001, sd) == n
    assert math.isnan(minimal_detectable_effect(1, 5, sd))


def test_f_test_power_matches_simulation():
    n, ratio, sims = 12, 0.5, 20_000
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, ratio, (sims, n)), rng.normal(0, 1.0, (sims, n))
    f = a.var(axis=1, ddof=1) / b.var(axis=1, ddof=1)
    p = 2 * np.minimum(stats.f.cdf(f, n - 1, n - 1), stats.f.sf(f, n - 1, n - 1))
    simulated = np.mean(p < 0.05)
    assert power_std_ratio_f(n, ratio) == pytest.approx(simulated, abs=4 * math.sqrt(simulated * (1 - simulated) / sims))


def test_vectorized_brown_forsythe_is_scipys_levene_median():
    rng = np.random.default_rng(1)
    for _ in range(5):
        a, b = rng.normal(0, 1, 9), rng.normal(0, 2, 9)
        za, zb = np.abs(a - np.median(a)), np.abs(b - np.median(b))
        assert stats.f_oneway(za[None], zb[None], axis=1).pvalue[0] == pytest.approx(stats.levene(a, b, center="median").pvalue)


def test_brown_forsythe_needs_more_seeds_than_the_f_test_on_normal_data():
    n_f = seeds_for_std_ratio(0.5, test="f")
    n_bf = seeds_for_std_ratio(0.5, test="bf", n_sims=2000)
    assert power_std_ratio_f(n_f, 0.5) >= 0.8 > power_std_ratio_f(n_f - 1, 0.5)
    assert n_bf > n_f
    assert power_std_ratio_bf(n_bf, 0.5, n_sims=2000) >= 0.8


def test_pooled_sd_and_its_upper_confidence_limit():
    a, b = np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 6.0, 8.0])
    sd, df = pooled_sd([a, b, np.array([5.0])])  # a single value adds no degrees of freedom
    assert df == 5 and sd == pytest.approx(math.sqrt((2.0 + 20.0) / 5))
    assert sd_upper_limit(sd, df) == pytest.approx(sd * math.sqrt(5 / stats.chi2.ppf(0.2, 5)))


def test_impossible_targets_are_config_errors():
    with pytest.raises(ConfigError):
        seeds_for_difference(-0.01, 0.01)
    with pytest.raises(ConfigError):
        seeds_for_std_ratio(1.0)


# -- the CLI on a real store ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return write_study_store(tmp_path_factory.mktemp("power") / "store", methods={"sgd": 0.90, "rbd": 0.89}, init_seeds=range(4), data_seeds=range(2))


def test_power_cli_uses_the_pooled_sd_of_the_pilot(store, capsys):
    where = "init_seed < 3"
    run_command(["power", "--store", str(store), "--metric", "test_acc", "--by", "method", "--where", where, "--effect", "0.004", "--format", "json"])
    [row] = json.loads(capsys.readouterr().out)
    runs = Store(store).query(f"SELECT method, test_acc FROM runs WHERE {where}")
    ss = sum(((g - g.mean()) ** 2).sum() for _, g in runs.groupby("method")["test_acc"])
    sd = math.sqrt(ss / (len(runs) - 2))
    assert row["pilot_n"] == "6/6" and row["pilot_sd"] == pytest.approx(sd)
    assert row["seeds_per_arm"] == seeds_for_difference(0.004, sd)
    assert row["seeds_per_arm_sd_upper80"] >= row["seeds_per_arm"]


def test_power_cli_std_ratio_and_default_mde(store, capsys):
    run_command(["power", "--store", str(store), "--metric", "test_acc", "--by", "method", "--std-ratio", "0.5", "--format", "json"])
    [row] = json.loads(capsys.readouterr().out)
    assert row["seeds_per_arm_f"] == seeds_for_std_ratio(0.5, test="f")
    run_command(["power", "--store", str(store), "--metric", "test_acc", "--by", "method", "--format", "json"])
    [row] = json.loads(capsys.readouterr().out)
    assert row["mde_at_pilot_n"] == pytest.approx(minimal_detectable_effect(8, 8, row["pilot_sd"]))


def test_power_cli_refuses_both_targets_and_text_metrics(store):
    with pytest.raises(SystemExit):
        run_command(["power", "--store", str(store), "--by", "method", "--effect", "0.01", "--std-ratio", "0.5"])
    with pytest.raises(ConfigError) as info:
        run_command(["power", "--store", str(store), "--by", "method", "--metric", "host", "--effect", "0.01"])
    assert "not numeric" in str(info.value) and "\n" not in str(info.value)


def test_compare_shows_the_minimal_detectable_effect_at_the_current_n(store, capsys):
    run_command(["compare", "--store", str(store), "--metric", "test_acc", "--by", "method", "--format", "json", "--unpaired"])
    [row] = json.loads(capsys.readouterr().out)
    # accuracies are compared in percent, and the headers say so
    sd = math.sqrt(((row["n_a"] - 1) * row["std_a (%)"] ** 2 + (row["n_b"] - 1) * row["std_b (%)"] ** 2) / (row["n_a"] + row["n_b"] - 2))
    power = TTestIndPower().power(effect_size=row["mde (%)"] / sd, nobs1=row["n_a"], ratio=row["n_b"] / row["n_a"], alpha=0.05)
    assert power == pytest.approx(0.8, abs=1e-4)  # statsmodels' root finder tolerance
    run_command(["compare", "--store", str(store), "--metric", "test_acc", "--by", "method"])
    assert "mde" in capsys.readouterr().out
