"""`seedbench report | compare | plot`: statistics over a store, from the command line.

Each command reads the store's `runs` (and for curves `epochs`) view through DuckDB, optionally
filtered with `--where` (SQL), and hands the frame to seedbench.analysis.stats / tables / plots.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
from rich.console import Console

from seedbench.errors import ConfigError, SeedbenchError

FORMATS = ("terminal", "markdown", "csv", "json", "latex")
ARM = "arm"


def _store(args: argparse.Namespace):
    from seedbench.sweep.runners.store_context import store_dir
    from seedbench.store import Store

    directory = store_dir(args.store)
    if not directory.is_dir():
        raise SeedbenchError(f"store {directory} does not exist; run `seedbench sweep` first or pass --store DIR")
    return Store(directory, warn=None)


def _frame(args: argparse.Namespace, view: str = "runs") -> pd.DataFrame:
    store = _store(args)
    where = f" WHERE {args.where}" if getattr(args, "where", None) else ""
    if view == "epochs":
        # epochs carry only run_id: join the run's config so --by/--within/--where work on them too
        sql = f"SELECT e.*, r.* EXCLUDE (run_id) FROM epochs e JOIN (SELECT * FROM runs{where}) r USING (run_id)"
    else:
        sql = f"SELECT * FROM runs{where}"
    frame = _label_variants(store.query(sql))
    if store.skipped:
        first = store.skipped[0]
        Console(stderr=True).print(f"[yellow]warning:[/] skipped {len(store.skipped)} unreadable run folder(s), e.g. {first.path}: {first.reason}", highlight=False)
    return frame


def _label_variants(frame: pd.DataFrame) -> pd.DataFrame:
    """RBD with structured bases is its own arm: 'rbd+hadamard' rather than mixed into 'rbd'."""
    if "bases" in frame.columns and "method" in frame.columns:
        hadamard = frame["bases"].astype("string").eq("hadamard").fillna(False)
        if hadamard.any():
            frame = frame.copy()
            frame.loc[hadamard, "method"] = frame.loc[hadamard, "method"].astype(str) + "+hadamard"
    return frame


def _columns(text: str | None) -> list[str]:
    return [c.strip() for c in (text or "").split(",") if c.strip()]


def _with_arm(df: pd.DataFrame, by: list[str]) -> tuple[pd.DataFrame, str]:
    """Several --by columns become one arm label ("init=orthogonal rewire=True")."""
    missing = [c for c in by if c not in df.columns]
    if missing:
        raise ConfigError(f"unknown column(s) {missing} for --by; runs has: {', '.join(map(str, df.columns))}")
    if len(by) == 1:
        return df, by[0]
    df = df.copy()
    df[ARM] = df[by].apply(_arm_label, axis=1)
    return df, ARM


def _arm_label(row: pd.Series) -> str:
    """Flags read as '+rewire', other columns as 'init=orthogonal'; an arm with no flag set is 'base'."""
    parts = []
    for key, value in row.items():
        if isinstance(value, (bool,)) or str(value) in ("True", "False"):
            if str(value) == "True":
                parts.append(f"+{key}")
        else:
            parts.append(f"{key}={value}")
    return " ".join(parts) or "base"


def _check(df: pd.DataFrame, columns: list[str], flag: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ConfigError(f"unknown column(s) {missing} for {flag}; runs has: {', '.join(map(str, df.columns))}")


def _emit(frame: pd.DataFrame, fmt: str, title: str, out: str | None) -> None:
    from seedbench.analysis.tables import render

    # on a real terminal rich fits the table to the window; piped output gets the full-width text
    live = fmt == "terminal" and not out and sys.stdout.isatty()
    text = render(frame, fmt, title=title, console=Console() if live else None)
    if out:
        Path(out).write_text(text)
        Console(stderr=True).print(f"wrote {out}")
    elif not live:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def cmd_report(args: argparse.Namespace) -> int:
    from seedbench.analysis.report import summary_table
    from seedbench.analysis.stats import variance_study
    from seedbench.analysis.tables import table1, variance_table

    if args.html:
        return _report_html(args)
    runs = _frame(args)
    if runs.empty:
        raise SeedbenchError("the store holds no runs (matching --where); run `seedbench sweep` first")
    metric = args.metric
    _check(runs, [metric], "--metric")
    if args.study == "variance":
        by = _columns(args.by) or ["init", "stabilize", "rewire"]
        within = _columns(args.within) or ["method", "model", "dataset"]
        _check(runs, within, "--within")
        frame, arm = _with_arm(runs, by)
        baseline = args.baseline_arm or ("base" if "base" in set(frame[arm].astype(str)) else None)
        study = variance_study(frame, metric, arm, within, baseline=baseline, correction=args.correction)
        result = variance_table(study, by=arm, scale=100.0)
        _emit(result, args.format, f"variance study: {metric} (%) by {', '.join(by)}; Brown-Forsythe vs baseline, {args.correction}-corrected", args.output)
    elif args.baseline:
        if args.baseline not in set(runs["method"].astype(str)):
            raise ConfigError(f"baseline method {args.baseline!r} has no runs; methods in the store: {', '.join(sorted(set(runs['method'].astype(str))))}")
        result = table1(runs, metric, args.baseline, scale=100.0)
        _emit(result, args.format, f"{metric} (%), mean +- std over seeds (ratio to {args.baseline})", args.output)
    else:
        _emit(summary_table(runs), args.format, "seedbench report: accuracy %, mean +- std over finished seeds", args.output)
    return 0


def _report_html(args: argparse.Namespace) -> int:
    """`report --html FILE`: the output path is checked before the store is read or anything computed."""
    from seedbench.analysis.html import build_report, check_output_path

    from seedbench.sweep.runners.store_context import store_dir

    path = check_output_path(args.html)
    runs = _frame(args)
    if runs.empty:
        raise SeedbenchError("the store holds no runs (matching --where); run `seedbench sweep` first")
    _check(runs, [args.metric], "--metric")
    by = _columns(args.by) or ["method"]
    tasks = _columns(args.within) if args.within is not None else [c for c in ("model", "dataset") if c not in by]
    _check(runs, tasks, "--within")
    frame, arm = _with_arm(runs, by)
    html = build_report(frame, args.metric, arm, tasks, store_dir=store_dir(args.store), where=args.where,
                        baseline=args.baseline, correction=args.correction, argv=["seedbench", *sys.argv[1:]])
    path.write_text(html, encoding="utf-8")
    Console(stderr=True).print(f"wrote {path}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from seedbench.analysis.stats import compare

    runs = _frame(args)
    if runs.empty:
        raise SeedbenchError("the store holds no runs (matching --where); run `seedbench sweep` first")
    _check(runs, [args.metric], "--metric")
    within = _columns(args.within) if args.within is not None else [c for c in ("model", "dataset") if c not in _columns(args.by)]
    _check(runs, within, "--within")
    frame, arm = _with_arm(runs, _columns(args.by))
    pair_on = None if args.unpaired else (args.pair_on or _pair_key(frame))
    result = compare(frame, args.metric, arm, within=within, pair_on=pair_on, correction=args.correction)
    result["mde"] = _mde(result)
    title = f"{args.metric}: pairwise comparisons by {args.by} (p-values {args.correction}-corrected across all rows; mde = smallest difference detectable at 80% power, alpha 0.05, at these n)"
    if args.equivalence is not None:
        from seedbench.analysis.aggregate import equivalence

        tost = equivalence(frame, args.metric, arm, within, margin=args.equivalence, correction=args.correction)
        result = result.merge(tost.drop(columns=["margin"]), on=[*within, "arm_a", "arm_b"], how="left", validate="one_to_one")
        title += f"; TOST equivalence within +-{args.equivalence:g}, {args.correction}-corrected"
    if args.format == "terminal" and not args.all_columns:
        keep = [*within, "arm_a", "arm_b", "n_a", "n_b", "mean_a", "mean_b", "diff", "diff_ci_low", "diff_ci_high", "mde",
                "welch_p_adj", "mwu_p_adj", "p_a_gt_b", "std_ratio", "bf_p_adj", "hedges_g", "paired_n", "paired_t_p_adj", "wilcoxon_p_adj",
                "tost_p_adj", "equivalent"]
        result = result[[c for c in keep if c in result.columns]]
    _emit(result, args.format, title, args.output)
    return 0


def _mde(result: pd.DataFrame) -> list[float]:
    """Minimal detectable |difference| per row at its n and pooled SD (two-sided t-test, alpha 0.05, power 0.8).

    Shown so that a non-significant difference reads as "smaller than about mde, or not detectable
    with these seeds" rather than "no difference".
    """
    import math

    from seedbench.analysis.power import minimal_detectable_effect

    out = []
    for n_a, n_b, s_a, s_b in zip(result["n_a"], result["n_b"], result["std_a"], result["std_b"]):
        if n_a < 2 or n_b < 2 or math.isnan(s_a) or math.isnan(s_b):
            out.append(math.nan)
            continue
        sd = math.sqrt(((n_a - 1) * s_a**2 + (n_b - 1) * s_b**2) / (n_a + n_b - 2))
        out.append(minimal_detectable_effect(int(n_a), int(n_b), sd))
    return out


def _pair_key(frame: pd.DataFrame) -> str:
    """Arms are paired by the seed that varies: init_seed in a vary-only-the-init study, else seed."""
    if "init_seed" in frame.columns and frame["init_seed"].notna().all() and frame["init_seed"].nunique() > 1:
        return "init_seed"
    return "seed"


def cmd_plot(args: argparse.Namespace) -> int:
    from seedbench.analysis.plots import output_format, plot_cd, plot_curves, plot_distribution, plot_profile

    try:
        output_format(args.output)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    within = _columns(args.within)
    if args.kind in ("profile", "cd"):
        runs = _frame(args)
        if runs.empty:
            raise SeedbenchError("no runs to plot (matching --where)")
        by = _columns(args.by)
        tasks = within or [c for c in ("model", "dataset") if c not in by]
        _check(runs, [args.metric, *tasks], "--metric/--within")
        frame, arm = _with_arm(runs, by)
        draw = plot_profile if args.kind == "profile" else plot_cd
        path = draw(frame, args.metric, arm, args.output, tasks=tasks)
    elif args.kind == "curve":
        epochs = _frame(args, "epochs")
        if epochs.empty:
            raise SeedbenchError("no per-epoch records to plot (matching --where)")
        _check(epochs, [args.metric, *within], "--metric/--within")
        frame, arm = _with_arm(epochs, _columns(args.by))
        path = plot_curves(frame, args.metric, arm, args.output, within=within)
    else:
        runs = _frame(args)
        if runs.empty:
            raise SeedbenchError("no runs to plot (matching --where)")
        _check(runs, [args.metric, *within], "--metric/--within")
        frame, arm = _with_arm(runs, _columns(args.by))
        arms = sorted(set(frame[arm].astype(str)))
        order = ["base", *[a for a in arms if a != "base"]] if "base" in arms else None
        path = plot_distribution(frame, args.metric, arm, args.kind, args.output, within=within, order=order)
    Console(stderr=True).print(f"wrote {path}")
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", help="results store directory (default: ./storage in the project)")
    p.add_argument("--where", help="SQL filter on the runs view, e.g. \"dataset = 'digits' AND epochs = 10\"")


def add_parsers(sub) -> None:
    p = sub.add_parser(
        "report", help="summarise a store: the thin table, Table-1 layout (--baseline) or a variance study",
        description="Without options: one row per method x model x dataset (n, diverged, failed, mean +- std of val/test accuracy). "
        "--baseline METHOD: the random-bases Table 1 layout (methods as columns, 'mean +- std (ratio to baseline)'). "
        "--study variance: per arm mean, std, min, max and the Brown-Forsythe test against the baseline arm, corrected.",
        epilog="examples:\n  seedbench report\n  seedbench report --baseline sgd --metric val_acc --format latex\n"
        "  seedbench report --html study.html --metric test_acc --where \"dataset = 'digits'\"\n"
        "  seedbench report --study variance --by init,stabilize,rewire --within model,dataset --metric test_acc",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(p)
    p.add_argument("--baseline", help="baseline method for the Table-1 layout, e.g. sgd")
    p.add_argument("--study", choices=["variance"], help="a variance-study table instead")
    p.add_argument("--metric", default="val_acc", help="metric column (default: val_acc, as the published Table 1)")
    p.add_argument("--by", help="arm column(s) for --study variance (default: init,stabilize,rewire)")
    p.add_argument("--within", help="group columns for --study variance (default: method,model,dataset)")
    p.add_argument("--baseline-arm", help="the arm the variance tests compare against (default: the first arm)")
    p.add_argument("--correction", default="holm", help="multiple-comparison correction: holm (default), fdr_bh, bonferroni, ...")
    p.add_argument("--format", choices=FORMATS, default="terminal")
    p.add_argument("-o", "--output", help="write the table to this file instead of the terminal")
    p.add_argument("--html", metavar="FILE", help="write one self-contained HTML study report (tables, corrected comparisons, "
                   "embedded plots, variance decomposition where the design allows, provenance); --by sets the arms (default method), "
                   "--within the tasks (default model,dataset)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "compare", help="every pair of arms: difference with CI, Welch, Mann-Whitney, variance tests, Hedges' g",
        description="For every pair of arms (values of --by) within each group (--within): difference of means with a CI, "
        "Welch's t-test, Mann-Whitney U with P(A>B), Brown-Forsythe and Levene tests with a bootstrap CI of the std ratio, "
        "Hedges' g, and - when the arms share seeds - paired t and Wilcoxon tests. p-values are corrected across all rows.",
        epilog="examples:\n  seedbench compare --metric test_acc --by method\n  seedbench compare --metric test_acc --by init --within model,dataset --correction fdr_bh",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(p)
    p.add_argument("--metric", default="test_acc")
    p.add_argument("--by", required=True, help="arm column(s): method, init, model, ... (several: combined into one label)")
    p.add_argument("--within", help="group columns (default: model,dataset minus the --by columns)")
    p.add_argument("--correction", default="holm", help="holm (default), fdr_bh, bonferroni, ... (statsmodels names)")
    p.add_argument("--unpaired", action="store_true", help="skip the paired tests even where arms share seeds")
    p.add_argument("--pair-on", help="column that pairs runs across arms (default: init_seed when the study varies only it, else seed)")
    p.add_argument("--all-columns", action="store_true", help="show every statistic in the terminal table")
    p.add_argument("--equivalence", type=float, metavar="MARGIN", help="also test equivalence within +-MARGIN (metric units) by TOST, corrected like the rest")
    p.add_argument("--format", choices=FORMATS, default="terminal")
    p.add_argument("-o", "--output", help="write the table to this file")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser(
        "plot", help="across-seed distributions per arm, or learning curves with CI bands",
        description="box/violin/strip/ecdf: one point per seed per arm; curve: mean per epoch with a 95%% t-interval band over seeds; "
        "profile: fraction of runs above each threshold, over tasks, with stratified-bootstrap bands; cd: Demsar's critical-difference "
        "diagram (Friedman test, Nemenyi CD).",
        epilog="examples:\n  seedbench plot --kind box --metric test_acc --by method --within model -o acc.png\n"
        "  seedbench plot --kind curve --metric val_acc --by model -o curves.svg",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(p)
    p.add_argument("--kind", choices=["box", "violin", "strip", "ecdf", "curve", "profile", "cd"], default="box",
                   help="profile: performance profile over tasks (--within = task columns, default model,dataset); "
                   "cd: critical-difference diagram of average ranks (>= 3 arms on >= 3 tasks)")
    p.add_argument("--metric", default="test_acc")
    p.add_argument("--by", default="method", help="arm column(s) (default: method)")
    p.add_argument("--within", help="one panel per value of these columns")
    p.add_argument("-o", "--output", required=True, help="output file: .png or .svg")
    p.set_defaults(func=cmd_plot)
