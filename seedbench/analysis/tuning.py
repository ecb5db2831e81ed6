"""What a tuning study did, per method and workload: its search space, its budget, the chosen values,
and how validation accuracy moved with the learning rate across the trials (a sensitivity plot).

A tuned comparison is only as fair as its budgets were equal and its optimum clear: a method whose
chosen lr sits at the edge of its range, or on a lone spike among flat neighbours, was not really
tuned. So the report shows every trial, not only the winner. The data come from the study's file
(`<store>/tuned/<study>.json`, seedbench.sweep.tuned), which holds validation accuracies only.
Accuracies are shown in percent, the unit named in every header and axis.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from seedbench.analysis.plots import output_format
from seedbench.analysis.units import metric_label, scale_of
from seedbench.methods.space import parse_range

TUNED_METRIC = "val_acc"  # what selection ranked (seedbench.sweep.tune.METRIC); the study file names it too
PANEL_W, PANEL_H, PANEL_COLS = 4.2, 3.3, 3


def load_tuning(store: Path, study: str | None = None) -> list[dict[str, Any]]:
    """One study's document, or every study's in the store (sorted by name); checked against its version."""
    from seedbench.sweep.tuned import list_studies, read_study

    names = [study] if study is not None else list_studies(store)
    return [read_study(store, name) for name in names]


def _metric(doc: dict[str, Any]) -> str:
    return str(doc.get("selection", {}).get("metric", TUNED_METRIC))


def _values_text(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())


def budget_text(doc: dict[str, Any]) -> str:
    """'16 trials x 3 seeds (100-102) x 5 epochs', with the halving rungs when there were any."""
    from seedbench.sweep.tuned import seed_text

    b = doc["budget"]
    text = f"{b['trials']} trials x {len(b['seeds'])} seeds ({seed_text(b['seeds'])}) x {b['epochs']} epochs"
    if b.get("halving"):
        text += f"; successive halving, eta {b['halving']}: " + ", ".join(f"{r['trials']}@{r['epochs']}ep" for r in b["rungs"])
    return text


def tuning_summary(doc: dict[str, Any]) -> pd.DataFrame:
    """Per method and workload: the search space, the budget, the chosen values and their validation accuracy."""
    if not doc:
        return pd.DataFrame()
    metric = _metric(doc)
    scale, label = scale_of(metric), metric_label(metric)
    rows = []
    for method, entry in doc["methods"].items():
        space = "; ".join(f"{k}: {parse_range(v, k).describe()}" for k, v in entry["space"].items())
        for work, result in entry["workloads"].items():
            rows.append(
                {
                    "study": doc["study"],
                    "method": method,
                    "workload": work,
                    "space": space,
                    "budget": budget_text(doc),
                    "chosen": _values_text(result["chosen"]),
                    "trial": result["trial"],
                    label: result[metric] * scale,
                    f"std {label}": result.get("std", math.nan) * scale,
                }
            )
    frame = pd.DataFrame(rows)
    frame.attrs["title"] = f"tuning study {doc['study']} (version {doc.get('version')}): chosen on {metric}, mean over the tuning seeds"
    return frame


def chosen_lines(doc: dict[str, Any]) -> list[str]:
    """Two lines per method and workload, for a terminal of any width: what was chosen, from what space."""
    metric = _metric(doc)
    scale, label = scale_of(metric), metric_label(metric)
    lines = []
    for method, entry in doc["methods"].items():
        space = "; ".join(f"{k} {parse_range(v, k).describe()}" for k, v in entry["space"].items())
        for work, result in entry["workloads"].items():
            lines.append(
                f"{method} {work}: {_values_text(result['chosen'])} (trial {result['trial']} of {len(result['trials'])}), "
                f"{label} {result[metric] * scale:.2f} +- {result.get('std', math.nan) * scale:.2f}"
            )
            lines.append(f"    searched: {space}")
    return lines


def tuning_trials(doc: dict[str, Any]) -> pd.DataFrame:
    """Every trial of every method and workload: its values, the epochs of the last rung it ran, its
    validation accuracy there (mean and std over the tuning seeds) and whether it was chosen."""
    if not doc:
        return pd.DataFrame()
    metric = _metric(doc)
    scale, label = scale_of(metric), metric_label(metric)
    rows = []
    for method, entry in doc["methods"].items():
        for work, result in entry["workloads"].items():
            for trial in result["trials"]:
                last = trial["rungs"][-1] if trial["rungs"] else {}
                rows.append(
                    {
                        "method": method,
                        "workload": work,
                        "trial": trial["trial"],
                        **trial["values"],
                        "epochs": trial["epochs"],
                        label: trial[metric] * scale if trial[metric] is not None else math.nan,
                        f"std {label}": last.get("std", math.nan) * scale,
                        "chosen": trial["trial"] == result["trial"],
                    }
                )
    return pd.DataFrame(rows)


def sensitivity_key(space: dict[str, Any]) -> str | None:
    """The key the sensitivity plot puts on x: lr when it was searched, else the first searched key."""
    searched = [k for k, v in space.items() if parse_range(v, k).kind != "fixed"]
    return "lr" if "lr" in searched else (searched[0] if searched else None)


def plot_sensitivity(doc: dict[str, Any], out_path: str | Path) -> Path:
    """Validation accuracy against lr, one panel per method and workload, every trial a point.

    Trials pruned by successive halving are hollow (their accuracy is at fewer epochs); the chosen
    trial is a red star, its values in the panel's title.
    """
    fmt = output_format(out_path)
    metric = _metric(doc)
    scale, label = scale_of(metric), metric_label(metric)
    final = doc["budget"]["epochs"]
    panels = [(m, w, e, r) for m, e in doc["methods"].items() for w, r in e["workloads"].items()]
    cols = min(PANEL_COLS, max(len(panels), 1))
    rows = math.ceil(max(len(panels), 1) / cols)
    fig = Figure(figsize=(PANEL_W * cols, PANEL_H * rows + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    fig.suptitle(f"tuning study {doc['study']}: {label} per trial", fontsize=10)
    for n, (method, work, entry, result) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, n + 1)
        key = sensitivity_key(entry["space"])
        if key is None:
            continue
        r = parse_range(entry["space"][key], key)
        for full, style in ((True, {"color": "tab:blue"}), (False, {"facecolors": "none", "edgecolors": "tab:gray"})):
            trials = [t for t in result["trials"] if (t["epochs"] == final) == full and t[metric] is not None]
            if trials:
                ax.scatter(
                    [t["values"][key] for t in trials],
                    [t[metric] * scale for t in trials],
                    s=22,
                    label=f"{final} epoch{'s' if final != 1 else ''}" if full else "pruned (fewer epochs)",
                    **style,
                )
        ax.scatter([result["chosen"][key]], [result[metric] * scale], marker="*", s=180, color="tab:red", zorder=3, label="chosen")
        if r.log:
            ax.set_xscale("log")
        if r.kind in ("log_uniform", "uniform", "integer"):  # the whole search range: a choice at its edge shows as one
            low, high = r.bounds()
            for end in (low, high):
                ax.axvline(end, color="tab:gray", linestyle=":", linewidth=1)
            ax.set_xlim(*((low / 1.4, high * 1.4) if r.log else (low - 0.05 * (high - low), high + 0.05 * (high - low))))
        ax.set_xlabel(key)
        ax.set_ylabel(label)
        n_trials, n_seeds = doc["budget"]["trials"], len(doc["budget"]["seeds"])
        ax.set_title(f"{method} {work}, {n_trials} trials x {n_seeds} seeds\nchosen {key}={result['chosen'][key]:.4g}", fontsize=9)
        ax.grid(alpha=0.3)
        if n == 0:
            ax.legend(fontsize=7, loc="lower left")
    path = Path(out_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format=fmt, dpi=120)
    return path


def tuning_html(store: Path | None, tmp: Path, table: Callable[[pd.DataFrame, str], str], image: Callable[[Path, str], str]) -> str:
    """The HTML report's tuning section: per study, the summary table and the sensitivity plot.

    `table` and `image` are the report's own renderers (seedbench.analysis.html), passed in so that
    this module stays below the report."""
    docs = load_tuning(Path(store)) if store is not None else []
    if not docs:
        return "<p>No tuning study in this store: the methods ran at the learning rates of their tables (`seedbench tune` compares them on equal budgets).</p>"
    parts = []
    for doc in docs:
        summary = tuning_summary(doc)
        parts.append(table(summary.drop(columns=["study"]), summary.attrs["title"]))
        plot = plot_sensitivity(doc, tmp / f"tuning-{doc['study']}.png")
        parts.append(image(plot, f"{doc['study']}: validation accuracy per trial against lr; the chosen trial is the red star"))
    return "".join(parts)
