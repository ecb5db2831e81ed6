"""Simulated sequential seed studies: type-I error under H0, power and seeds used under H1, vs a fixed design.

Every study runs seedbench.analysis.study.sequential.run_until_decided on normal "accuracies" (SD 0.01),
looking after every `step` seeds up to `max_seeds` per arm, every pair of arms tested with Welch z
and the group-sequential Holm procedure. H1: one arm's mean is higher by `d` SDs; d = 0.91 is the
effect a fixed design with max_seeds = 20 per arm detects with 80% power (two-sided t-test, alpha
0.05), so the sequential design is compared with the fixed design it would replace.

    python bench/bench_study_sequential.py [--studies 2000] [--max-seeds 20] [--step 4] [--d 0.91] [--seed 0] [--margin M]

--margin M (in SDs) also lets a pair stop as "equivalent within +-M" (repeated confidence interval);
the table then shows how often each pair was declared equivalent.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.power import TTestIndPower

from seedbench.analysis.study.sequential import run_until_decided

SD = 0.01


def make_round(means: dict[str, float], rng: np.random.Generator):
    arms = list(means)

    def run_round(seeds: list[int]) -> pd.DataFrame:
        n = len(seeds)
        return pd.DataFrame(
            {
                "method": np.repeat(arms, n),
                "seed": np.tile(seeds, len(arms)),
                "status": "finished",
                "acc": np.concatenate([rng.normal(means[a], SD, n) for a in arms]),
            }
        )

    return run_round


def scenario(means: dict[str, float], args, spending: str, rng: np.random.Generator) -> dict[str, float]:
    """Rates over args.studies studies: any false rejection, rejection per pair, seeds per arm used."""
    arms = list(means)
    false_any, used, rejected, equivalent = 0, [], {}, {}
    margin = args.margin * SD if args.margin is not None else None
    for _ in range(args.studies):
        result = run_until_decided(
            make_round(means, rng), arms, "acc", 0.05, args.max_seeds, args.step, spending=spending, adjusted=False, margin=margin
        )
        used.append(result.seeds_used)
        pairs = result.pairs
        for _, row in pairs.iterrows():
            key = f"{row['arm_a']}-{row['arm_b']}"
            rejected[key] = rejected.get(key, 0) + bool(row["rejected"])
            equivalent[key] = equivalent.get(key, 0) + bool(row["equivalent"])
        null = pairs[[means[a] == means[b] for a, b in zip(pairs["arm_a"], pairs["arm_b"])]]
        false_any += bool(null["rejected"].any())
    out = {"fwer": false_any / args.studies, "mean_seeds": float(np.mean(used)), "p90_seeds": float(np.percentile(used, 90))}
    out.update({f"reject {k}": v / args.studies for k, v in rejected.items()})
    out.update({f"equivalent {k}": v / args.studies for k, v in equivalent.items()})
    return out


def fixed_power(d: float, n: int, studies: int, rng: np.random.Generator) -> float:
    a = rng.normal(0.0, 1.0, (studies, n))
    b = rng.normal(d, 1.0, (studies, n))
    return float(np.mean(stats.ttest_ind(a, b, axis=1, equal_var=False).pvalue < 0.05))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=2000)
    parser.add_argument("--max-seeds", type=int, default=20)
    parser.add_argument("--step", type=int, default=4)
    parser.add_argument("--d", type=float, default=0.91, help="H1 effect in SDs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--margin", type=float, help="equivalence margin in SDs (default: none, efficacy boundaries only)")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    shift = args.d * SD
    se = math.sqrt(0.05 * 0.95 / args.studies)
    looks = list(range(args.step, args.max_seeds, args.step)) + [args.max_seeds]
    print(
        f"{args.studies} simulated studies per row; looks at {looks} seeds per arm; MC SE of a 5% rate {se:.4f}"
        + (f"; equivalence margin +-{args.margin} SD" if args.margin is not None else "")
    )
    analytic = TTestIndPower().power(effect_size=args.d, nobs1=args.max_seeds, ratio=1.0, alpha=0.05)
    print(
        f"fixed design, {args.max_seeds} seeds per arm, d = {args.d}: power {analytic:.3f} (t-test, analytic), "
        f"{fixed_power(args.d, args.max_seeds, args.studies, rng):.3f} (Welch, simulated)\n"
    )
    extra = " declared equivalent per pair |" if args.margin is not None else ""
    print(
        f"| arms (means in SDs) | spending | family-wise false rejections | rejections per pair | mean seeds per arm | 90th pct | runs saved vs fixed |{extra}"
    )
    print("|---|---|---:|---|---:|---:|---:|" + ("---|" if extra else ""))
    rows = [
        ("2 arms, H0 (0, 0)", {"a": 0.9, "b": 0.9}),
        (f"2 arms, H1 (0, {args.d})", {"a": 0.9, "b": 0.9 + shift}),
        ("3 arms, H0 (0, 0, 0)", {"a": 0.9, "b": 0.9, "c": 0.9}),
        (f"3 arms (0, 0, {args.d})", {"a": 0.9, "b": 0.9, "c": 0.9 + shift}),
    ]
    for spending in ("obf", "pocock"):
        for label, means in rows:
            r = scenario(means, args, spending, rng)
            per_pair = ", ".join(f"{k} {v:.3f}" for k, v in r.items() if k.startswith("reject ")).replace("reject ", "")
            saved = 1 - r["mean_seeds"] / args.max_seeds
            equiv = ", ".join(f"{k} {v:.3f}" for k, v in r.items() if k.startswith("equivalent ")).replace("equivalent ", "")
            print(
                f"| {label} | {spending} | {r['fwer']:.4f} | {per_pair} | {r['mean_seeds']:.2f} | {r['p90_seeds']:.0f} | {saved:.1%} |"
                + (f" {equiv} |" if extra else "")
            )
    print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
