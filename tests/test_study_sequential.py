"""Group-sequential designs: published boundaries, alpha spent (checked by scipy's MVN CDF), type-I error by simulation, the loop."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from seedbench.analysis.study.sequential import (
    SequentialDesign,
    boundaries,
    crossed,
    crossing_probabilities,
    repeated_ci,
    repeated_p,
    run_until_decided,
    spend,
    welch_z,
)

# Lan-DeMets O'Brien-Fleming-type, two-sided alpha = 0.05, equally spaced looks.
PUBLISHED_OBF = {
    # SAS/STAT PROC SEQDESIGN, method=errfuncobf, nstages=4, alt=twosided, alpha=0.05 (the "Computing Sample Size for
    # Survival Data with Uniform Accrual" example, as reproduced in gsDesign's SeqDesignSurvival vignette)
    4: [4.33263, 2.96333, 2.35902, 2.01409],
    # the five-look values quoted with the design (gsDesign sfLDOF / ldbounds)
    5: [4.877, 3.357, 2.680, 2.290, 2.031],
}


@pytest.mark.parametrize("k", sorted(PUBLISHED_OBF))
def test_obrien_fleming_type_boundaries_match_published_values(k):
    assert boundaries(np.arange(1, k + 1) / k, 0.05, "obf") == pytest.approx(PUBLISHED_OBF[k], abs=5e-4)


@pytest.mark.parametrize("kind", ["obf", "pocock"])
@pytest.mark.parametrize("k", [2, 3, 4, 5])
def test_boundaries_spend_exactly_the_planned_alpha(kind, k):
    """P(crossing by look j) under H0, from scipy's multivariate normal CDF (Genz), equals alpha(t_j) at every look."""
    t = np.arange(1, k + 1) / k
    c = boundaries(t, 0.05, kind)
    cov = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
    for j in range(1, k + 1):
        inside = stats.multivariate_normal(np.zeros(j), cov[:j, :j]).cdf(c[:j], lower_limit=-c[:j], rng=np.random.default_rng(0))
        assert 1 - inside == pytest.approx(spend(t[j - 1], 0.05, kind), abs=2e-5)
    assert crossing_probabilities(t, c).sum() == pytest.approx(0.05, abs=1e-9)


def test_unequal_looks_and_spending_functions():
    t = [0.3, 0.55, 1.0]
    obf, pocock = boundaries(t, 0.05, "obf"), boundaries(t, 0.05, "pocock")
    assert np.all(np.diff(obf) < 0)  # O'Brien-Fleming: strict early, lenient late
    assert obf[-1] < pocock[-1] and obf[0] > pocock[0]
    assert spend(1.0, 0.05, "obf") == pytest.approx(0.05) and spend(1.0, 0.05, "pocock") == pytest.approx(0.05)
    with pytest.raises(ValueError):
        boundaries([0.5, 0.4], 0.05)


def test_design_decides_by_its_boundaries():
    design = SequentialDesign.every(step=4, max_seeds=20)
    assert design.looks == (4, 8, 12, 16, 20)
    c = design.boundaries
    assert design.decide(1, c[0] + 0.01) == "reject" and design.decide(1, -(c[0] + 0.01)) == "reject"
    assert design.decide(2, c[1] - 0.01) == "continue"
    assert design.decide(5, c[4] - 0.01) == "accept"
    assert design.nominal_p == pytest.approx(2 * stats.norm.sf(c))
    with pytest.raises(ValueError):
        design.decide(6, 0.0)


def test_welch_z_has_the_p_value_of_scipys_welch_test():
    rng = np.random.default_rng(1)
    for n_a, n_b in ((3, 5), (10, 10), (2, 30)):
        a, b = rng.normal(0, 1, n_a), rng.normal(0.5, 2, n_b)
        res = stats.ttest_ind(a, b, equal_var=False)
        assert welch_z(a, b) == pytest.approx(math.copysign(stats.norm.isf(res.pvalue / 2), res.statistic))
    assert welch_z(np.array([1.0]), np.array([1.0, 2.0])) == 0.0


def test_repeated_p_value_is_below_alpha_exactly_when_a_boundary_was_crossed():
    t = [0.25, 0.5, 0.75, 1.0]
    c = boundaries(t, 0.05)
    for zs in ([0.5, 1.0, c[2] + 0.05, 0.1], [0.5, 1.0, c[2] - 0.05, 0.1], [4.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, c[3] - 0.01]):
        p = repeated_p(zs, t, "obf", final=True)
        assert (p <= 0.05) == crossed(zs, t, 0.05, "obf", final=True)
        assert crossed(zs, t, p * 1.001, "obf", final=True) and (p >= 0.999 or not crossed(zs, t, p * 0.999, "obf", final=True))


def _normal_rounds(means: dict[str, float], sd: float, rng: np.random.Generator, fail_every: int = 0):
    arms = list(means)

    def run_round(seeds: list[int]) -> pd.DataFrame:
        n = len(seeds)
        frame = pd.DataFrame(
            {
                "method": np.repeat(arms, n),
                "seed": np.tile(seeds, len(arms)),
                "acc": np.concatenate([rng.normal(means[a], sd, n) for a in arms]),
                "status": "finished",
            }
        )
        if fail_every:
            frame.loc[frame["seed"] % fail_every == fail_every - 1, ["status", "acc"]] = ["failed", np.nan]
        return frame

    return run_round


def test_family_wise_type_one_error_under_h0_stays_at_alpha():
    """400 studies of 3 equal arms (3 pairs, group-sequential Holm), 5 looks up to 20 seeds."""
    rng = np.random.default_rng(2)
    n_sims, alpha = 400, 0.05
    false = sum(
        run_until_decided(_normal_rounds({"a": 0.9, "b": 0.9, "c": 0.9}, 0.01, rng), ["a", "b", "c"], "acc", alpha, 20, 4, adjusted=False)
        .pairs["rejected"]
        .any()
        for _ in range(n_sims)
    )
    assert false / n_sims <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / n_sims)


def test_a_large_difference_stops_early_and_reports_the_seeds_saved():
    rng = np.random.default_rng(3)
    result = run_until_decided(_normal_rounds({"a": 0.90, "b": 0.95}, 0.01, rng), ["a", "b"], "acc", 0.05, 20, 4)
    assert result.stopped_because == "every pair decided" and result.seeds_used < 20
    assert result.seeds_saved == (20 - result.seeds_used) * 2
    [row] = result.pairs.to_dict("records")
    assert row["decision"] == "a < b" and row["p_adj"] <= 0.05
    text = result.render()
    assert "Lan-DeMets O'Brien-Fleming-type" in text and "a < b" in text and f"saved {result.seeds_saved} runs" in text


def test_decisions_agree_with_holm_adjusted_repeated_p_values():
    rng = np.random.default_rng(4)
    for means in ({"a": 0.9, "b": 0.9, "c": 0.905}, {"a": 0.9, "b": 0.91, "c": 0.92}):
        result = run_until_decided(_normal_rounds(means, 0.01, rng), list(means), "acc", 0.05, 16, 4)
        assert list(result.pairs["rejected"]) == list(result.pairs["p_adj"] <= 0.05)


def test_failed_runs_count_as_missing_information():
    rng = np.random.default_rng(5)
    result = run_until_decided(_normal_rounds({"a": 0.9, "b": 0.9}, 0.01, rng, fail_every=4), ["a", "b"], "acc", 0.05, 12, 4)
    assert result.seeds_used == 12 and result.stopped_because == "max seeds reached"
    assert (result.pairs["n_a"].iloc[0], result.pairs["n_b"].iloc[0]) == (9, 9)  # seeds 3, 7, 11 failed in both arms
    assert result.pairs["decision"].iloc[0] in ("no difference shown", "a < b", "a > b")


def test_a_margin_lets_equal_arms_stop_as_equivalent():
    """Arms a, b equal and c far better: without a margin the a-b pair keeps the study running to max_seeds."""
    means = {"a": 0.90, "b": 0.90, "c": 0.95}
    rng = np.random.default_rng(6)
    plain = run_until_decided(_normal_rounds(means, 0.01, rng), list(means), "acc", 0.05, 40, 4, adjusted=False)
    assert plain.seeds_used == 40
    rng = np.random.default_rng(6)
    result = run_until_decided(_normal_rounds(means, 0.01, rng), list(means), "acc", 0.05, 40, 4, margin=0.02)
    assert result.stopped_because == "every pair decided" and result.seeds_used < 40
    rows = result.pairs.set_index(["arm_a", "arm_b"])
    assert rows.loc[("a", "b"), "decision"] == "equivalent within +-0.02"
    assert -0.02 < rows.loc[("a", "b"), "rci_low"] <= rows.loc[("a", "b"), "diff"] <= rows.loc[("a", "b"), "rci_high"] < 0.02
    assert rows.loc[("a", "c"), "decision"] == "a < c" and rows.loc[("b", "c"), "decision"] == "b < c"
    assert "repeated CI lies within +-0.02" in result.render()


def test_repeated_ci_is_wider_than_the_fixed_sample_interval():
    rng = np.random.default_rng(7)
    a, b = rng.normal(0, 1, 8), rng.normal(0, 1, 8)
    low, high = repeated_ci(a, b, [0.5], 0.05, "obf", final=False)
    fixed = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert low < fixed.low and high > fixed.high
    assert repeated_ci(a, b, [1.0], 0.05, "obf", final=True) == pytest.approx((fixed.low, fixed.high))
