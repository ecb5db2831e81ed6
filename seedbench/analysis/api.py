"""`Store`: a results store as Python objects - runs as DataFrames, reports, comparisons and plots.

    from seedbench import Store
    store = Store("storage")
    store.report(baseline="sgd")                      # Table-1 layout, a DataFrame
    store.compare(metric="test_acc", by="arm")        # every pair of arms, corrected p-values
    store.plot(kind="box", metric="test_acc", output="acc.png")

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
PLOT_KINDS = ("box", "violin", "strip", "ecdf", "curve", "profile", "cd")


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
    ) -> tuple[pd.DataFrame, str]:
        """A summary (default), the Table-1 layout (`baseline`: an arm, e.g. "sgd") or a variance study; (table, title)."""
        runs = self._runs(where)
        check_metric(runs, metric)  # a typo is answered before scipy is imported (~1 s)
        _correction(correction)
        from seedbench.analysis.report import summary_table
        from seedbench.analysis.stats.spread import variance_study
        from seedbench.analysis.tables import table1, variance_table

        if study == "variance":
            by_cols = columns(by) or ["init", "stabilize", "rewire"]
            within_cols = columns(within) or ["method", "model", "dataset"]
            check_columns(runs, within_cols, "--within")
            frame, arm = combined_arm(runs, by_cols)
            base = baseline_arm or ("base" if "base" in set(frame[arm].astype(str)) else None)
            result = variance_table(variance_study(frame, metric, arm, within_cols, baseline=base, correction=correction), by=arm, scale=100.0)
            return result, f"variance study: {metric} (%) by {', '.join(by_cols)}; Brown-Forsythe vs baseline, {correction}-corrected"
        if baseline:
            arms = set(runs[ARM].astype(str))
            if baseline not in arms:
                raise ConfigError(f"baseline arm {baseline!r} has no runs; arms in the store: {', '.join(sorted(arms))}")
            frame = runs.assign(method=runs[ARM])
            return table1(frame, metric, baseline, scale=100.0), f"{metric} (%), mean +- std over seeds (ratio to {baseline})"
        return summary_table(runs.assign(method=runs[ARM])), "seedbench report: accuracy %, mean +- std over finished seeds"

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
        the minimal detectable effect at these n (`mde`), and with `equivalence` a TOST within +-margin."""
        runs = self._runs(where)
        check_metric(runs, metric)  # a typo is answered before scipy is imported (~1 s)
        _correction(correction)
        from seedbench.analysis.stats.pairwise import compare
        from seedbench.analysis.study.power import minimal_detectable

        by_cols = columns(by)
        within_cols = columns(within) if within is not None else [c for c in ("model", "dataset") if c not in by_cols]
        check_columns(runs, within_cols, "--within")
        frame, arm = combined_arm(runs, by_cols)
        result = compare(frame, metric, arm, within=within_cols, pair_on=(pair_on or pair_key(frame)) if paired else None, correction=correction)
        result["mde"] = minimal_detectable(result)
        if equivalence is not None:
            from seedbench.analysis.stats.equivalence import equivalence as tost

            if not equivalence > 0:
                raise ConfigError(f"--equivalence {equivalence}: the margin must be a positive number in metric units")
            eq = tost(frame, metric, arm, within_cols, margin=equivalence, correction=correction)
            result = result.merge(eq.drop(columns=["margin"]), on=[*within_cols, "arm_a", "arm_b"], how="left", validate="one_to_one")
        return result

    def plot(
        self,
        kind: str = "box",
        metric: str = "test_acc",
        *,
        by: str | Sequence[str] = ARM,
        within: str | Sequence[str] | None = None,
        output: str | Path = "plot.png",
        where: str | None = None,
    ) -> Path:
        """Across-seed distributions per arm (box/violin/strip/ecdf) or learning curves (curve); returns the file."""
        from seedbench.analysis.plots import plot_curves, plot_distribution

        within_cols = columns(within)
        if kind not in PLOT_KINDS:
            raise ConfigError(f"--kind {kind!r}: choose one of {', '.join(PLOT_KINDS)}")
        if kind in ("profile", "cd"):
            from seedbench.analysis.plots import plot_cd, plot_profile

            runs = self._runs(where)
            check_metric(runs, metric)
            by_cols = columns(by)
            tasks = within_cols or [c for c in ("model", "dataset") if c not in by_cols]
            check_columns(runs, tasks, "--within")
            frame, arm = combined_arm(runs, by_cols)
            return (plot_profile if kind == "profile" else plot_cd)(frame, metric, arm, output, tasks=tasks)
        if kind == "curve":
            epochs = self.epochs(where)
            if epochs.empty:
                raise SeedbenchError("no per-epoch records to plot (matching --where)")
            check_metric(epochs, metric)
            check_columns(epochs, within_cols, "--within")
            frame, arm = combined_arm(epochs, columns(by))
            return plot_curves(frame, metric, arm, output, within=within_cols)
        runs = self._runs(where)
        check_metric(runs, metric)
        check_columns(runs, within_cols, "--within")
        frame, arm = combined_arm(runs, columns(by))
        arms = sorted(set(frame[arm].astype(str)))
        order = ["base", *[a for a in arms if a != "base"]] if "base" in arms else None
        return plot_distribution(frame, metric, arm, kind, output, within=within_cols, order=order)

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
    ) -> Path:
        """One self-contained HTML study report (tables, corrected comparisons, plots, decomposition, provenance)."""
        from seedbench.analysis.html import build_report

        _correction(correction)
        runs = self._runs(where)
        check_metric(runs, metric)
        by_cols = columns(by)
        tasks = columns(within) if within is not None else [c for c in ("model", "dataset") if c not in by_cols]
        check_columns(runs, tasks, "--within")
        frame, arm = combined_arm(runs, by_cols)
        text = build_report(frame, metric, arm, tasks, store_dir=self.path, where=where, baseline=baseline, correction=correction, argv=argv)
        out = Path(path)
        out.write_text(text, encoding="utf-8")
        return out
