"""`seedbench decompose | power`: study-design commands over a store.

decompose: variance components (init / data order / augmentation / residual) of a crossed seed
design, per arm, with intervals, and each arm's change against the baseline arm.
power: seeds per arm needed to detect a mean difference or a std ratio, from pilot runs.

Register with ``seedbench.cli.studies.add_parsers(sub)`` next to the analysis commands.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd
from rich.console import Console

from seedbench.analysis.api import check_columns as _check
from seedbench.analysis.api import check_metric
from seedbench.analysis.api import columns as _columns
from seedbench.analysis.api import combined_arm as _with_arm
from seedbench.cli.analysis import open_store
from seedbench.errors import ConfigError, SeedbenchError

FORMATS = ("table", "markdown", "csv", "json")
_RENDER = {"table": "terminal", "markdown": "markdown", "csv": "csv", "json": "json"}


def _write(text: str, out: str | None) -> None:
    if out:
        from seedbench.cli.outputs import check_output

        check_output(out, {".txt", ".md", ".csv", ".json"}, "-o")
        Path(out).write_text(text)
        Console(stderr=True).print(f"wrote {out}")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _render(frame: pd.DataFrame, fmt: str, title: str) -> str:
    from seedbench.analysis.tables import render

    return render(frame, _RENDER[fmt], title=title)


def _runs(args: argparse.Namespace) -> pd.DataFrame:
    runs = open_store(args).runs(args.where)
    if runs.empty:
        raise SeedbenchError("the store holds no runs (matching --where); run `seedbench sweep` first")
    return runs


def _default_within(runs: pd.DataFrame, by: list[str]) -> list[str]:
    return [c for c in ("method", "model", "dataset") if c in runs.columns and c not in by]


def cmd_decompose(args: argparse.Namespace) -> int:
    from seedbench.analysis.study.variance import decompose

    runs = _runs(args)
    check_metric(runs, args.metric)
    by = _columns(args.by)
    within = _columns(args.within) if args.within is not None else _default_within(runs, by)
    _check(runs, within, "--within")
    frame, arm = _with_arm(runs, by) if by else (runs, None)
    factors = _columns(args.factors) or None
    result = decompose(frame, args.metric, arm, within, baseline=args.baseline, factors=factors, confidence=args.confidence)
    components, comparisons = result.components, result.comparisons
    if args.format == "json":
        payload = {
            "metric": args.metric,
            "by": arm,
            "within": within,
            "notes": result.notes,
            "components": json.loads(components.to_json(orient="records", double_precision=15)),
            "comparisons": json.loads(comparisons.to_json(orient="records", double_precision=15)),
        }
        _write(json.dumps(payload, indent=1), args.output)
        return 0
    if args.format == "csv":
        _write((comparisons if args.table == "comparisons" else components).to_csv(index=False), args.output)
        return 0
    keys = [*within, *([arm] if arm else [])]
    shown = components[[*keys, "component", "variance", "ci_low", "ci_high", "std", "std_ci_low", "std_ci_high", "share", "df", "design"]].copy()
    shown["share"] = shown["share"] * 100
    shown = shown.rename(columns={"share": "share_%", "ci_low": "var_ci_low", "ci_high": "var_ci_high"})
    conf = f"{args.confidence:.0%}"
    parts = [_render(shown, args.format, f"variance components of {args.metric} ({conf} MLS intervals; ANOVA/EMS estimates)")]
    if not comparisons.empty:
        cols = [
            *keys,
            "baseline",
            "component",
            "std",
            "std_baseline",
            "std_ratio",
            "std_ratio_ci_low",
            "std_ratio_ci_high",
            "var_diff",
            "var_diff_ci_low",
            "var_diff_ci_high",
        ]
        parts.append(_render(comparisons[cols], args.format, f"each arm vs the baseline arm ({conf} generalized confidence intervals)"))
        parts.append("\n".join(result.sentences(args.component)) + "\n")
    if result.notes:
        parts.append("notes: " + "; ".join(result.notes) + "\n")
    _write("\n".join(parts), args.output)
    return 0


def cmd_power(args: argparse.Namespace) -> int:
    from seedbench.analysis.study.power import power_table
    from seedbench.analysis.study.variance import numeric_metric

    runs = _runs(args)
    check_metric(runs, args.metric)
    numeric_metric(runs, args.metric)
    by = _columns(args.by)
    if not by:
        raise ConfigError("--by needs at least one arm column, e.g. --by method")
    within = _columns(args.within) if args.within is not None else [c for c in ("model", "dataset") if c in runs.columns and c not in by]
    _check(runs, within, "--within")
    frame, arm = _with_arm(runs, by)
    if not 0 < args.alpha < 1 or not 0 < args.power < 1:
        raise ConfigError(f"--alpha and --power must lie in (0, 1); got {args.alpha} and {args.power}")
    table = power_table(frame, args.metric, arm, within, effect=args.effect, std_ratio=args.std_ratio, alpha=args.alpha, power=args.power)
    if args.effect is not None:
        what = f"seeds per arm to detect a difference of {args.effect:g} in {args.metric}"
    elif args.std_ratio is not None:
        what = f"seeds per arm to detect a std ratio of {args.std_ratio:g} in {args.metric}"
    else:
        what = f"minimal detectable difference in {args.metric} at the pilot's seeds"
    title = f"{what} (alpha {args.alpha:g} two-sided, power {args.power:g}; pilot SD pooled over arms of {arm})"
    if args.format == "json":
        _write(json.dumps(json.loads(table.to_json(orient="records", double_precision=15)), indent=1), args.output)
    else:
        _write(_render(table, args.format, title), args.output)
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", help="results store directory (default: ./storage in the project)")
    p.add_argument("--where", help="SQL filter on the runs view, e.g. \"dataset = 'digits'\"")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.add_argument("-o", "--output", help="write to this file instead of the terminal")


def add_parsers(sub) -> None:
    """Add `decompose` and `power` to the seedbench sub-command parser."""
    p = sub.add_parser(
        "decompose",
        help="variance components of a crossed seed design (init / data order / augmentation / residual) with CIs",
        description="For runs of a crossed design (every init_seed with every data_seed, optionally every augment_seed), split the "
        "across-seed variance of --metric into components per arm (random-effects ANOVA, expected mean squares) with modified "
        "large-sample intervals, and say how each arm changes each component against the baseline arm (generalized intervals). "
        "A run's init/data/augment seed is its init_seed/data_seed/augment_seed, or its seed where that is not set.",
        epilog="examples:\n  seedbench decompose --metric test_acc --by init --within model,dataset\n"
        "  seedbench decompose --metric val_acc --by method --where \"dataset = 'digits'\" --format json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(p)
    p.add_argument("--metric", default="test_acc", help="numeric metric column (default: test_acc)")
    p.add_argument("--by", help="arm column(s) compared against each other (several: combined into one label)")
    p.add_argument("--within", help="group columns, one decomposition each (default: method,model,dataset minus --by)")
    p.add_argument("--baseline", help="the arm the others are compared with (default: the first in sorted order)")
    p.add_argument("--factors", help="seed factors to use (default: init,data,augment, those that vary)")
    p.add_argument("--component", default="init", help="the component the summary sentences are about (default: init)")
    p.add_argument("--confidence", type=float, default=0.95, help="interval level (default 0.95)")
    p.add_argument("--table", choices=["components", "comparisons"], default="components", help="which table --format csv writes")
    p.set_defaults(func=cmd_decompose)

    p = sub.add_parser(
        "power",
        help="seeds per arm needed to detect a mean difference or a std ratio, from pilot runs",
        description="From pilot runs (select them with --where), the pooled within-arm SD of --metric gives the seeds per arm a "
        "two-sided two-sample t-test needs to detect --effect (statsmodels TTestIndPower), also at the SD's 80%% upper confidence "
        "limit; --std-ratio gives the seeds for the F-test (analytic) and the Brown-Forsythe test (simulated). Without either: the "
        "minimal detectable difference at the pilot's n.",
        epilog='examples:\n  seedbench power --metric test_acc --by method --where "seed < 5" --effect 0.005\n'
        "  seedbench power --metric test_acc --by init --std-ratio 0.5",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(p)
    p.add_argument("--metric", default="test_acc")
    p.add_argument("--by", required=True, help="arm column(s), e.g. method")
    p.add_argument("--within", help="group columns, one answer each (default: model,dataset minus --by)")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--effect", type=float, help="the mean difference to detect, in metric units (0.005 = half an accuracy point)")
    target.add_argument("--std-ratio", type=float, help="the ratio of across-seed stds to detect, e.g. 0.5")
    p.add_argument("--alpha", type=float, default=0.05, help="two-sided significance level (default 0.05)")
    p.add_argument("--power", type=float, default=0.8, help="power (default 0.8)")
    p.set_defaults(func=cmd_power)
