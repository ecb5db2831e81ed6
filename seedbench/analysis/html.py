"""One self-contained HTML study report: tables, corrected comparisons, plots, variance decomposition, provenance.

A study is only as credible as its write-up lets a reader check it. The report is one file that
opens anywhere, offline, years later: CSS inline, plots embedded as base64 PNG, no script, no
external URL. It says which corrections were applied (by name), which runs did not finish, and
exactly how the numbers were produced (the sweep commands recorded in the store, package
versions, seeds, the project's git commit).
"""

from __future__ import annotations

import base64
import datetime
import html
import importlib.metadata
import json
import platform
import shlex
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from seedbench.errors import SeedbenchError

EXTENSIONS = (".html", ".htm")
PACKAGES = ("seedbench", "numpy", "scipy", "statsmodels", "pandas", "matplotlib", "duckdb", "pyarrow", "torch", "machinable", "ray")
N_RESAMPLES = 2000
CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1150px; color: #1d1d1f; line-height: 1.45; padding: 0 1em; }
h1 { font-size: 1.7em; margin-bottom: 0.2em; } h2 { border-bottom: 2px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }
h3 { margin-bottom: 0.3em; } .sub { color: #666; margin-top: 0; }
.scroll { overflow-x: auto; margin: 0.5em 0 1em 0; }
table { border-collapse: collapse; font-size: 0.86em; }
th, td { border: 1px solid #d0d0d0; padding: 3px 7px; text-align: right; white-space: nowrap; }
th { background: #f2f2f5; } tbody tr:nth-child(even) { background: #fafafa; }
td:first-child, th:first-child { text-align: left; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
.note { background: #fff8e1; border-left: 4px solid #f0c040; padding: 0.4em 0.8em; margin: 0.6em 0; }
code, pre { background: #f4f4f6; padding: 1px 4px; border-radius: 3px; font-size: 0.9em; }
pre { padding: 0.6em; overflow-x: auto; white-space: pre-wrap; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; } dt { font-weight: 600; } dd { margin: 0; }
"""


# --------------------------------------------------------------------------------------------
# output path


# --------------------------------------------------------------------------------------------
# provenance


def _project_root() -> Path:
    return Path(__file__).resolve().parents[2]


def git_commit(root: Path | None = None) -> str:
    """'<sha>' or '<sha> (uncommitted changes)', or why it is unknown."""
    root = root or _project_root()
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return "unknown (not a git checkout)"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown (git not available)"
    return sha.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


def package_versions(names: Sequence[str] = PACKAGES) -> dict[str, str]:
    """Installed versions, read from package metadata (nothing is imported)."""
    out = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def seed_ranges(seeds: Sequence[Any]) -> str:
    """[0, 1, 2, 5, 7, 8] -> '0-2, 5, 7-8'."""
    values = sorted({int(s) for s in seeds if pd.notna(s)})
    if not values:
        return "-"
    parts, start, prev = [], values[0], values[0]
    for v in values[1:] + [None]:
        if v is not None and v == prev + 1:
            prev = v
            continue
        parts.append(f"{start}-{prev}" if prev > start else str(start))
        if v is not None:
            start = prev = v
    return ", ".join(parts)


def sweep_records(store_dir: Path | None) -> list[dict[str, Any]]:
    """The sweeps a store recorded (<store>/sweeps/*.json): command line, engine, dates, grid."""
    if store_dir is None or not (Path(store_dir) / "sweeps").is_dir():
        return []
    out = []
    for path in sorted((Path(store_dir) / "sweeps").glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            out.append({"id": path.stem, "command": "(unreadable sweep record)"})
            continue
        argv = record.get("argv")
        out.append(
            {
                "id": record.get("id", path.stem),
                "command": "seedbench " + shlex.join(argv) if argv else "(command not recorded)",
                "engine": record.get("engine"),
                "created": _when(record.get("created_at")),
                "updated": _when(record.get("updated_at")),
                "cells": len(record.get("cells", [])),
                "methods": ", ".join(map(str, record.get("methods", []))),
                "models": ", ".join(map(str, record.get("models", []))),
                "datasets": ", ".join(map(str, record.get("datasets", []))),
                "seeds": seed_ranges(record.get("seeds", [])),
            }
        )
    return out


def _when(ts: Any) -> str:
    try:
        return datetime.datetime.fromtimestamp(float(ts)).strftime("%Y-%m-%d %H:%M")
    except (TypeError, ValueError, OverflowError, OSError):
        return "-"


# --------------------------------------------------------------------------------------------
# HTML pieces


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _fmt(x: Any) -> str:
    if isinstance(x, (float, np.floating)):
        return "-" if np.isnan(x) else f"{x:.4g}"
    return str(x)


def table_html(df: pd.DataFrame, caption: str | None = None) -> str:
    """A DataFrame as an escaped HTML table; floats to 4 significant digits, NaN as '-'."""
    body = df.to_html(index=False, na_rep="-", float_format=lambda x: f"{x:.4g}", escape=True, border=0, formatters=None)
    cap = f"<p class='sub'>{_e(caption)}</p>" if caption else ""
    return f"{cap}<div class='scroll'>{body}</div>"


def image_html(path: Path, caption: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f"<figure><img alt='{_e(caption)}' src='data:image/png;base64,{data}'><figcaption>{_e(caption)}</figcaption></figure>"


def _note(text: str) -> str:
    return f"<p class='note'>{_e(text)}</p>"


def _section(title: str, body: str, anchor: str) -> str:
    return f"<section id='{anchor}'><h2>{_e(title)}</h2>{body}</section>"


def _attempt(make: Callable[[], str], what: str) -> str:
    """A section body, or a note saying why it is missing (a user-fixable problem is not a crash)."""
    try:
        return make()
    except SeedbenchError as exc:
        return _note(f"{what} not shown: {exc}")


# --------------------------------------------------------------------------------------------
# the report


def build_report(
    runs: pd.DataFrame,
    metric: str,
    by: str,
    tasks: Sequence[str] = ("model", "dataset"),
    *,
    store_dir: Path | None = None,
    where: str | None = None,
    baseline: Any | None = None,
    correction: str = "holm",
    argv: Sequence[str] | None = None,
    n_resamples: int = N_RESAMPLES,
    timing: pd.DataFrame | None = None,
    time: str = "seconds",
) -> str:
    """The whole report as one HTML string (see the module docstring for what is in it).

    `runs` holds metrics as stored; every number shown is in display units (accuracies in %, the
    unit named in each header). The baseline is `baseline` when it ran, else the reference method's
    arm, else the first by name. `timing` (Store.time_to_target) adds the time-to-target section,
    its profile over `time` (seconds, step or epoch).
    """
    from seedbench.analysis.report import summary_table
    from seedbench.analysis.stats.provenance import flag_code_versions
    from seedbench.analysis.stats.runs import default_baseline
    from seedbench.analysis.tuning import tuning_html
    from seedbench.analysis.units import in_display_units, unit_of

    tasks = [t for t in tasks if t in runs.columns]
    arms = sorted(pd.unique(runs[by].astype(object)), key=str)
    base = default_baseline(arms, baseline if baseline in arms else None)
    raw_runs, metric_raw, unit = runs, metric, unit_of(metric)
    runs, metric = in_display_units(runs, metric)  # every statistic below in display units, the unit in its name
    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    status = runs["status"].astype(str).value_counts() if "status" in runs.columns else pd.Series(dtype=int)
    counts = ", ".join(f"{n} {s}" for s, n in status.items())
    head = (
        f"<h1>seedbench study report: {_e(metric)} by {_e(by)}</h1>"
        f"<p class='sub'>{len(runs)} runs ({_e(counts)}); arms: {_e(', '.join(map(str, arms)))}; baseline: {_e(base)}; "
        f"tasks: {_e(' x '.join(tasks) or 'one')}; store {_e(store_dir or '-')}; filter: <code>{_e(where or 'none')}</code>; "
        f"generated {_e(now)}</p>"
    )
    toc = (
        "<p>"
        + " | ".join(
            f"<a href='#{a}'>{_e(t)}</a>"
            for a, t in (
                ("runs", "runs"),
                ("table1", "Table 1"),
                ("comparisons", "comparisons"),
                ("variance", "variance"),
                ("tasks", "across tasks"),
                ("time", "time to target"),
                ("plots", "plots"),
                ("tuning", "tuning"),
                ("provenance", "provenance"),
                ("methods", "methods"),
            )
        )
        + "</p>"
    )
    with tempfile.TemporaryDirectory(prefix="seedbench-report-") as tmp:
        sections = [
            _section(
                "Runs",
                table_html(
                    flag_code_versions(summary_table(raw_runs), raw_runs, ["method", "model", "dataset"]),
                    "per method x model x dataset: finished n, diverged, failed, unfinished; accuracy (%) as mean +- std over finished seeds"
                    + _code_note(raw_runs, ["method", "model", "dataset"]),
                )
                if {"method", "model", "dataset"} <= set(raw_runs.columns)
                else "",
                "runs",
            ),
            _section("Table 1", _attempt(lambda: _table1(raw_runs, metric_raw, by, tasks, base), "Table 1"), "table1"),
            _section(
                "Pairwise comparisons per task",
                _attempt(lambda: _comparisons(runs, metric, unit, by, tasks, correction, n_resamples), "comparisons"),
                "comparisons",
            ),
            _section("Across-seed variance", _variance(runs, metric, unit, by, tasks, base, correction), "variance"),
            _section("Across tasks", _attempt(lambda: _across_tasks(runs, metric, unit, by, tasks, Path(tmp)), "across-task statistics"), "tasks"),
            _section("Time to target", _attempt(lambda: _time_to_target(timing, tasks, time, Path(tmp)), "time to target"), "time"),
            _section("Distributions", _attempt(lambda: _distribution_plot(runs, metric, by, tasks, Path(tmp)), "distribution plot"), "plots"),
            _section(
                "Tuning", _attempt(lambda: tuning_html(store_dir, Path(tmp), table_html, image_html), "tuning"), "tuning"
            ),  # seedbench/analysis/tuning.py
        ]
    sections.append(_section("Provenance", _provenance(runs, by, tasks, store_dir, argv), "provenance"))
    sections.append(_section("Methods and references", METHODS_HTML.format(correction=_e(correction), n_resamples=n_resamples), "methods"))
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>seedbench report: {_e(metric)}</title>"
        f"<style>{CSS}</style></head><body>{head}{toc}{''.join(sections)}</body></html>\n"
    )


def _table1(runs: pd.DataFrame, metric: str, by: str, tasks: list[str], base: Any) -> str:
    """Table 1 from the stored values (table1 scales them itself, so its ratios are scale-free)."""
    from seedbench.analysis.tables import table1
    from seedbench.analysis.units import metric_label, scale_of

    if not tasks:
        return _note("Table 1 needs task columns (model, dataset)")
    table = table1(runs, metric, base, rows=tasks, cols=by, scale=scale_of(metric))
    table.index.name = f"task: {metric_label(metric)}"
    return table_html(
        table.reset_index(),
        f"{metric_label(metric)}: mean +- std over finished seeds, (ratio to the baseline {base}); [n diverged/failed] where runs did not finish"
        + _code_note(runs, [by, *tasks]),
    )


def _code_note(runs: pd.DataFrame, keys: list[str]) -> str:
    """The caption sentence naming arms whose seeds were trained by different code ("" when none)."""
    from seedbench.analysis.stats.provenance import code_version_note, mixed_code_versions

    note = code_version_note(mixed_code_versions(runs, keys), keys)
    return f"; {note}" if note else ""


def _comparisons(runs: pd.DataFrame, metric: str, unit: str | None, by: str, tasks: list[str], correction: str, n_resamples: int) -> str:
    from seedbench.analysis.stats.pairwise import compare
    from seedbench.analysis.stats.runs import reference_last
    from seedbench.analysis.study.power import minimal_detectable
    from seedbench.analysis.tables import COMPARE_METRIC_COLUMNS, COMPARE_SHOWN
    from seedbench.analysis.units import name_units

    order = reference_last(list(pd.unique(runs[by].astype(object))))
    result = compare(runs, metric, by, within=tasks, correction=correction, n_resamples=n_resamples, order=order)
    result["mde"] = minimal_detectable(result)
    empty = (result["n_a"] == 0) | (result["n_b"] == 0)
    result = result[~empty]
    cols = [*tasks, *(c for c in COMPARE_SHOWN if c not in ("wilcoxon_p_adj", "tost_p_adj", "equivalent"))]
    caption = (
        f"every pair of arms per task, the reference method as B where it ran; differences A - B in {metric} with the Welch 95% interval; "
        f"*_p_adj corrected with {correction} across all {len(result)} rows (each test its own family); mde = smallest difference "
        f"detectable with 80% power at alpha 0.05 at these n; p_a_gt_b = P(a random seed of A beats one of B)"
    )
    if empty.any():
        caption += f"; {int(empty.sum())} pair(s) with an arm without finished runs left out (see Runs)"
    shown = name_units(result[[c for c in cols if c in result.columns]], COMPARE_METRIC_COLUMNS, unit)
    return table_html(shown, caption)


def _variance(runs: pd.DataFrame, metric: str, unit: str | None, by: str, tasks: list[str], base: Any, correction: str) -> str:
    from seedbench.analysis.stats.spread import variance_study
    from seedbench.analysis.study.variance import decompose
    from seedbench.analysis.units import name_units

    study = variance_study(runs, metric, by, tasks, baseline=base, correction=correction)
    parts = [
        table_html(
            name_units(study, ("mean", "std", "min", "max"), unit),
            f"per arm: spread over finished seeds; Brown-Forsythe test against the baseline arm {base}, "
            f"{correction}-corrected across rows (bf_p_adj)",
        )
    ]
    try:
        result = decompose(runs, metric, by, tasks, baseline=base)
    except SeedbenchError as exc:
        parts.append(_note(f"No variance decomposition: {exc}"))
        return "".join(parts)
    comp = _squared_units(result.components.drop(columns=["ci_method"]), unit)
    parts.append("<h3>Variance decomposition (crossed seed design)</h3>")
    parts.append(
        table_html(
            comp,
            "random-effects ANOVA components (expected mean squares) with 95% modified large-sample intervals "
            "(Ting et al. 1990); std = sqrt(variance); share of the summed non-negative components",
        )
    )
    if not result.comparisons.empty:
        parts.append(
            table_html(
                _squared_units(result.comparisons.drop(columns=["ci_method"]), unit),
                "each arm against the baseline arm: difference of "
                "variance components and ratio of standard deviations, 95% generalized confidence intervals",
            )
        )
        parts.append("<ul>" + "".join(f"<li>{_e(s)}</li>" for s in result.sentences("init")) + "</ul>")
    if result.notes:
        parts.append(_note("; ".join(result.notes)))
    return "".join(parts)


def _squared_units(frame: pd.DataFrame, unit: str | None) -> pd.DataFrame:
    """Variance-component columns: standard deviations in the metric's unit, variances in its square."""
    from seedbench.analysis.units import name_units

    stds = [c for c in frame.columns if str(c).startswith("std") and not str(c).startswith("std_ratio")]
    variances = [c for c in frame.columns if str(c).startswith(("var", "ci_", "mean_square"))]
    return name_units(name_units(frame, stds, unit), variances, f"{unit}^2" if unit else None)


def _across_tasks(runs: pd.DataFrame, metric: str, unit: str | None, by: str, tasks: list[str], tmp: Path) -> str:
    from seedbench.analysis.plots import plot_cd, plot_profile
    from seedbench.analysis.stats.aggregate import aggregate_scores, probability_of_improvement
    from seedbench.analysis.stats.ranks import friedman_nemenyi
    from seedbench.analysis.units import name_units

    parts = [
        table_html(
            name_units(aggregate_scores(runs, metric, by, tasks), ("iqm", "iqm_ci_low", "iqm_ci_high", "mean", "mean_ci_low", "mean_ci_high"), unit),
            "IQM and mean over all runs of all tasks, 95% stratified-bootstrap intervals (runs resampled within each task)",
        )
    ]
    poi = probability_of_improvement(runs, metric, by, tasks)
    if not poi.empty:
        parts.append(
            table_html(
                poi, "P(A > B): probability that a run of A beats a run of B, averaged over the tasks both ran; 95% stratified-bootstrap interval"
            )
        )
    try:
        test = friedman_nemenyi(runs, metric, by, tasks)
    except SeedbenchError as exc:
        parts.append(_note(f"No rank test / critical-difference diagram: {exc}"))
    else:
        parts.append(
            f"<p>Friedman test over {test.n_tasks} tasks: chi2 = {test.friedman_chi2:.4g}, p = {test.friedman_p:.4g} "
            f"(Iman-Davenport F = {test.iman_davenport_f:.4g}, p = {test.iman_davenport_p:.4g}); Nemenyi critical difference "
            f"at alpha {test.alpha:g}: CD = {test.cd:.4g}.</p>"
        )
        parts.append(table_html(test.table(), "average rank per arm (1 = best)"))
        parts.append(table_html(test.pairs, "Nemenyi post-hoc test of every pair (studentized range, df = inf)"))
        parts.append(
            image_html(
                plot_cd(runs, metric, by, tmp / "cd.png", tasks=tasks), "critical-difference diagram: arms joined by a bar are not shown different"
            )
        )
    parts.append(
        image_html(
            plot_profile(runs, metric, by, tmp / "profile.png", tasks=tasks),
            "performance profile: fraction of runs above each threshold (mean over tasks), 95% bands",
        )
    )
    return "".join(parts)


def _time_to_target(timing: pd.DataFrame | None, tasks: list[str], measure: str, tmp: Path) -> str:
    """The time-to-target table per arm and task, the ratio table and the AlgoPerf-style profile."""
    if timing is None:
        return _note("no target given: `seedbench report --html FILE --target 90` adds the time to 90% validation accuracy per arm")
    from seedbench.analysis.plots import plot_time_profile
    from seedbench.analysis.stats.time_to_target import time_ratios
    from seedbench.analysis.tables import time_to_target_table
    from seedbench.analysis.units import metric_label

    by = timing.attrs["by"]
    parts = [
        table_html(
            time_to_target_table(timing),
            f"{timing.attrs['title']}. reached = runs that got there / finished and diverged runs; epoch, step (optimizer updates) and "
            "seconds (wall clock, summed over epochs) as median [interval]; CI = the interval's coverage (95% from 6 runs; [min, max] below)",
        )
    ]
    ratios = time_ratios(timing, by, tasks, measure=measure)
    parts.append(
        table_html(
            ratios.drop(columns=["ran"]).rename(columns={"time": f"median {measure}", "best": f"best arm's {measure}"}),
            f"per workload: each arm's median {measure} to target, the best arm's, and their ratio (inf: never reached, or not run)",
        )
    )
    target = f"{metric_label(timing.attrs['metric'])} >= {timing.attrs['target']:g}"
    path = plot_time_profile(ratios, by, tmp / "time-profile.png", target=target, measure=measure)
    parts.append(
        image_html(path, f"performance profile of time to target: fraction of workloads on which an arm's median {measure} is within tau x the best")
    )
    return "".join(parts)


def _distribution_plot(runs: pd.DataFrame, metric: str, by: str, tasks: list[str], tmp: Path) -> str:
    from seedbench.analysis.plots import plot_distribution

    path = plot_distribution(runs, metric, by, "box", tmp / "box.png", within=tasks)
    return image_html(path, f"{metric} per seed, by {by}, one panel per task; every seed is a point; an arm appears where it ran")


def _provenance(runs: pd.DataFrame, by: str, tasks: list[str], store_dir: Path | None, argv: Sequence[str] | None) -> str:
    items = {
        "report command": shlex.join(argv) if argv else "-",
        "project git commit": git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    for column, label in (("host", "run hosts"), ("torch", "torch in runs"), ("device", "devices in runs"), ("python", "python in runs")):
        if column in runs.columns:
            values = sorted({str(v) for v in runs[column].dropna()})
            items[label] = ", ".join(values) or "-"
    parts = ["<dl>" + "".join(f"<dt>{_e(k)}</dt><dd><code>{_e(v)}</code></dd>" for k, v in items.items()) + "</dl>"]
    versions = package_versions()
    parts.append(table_html(pd.DataFrame({"package": list(versions), "version": list(versions.values())}), "package versions of the report"))
    sweeps = sweep_records(store_dir)
    if sweeps:
        parts.append(table_html(pd.DataFrame(sweeps), f"sweeps recorded in {store_dir}/sweeps: the exact commands that produced the runs"))
    else:
        parts.append(_note("the store records no sweep commands (runs made outside `seedbench sweep`)"))
    keys = [c for c in (by, *tasks) if c in runs.columns]
    from seedbench.analysis.stats.provenance import code_version_counts

    versions = code_version_counts(runs, keys)
    if len(versions):
        parts.append(
            table_html(
                versions,
                "code versions per arm and task: the hash of the method's own source each run recorded (docs/store.md, 'Code versions');"
                " more than one means the arm's seeds were trained by different code" + _code_note(runs, keys),
            )
        )
    if "seed" in runs.columns and keys:
        seed_cols = [c for c in ("seed", "init_seed", "data_seed", "augment_seed") if c in runs.columns and runs[c].notna().any()]
        rows = []
        for key, group in runs.groupby(keys, sort=True, dropna=False):
            key = key if isinstance(key, tuple) else (key,)
            rows.append({**dict(zip(keys, key)), "runs": len(group), **{c: seed_ranges(group[c].dropna()) for c in seed_cols}})
        parts.append(table_html(pd.DataFrame(rows), "seeds per arm and task"))
    return "".join(parts)


METHODS_HTML = """
<ul>
<li><b>Runs counted.</b> Only finished runs contribute numbers; failed, diverged and unfinished runs are counted next to every n.
Time to target is the exception: a diverged run is an outcome there (it reached the target first or never did).</li>
<li><b>Units.</b> Accuracies are in percent everywhere in this report (tables, comparisons, intervals, mde, plots), the unit named
in each header; variances of an accuracy are in %^2. Losses are shown as stored.</li>
<li><b>Comparisons.</b> Welch t-test and interval, Mann-Whitney U with P(A&gt;B), Brown-Forsythe test of spread, Hedges' g, paired t
on shared seeds; every p-value column corrected with <code>{correction}</code> across all rows of its table (statsmodels
multipletests). Bootstrap intervals use {n_resamples} seeded resamples.</li>
<li><b>Minimal detectable effect</b> (mde): smallest difference a two-sided two-sample t-test detects with 80% power at alpha 0.05
with these n and the pooled SD (statsmodels TTestIndPower); a non-significant difference smaller than mde is not evidence of no effect.</li>
<li><b>Variance decomposition</b> (Bouthillier et al. 2021): random-effects ANOVA on a balanced crossed design of init, data-order
and augmentation seeds; components from expected mean squares; modified large-sample intervals (Ting, Burdick, Graybill et al. 1990;
Burdick &amp; Graybill 1992); arm-vs-baseline changes by generalized pivotal quantities (Weerahandi 1993).</li>
<li><b>Across tasks</b> (Agarwal et al. 2021): IQM and mean with stratified bootstrap intervals, probability of improvement,
performance profiles. Ranks: Friedman test and Nemenyi critical difference (Demsar 2006).</li>
<li><b>Time to target</b> (AlgoPerf; Dahl et al. 2023): per run the first epoch whose validation accuracy is at or above the target, with the
optimizer updates and the wall-clock seconds summed up to it; runs that never reach it are censored as never and counted. Median over
seeds with the distribution-free order-statistic interval (scipy quantile_test); performance profiles (Dolan &amp; More 2002): the fraction
of workloads on which an arm's median time is within tau times the best arm's.</li>
<li><b>Seeds needed</b> (Colas et al. 2018): see <code>seedbench power</code>; group-sequential stopping with Lan-DeMets alpha
spending (Lan &amp; DeMets 1983; Jennison &amp; Turnbull 2000); equivalence by TOST (Schuirmann 1987).</li>
</ul>
"""
