"""`seedbench sweep --until-decided`: the sweep side of a sequential study, running seeds in rounds.

Each round runs the grid on the next seeds (finished cells are reused, so a sweep stopped half-way
resumes where it was) and reads the records of the grid's own cells; when to stop is decided by the
group-sequential test of seedbench.analysis.study.sequential (Lan-DeMets alpha spending, Holm across
the pairs of arms), which this module only feeds. docs/statistics.md explains the design and its
validation.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from seedbench.errors import ConfigError
from seedbench.sweep.grid import SweepSpec


def _runs_of(summary: Any) -> Any:
    """The sweep's own cells as flat rows (as the store's `runs` view has them)."""
    import pandas as pd

    from seedbench.record import read_record_dict
    from seedbench.store.rows import flatten_record

    rows = []
    for folder in summary.folders.values():
        record = read_record_dict(folder) if folder is not None else {}
        if record.get("config"):
            rows.append(flatten_record(record, str(folder)))
    return pd.DataFrame(rows)


def run_until_decided(
    spec: SweepSpec,
    *,
    by: str = "arm",
    metric: str = "val_acc",
    alpha: float = 0.05,
    max_seeds: int = 20,
    step: int = 5,
    first: int | None = None,
    spending: str = "obf",
    margin: float | None = None,
    run: Callable[[SweepSpec], Any],
) -> Any:
    """Run `spec` on growing seed sets until the sequential test decides every pair of arms (`by`)."""
    from seedbench.analysis.study.sequential import run_until_decided as sequential

    if not 0 < alpha < 1:
        raise ConfigError(f"--alpha {alpha}: give a level between 0 and 1, e.g. 0.05")
    if step < 1 or max_seeds < 2:
        raise ConfigError("--step must be >= 1 and --max-seeds >= 2")
    if spec.init_seeds or spec.data_seeds or spec.augment_seeds:
        raise ConfigError("--until-decided adds seeds on one stream: use --seeds (or seed_key), not crossed seed lists")
    from seedbench.registry import load_plugins

    load_plugins(spec.plugins)
    start = min(spec.seeds) if spec.seeds else 0
    arms = _arms(spec, by)
    if len(arms) < 2:
        raise ConfigError(f"--until-decided compares arms, but the grid has one {by} ({arms[0] if arms else 'none'}); give two methods or more")
    seed_col = spec.seed_key

    def run_round(seeds: list[int]):
        grid = copy.deepcopy(spec)
        grid.seeds = sorted(set(seeds))
        summary = run(grid)
        frame = _runs_of(summary)
        if frame.empty or metric not in frame.columns:
            raise ConfigError(f"--metric {metric!r}: the runs have no such column; choose e.g. val_acc, test_acc, best_val_acc")
        if by not in frame.columns:
            raise ConfigError(f"--by {by!r}: the runs have no such column; choose arm, method or a config key")
        return frame

    try:
        return sequential(
            run_round, arms, metric, alpha, max_seeds, step, by=by, seed_col=seed_col, first=first, start_seed=start, spending=spending, margin=margin
        )
    except ValueError as exc:
        raise ConfigError(f"--until-decided: {exc}") from None


def _arms(spec: SweepSpec, by: str) -> list[Any]:
    """The arms the grid will produce, known before anything runs (from the resolved cells)."""
    from seedbench.registry import get_model
    from seedbench.sweep.plan import resolve_grid

    probe = copy.deepcopy(spec)
    probe.seeds = [min(spec.seeds) if spec.seeds else 0]
    values = []
    for r in resolve_grid(probe.cells(), {"data_dir": spec.data_dir} if spec.data_dir else {}):
        if by == "arm":
            value = r.method.arm_label(r.config, get_model(r.config.model).default_init)
        elif by == "method":
            value = r.method.name
        elif by in r.params:
            value = r.params[by]
        else:
            raise ConfigError(f"--by {by!r}: neither arm, method nor a config key of the grid's cells")
        if value not in values:
            values.append(value)
    return values
