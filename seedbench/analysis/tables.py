"""Paper-style tables (Table 1 of the random-bases paper) and renderers for any result frame.

Formatting is kept apart from seedbench.analysis.stats so that the numbers can be tested without
strings, and the strings without statistics.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

FORMATS = ("terminal", "markdown", "csv", "json", "latex")
# How the paper writes dataset names in row labels ("FC-MNIST", "CNN-CIFAR10").
DATASET_LABELS = {
    "mnist": "MNIST",
    "fmnist": "FMNIST",
    "fashion-mnist": "FMNIST",
    "fashion_mnist": "FMNIST",
    "cifar10": "CIFAR10",
    "cifar-10": "CIFAR10",
    "digits": "DIGITS",
}
ROW_INDEX_NAME = "task"
EMPTY = "-"
# the comparison statistics a reader looks at first (the terminal table, the HTML report); --all-columns shows the rest
COMPARE_SHOWN = (
    "arm_a", "arm_b", "n_a", "n_b", "mean_a", "mean_b", "diff", "diff_ci_low", "diff_ci_high", "mde", "welch_p_adj", "mwu_p_adj",
    "p_a_gt_b", "std_ratio", "bf_p_adj", "hedges_g", "paired_n", "paired_t_p_adj", "wilcoxon_p_adj", "tost_p_adj", "equivalent",
)  # fmt: skip
# the columns of compare() (with mde and TOST) that hold the metric's own units: renamed "diff (%)" for accuracies
COMPARE_METRIC_COLUMNS = (
    "mean_a", "mean_b", "std_a", "std_b", "diff", "diff_ci_low", "diff_ci_high", "diff_boot_ci_low", "diff_boot_ci_high",
    "paired_diff", "paired_diff_ci_low", "paired_diff_ci_high", "mde", "margin", "diff_ci90_low", "diff_ci90_high",
)  # fmt: skip
COMPACT_WIDTH = 120  # the terminal width `seedbench compare` fits by default


# --------------------------------------------------------------------------------------------
# Table 1


def dataset_label(name: Any) -> str:
    return DATASET_LABELS.get(str(name).lower(), str(name).upper())


def row_label(key: dict[str, Any], D: Sequence[Any] = ()) -> str:
    """ "FC-MNIST D=101,770": the model upper-cased, the paper's dataset spelling, the size.

    Columns other than model/dataset keep their value as written. D is appended only when the
    row's runs agree on a parameter count (several distinct counts are all listed).
    """
    parts = []
    for col, value in key.items():
        if col == "model":
            parts.append(str(value).upper())
        elif col == "dataset":
            parts.append(dataset_label(value))
        else:
            parts.append(str(value))
    label = "-".join(parts)
    counts = sorted({int(d) for d in D if not pd.isna(d)})
    if counts:
        label += " D=" + "/".join(f"{d:,}" for d in counts)
    return label


def format_cell(
    mean: float,
    std: float,
    ratio: float | None,
    *,
    digits: int = 2,
    ratio_digits: int = 2,
    is_baseline: bool = False,
) -> str:
    """ "93.89 +- 0.02 (0.96)": mean +- std over seeds and the mean's ratio to the baseline's.

    The baseline's own cell reads "(1)", as in the paper. With one seed there is no std to show
    and the cell is just the mean; no ratio is shown when the row has no baseline value.
    """
    if mean is None or math.isnan(mean):
        return EMPTY
    text = f"{mean:.{digits}f}"
    if std is not None and not math.isnan(std):
        text += f" +- {std:.{digits}f}"
    if is_baseline:
        text += " (1)"
    elif ratio is not None and math.isfinite(ratio):
        text += f" ({ratio:.{ratio_digits}f})"
    return text


def _failure_note(n_failed: int, n_diverged: int) -> str:
    notes = [f"{n} {what}" for n, what in ((n_diverged, "diverged"), (n_failed, "failed")) if n]
    return f" [{', '.join(notes)}]" if notes else ""


def table1(
    df: pd.DataFrame,
    metric: str,
    baseline: Any,
    rows: Sequence[str] = ("model", "dataset"),
    cols: str = "method",
    *,
    scale: float = 1.0,
    digits: int = 2,
    ratio_digits: int = 2,
    status_col: str = "status",
    param_col: str = "D",
) -> pd.DataFrame:
    """The random-bases paper's Table 1: one row per task, one column per method, string cells.

    Cells are "mean +- std (ratio to baseline)" over finished runs; the baseline column comes
    first. Failed or diverged runs are appended as "[2 diverged]" rather than hidden: the paper's
    format has no place for them, but a mean over survivors alone would overstate a method.
    `scale` multiplies the metric before formatting (100 turns stored fractions into percent);
    `digits` is for mean and std, `ratio_digits` for the ratio (2 in the paper).
    """
    rows = [rows] if isinstance(rows, str) else list(rows)
    missing = [c for c in (*rows, cols, metric) if c not in df.columns]
    if missing:
        raise KeyError(f"column(s) {missing} not in the table (columns: {list(df.columns)})")
    methods = sorted(pd.unique(df[cols].astype(object)), key=str)
    methods = [m for m in methods if m == baseline] + [m for m in methods if m != baseline]
    table: dict[str, dict[Any, str]] = {}
    for key, group in df.groupby(rows, sort=True, dropna=False):
        key = dict(zip(rows, key if isinstance(key, tuple) else (key,)))
        D = group[param_col].tolist() if param_col in group.columns else []
        cells = _row_cells(group, metric, cols, baseline, methods, scale, (digits, ratio_digits), status_col)
        table[row_label(key, D)] = cells
    out = pd.DataFrame.from_dict(table, orient="index", columns=methods).fillna(EMPTY)
    out.index.name = ROW_INDEX_NAME
    out.columns.name = None
    out.attrs.update(metric=metric, baseline=baseline, scale=scale)
    return out


def _row_cells(
    group: pd.DataFrame,
    metric: str,
    cols: str,
    baseline: Any,
    methods: list[Any],
    scale: float,
    digits: tuple[int, int],
    status_col: str,
) -> dict[Any, str]:
    from seedbench.analysis.stats.runs import select_arm, split_by_status  # the stats package imports scipy (~1 s), needed only here

    splits = {m: split_by_status(select_arm(group, cols, m), metric, status_col) for m in methods}
    means = {m: float(np.mean(s.values)) * scale if len(s.values) else math.nan for m, s in splits.items()}
    base_mean = means.get(baseline, math.nan)
    cells = {}
    for m, s in splits.items():
        if len(s.values) == 0 and not (s.n_failed or s.n_diverged):
            cells[m] = EMPTY
            continue
        std = float(np.std(s.values, ddof=1)) * scale if len(s.values) > 1 else math.nan
        ratio = means[m] / base_mean if base_mean and math.isfinite(base_mean) else None
        cell = format_cell(means[m], std, ratio, digits=digits[0], ratio_digits=digits[1], is_baseline=(m == baseline))
        cells[m] = cell + _failure_note(s.n_failed, s.n_diverged)
    return cells


def variance_table(vs: pd.DataFrame, *, by: str | None = None, digits: int = 2, scale: float = 1.0) -> pd.DataFrame:
    """Strings for a variance_study() frame: "ResNet50 | Kaiming-normal | 92.29 +- 0.35 | max 92.74".

    Keeps the grouping and arm columns, formats mean +- std and the extremes, and shows the
    corrected Brown-Forsythe p-value against the baseline ("baseline" on the baseline's row).
    `by` (the arm column) defaults to the one variance_study() recorded in ``vs.attrs``.
    """
    by = by or vs.attrs.get("by")
    if by is None or by not in vs.columns:
        raise ValueError("variance_table needs the arm column: pass by=, as given to variance_study()")
    keys = list(vs.columns[: list(vs.columns).index(by) + 1])
    out = vs[keys].astype(str)
    out["mean +- std"] = [format_cell(m * scale, s * scale, None, digits=digits) for m, s in zip(vs["mean"], vs["std"])]
    out["max"] = [EMPTY if math.isnan(x) else f"max {x * scale:.{digits}f}" for x in vs["max"]]
    out["min"] = [EMPTY if math.isnan(x) else f"min {x * scale:.{digits}f}" for x in vs["min"]]
    out["n"] = [f"{n}{_failure_note(f, d)}" for n, f, d in zip(vs["n"], vs["n_failed"], vs["n_diverged"])]
    correction = vs["correction"].iloc[0] if len(vs) else "holm"
    out[f"BF p vs baseline ({correction})"] = [
        "baseline" if arm == base else (EMPTY if math.isnan(p) else f"{p:.3g}") for arm, base, p in zip(vs[by], vs["baseline"], vs["bf_p_adj"])
    ]
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# compare at a glance


def _num(x: Any, digits: int = 2, signed: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return EMPTY
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def _p(x: Any) -> str:
    return EMPTY if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3g}"


def compare_view(result: pd.DataFrame, within: Sequence[str] = ()) -> pd.DataFrame:
    """The comparison a reader looks at first, in short columns that fit COMPACT_WIDTH with arm names folded.

    Task as one label ("FC-DIGITS"), the two arms, their n, the difference with its Welch 95%
    interval, the corrected Welch p-value (and, where seeds are shared, the corrected paired one)
    and mde; with TOST its corrected p and verdict. The means, P(A>B), Hedges' g, the spread tests
    and the raw p-values are in `--wide` (the means also in `seedbench report`). Units are named in
    the headers from the frame's attrs.
    """
    unit = result.attrs.get("unit")

    def head(name: str) -> str:
        return f"{name} ({unit})" if unit else name

    within = [c for c in within if c in result.columns]
    out = pd.DataFrame(index=result.index)
    if within:
        out["task"] = [row_label(dict(zip(within, key))) for key in result[within].itertuples(index=False, name=None)]
    out["A"] = result["arm_a"].astype(str)
    out["B"] = result["arm_b"].astype(str)
    out["n A/B"] = [f"{a}/{b}" for a, b in zip(result["n_a"], result["n_b"])]
    out[head("A-B") + " [95% CI]"] = [
        f"{_num(d, signed=True)} [{_num(lo)}, {_num(hi)}]" if not math.isnan(d) else EMPTY
        for d, lo, hi in zip(result["diff"], result["diff_ci_low"], result["diff_ci_high"])
    ]
    out["p adj"] = [_p(x) for x in result["welch_p_adj"]]
    if "paired_t_p_adj" in result.columns and (result.get("paired_n", pd.Series(dtype=float)).fillna(0) > 1).any():
        out["paired p adj"] = [_p(x) for x in result["paired_t_p_adj"]]
    if "mde" in result.columns:
        out[head("mde")] = [_num(x) for x in result["mde"]]
    if "tost_p_adj" in result.columns:
        out["TOST p adj"] = [_p(x) for x in result["tost_p_adj"]]
        out["equivalent"] = ["yes" if e is True else ("no" if e is False else EMPTY) for e in result["equivalent"]]
    out = out.reset_index(drop=True)
    out.attrs = {**{k: v for k, v in result.attrs.items() if k not in ("unit", "unit_columns")}, "wrap": ["A", "B"]}
    return out


# --------------------------------------------------------------------------------------------
# time to target


def _time_text(value: float, measure: str) -> str:
    if math.isnan(value):
        return EMPTY
    if math.isinf(value):
        return "inf"
    if measure == "seconds":
        return f"{value:.3g}" if value < 1000 else f"{value:.0f}"
    return f"{value:g}"


def format_time(median: float, low: float, high: float, measure: str) -> str:
    """ "4 [3, 6]": the median and its interval, "3.5 [2, inf]" when the interval is open above;
    "never" where at least half of the runs never reached the target (and the interval's low end too)."""
    if math.isinf(median) and (math.isnan(low) or math.isinf(low)):
        return "never"
    text = "never" if math.isinf(median) else _time_text(median, measure)
    if math.isnan(low) or math.isnan(high):
        return text
    return f"{text} [{_time_text(low, measure)}, {_time_text(high, measure)}]"


def time_to_target_table(tt: pd.DataFrame) -> pd.DataFrame:
    """A time_to_target() frame as strings: who got to the target, on how many seeds, how fast.

    "reached" reads "4/5 (80%)": runs that never reached the target are censored, counted in the
    denominator and never dropped. Times are "median [interval]" with the interval's level in "CI".
    """
    by = tt.attrs["by"]
    within = list(tt.attrs.get("within", []))
    out = tt[[*within, by]].astype(str)
    out["reached"] = [f"{r}/{n} ({100 * r / n:.0f}%)" if n else "0/0" for r, n in zip(tt["reached"], tt["n"])]
    for measure in ("epoch", "step", "seconds"):
        out[measure] = [
            format_time(m, lo, hi, measure) for m, lo, hi in zip(tt[f"{measure}_median"], tt[f"{measure}_ci_low"], tt[f"{measure}_ci_high"])
        ]
    out["CI"] = [EMPTY if math.isnan(level) else f"{100 * level:.3g}%" for level in tt["ci_level"]]
    notes = [
        "; ".join(text for k, text in ((d, f"incl. {d} diverged"), (left, f"{left} failed/unfinished left out")) if k)
        for d, left in zip(tt["n_diverged"], tt["n_left_out"])
    ]
    if any(notes):
        out["notes"] = notes
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# renderers


def _has_index(df: pd.DataFrame) -> bool:
    """Whether the index carries information (Table 1's row labels) rather than 0..n-1."""
    return not (isinstance(df.index, pd.RangeIndex) and df.index.name is None)


def _flat(df: pd.DataFrame) -> pd.DataFrame:
    """The index as an ordinary first column, so every format shows the row labels."""
    if not _has_index(df):
        return df.reset_index(drop=True)
    flat = df.reset_index()
    first = flat.columns[0]
    if first == "index":
        flat = flat.rename(columns={"index": ""})
    return flat


def _text(value: Any, float_format: str) -> str:
    if value is None:
        return EMPTY
    if isinstance(value, (float, np.floating)):
        return EMPTY if math.isnan(value) else float_format.format(value)
    return str(value)


def _text_rows(df: pd.DataFrame, float_format: str) -> tuple[list[str], list[list[str]], list[bool]]:
    """Header, cell strings, and which columns are numeric (right-aligned in human formats)."""
    flat = _flat(df)
    header = [str(c) for c in flat.columns]
    body = [[_text(v, float_format) for v in row] for row in flat.itertuples(index=False, name=None)]
    numeric = [pd.api.types.is_numeric_dtype(flat[c]) and not pd.api.types.is_bool_dtype(flat[c]) for c in flat.columns]
    return header, body, numeric


def render_terminal(
    df: pd.DataFrame,
    *,
    title: str | None = None,
    console: Console | None = None,
    float_format: str = "{:.4g}",
    max_width: int | None = None,
) -> str:
    """A rich Table; printed to `console` when one is given, and always returned as plain text.

    The text is as wide as the table needs, so nothing is cut; with `max_width` it is at most that
    wide, the columns named in ``df.attrs["wrap"]`` (arm names) folding onto a second line.
    """
    header, body, numeric = _text_rows(df, float_format)
    wrap = set(df.attrs.get("wrap", ())) if max_width else set()
    # Text, not markup: "[2, inf]" in a cell or "[95% CI]" in a title is text to show, not a rich style tag
    table = Table(title=Text(title) if title else None, box=box.SIMPLE_HEAVY, collapse_padding=bool(max_width))
    for name, is_num in zip(header, numeric):
        table.add_column(Text(name), justify="right" if is_num else "left", no_wrap=name not in wrap, overflow="fold")
    for row in body:
        table.add_row(*map(Text, row))
    if console is not None:
        console.print(table)
    width = max(80, sum(max([len(h), *(len(r[i]) for r in body)]) + 3 for i, h in enumerate(header)) + 4)
    if max_width:
        width = min(width, max_width)
    text_console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
    text_console.print(table)
    return text_console.file.getvalue()


def render_markdown(df: pd.DataFrame, *, title: str | None = None, float_format: str = "{:.4g}") -> str:
    """A GitHub-flavoured pipe table (pandas' to_markdown would need tabulate, not a dependency)."""
    header, body, numeric = _text_rows(df, float_format)

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    aligns = ["---:" if is_num else ":---" for is_num in numeric]
    lines = ([f"**{title}**", ""] if title else []) + [line(header), line(aligns), *(line(r) for r in body)]
    return "\n".join(lines) + "\n"


def render_csv(df: pd.DataFrame) -> str:
    """Full-precision CSV (no float formatting: this is the machine-readable output)."""
    return _flat(df).to_csv(index=False)


def render_json(df: pd.DataFrame) -> str:
    """A list of records, one per row; NaN becomes null, the frame's attrs are left out."""
    flat = _flat(df)
    records = json.loads(flat.to_json(orient="records", double_precision=15))
    return json.dumps(records, indent=1) + "\n"


_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def latex_escape(text: str) -> str:
    escaped = "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)
    return escaped.replace("+-", r"$\pm$")


def render_latex(df: pd.DataFrame, *, title: str | None = None, float_format: str = "{:.4g}") -> str:
    """A booktabs tabular (a tiny writer: pandas' to_latex does not escape or typeset +- for us)."""
    header, body, numeric = _text_rows(df, float_format)
    spec = "".join("r" if is_num else "l" for is_num in numeric)
    lines = []
    if title:
        lines.append(f"% {latex_escape(title)}")
    lines += [f"\\begin{{tabular}}{{{spec}}}", r"\toprule", " & ".join(map(latex_escape, header)) + r" \\", r"\midrule"]
    lines += [" & ".join(map(latex_escape, row)) + r" \\" for row in body]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def render(
    df: pd.DataFrame,
    fmt: str,
    *,
    title: str | None = None,
    console: Console | None = None,
    float_format: str = "{:.4g}",
    max_width: int | None = None,
) -> str:
    """Any result frame as text in one of FORMATS (terminal, markdown, csv, json, latex).

    Human formats round floats with `float_format` (4 significant digits keeps small p-values
    readable); csv and json keep full precision for further analysis. Columns in a metric's units
    (``df.attrs["unit_columns"]``) are headed with the unit in every format: "diff (%)".
    `max_width` caps the terminal text (render_terminal).
    """
    from seedbench.analysis.units import name_units

    df = name_units(df, df.attrs.get("unit_columns", ()), df.attrs.get("unit"))
    if fmt == "terminal":
        return render_terminal(df, title=title, console=console, float_format=float_format, max_width=max_width)
    if fmt == "markdown":
        return render_markdown(df, title=title, float_format=float_format)
    if fmt == "csv":
        return render_csv(df)
    if fmt == "json":
        return render_json(df)
    if fmt == "latex":
        return render_latex(df, title=title, float_format=float_format)
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
