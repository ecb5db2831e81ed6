"""`Store`: a results store as Python objects - runs as DataFrames, reports, comparisons and plots.

    from seedbench import Store
    store = Store("storage")
    store.report(baseline="sgd")                      # Table-1 layout, a DataFrame; its title in .attrs["title"]
    store.report(target=90)                           # time to 90% validation accuracy per arm
    store.compare(metric="test_acc", by="arm")        # every pair of arms, corrected p-values
    store.plot(kind="box", metric="test_acc", output="acc.png")

Accuracies are in percent everywhere here (seedbench.analysis.units): tables, comparisons, plots and
targets; a frame in a metric's units says so in ``.attrs["unit"]``.

The command line's report, compare and plot call exactly these methods. This is the top of
seedbench.analysis: it imports the presentation (tables, plots, html, report), which imports the
statistics (stats/, study/); nothing in seedbench.analysis imports this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seedbench.errors import ConfigError, SeedbenchError

if TYPE_CHECKING:
    import pandas as pd

ARM = "arm"
PLOT_KINDS = ("box", "violin", "strip", "ecdf", "curve", "profile", "cd", "time-profile")
TIME_MEASURES = ("seconds", "step", "epoch")  # the clocks of a time-to-target profile; AlgoPerf's is wall-clock
EPOCH_KINDS = ("curve", "time-profile")  # plot kinds drawn from the per-epoch history (default metric val_acc)


def columns(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [c.strip() for c in value.split(",") if c.strip()]
    return [str(c) for c in value]


def check_columns(df: pd.DataFrame, names: Sequence[str], flag: str) -> None:
    missing = [c for c in names if c not in df.columns]
    if missing:
        raise ConfigError(f"unknown column(s) {missing} for {flag}; runs has: {', '.join(map(str, df.columns))}")


def check_metric(df: pd.DataFrame, metric: str, flag: str = "--metric") -> None:
    """A metric must be a numeric column: comparing host names or statuses is not a statistic."""
    import pandas as pd

    check_columns(df, [metric], flag)
    if not (pd.api.types.is_numeric_dtype(df[metric]) and not pd.api.types.is_bool_dtype(df[metric])):
        raise ConfigError(f"{flag} {metric!r} is not numeric (the column holds {df[metric].dtype}); choose e.g. val_acc, test_acc, best_val_acc")


def with_arm_labels(frame: pd.DataFrame) -> pd.DataFrame:
    """Every run gets its arm: the label the method recorded (what the arm did), else one derived for old records."""
    if frame.empty:
        return frame
    frame = frame.copy()
    legacy = frame["method"].astype("string") if "method" in frame.columns else None
    if legacy is not None and "bases" in frame.columns:  # stores written before runs recorded their arm
        hadamard = frame["bases"].astype("string").eq("hadamard").fillna(False)
        legacy = legacy.mask(hadamard, legacy + " bases=hadamard")
    if ARM in frame.columns:
        frame[ARM] = frame[ARM].astype("string").fillna(legacy) if legacy is not None else frame[ARM]
    elif legacy is not None:
        frame[ARM] = legacy
    return frame


def combined_arm(df: pd.DataFrame, by: list[str]) -> tuple[pd.DataFrame, str]:
    """Several `by` columns become one arm label ("init=orthogonal +rewire"); an arm with no flag set is 'base'."""
    check_columns(df, by, "--by")
    if len(by) == 1:
        return df, by[0]
    df = df.copy()
    df["arms"] = df[by].apply(_flags_label, axis=1)
    return df, "arms"


def _flags_label(row: Any) -> str:
    parts = []
    for key, value in row.items():
        if isinstance(value, bool) or str(value) in ("True", "False"):
            if str(value) == "True":
                parts.append(f"+{key}")
        else:
            parts.append(f"{key}={value}")
    return " ".join(parts) or "base"


def _correction(name: str) -> str:
    from seedbench.analysis.stats.pvalues import check_correction

    try:
        return check_correction(name)
    except ValueError as exc:
        raise ConfigError(f"--correction: {exc}") from None


def check_target(target: float, metric: str, epoch_columns: Sequence[str]) -> float:
    """A time-to-target target in %, checked; returned in the metric's stored units (90 -> 0.9)."""
    import math

    from seedbench.analysis.units import is_accuracy, scale_of

    if not (isinstance(target, (int, float)) and math.isfinite(target) and 0 <= target <= 100):
        raise ConfigError(f"--target {target:g}: a target is an accuracy in % between 0 and 100, e.g. --target 90")
    if metric not in epoch_columns:
        history = ", ".join(c for c in epoch_columns if is_accuracy(c)) or "none"
        raise ConfigError(f"--metric {metric}: time to target reads the per-epoch history, which has no {metric!r}; choose one of {history}")
    if not is_accuracy(metric):
        raise ConfigError(f"--target needs an accuracy metric, not {metric!r} (a target is reached from below); use --metric val_acc")
    return float(target) / scale_of(metric)


def pair_key(frame: pd.DataFrame) -> str:
    """Arms are paired by the seed that varies: init_seed in a vary-only-the-init study, else seed."""
    if "init_seed" in frame.columns and frame["init_seed"].notna().all() and frame["init_seed"].nunique() > 1:
        return "init_seed"
    return "seed"


class Store:
    """A results store (a folder of run records) for analysis; nothing here writes to it."""

    def __init__(self, path: str | Path | None = None):
        from seedbench.sweep.runners.store_context import store_dir

        self.path = store_dir(path)
        if self.path.exists() and not self.path.is_dir():
            raise SeedbenchError(f"store {self.path} is a file, not a store folder; pass --store with the folder a sweep wrote")
        if not self.path.is_dir():
            raise SeedbenchError(f"store {self.path} does not exist; run `seedbench sweep` first or pass --store DIR")
        self._sql: Any = None
        self.skipped: list[Any] = []

    @property
    def sql(self) -> Any:
        if self._sql is None:
            from seedbench.store import Store as SQLStore

            self._sql = SQLStore(self.path, warn=None)
            self.skipped = list(self._sql.skipped)
        return self._sql

    def query(self, sql: str) -> pd.DataFrame:
        return self.sql.query(sql)

    def _filter(self, where: str | None) -> str:
        """`--where` parsed as one SQL expression (a stacked statement cannot ride along), read-only anyway."""
        from seedbench.store import where_sql

        return f" WHERE {where_sql(where)}" if where else ""

    def runs(self, where: str | None = None) -> pd.DataFrame:
        return with_arm_labels(self.sql.query("SELECT * FROM runs" + self._filter(where)))

    def epochs(self, where: str | None = None) -> pd.DataFrame:
        """Per-epoch rows joined with their run's config, so by/within/where work on them too."""
        filtered = "SELECT * FROM runs" + self._filter(where)
        return with_arm_labels(self.sql.query(f"SELECT e.*, r.* EXCLUDE (run_id) FROM epochs e JOIN ({filtered}) r USING (run_id)"))

    def _runs(self, where: str | None) -> pd.DataFrame:
        runs = self.runs(where)
        if runs.empty:
            raise SeedbenchError("the store holds no runs (matching --where); run `seedbench sweep` first")
        return runs

    def _ttt_inputs(self, metric: str, target: float, where: str | None) -> tuple[pd.DataFrame, pd.DataFrame, float]:
        """Runs, their per-epoch history and the target in stored units, every input checked first."""
        runs = self._runs(where)
        threshold = check_target(target, metric, self.sql.columns("epochs"))
        ids = set(runs["path"].astype(str))
        epochs = self.sql.query("SELECT * FROM epochs ORDER BY path, epoch")
        return runs, epochs[epochs["path"].astype(str).isin(ids)], threshold

    def time_to_target(
        self,
        target: float,
        metric: str = "val_acc",
        *,
        by: str | Sequence[str] = ARM,
        within: str | Sequence[str] | None = None,
        where: str | None = None,
    ) -> pd.DataFrame:
        """Per arm and task: the epoch, step and seconds at which `metric` first reaches `target` (in %).

        Medians over seeds with distribution-free intervals, the runs that reached it and those that
        never did (censored, counted as never). Numbers, not strings: `report(target=...)` formats them.
        """
        runs, epochs, threshold = self._ttt_inputs(metric, target, where)
        from seedbench.analysis.stats.time_to_target import time_to_target
        from seedbench.analysis.units import metric_label

        by_cols = columns(by)
        within_cols = columns(within) if within is not None else [c for c in ("model", "dataset") if c not in by_cols]
        check_columns(runs, within_cols, "--within")
        frame, arm = combined_arm(runs, by_cols)
        result = time_to_target(frame, epochs, metric, threshold, arm, within_cols, run_col="path")
        result.attrs.update(
            target=float(target),
            title=f"time to {metric_label(metric)} >= {target:g}: median [distribution-free CI] over seeds; "
            "runs that never reached it count as never (censored), none dropped",
        )
        return result

    def report(
        self,
        metric: str = "val_acc",
        *,
        baseline: str | None = None,
        study: str | None = None,
        by: str | Sequence[str] | None = None,
        within: str | Sequence[str] | None = None,
        baseline_arm: str | None = None,
        correction: str = "holm",
        where: str | None = None,
        target: float | None = None,
    ) -> pd.DataFrame:
        """A summary (default), the Table-1 layout (`baseline`: an arm, e.g. "sgd"), a variance study, or the
        time to `target` (% accuracy) per arm. A DataFrame of display strings; its title is in ``.attrs["title"]``."""
        if target is not None:
            if study is not None or baseline is not None:
                raise ConfigError(f"--target and --{'study' if study is not None else 'baseline'} are two reports; run them one at a time")
            from seedbench.analysis.tables import time_to_target_table

            numbers = self.time_to_target(target, metric, by=by or ARM, within=within, where=where)
            table = time_to_target_table(numbers)
            table.attrs["title"] = numbers.attrs["title"]
            return table
        runs = self._runs(where)
        check_metric(runs, metric)  # a typo is answered before scipy is imported (~1 s)
        _correction(correction)
        from seedbench.analysis.report import summary_table
        from seedbench.analysis.stats.spread import variance_study
        from seedbench.analysis.tables import table1, variance_table
        from seedbench.analysis.units import metric_label, scale_of, unit_of, with_unit

        label = metric_label(metric)
        if study == "variance":
            by_cols = columns(by) or ["init", "stabilize", "rewire"]
            within_cols = columns(within) or ["method", "model", "dataset"]
            check_columns(runs, within_cols, "--within")
            frame, arm = combined_arm(runs, by_cols)
            base = baseline_arm or ("base" if "base" in set(frame[arm].astype(str)) else None)
            study_frame = variance_study(frame, metric, arm, within_cols, baseline=base, correction=correction)
            table = variance_table(study_frame, by=arm, scale=scale_of(metric))
            unit = unit_of(metric)
            table = table.rename(columns={c: with_unit(c, unit) for c in ("mean +- std", "min", "max")})
            title = f"variance study: {label} by {', '.join(by_cols)}; Brown-Forsythe vs baseline, {correction}-corrected"
        elif baseline:
            arms = set(runs[ARM].astype(str))
            if baseline not in arms:
                raise ConfigError(f"baseline arm {baseline!r} has no runs; arms in the store: {', '.join(sorted(arms))}")
            frame = runs.assign(method=runs[ARM])
            table = table1(frame, metric, baseline, scale=scale_of(metric))
            table.index.name = f"task: {label}"  # the corner cell names what the cells hold
            title = f"{label}, mean +- std over seeds (ratio to {baseline})"
        else:
            table = summary_table(runs.assign(method=runs[ARM]))
            title = "seedbench report: accuracy (%), mean +- std over finished seeds"
        # an arm whose seeds different code trained: a column in the summary, a footnote in every title
        from seedbench.analysis.stats.provenance import code_version_note, flag_code_versions, mixed_code_versions

        keys = ["method", "model", "dataset"]
        if study is None and not baseline:
            table = flag_code_versions(table, runs.assign(method=runs[ARM]), keys)
        note = code_version_note(mixed_code_versions(runs.assign(method=runs[ARM]), keys), keys)
        table.attrs["title"] = f"{title}; {note}" if note else title
        return table

    def compare(
        self,
        metric: str = "test_acc",
        *,
        by: str | Sequence[str] = ARM,
        within: str | Sequence[str] | None = None,
        correction: str = "holm",
        paired: bool = True,
        pair_on: str | None = None,
        equivalence: float | None = None,
        where: str | None = None,
    ) -> pd.DataFrame:
        """Every pair of arms within each group: difference with CI, Welch, Mann-Whitney, variance tests, Hedges' g,
        the minimal detectable effect at these n (`mde`), and with `equivalence` a TOST within +-margin.

        Accuracies are compared in percent (means, differences, intervals, mde and the equivalence
        margin in percentage points; ``.attrs["unit"]`` is "%"). The reference method's arm is arm B
        wherever it takes part, so `diff` reads "method - reference". Pairs in which an arm has no
        finished run are left out (counted in ``.attrs["left_out"]``; `report` shows those arms' failures).
        """
        runs = self._runs(where)
        check_metric(runs, metric)  # a typo is answered before scipy is imported (~1 s)
        _correction(correction)
        if equivalence is not None and not equivalence > 0:
            raise ConfigError(f"--equivalence {equivalence}: the margin must be a positive number in the metric's units (% for accuracies)")
        from seedbench.analysis.stats.pairwise import compare
        from seedbench.analysis.stats.runs import reference_last
        from seedbench.analysis.study.power import minimal_detectable
        from seedbench.analysis.tables import COMPARE_METRIC_COLUMNS
        from seedbench.analysis.units import in_display_units, unit_of

        by_cols = columns(by)
        within_cols = columns(within) if within is not None else [c for c in ("model", "dataset") if c not in by_cols]
        check_columns(runs, within_cols, "--within")
        frame, arm = combined_arm(runs, by_cols)
        frame, label = in_display_units(frame, metric)
        order = reference_last(pd_unique(frame[arm]))
        pairing = (pair_on or pair_key(frame)) if paired else None
        result = compare(frame, label, arm, within=within_cols, pair_on=pairing, correction=correction, order=order)
        result["mde"] = minimal_detectable(result)
        if equivalence is not None:
            from seedbench.analysis.stats.equivalence import equivalence as tost

            eq = tost(frame, label, arm, within_cols, margin=equivalence, correction=correction, order=order)
            result = result.merge(eq.drop(columns=["margin"]), on=[*within_cols, "arm_a", "arm_b"], how="left", validate="one_to_one")
        empty = (result["n_a"] == 0) | (result["n_b"] == 0)
        result = result[~empty].reset_index(drop=True)
        title = (
            f"{label}: pairwise comparisons by {', '.join(by_cols)} (p-values {correction}-corrected across all rows; "
            "mde = smallest difference detectable at 80% power, alpha 0.05, at these n)"
        )
        if equivalence is not None:
            title += f"; TOST equivalence within +-{equivalence:g}{unit_of(metric) or ''}, {correction}-corrected"
        if empty.any():
            title += f"; {int(empty.sum())} pair(s) left out: an arm without finished runs (see `seedbench report`)"
        result.attrs.update(
            metric=metric,
            by=arm,
            within=within_cols,
            correction=correction,
            unit=unit_of(metric),
            unit_columns=list(COMPARE_METRIC_COLUMNS),
            left_out=int(empty.sum()),
            title=title,
        )
        return result

    def plot(
        self,
        kind: str = "box",
        metric: str | None = None,
        *,
        by: str | Sequence[str] = ARM,
        within: str | Sequence[str] | None = None,
        output: str | Path = "plot.png",
        where: str | None = None,
        target: float | None = None,
        time: str = "seconds",
    ) -> Path:
        """Across-seed distributions per arm (box/violin/strip/ecdf), learning curves (curve), profiles over tasks
        (profile), a critical-difference diagram (cd), or the time-to-`target` performance profile (time-profile).

        `metric` defaults to val_acc for the kinds drawn from the per-epoch history, test_acc otherwise;
        accuracies are drawn in percent. Returns the file written.
        """
        from seedbench.analysis.plots import plot_curves, plot_distribution
        from seedbench.analysis.units import in_display_units

        within_cols = columns(within)
        if kind not in PLOT_KINDS:
            raise ConfigError(f"--kind {kind!r}: choose one of {', '.join(PLOT_KINDS)}")
        metric = metric or ("val_acc" if kind in EPOCH_KINDS else "test_acc")
        if kind == "time-profile":
            if target is None:
                raise ConfigError("--kind time-profile needs --target, the accuracy in % to reach, e.g. --target 90")
            if time not in TIME_MEASURES:
                raise ConfigError(f"--time {time!r}: choose one of {', '.join(TIME_MEASURES)}")
            from seedbench.analysis.plots import plot_time_profile
            from seedbench.analysis.stats.time_to_target import time_ratios
            from seedbench.analysis.units import metric_label

            tasks = within_cols or [c for c in ("model", "dataset") if c not in columns(by)]
            table = self.time_to_target(target, metric, by=by, within=tasks, where=where)
            ratios = time_ratios(table, table.attrs["by"], tasks, measure=time)
            return plot_time_profile(ratios, table.attrs["by"], output, target=f"{metric_label(metric)} >= {target:g}", measure=time)
        if target is not None:
            raise ConfigError(f"--target applies to --kind time-profile, not {kind}; drop it or use --kind time-profile")
        if kind in ("profile", "cd"):
            from seedbench.analysis.plots import plot_cd, plot_profile

            runs = self._runs(where)
            check_metric(runs, metric)
            by_cols = columns(by)
            tasks = within_cols or [c for c in ("model", "dataset") if c not in by_cols]
            check_columns(runs, tasks, "--within")
            frame, arm = combined_arm(runs, by_cols)
            frame, label = in_display_units(frame, metric)
            return (plot_profile if kind == "profile" else plot_cd)(frame, label, arm, output, tasks=tasks)
        if kind == "curve":
            epochs = self.epochs(where)
            if epochs.empty:
                raise SeedbenchError("no per-epoch records to plot (matching --where)")
            check_metric(epochs, metric)
            check_columns(epochs, within_cols, "--within")
            frame, arm = combined_arm(epochs, columns(by))
            frame, label = in_display_units(frame, metric)
            return plot_curves(frame, label, arm, output, within=within_cols, order=_reference_first(frame[arm]))
        runs = self._runs(where)
        check_metric(runs, metric)
        check_columns(runs, within_cols, "--within")
        frame, arm = combined_arm(runs, columns(by))
        frame, label = in_display_units(frame, metric)
        arms = sorted(set(frame[arm].astype(str)))
        order = ["base", *[a for a in arms if a != "base"]] if "base" in arms else _reference_first(frame[arm])
        return plot_distribution(frame, label, arm, kind, output, within=within_cols, order=order)

    def html(
        self,
        path: str | Path,
        metric: str = "val_acc",
        *,
        by: str | Sequence[str] = ARM,
        within: str | Sequence[str] | None = None,
        baseline: str | None = None,
        correction: str = "holm",
        where: str | None = None,
        argv: Sequence[str] | None = None,
        target: float | None = None,
        time: str = "seconds",
    ) -> Path:
        """One self-contained HTML study report (tables, corrected comparisons, plots, decomposition, provenance).

        The baseline is `baseline`, else the reference method's arm when present. With `target`
        (% accuracy) it also holds the time to target per arm and task and its performance profile.
        """
        from seedbench.analysis.html import build_report
        from seedbench.analysis.stats.runs import default_baseline

        _correction(correction)
        if time not in TIME_MEASURES:
            raise ConfigError(f"--time {time!r}: choose one of {', '.join(TIME_MEASURES)}")
        runs = self._runs(where)
        check_metric(runs, metric)
        by_cols = columns(by)
        tasks = columns(within) if within is not None else [c for c in ("model", "dataset") if c not in by_cols]
        check_columns(runs, tasks, "--within")
        frame, arm = combined_arm(runs, by_cols)
        arms = list(pd_unique(frame[arm]))
        if baseline is not None and baseline not in {str(a) for a in arms}:
            raise ConfigError(f"baseline arm {baseline!r} has no runs; arms in the store: {', '.join(sorted(map(str, arms)))}")
        base = default_baseline(arms, baseline)
        timing = None
        if target is not None:  # from the report's metric when it has a per-epoch history, else validation accuracy
            from seedbench.analysis.units import is_accuracy

            history = metric if is_accuracy(metric) and metric in self.sql.columns("epochs") else "val_acc"
            timing = self.time_to_target(target, history, by=by, within=tasks, where=where)
        text = build_report(
            frame, metric, arm, tasks, store_dir=self.path, where=where, baseline=base, correction=correction, argv=argv, timing=timing, time=time
        )
        out = Path(path)
        out.write_text(text, encoding="utf-8")
        return out


def pd_unique(values: Any) -> list[Any]:
    """The distinct values of a column, in order of appearance."""
    import pandas as pd

    return list(pd.unique(values.astype(object)))


def _reference_first(values: Any) -> list[Any]:
    """Plot order: the reference method's arm first, the rest by name."""
    from seedbench.analysis.stats.runs import reference_arm

    reference = reference_arm(pd_unique(values))
    return [reference] if reference is not None else []
