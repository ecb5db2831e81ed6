"""Across-seed distributions and learning curves, written straight to PNG or SVG files.

Figures are built with matplotlib's object API on an Agg canvas (no pyplot): nothing is ever
shown, no global figure state leaks between calls, and the module works on headless workers.
Every arm's n is printed on the plot, because a clean-looking box over 3 seeds and one over 50
are different claims.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter
from scipy import stats

from seedbench.analysis.stats.intervals import CONFIDENCE
from seedbench.analysis.stats.runs import StatusSplit, arm_order, iter_groups, require_columns, select_arm, split_by_status

KINDS = ("box", "violin", "strip", "ecdf")
EXTENSIONS = {".png": "png", ".svg": "svg"}
FACET_W, FACET_H, MAX_COLS = 4.8, 3.6, 3


def output_format(out_path: str | Path) -> str:
    """The image format from the file extension; checked before any drawing work is done."""
    suffix = Path(out_path).suffix.lower()
    if suffix not in EXTENSIONS:
        raise ValueError(f"unsupported plot file extension {suffix!r} for {out_path}; use one of {', '.join(EXTENSIONS)}")
    return EXTENSIONS[suffix]


def _facets(n: int, title: str) -> tuple[Figure, list[Axes]]:
    ncols = min(MAX_COLS, max(n, 1))
    nrows = math.ceil(max(n, 1) / ncols)
    fig = Figure(figsize=(FACET_W * ncols, FACET_H * nrows + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(nrows, ncols, i + 1) for i in range(max(n, 1))]
    fig.suptitle(title)
    return fig, axes


def _facet_title(key: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in key.items())


def _save(fig: Figure, out_path: str | Path) -> Path:
    path = Path(out_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format=output_format(path), dpi=120)
    return path


def _arm_label(arm: Any, split: StatusSplit, inline: bool = False) -> str:
    """ "rbd n=4 (1 diverged)": failed and diverged runs are named next to the n they reduce."""
    notes = [f"{n} {what}" for n, what in ((split.n_diverged, "diverged"), (split.n_failed, "failed")) if n]
    counts = f"n={len(split.values)}" + (f", {', '.join(notes)}" if notes else "")
    return f"{arm} ({counts})" if inline else f"{arm}\n{counts}"


def _jitter(n: int, position: float, rng: np.random.Generator, width: float = 0.08) -> np.ndarray:
    return position + rng.uniform(-width, width, n)


def _t_interval(values: np.ndarray, confidence: float) -> tuple[float, float, float]:
    """Mean and t-interval half-width pieces; NaN half-width below two values."""
    n = len(values)
    mean = float(np.mean(values)) if n else math.nan
    if n < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1) * stats.sem(values))
    return mean, mean - half, mean + half


def _draw_distribution(ax: Axes, kind: str, arms: list[Any], splits: dict[Any, StatusSplit], metric: str, by: str, rng: np.random.Generator) -> None:
    positions = list(range(1, len(arms) + 1))
    data = [splits[a].values for a in arms]
    if not arms:
        ax.text(0.5, 0.5, "no finished runs", ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_ylabel(metric)
        return
    if kind == "ecdf":
        for arm, values in zip(arms, data):
            if len(values):
                ax.ecdf(values, label=_arm_label(arm, splits[arm], inline=True))
        ax.set_xlabel(metric)
        ax.set_ylabel("fraction of seeds <= x")
        ax.legend(fontsize="small")
        return
    filled = [(p, v) for p, v in zip(positions, data) if len(v)]
    if kind == "box" and filled:
        ax.boxplot([v for _, v in filled], positions=[p for p, _ in filled], widths=0.5, showfliers=False)
    if kind == "violin":
        shaped = [(p, v) for p, v in filled if len(v) >= 2 and np.ptp(v) > 0]  # a KDE needs spread
        if shaped:
            ax.violinplot([v for _, v in shaped], positions=[p for p, _ in shaped], showmedians=True)
    for p, v in filled:  # every seed as a point: with few seeds the points are the distribution
        ax.scatter(_jitter(len(v), p, rng), v, s=14, alpha=0.7, color="black", zorder=3)
    if kind == "strip":
        for i, (p, v) in enumerate(filled):
            mean, low, high = _t_interval(v, CONFIDENCE)
            label = f"mean, {CONFIDENCE:.0%} t-interval" if i == 0 else None
            ax.plot([p - 0.2, p + 0.2], [mean, mean], color="tab:red", lw=2, zorder=4, label=label)
            if not math.isnan(low):
                ax.vlines(p + 0.25, low, high, color="tab:red", lw=1.5, zorder=4)
        if filled:
            ax.legend(fontsize="small")
    labels = [_arm_label(a, splits[a]) for a in arms]
    ax.set_xticks(positions, labels)
    if max(len(line) for label in labels for line in label.splitlines()) > 12:  # long arm names would overlap
        ax.tick_params(axis="x", labelrotation=25)
        for tick in ax.get_xticklabels():
            tick.set_horizontalalignment("right")
    ax.set_xlim(0.5, len(arms) + 0.5)
    ax.set_xlabel(by)
    ax.set_ylabel(metric)


def plot_distribution(
    df: pd.DataFrame,
    metric: str,
    by: str,
    kind: str,
    out_path: str | Path,
    *,
    within: Sequence[str] = (),
    status_col: str = "status",
    order: Sequence[Any] | None = None,
    title: str | None = None,
    seed: int = 0,
) -> Path:
    """Across-seed distribution of `metric` per arm, one panel per `within` group, written to `out_path`.

    Box and violin plots overlay every seed as a point and strip plots add the mean with its
    95% t-interval, since with 3-10 seeds a summary shape alone hides how few points it rests on.
    ECDFs compare whole distributions (a method that helps only the worst seeds shows here).
    Only finished runs are drawn; failed/diverged counts appear in the labels. Returns the path.
    """
    output_format(out_path)
    fig = distribution_figure(df, metric, by, kind, within=within, status_col=status_col, order=order, title=title, seed=seed)
    return _save(fig, out_path)


def distribution_figure(
    df: pd.DataFrame,
    metric: str,
    by: str,
    kind: str,
    *,
    within: Sequence[str] = (),
    status_col: str = "status",
    order: Sequence[Any] | None = None,
    title: str | None = None,
    seed: int = 0,
) -> Figure:
    """The figure of plot_distribution. Each panel has a slot for every arm that ran in its task
    and finished at least once; an arm whose runs there all failed or diverged is named in the
    panel's title with its counts instead of drawing an empty "n=0" slot."""
    if kind not in KINDS:
        raise ValueError(f"unknown plot kind {kind!r}; choose one of {', '.join(KINDS)}")
    within = [within] if isinstance(within, str) else list(within)
    require_columns(df, [metric, by, *within])
    groups = list(iter_groups(df, within))
    fig, axes = _facets(len(groups), title or f"{metric} across seeds by {by} ({kind})")
    rng = np.random.default_rng(seed)
    for ax, (key, group) in zip(axes, groups):
        arms = arm_order(group, by, order)
        splits = {a: split_by_status(select_arm(group, by, a), metric, status_col) for a in arms}
        drawn = [a for a in arms if len(splits[a].values)]
        _draw_distribution(ax, kind, drawn, splits, metric, by, rng)
        ax.set_title(_panel_title(key, [_arm_label(a, splits[a], inline=True) for a in arms if a not in drawn]), fontsize="medium")
        ax.grid(alpha=0.3)
    return fig


def _panel_title(key: dict[str, Any], not_drawn: Sequence[str]) -> str:
    """The panel's task, and the arms that ran there but have nothing to draw (named, not hidden)."""
    lines = [_facet_title(key)] if key else []
    if not_drawn:
        lines.append("no finished runs: " + "; ".join(not_drawn))
    return "\n".join(lines)


def _curve(group: pd.DataFrame, metric: str, epoch_col: str, confidence: float) -> pd.DataFrame:
    """Per epoch: mean over the runs that reached it, its t-interval, and how many runs that was."""
    values = pd.to_numeric(group[metric], errors="coerce")
    ok = np.isfinite(values.to_numpy(dtype=float))
    rows = []
    for epoch, v in values[ok].groupby(group.loc[ok, epoch_col], sort=True):
        mean, low, high = _t_interval(v.to_numpy(dtype=float), confidence)
        rows.append({"epoch": epoch, "mean": mean, "low": low, "high": high, "n": len(v)})
    return pd.DataFrame(rows, columns=["epoch", "mean", "low", "high", "n"])


def _curve_label(arm: Any, curve: pd.DataFrame) -> str:
    first, last = int(curve["n"].iloc[0]), int(curve["n"].iloc[-1])
    return f"{arm} (n={first})" if first == last else f"{arm} (n={first}->{last})"


def plot_curves(
    epochs_df: pd.DataFrame,
    metric: str,
    by: str,
    out_path: str | Path,
    *,
    epoch_col: str = "epoch",
    within: Sequence[str] = (),
    order: Sequence[Any] | None = None,
    confidence: float = CONFIDENCE,
    title: str | None = None,
) -> Path:
    """Learning curves: per arm the mean of `metric` per epoch with a t-interval band over seeds.

    `epochs_df` has one row per run and epoch. The band is over the runs that reached each epoch;
    when runs stop early (divergence) the legend shows the n dropping ("n=5->3"), because the
    later part of such a curve averages survivors only. Returns the path written.
    """
    output_format(out_path)
    fig = curves_figure(epochs_df, metric, by, epoch_col=epoch_col, within=within, order=order, confidence=confidence, title=title)
    return _save(fig, out_path)


def curves_figure(
    epochs_df: pd.DataFrame,
    metric: str,
    by: str,
    *,
    epoch_col: str = "epoch",
    within: Sequence[str] = (),
    order: Sequence[Any] | None = None,
    confidence: float = CONFIDENCE,
    title: str | None = None,
) -> Figure:
    """The figure of plot_curves: a panel draws the arms that ran in its task, each in the colour it has in every panel."""
    within = [within] if isinstance(within, str) else list(within)
    require_columns(epochs_df, [metric, by, epoch_col, *within])
    arms = arm_order(epochs_df, by, order)
    groups = list(iter_groups(epochs_df, within))
    pct = f"{confidence:.0%}"
    fig, axes = _facets(len(groups), title or f"{metric} per {epoch_col}: mean and {pct} t-interval over seeds")
    for ax, (key, group) in zip(axes, groups):
        for i, arm in enumerate(arms):
            curve = _curve(select_arm(group, by, arm), metric, epoch_col, confidence)
            if curve.empty:  # the arm did not run in this panel's task: no "n=0" line
                continue
            color = f"C{i % 10}"  # by the arm's place among all arms, so an arm keeps its colour across panels
            ax.plot(curve["epoch"], curve["mean"], color=color, marker="o", ms=3, label=_curve_label(arm, curve))
            band = curve.dropna(subset=["low", "high"])
            if not band.empty:
                ax.fill_between(band["epoch"], band["low"], band["high"], color=color, alpha=0.2, lw=0)
        ax.set_xlabel(epoch_col)
        ax.set_ylabel(metric)
        if key:
            ax.set_title(_facet_title(key), fontsize="medium")
        ax.legend(fontsize="small", title=by)
        ax.grid(alpha=0.3)
    return fig


# --------------------------------------------------------------------------------------------
# across tasks: performance profiles and critical-difference diagrams


def plot_profile(
    df: pd.DataFrame,
    metric: str,
    by: str,
    out_path: str | Path,
    *,
    tasks: Sequence[str] = ("model", "dataset"),
    status_col: str = "status",
    title: str | None = None,
) -> Path:
    """Performance profiles (Agarwal et al. 2021): fraction of runs above tau per arm, with 95% bands.

    The fraction is averaged over tasks; the band is a stratified bootstrap over each task's runs.
    A curve that lies above another everywhere dominates it on every threshold, which one mean
    cannot show.
    """
    from seedbench.analysis.stats.aggregate import performance_profile

    output_format(out_path)
    profile = performance_profile(df, metric, by, tasks, status_col=status_col)
    fig, (ax,) = _facets(1, title or f"performance profile of {metric}\nover {' x '.join(tasks)} tasks, 95% bands")
    for i, (arm, curve) in enumerate(profile.groupby(by, sort=True)):
        color = f"C{i % 10}"
        ax.plot(curve["tau"], curve["fraction"], color=color, label=str(arm))
        ax.fill_between(curve["tau"], curve["ci_low"], curve["ci_high"], color=color, alpha=0.2, lw=0)
    ax.set_xlabel(f"{metric} threshold tau")
    ax.set_ylabel(f"fraction of runs with {metric} > tau")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize="small", title=by)
    ax.grid(alpha=0.3)
    return _save(fig, out_path)


def plot_time_profile(
    ratios: pd.DataFrame,
    by: str,
    out_path: str | Path,
    *,
    target: str,
    measure: str = "seconds",
    title: str | None = None,
) -> Path:
    """AlgoPerf-style performance profile of time to target: per arm, the fraction of workloads solved within tau x the best.

    `ratios` is a stats.time_to_target.time_ratios() frame. Curves are exact step functions; an arm
    that never reached the target on a workload (or did not run it) never counts for it, so a
    curve that stays below 1 at the right edge says on how many workloads the arm fell short.
    """
    from seedbench.analysis.stats.time_to_target import time_profile

    output_format(out_path)
    profile = time_profile(ratios, by)
    workloads = ratios.attrs.get("workloads") or []
    n_workloads = len(ratios.drop_duplicates(workloads)) if workloads else 1
    fig = Figure(figsize=(7.2, 4.6), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    fig.suptitle(title or f"time to {target}: performance profile\nover {n_workloads} workload(s), median {measure} per arm and workload")
    top = float(profile["tau"].max()) if len(profile) else 2.0
    for i, (arm, curve) in enumerate(profile.groupby(by, sort=True)):
        solved = int(np.isfinite(ratios.loc[ratios[by] == arm, "ratio"].to_numpy(dtype=float)).sum())
        ax.step(curve["tau"], curve["fraction"], where="post", color=f"C{i % 10}", lw=2, label=f"{arm} (reached on {solved} of {n_workloads})")
    if top > 8:  # ratios are multiplicative: 2x and 8x slower sit evenly on a log axis, labelled as plain numbers
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    ax.set_xlim(1.0, top)
    ax.set_xlabel(f"tau: {measure} to target within tau x the best arm's")
    ax.set_ylabel("fraction of workloads")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize="small", title=by, loc="lower right")
    ax.grid(alpha=0.3)
    return _save(fig, out_path)


def plot_cd(
    df: pd.DataFrame,
    metric: str,
    by: str,
    out_path: str | Path,
    *,
    tasks: Sequence[str] = ("model", "dataset"),
    alpha: float = 0.05,
    status_col: str = "status",
    title: str | None = None,
) -> Path:
    """Demsar's (2006) critical-difference diagram: average ranks over tasks, bars join arms not shown different.

    Needs >= 3 arms ranked over >= 3 tasks that every arm ran (friedman_nemenyi raises a
    one-line ConfigError otherwise). The Friedman p-value and the CD are printed on the plot.
    """
    from seedbench.analysis.stats.ranks import friedman_nemenyi

    output_format(out_path)
    test = friedman_nemenyi(df, metric, by, tasks, alpha=alpha, status_col=status_col)
    k = len(test.arms)
    fig = Figure(figsize=(max(6.0, 1.1 * k + 3), 2.2 + 0.32 * k), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    order = sorted(test.arms, key=lambda a: test.avg_ranks[a])
    ax.set_xlim(k + 0.3, 0.7)  # rank 1 (best) on the right, as in Demsar's figures
    ax.set_ylim(-(math.ceil(k / 2) * 0.55 + 0.6), 2.2)
    ax.axhline(0, color="black", lw=1)
    for r in range(1, k + 1):
        ax.plot([r, r], [0, 0.15], color="black", lw=1)
        ax.text(r, 0.3, str(r), ha="center", va="bottom", fontsize="small")
    ax.plot([1, 1 + test.cd], [1.5, 1.5], color="tab:red", lw=2)
    ax.text(1 + test.cd / 2, 1.65, f"CD = {test.cd:.2f}", ha="center", va="bottom", fontsize="small", color="tab:red")
    half = math.ceil(k / 2)
    for i, arm in enumerate(order):
        rank = test.avg_ranks[arm]
        left = i < half
        y = -(i if left else k - 1 - i) * 0.55 - 0.6
        x_text = 0.75 if left else k + 0.25
        ax.plot([rank, rank, x_text], [0, y, y], color="black", lw=0.8)
        ax.text(x_text, y, f" {arm} ({rank:.2f}) ", ha="left" if left else "right", va="center", fontsize="small")
    for j, clique in enumerate(test.cliques()):
        lo, hi = test.avg_ranks[clique[0]], test.avg_ranks[clique[-1]]
        ax.plot([lo - 0.03, hi + 0.03], [-0.25 - 0.18 * j] * 2, color="tab:blue", lw=4, solid_capstyle="round")
    ax.axis("off")
    dropped = f", {test.dropped_tasks} incomplete task(s) left out" if test.dropped_tasks else ""
    fig.suptitle(
        title
        or f"{metric}: average rank over {test.n_tasks} tasks (1 = best)\nFriedman p = {test.friedman_p:.3g}, Nemenyi alpha = {alpha:g}{dropped}",
        fontsize="medium",
    )
    return _save(fig, out_path)
