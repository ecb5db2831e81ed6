"""seedbench.analysis.stats against scipy/statsmodels on fixed data and against published/hand-worked values."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st
from statsmodels.stats.multitest import multipletests

from seedbench.analysis import stats
from seedbench.analysis.stats import adjust_pvalues, compare, hedges_g, summarize, summarize_groups, variance_study

FAST = 2_000  # resamples: enough for the properties tested, keeps the suite fast

# Welch's t-test examples 1 and 2 (Wikipedia, "Welch's t-test", Examples): published t, df, p.
WELCH_1 = (
    [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4],
    [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4],
    (-2.46, 25.0, 0.021),
)
WELCH_2 = (
    [17.2, 20.9, 22.6, 18.1, 21.7, 21.4, 23.5, 24.2, 14.7, 21.8],
    [21.5, 22.8, 21.0, 23.0, 21.6, 23.6, 22.5, 20.7, 23.4, 21.8, 20.7, 21.7, 21.5, 22.5, 23.6, 21.5, 22.5, 23.5, 21.5, 21.8],
    (-1.57, 9.9, 0.149),
)

A = np.array([0.912, 0.905, 0.921, 0.899, 0.915, 0.908, 0.918, 0.902])
B = np.array([0.901, 0.897, 0.909, 0.893, 0.899, 0.903, 0.906, 0.888])


def two_arms(a, b, seeds_a=None, seeds_b=None, **extra) -> pd.DataFrame:
    seeds_a = range(len(a)) if seeds_a is None else seeds_a
    seeds_b = range(len(b)) if seeds_b is None else seeds_b
    rows = [{"method": "A", "seed": s, "status": "finished", "acc": v, **extra} for s, v in zip(seeds_a, a)]
    rows += [{"method": "B", "seed": s, "status": "finished", "acc": v, **extra} for s, v in zip(seeds_b, b)]
    return pd.DataFrame(rows)


@pytest.fixture
def no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# --- multiple-comparison correction --------------------------------------------------------


def test_holm_known_vector():
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> monotone 0.02, 0.03, 0.06, 0.06
    adj = adjust_pvalues([0.01, 0.04, 0.03, 0.005], "holm")
    np.testing.assert_allclose(adj, [0.03, 0.06, 0.06, 0.02])


def test_bh_known_vector():
    # p_(i) * 4 / i = 0.02, 0.02, 0.04, 0.04
    adj = adjust_pvalues([0.01, 0.04, 0.03, 0.005], "fdr_bh")
    np.testing.assert_allclose(adj, [0.02, 0.04, 0.04, 0.02])


def test_nan_pvalues_are_left_out_of_the_family():
    np.testing.assert_allclose(adjust_pvalues([0.01, np.nan, 0.04], "holm"), [0.02, np.nan, 0.04])
    assert np.isnan(adjust_pvalues([np.nan, np.nan], "holm")).all()


def test_unknown_correction_names_the_valid_ones():
    with pytest.raises(ValueError, match="holm"):
        adjust_pvalues([0.1], "holmes")
    with pytest.raises(ValueError, match="fdr_bh"):
        compare(two_arms(A, B), "acc", "method", correction="nope", n_resamples=FAST)


# --- summarize -------------------------------------------------------------------------------


def test_summarize_matches_numpy_and_scipy():
    s = summarize(A, n_resamples=FAST)
    assert s["n"] == 8
    assert s["mean"] == pytest.approx(A.mean())
    assert s["std"] == pytest.approx(A.std(ddof=1))
    assert s["sem"] == pytest.approx(st.sem(A))
    low, high = st.t.interval(0.95, len(A) - 1, loc=A.mean(), scale=st.sem(A))
    assert (s["mean_t_ci_low"], s["mean_t_ci_high"]) == pytest.approx((low, high))
    assert s["median"] == pytest.approx(np.median(A))
    assert s["iqm"] == pytest.approx(st.trim_mean(A, 0.25))
    assert (s["min"], s["max"]) == (A.min(), A.max())


def test_iqm_hand_computed():
    # 8 values, trim 2 each side of [1..7, 100] -> mean(3, 4, 5, 6) = 4.5; the outlier does not move it
    assert summarize([1, 2, 3, 4, 100, 5, 6, 7], n_resamples=FAST)["iqm"] == pytest.approx(4.5)


def test_bca_interval_contains_mean_and_is_reproducible():
    s1 = summarize(A, n_resamples=FAST, seed=7)
    s2 = summarize(A, n_resamples=FAST, seed=7)
    assert s1["mean_ci_method"] == "BCa" and s1["iqm_ci_method"] == "BCa"
    assert s1["mean_ci_low"] < s1["mean"] < s1["mean_ci_high"]
    assert s1["iqm_ci_low"] <= s1["iqm"] <= s1["iqm_ci_high"]
    assert (s1["mean_ci_low"], s1["mean_ci_high"]) == (s2["mean_ci_low"], s2["mean_ci_high"])
    direct = st.bootstrap((A,), np.mean, n_resamples=FAST, method="BCa", rng=np.random.default_rng(7))
    assert s1["mean_ci_low"] == pytest.approx(direct.confidence_interval.low)
    assert s1["mean_ci_high"] == pytest.approx(direct.confidence_interval.high)
    s3 = summarize(A, n_resamples=FAST, seed=8)
    assert (s3["mean_ci_low"], s3["mean_ci_high"]) != (s1["mean_ci_low"], s1["mean_ci_high"])


def test_n1_and_n0_give_nan_intervals_quietly(no_warnings):
    one = summarize([0.9], n_resamples=FAST)
    assert one["n"] == 1 and one["mean"] == 0.9 and one["median"] == 0.9 and one["iqm"] == 0.9
    for key in ("std", "sem", "mean_ci_low", "mean_ci_high", "mean_t_ci_low", "iqm_ci_high"):
        assert np.isnan(one[key]), key
    assert one["mean_ci_method"].startswith("none")
    zero = summarize([], n_resamples=FAST)
    assert zero["n"] == 0 and np.isnan(zero["mean"]) and np.isnan(zero["min"])


def test_constant_data_falls_back_to_percentile(no_warnings):
    s = summarize([0.9, 0.9, 0.9, 0.9], n_resamples=FAST)
    assert s["std"] == 0
    assert s["mean_ci_method"] == "percentile (BCa degenerate)"
    assert s["mean_ci_low"] == s["mean_ci_high"] == pytest.approx(0.9)
    assert s["mean_t_ci_low"] == s["mean_t_ci_high"] == pytest.approx(0.9)


def test_nonfinite_values_are_dropped_and_counted(no_warnings):
    s = summarize([0.9, np.nan, np.inf, 0.8, None], n_resamples=FAST)
    assert s["n"] == 2 and s["n_nonfinite"] == 3 and s["mean"] == pytest.approx(0.85)


def test_summarize_groups_counts_failed_and_diverged(no_warnings):
    df = pd.DataFrame(
        {
            "method": ["a"] * 5 + ["b"] * 3,
            "seed": [0, 1, 2, 3, 4, 0, 1, 2],
            "status": ["finished", "finished", "diverged", "failed", "running", "failed", "failed", "diverged"],
            "acc": [0.9, 0.8, 0.1, np.nan, np.nan, np.nan, np.nan, 0.1],
        }
    )
    out = summarize_groups(df, "acc", ["method"], n_resamples=FAST).set_index("method")
    assert out.loc["a", ["n", "n_failed", "n_diverged", "n_other"]].tolist() == [2, 1, 1, 1]
    assert out.loc["a", "mean"] == pytest.approx(0.85)  # the diverged 0.1 is counted, not averaged
    assert out.loc["b", ["n", "n_failed", "n_diverged"]].tolist() == [0, 2, 1]
    assert np.isnan(out.loc["b", "mean"])


def test_summarize_groups_without_status_column_takes_all_runs():
    df = pd.DataFrame({"m": ["x", "x", "y"], "acc": [1.0, 2.0, 3.0]})
    out = summarize_groups(df, "acc", "m", n_resamples=FAST)
    assert out["n"].tolist() == [2, 1] and out["n_failed"].tolist() == [0, 0]


# --- compare ---------------------------------------------------------------------------------


@pytest.mark.parametrize("example", [WELCH_1, WELCH_2])
def test_welch_matches_published_example(example):
    a, b, (t, df, p) = example
    row = compare(two_arms(a, b), "acc", "method", pair_on=None, n_resamples=FAST).iloc[0]
    assert (row["arm_a"], row["arm_b"]) == ("A", "B")
    assert row["welch_t"] == pytest.approx(t, abs=0.005)
    assert row["welch_df"] == pytest.approx(df, abs=0.05)
    assert row["welch_p"] == pytest.approx(p, abs=0.0005)
    assert row["diff"] == pytest.approx(np.mean(a) - np.mean(b))
    assert row["diff_ci_low"] < row["diff"] < row["diff_ci_high"]


def test_compare_matches_scipy_on_fixed_data():
    row = compare(two_arms(A, B), "acc", "method", n_resamples=FAST).iloc[0]
    welch = st.ttest_ind(A, B, equal_var=False)
    ci = welch.confidence_interval()
    assert row["welch_p"] == pytest.approx(welch.pvalue)
    assert (row["diff_ci_low"], row["diff_ci_high"]) == pytest.approx((ci.low, ci.high))
    assert row["mwu_p"] == pytest.approx(st.mannwhitneyu(A, B).pvalue)
    assert row["bf_p"] == pytest.approx(st.levene(A, B, center="median").pvalue)
    assert row["levene_p"] == pytest.approx(st.levene(A, B, center="mean").pvalue)
    assert row["std_ratio"] == pytest.approx(A.std(ddof=1) / B.std(ddof=1))
    assert row["std_ratio_ci_low"] < row["std_ratio"] < row["std_ratio_ci_high"]
    assert row["diff_boot_ci_low"] < row["diff"] < row["diff_boot_ci_high"]
    assert row["paired_n"] == 8
    assert row["paired_t_p"] == pytest.approx(st.ttest_rel(A, B).pvalue)
    assert row["wilcoxon_p"] == pytest.approx(st.wilcoxon(A, B).pvalue)


def test_brown_forsythe_is_anova_on_absolute_deviations_from_the_median():
    # the textbook definition, computed independently of scipy.stats.levene
    row = compare(two_arms(A, B), "acc", "method", n_resamples=FAST).iloc[0]
    expected = st.f_oneway(np.abs(A - np.median(A)), np.abs(B - np.median(B))).pvalue
    assert row["bf_p"] == pytest.approx(expected)


def test_hedges_g_hand_computed():
    # means 2 and 4, both sd 1 -> d = -2; J = 1 - 3/(4*6 - 9) = 0.8 -> g = -1.6
    assert hedges_g(np.array([1.0, 2, 3]), np.array([3.0, 4, 5])) == pytest.approx(-1.6)
    row = compare(two_arms([1.0, 2, 3], [3.0, 4, 5]), "acc", "method", n_resamples=FAST).iloc[0]
    assert row["hedges_g"] == pytest.approx(-1.6)


def test_probability_a_beats_b_counts_ties_as_half():
    # A=[1,2,3] vs B=[2,2,4]: 1 wins none; 2 ties twice (1); 3 beats both 2s (2) -> 3/9
    row = compare(two_arms([1.0, 2, 3], [2.0, 2, 4]), "acc", "method", n_resamples=FAST).iloc[0]
    assert row["p_a_gt_b"] == pytest.approx(1 / 3)
    back = compare(two_arms([2.0, 2, 4], [1.0, 2, 3]), "acc", "method", n_resamples=FAST).iloc[0]
    assert back["p_a_gt_b"] == pytest.approx(2 / 3)


def test_paired_tests_use_only_shared_seeds():
    a, b = A[:6], B[:6]
    df = two_arms(a, b, seeds_a=[0, 1, 2, 3, 4, 5], seeds_b=[2, 3, 4, 5, 6, 7])
    # an unfinished run on a shared seed must not enter the pairing either
    df = pd.concat([df, pd.DataFrame([{"method": "B", "seed": 1, "status": "diverged", "acc": 0.1}])])
    row = compare(df, "acc", "method", n_resamples=FAST).iloc[0]
    assert row["paired_n"] == 4
    shared_a, shared_b = a[2:6], b[0:4]
    assert row["paired_t_p"] == pytest.approx(st.ttest_rel(shared_a, shared_b).pvalue)
    assert row["wilcoxon_p"] == pytest.approx(st.wilcoxon(shared_a, shared_b).pvalue)
    assert row["paired_diff"] == pytest.approx(np.mean(shared_a - shared_b))
    assert row["n_a"] == 6 and row["n_b"] == 6 and row["n_diverged_b"] == 1
    unpaired = compare(df, "acc", "method", pair_on=None, n_resamples=FAST).iloc[0]
    assert unpaired["paired_n"] == 0 and np.isnan(unpaired["paired_t_p"])


def test_correction_spans_all_rows_and_is_named():
    rng = np.random.default_rng(3)
    rows = [
        {"dataset": ds, "method": m, "seed": s, "status": "finished", "acc": rng.normal(0.9 + 0.004 * i, 0.01)}
        for ds in ("mnist", "fmnist")
        for i, m in enumerate(("adam", "rbd", "sgd"))
        for s in range(6)
    ]
    df = pd.DataFrame(rows)
    for correction in ("holm", "fdr_bh"):
        out = compare(df, "acc", "method", within=["dataset"], correction=correction, n_resamples=FAST)
        assert len(out) == 6  # 3 pairs x 2 datasets, one family
        assert (out["correction"] == correction).all() and out.attrs["correction"] == correction
        for col in stats.COMPARE_P_COLUMNS:
            expected = multipletests(out[col].to_numpy(), method=correction)[1]
            np.testing.assert_allclose(out[f"{col}_adj"].to_numpy(), expected)
    assert set(stats.COMPARE_COLUMNS) <= set(out.columns)


def test_order_sets_arm_a_and_keeps_unlisted_arms():
    df = pd.concat([two_arms(A, B), two_arms(A[:3], B[:3]).assign(method="C")])
    out = compare(df, "acc", "method", order=["B"], n_resamples=FAST)
    assert list(zip(out["arm_a"], out["arm_b"])) == [("B", "A"), ("B", "C"), ("A", "C")]


def test_small_and_constant_arms_do_not_crash_or_warn(no_warnings):
    df = pd.concat(
        [
            two_arms([0.9], [0.8, 0.85]),
            two_arms([0.9, 0.9, 0.9], [0.8, 0.8, 0.8]).assign(method=lambda d: d["method"] + "const"),
        ]
    )
    out = compare(df, "acc", "method", n_resamples=FAST)
    one = out[(out["arm_a"] == "A") & (out["arm_b"] == "B")].iloc[0]
    assert one["n_a"] == 1 and np.isnan(one["welch_p"]) and np.isnan(one["bf_p"]) and np.isnan(one["hedges_g"])
    assert one["diff"] == pytest.approx(0.9 - 0.825)
    assert one["diff_boot_method"].startswith("none")
    const = out[(out["arm_a"] == "Aconst") & (out["arm_b"] == "Bconst")].iloc[0]
    assert const["diff"] == pytest.approx(0.1)
    assert np.isnan(const["hedges_g"]) and np.isnan(const["std_ratio"])
    assert const["diff_boot_ci_low"] == pytest.approx(0.1) and const["diff_boot_ci_high"] == pytest.approx(0.1)


def test_arm_with_only_failed_runs_is_shown():
    df = pd.concat([two_arms(A, B), pd.DataFrame([{"method": "C", "seed": 0, "status": "failed", "acc": np.nan}])])
    out = compare(df, "acc", "method", n_resamples=FAST)
    c = out[out["arm_b"] == "C"]
    assert len(c) == 2 and (c["n_b"] == 0).all() and (c["n_failed_b"] == 1).all()
    assert c["welch_p"].isna().all()


# --- variance study --------------------------------------------------------------------------


def test_variance_study_against_baseline():
    rng = np.random.default_rng(5)
    rows = [
        {"model": "resnet50", "method": m, "seed": s, "status": "finished", "acc": rng.normal(0.92, sd)}
        for m, sd in (("kaiming", 0.01), ("xavier", 0.002), ("orth", 0.02))
        for s in range(10)
    ]
    df = pd.DataFrame(rows)
    out = variance_study(df, "acc", "method", within=["model"], baseline="xavier")
    assert out["method"].tolist() == ["xavier", "kaiming", "orth"]  # baseline first
    assert (out["baseline"] == "xavier").all()
    base = df[df.method == "xavier"]["acc"].to_numpy()
    for _, row in out.iloc[1:].iterrows():
        x = df[df.method == row["method"]]["acc"].to_numpy()
        assert row["bf_p"] == pytest.approx(st.levene(x, base, center="median").pvalue)
        assert row["std"] == pytest.approx(x.std(ddof=1)) and row["max"] == pytest.approx(x.max())
        assert row["std_ratio"] == pytest.approx(x.std(ddof=1) / base.std(ddof=1))
    assert np.isnan(out.iloc[0]["bf_p"])
    np.testing.assert_allclose(out["bf_p_adj"].iloc[1:], multipletests(out["bf_p"].iloc[1:], method="holm")[1])
    default = variance_study(df, "acc", "method", within=["model"])
    assert default["baseline"].iloc[0] == "kaiming"  # first arm when none is named


def test_variance_study_missing_baseline_gives_nan_tests():
    out = variance_study(two_arms(A, B), "acc", "method", baseline="Z")
    assert out["bf_p"].isna().all() and len(out) == 2


def test_missing_column_is_a_clear_error():
    with pytest.raises(KeyError, match="accuracy"):
        compare(two_arms(A, B), "accuracy", "method")
