"""Arms whose cells come from more than one version of their method's code.

Every record carries `code_sha256`, a hash of its method's own source (seedbench/provenance.py). A
sweep never reuses a cell whose code changed without being told to (`--keep-stale`), and redoing
only some seeds leaves an arm whose seeds were trained by different code: its mean and spread then
mix two experiments. The reports flag such an arm, per task, rather than hide it; a store made
before records carried a code version counts its runs as one "unrecorded" version.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from seedbench.analysis.stats.runs import DIVERGED, FINISHED

CODE_COLUMN = "code_sha256"
UNRECORDED = "unrecorded"
VERSIONS_COLUMN = "code versions"  # the column a flagged table gains


def code_version_counts(runs: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Per group of `keys`: its ended runs (finished or diverged) and how many code versions made them.

    Columns: the keys, `runs`, `code_versions` (distinct versions) and `versions` (their first 12
    hex digits, "unrecorded" for runs without one), sorted by the keys.
    """
    keys = [k for k in keys if k in runs.columns]
    columns = [*keys, "runs", "code_versions", "versions"]
    if runs.empty or not keys or "status" not in runs.columns:
        return pd.DataFrame(columns=columns)
    ended = runs[runs["status"].isin([FINISHED, DIVERGED])]
    code = ended[CODE_COLUMN] if CODE_COLUMN in ended.columns else pd.Series(None, index=ended.index, dtype=object)
    code = code.astype(object).where(code.notna(), UNRECORDED).map(lambda v: str(v)[:12])
    rows = []
    for key, group in code.groupby([ended[k] for k in keys], sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        versions = sorted(set(group))
        rows.append({**dict(zip(keys, key)), "runs": len(group), "code_versions": len(versions), "versions": ", ".join(versions)})
    return pd.DataFrame(rows, columns=columns)


def mixed_code_versions(runs: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """The groups of `keys` whose ended runs come from more than one code version."""
    counts = code_version_counts(runs, keys)
    return counts[counts["code_versions"] > 1].reset_index(drop=True)


def code_version_note(mixed: pd.DataFrame, keys: Sequence[str]) -> str:
    """One sentence naming the mixed groups, for a table's title or caption ("" when there are none)."""
    if mixed.empty:
        return ""
    keys = [k for k in keys if k in mixed.columns]
    named = [f"{' '.join(str(row[k]) for k in keys)} ({row['code_versions']})" for _, row in mixed.iterrows()]
    shown = ", ".join(named[:6]) + (f" and {len(named) - 6} more" if len(named) > 6 else "")
    return f"mixed code versions: {shown} - their seeds were trained by different code (docs/store.md, 'Code versions')"


def flag_code_versions(table: pd.DataFrame, runs: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """`table` (one row per group of `keys`) with a "code versions" column when any group mixes versions.

    A table where every group has one version is returned as it is; `.attrs["code_note"]` says which
    groups mix, for the title.
    """
    mixed = mixed_code_versions(runs, keys)
    if mixed.empty:
        return table
    keys = [k for k in keys if k in table.columns and k in mixed.columns]
    counts = code_version_counts(runs, keys)
    merged = table.merge(counts[[*keys, "code_versions"]], on=keys, how="left")
    out = table.copy()
    out[VERSIONS_COLUMN] = merged["code_versions"].fillna(0).astype(int).to_numpy()
    out.attrs.update(table.attrs, code_note=code_version_note(mixed, keys))
    return out
