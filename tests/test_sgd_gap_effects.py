"""experiments/sgd_gap_effects.py recovers known effects from a balanced 2^(4-1) design with seed blocks."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def _load():
    sys.path.insert(0, str(EXPERIMENTS))
    try:
        spec = importlib.util.spec_from_file_location("sgd_gap_effects", EXPERIMENTS / "sgd_gap_effects.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(EXPERIMENTS))


def _runs(effects_pts: dict[str, float], noise: float, seed_shift: list[float]) -> pd.DataFrame:
    gap = _load()
    from sgd_gap import FACTORS, HIGH, design

    rng = np.random.default_rng(0)
    rows = []
    for point in design():
        for seed in range(len(seed_shift)):
            acc = 85.0 + seed_shift[seed] + rng.normal(0, noise)
            for factor in FACTORS:
                acc += effects_pts.get(factor, 0.0) / 2 * (1 if point[factor] == HIGH[factor] else -1)
            rows.append({**point, "seed": seed, "val_acc": acc / 100})
    return gap, pd.DataFrame(rows)


def test_effects_equal_known_ones_and_seed_blocks_are_removed() -> None:
    truth = {"augment_clip": -0.5, "augment_pad": 0.0, "val_split": -0.8, "lr": 1.3}
    gap, runs = _runs(truth, noise=0.2, seed_shift=[0.0, 2.0, -2.0, 1.0, -1.0])
    table = gap.effects(runs, "val_acc").set_index("term")
    for factor, value in truth.items():
        row = table[table.index.str.contains(factor)].iloc[0]
        assert row.low < value < row.high, (factor, row)
        assert abs(row.effect - value) < 0.25
    # the seed shifts (sd 1.6 points) are blocks, not noise: the residual is the 0.2 we drew
    assert table.attrs["residual_sd"] < 0.3
    assert table.attrs["df_resid"] == 40 - 1 - 7 - 4
    # each main effect equals the plain difference of the two halves of 20
    coded = gap.coded(runs)
    for factor, letter in gap.LETTERS.items():
        diff = (runs.val_acc[coded[letter] > 0].mean() - runs.val_acc[coded[letter] < 0].mean()) * 100
        assert table[table.index.str.contains(factor)].iloc[0].effect == pytest.approx(diff)


def test_values_outside_the_design_are_refused() -> None:
    gap, runs = _runs({}, noise=0.1, seed_shift=[0.0] * 5)
    runs.loc[0, "augment_pad"] = "replicate"
    with pytest.raises(SystemExit, match="augment_pad"):
        gap.effects(runs, "val_acc")
