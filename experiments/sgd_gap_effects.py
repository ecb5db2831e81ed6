"""Main effects of the SGD-gap design (experiments/sgd_gap.py), by least squares over all 40 runs.

`seedbench compare --by <factor> --unpaired` gives each main effect as a difference of two means of
20 runs, whose CI also carries the spread the other three factors add within each half. In a
balanced two-level design the least-squares fit of all factors at once gives the same point
estimates with the other factors' effects removed from the residual, so the intervals are the
design's own. The model has the four main effects, the three estimable two-factor interaction pairs
(AB = CD, AC = BD, AD = BC) and the seed as a block (every arm trains seeds 0-4 from the same
initial weights), which leaves 40 - 1 - 7 - 4 = 28 residual degrees of freedom.

    python experiments/sgd_gap_effects.py --store /work/sgd-gap-store [--plot docs/sgd-gap-effects.png]

Prints one markdown table per metric: effect = mean(high) - mean(low) in accuracy points, with its
95 % t interval, its p value, and that p value Holm-corrected over every term of every metric.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sgd_gap import FACTORS, HIGH, LOW  # noqa: E402

METRICS = ("val_acc", "best_val_acc", "val_acc_last10", "test_acc")
LETTERS = dict(zip(FACTORS, "ABCD", strict=True))
PAIRS = (("augment_clip", "augment_pad"), ("augment_clip", "val_split"), ("augment_clip", "lr"))
ALIASES = {("augment_clip", "augment_pad"): "AB = CD", ("augment_clip", "val_split"): "AC = BD", ("augment_clip", "lr"): "AD = BC"}


def coded(runs: pd.DataFrame) -> pd.DataFrame:
    """Each factor as -1 (today's value) / +1 (the candidate), checked against the design's levels."""
    out = pd.DataFrame(index=runs.index)
    for factor in FACTORS:
        values = runs[factor]
        if factor == "lr":
            low = np.isclose(values.astype(float), float(LOW[factor]))
            high = np.isclose(values.astype(float), float(HIGH[factor]))
        else:
            low = values.astype(str).str.lower() == str(LOW[factor]).lower()
            high = values.astype(str).str.lower() == str(HIGH[factor]).lower()
        if not (low | high).all():
            raise SystemExit(f"{factor}: values {sorted(set(values.astype(str)))} are not the design's levels {LOW[factor]!r}/{HIGH[factor]!r}")
        out[LETTERS[factor]] = np.where(high, 1.0, -1.0)
    return out


def effects(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One row per term: effect (high - low, in points), its 95 % CI and p, from one OLS fit."""
    import statsmodels.formula.api as smf

    frame = coded(runs)
    frame["y"] = runs[metric].astype(float) * 100
    frame["seed"] = runs["seed"].astype(str)
    # the letters are prefixed: a column named C would hide patsy's C() for the seed blocks
    frame = frame.rename(columns={k: f"f{k}" for k in "ABCD"})
    fit = smf.ols("y ~ fA + fB + fC + fD + fA:fB + fA:fC + fA:fD + C(seed)", data=frame).fit()
    ci = fit.conf_int(0.05)
    rows = []
    for factor in FACTORS:
        letter = LETTERS[factor]
        rows.append(_row(f"{letter} {factor} ({LOW[factor]} -> {HIGH[factor]})", f"f{letter}", fit, ci))
    for pair in PAIRS:
        term = ":".join(f"f{LETTERS[f]}" for f in pair)
        rows.append(_row(f"{ALIASES[pair]} (interaction pair)", term, fit, ci))
    out = pd.DataFrame(rows)
    out.attrs["residual_sd"] = float(np.sqrt(fit.scale))
    out.attrs["df_resid"] = int(fit.df_resid)
    return out


def _row(label: str, term: str, fit, ci) -> dict:
    # with -1/+1 coding the effect of a factor (mean at +1 minus mean at -1) is twice its coefficient
    return {"term": label, "effect": 2 * fit.params[term], "low": 2 * ci.loc[term, 0], "high": 2 * ci.loc[term, 1], "p": fit.pvalues[term]}


def cell_means(runs: pd.DataFrame) -> pd.DataFrame:
    keys = list(FACTORS)
    table = runs.groupby(keys, dropna=False)[list(METRICS)].agg(["mean", "std", "count"]).reset_index()
    return table


def markdown(table: pd.DataFrame) -> str:
    lines = ["| term | effect (points) | 95 % CI | p | p, Holm over every term and metric |", "|---|---|---|---|---|"]
    for row in table.itertuples():
        lines.append(f"| {row.term} | {row.effect:+.2f} | [{row.low:+.2f}, {row.high:+.2f}] | {row.p:.2g} | {row.p_holm:.2g} |")
    return "\n".join(lines)


def plot(tables: dict[str, pd.DataFrame], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(tables), figsize=(4.2 * len(tables), 3.6), sharey=True)
    for ax, (metric, table) in zip(np.atleast_1d(axes), tables.items(), strict=True):
        y = np.arange(len(table))[::-1]
        err = np.vstack([table["effect"] - table["low"], table["high"] - table["effect"]])
        ax.errorbar(table["effect"], y, xerr=err, fmt="o", color="tab:blue", capsize=3)
        ax.axvline(0, color="0.5", lw=0.8)
        ax.set_title(metric)
        ax.set_xlabel("effect, high - low (accuracy points)")
        ax.set_yticks(y)
        ax.set_yticklabels([t.split(" (")[0] for t in table["term"]])
    fig.suptitle("SGD on FC-FMNIST, 100 epochs: effects in the 2^(4-1) design (40 runs, 95 % CI)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", required=True, help="the store the design's sweeps wrote to")
    parser.add_argument("--plot", type=Path, help="also draw the effects with their CIs to this PNG")
    args = parser.parse_args(argv)

    from seedbench import Store

    runs = Store(args.store).runs("method = 'sgd' AND model = 'fc' AND dataset = 'fmnist' AND status = 'finished'")
    arms = runs.groupby(list(FACTORS), dropna=False).size()
    if len(arms) != 8 or arms.nunique() != 1:
        raise SystemExit(f"expected the 8 design points with the same number of seeds each; found:\n{arms}")
    print(f"{len(runs)} runs, 8 design points x {arms.iloc[0]} seeds\n")
    from statsmodels.stats.multitest import multipletests

    tables = {metric: effects(runs, metric) for metric in METRICS}
    # every term of every metric is one look at the same 40 runs: correct across all of them
    pooled = np.concatenate([t["p"].to_numpy() for t in tables.values()])
    adjusted = iter(multipletests(pooled, method="holm")[1])
    for table in tables.values():
        table["p_holm"] = [next(adjusted) for _ in range(len(table))]
    for metric, table in tables.items():
        print(f"### {metric} (residual sd {table.attrs['residual_sd']:.2f} points, {table.attrs['df_resid']} df)\n")
        print(markdown(table), "\n")
    if args.plot:
        plot(tables, args.plot)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
