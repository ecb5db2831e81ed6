"""Coverage of the variance-decomposition intervals on synthetic crossed designs with known components.

For each design, many data sets are drawn from a random-effects model with known standard
deviations; the 95% modified large-sample (MLS) interval of every component, and the 95%
generalized interval of an arm-vs-baseline change of the init component, should contain the
true value in ~95% of data sets. Prints a Markdown table (coverage, Monte Carlo standard error,
and how often the interval missed low/high).

    python bench/bench_study_variance.py [--sims 5000] [--compare-sims 1000] [--seed 0]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from seedbench.analysis.study.variance import (
    RESIDUAL,
    Design,
    compare_designs,
    component_name,
    ems_coefficients,
    mean_squares,
    mls_interval,
    simulate_cube,
)

NAMES = ("init", "data", "augment")
DESIGNS = [
    # (label, levels per factor, runs per cell, true SDs per term)
    ("3 init x 3 data", (3, 3), 1, {(0,): 1.0, (1,): 0.5, RESIDUAL: 0.7}),
    ("5 init x 5 data", (5, 5), 1, {(0,): 1.0, (1,): 0.5, RESIDUAL: 0.7}),
    ("10 init x 10 data", (10, 10), 1, {(0,): 1.0, (1,): 0.5, RESIDUAL: 0.7}),
    ("10 init x 10 data, small init", (10, 10), 1, {(0,): 0.2, (1,): 0.5, RESIDUAL: 1.0}),
    ("5 init x 4 data x 3 runs", (5, 4), 3, {(0,): 1.0, (1,): 0.5, (0, 1): 0.4, RESIDUAL: 0.7}),
    ("5 init x 4 data x 4 augment", (5, 4, 4), 1, {(0,): 0.8, (1,): 0.5, (2,): 0.6, (0, 1): 0.3, (0, 2): 0.3, (1, 2): 0.3, RESIDUAL: 0.7}),
]
COMPARISONS = [
    # (label, init levels, data levels, baseline init SD, arm init SD)
    ("3 x 3, init SD 1.0 -> 0.5", 3, 3, 1.0, 0.5),
    ("5 x 5, init SD 1.0 -> 0.5", 5, 5, 1.0, 0.5),
    ("10 x 10, init SD 1.0 -> 0.5", 10, 10, 1.0, 0.5),
    ("5 x 5, no change (0.5 -> 0.5)", 5, 5, 0.5, 0.5),
]


def component_coverage(sizes, r, sds, n_sims, rng) -> list[tuple[str, float, float, float]]:
    cubes = simulate_cube(sizes, sds, rng, r=r, n_sims=n_sims)
    ms, df = mean_squares(cubes, k=len(sizes))
    full = tuple(range(len(sizes)))
    out = []
    for term, combo in ems_coefficients(sizes, r).items():
        truth = sds[RESIDUAL] ** 2 + (sds.get(full, 0.0) ** 2 if r == 1 else 0.0) if term == RESIDUAL else sds.get(term, 0.0) ** 2
        keys = list(combo)
        low, high = mls_interval([combo[k] for k in keys], [ms[k] for k in keys], [df[k] for k in keys])
        low, high = np.maximum(low, 0), np.maximum(high, 0)
        out.append(
            (
                component_name(term, NAMES[: len(sizes)], r),
                float(np.mean((low <= truth) & (truth <= high))),
                float(np.mean(low > truth)),
                float(np.mean(high < truth)),
            )
        )
    return out


def comparison_coverage(a, b, sd_base, sd_arm, n_sims, rng) -> tuple[float, float]:
    hits_ratio = hits_diff = 0
    levels = {"init": list(range(a)), "data": list(range(b))}
    for i in range(n_sims):
        data = rng.normal(0, 0.5, (1, b, 1))  # both arms share their data-order seeds
        base = rng.normal(0, sd_base, (a, 1, 1)) + data + rng.normal(0, 0.7, (a, b, 1))
        arm = rng.normal(0, sd_arm, (a, 1, 1)) + data + rng.normal(0, 0.7, (a, b, 1))
        row = compare_designs(Design(("init", "data"), levels, arm), Design(("init", "data"), levels, base), n_draws=5000, seed=i)
        row = row.set_index("component").loc["init"]
        hits_ratio += row["std_ratio_ci_low"] <= sd_arm / sd_base <= row["std_ratio_ci_high"]
        hits_diff += row["var_diff_ci_low"] <= sd_arm**2 - sd_base**2 <= row["var_diff_ci_high"]
    return hits_ratio / n_sims, hits_diff / n_sims


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=5000, help="data sets per design for the component intervals")
    parser.add_argument("--compare-sims", type=int, default=1000, help="data sets per scenario for the arm comparison")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    se = math.sqrt(0.95 * 0.05 / args.sims)
    print(f"MLS 95% intervals of variance components, {args.sims} data sets per design (MC SE of a coverage {se:.3f})\n")
    print("| design | component | coverage | missed low | missed high |")
    print("|---|---|---:|---:|---:|")
    for label, sizes, r, sds in DESIGNS:
        for name, cov, miss_low, miss_high in component_coverage(sizes, r, sds, args.sims, rng):
            print(f"| {label} | {name} | {cov:.3f} | {miss_low:.3f} | {miss_high:.3f} |")
    se = math.sqrt(0.95 * 0.05 / args.compare_sims)
    print(f"\nGeneralized 95% intervals of an arm's init change, {args.compare_sims} data sets per scenario (MC SE {se:.3f})\n")
    print("| scenario | std ratio coverage | variance change coverage |")
    print("|---|---:|---:|")
    for label, a, b, sd_base, sd_arm in COMPARISONS:
        ratio, diff = comparison_coverage(a, b, sd_base, sd_arm, args.compare_sims, rng)
        print(f"| {label} | {ratio:.3f} | {diff:.3f} |")
    print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
