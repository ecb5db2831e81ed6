"""A sweep spec (CLI flags, a YAML file or the Python API) -> the list of cells.

A cell is a method, a model, a dataset, its seeds, presets and overrides, exactly as the user wrote
them; seedbench.sweep.plan resolves it (aliases, presets, method defaults) and validates it on the
driver. Seed streams can be crossed: `init_seeds: 0-9` with `data_seeds: 0-9` gives 100 cells per arm,
each with its own weight-init and data-order seed, for a variance decomposition.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seedbench.errors import ConfigError, read_yaml

SEED_KEYS = ("seed", "init_seed", "data_seed", "augment_seed")
STREAM_LISTS = {"init_seeds": "init_seed", "data_seeds": "data_seed", "augment_seeds": "augment_seed"}
SPEC_KEYS = {
    "methods",
    "models",
    "datasets",
    "seeds",
    "presets",
    "versions",
    "overrides",
    "store",
    "engine",
    "resources",
    "data_dir",
    "seed_key",
    "base_seed",
    "plugins",
    "pack",
    "slurm",
    *STREAM_LISTS,
}


@dataclass(frozen=True)
class Cell:
    method: str
    model: str
    dataset: str
    seeds: tuple[tuple[str, int], ...] = (("seed", 0),)
    presets: tuple[str, ...] = ()
    overrides: tuple[tuple[str, Any], ...] = ()

    @property
    def seed(self) -> int:
        """The seed the sweep varies for this cell (the last stream given), for tables and status."""
        return self.seeds[-1][1]

    @property
    def seed_values(self) -> dict[str, int]:
        return dict(self.seeds)

    def patch(self) -> dict[str, Any]:
        """The cell's own config patch, applied after its presets."""
        return {**self.seed_values, **{k: _thaw(v) for k, v in self.overrides}}

    @property
    def key(self) -> list[Any]:
        """What identifies the cell as the user wrote it (the sweep id hashes these)."""
        return [self.method, self.model, self.dataset, list(self.seeds), list(self.presets), [[k, _thaw(v)] for k, v in self.overrides]]

    @property
    def group(self) -> tuple:
        """Cells that differ only in their seeds share a group (one validation, one pack)."""
        return (self.method, self.model, self.dataset, self.presets, self.overrides)

    @property
    def label(self) -> str:
        extra = "".join(f" ~{p}" for p in self.presets)
        varied = " ".join(f"{k}={v}" for k, v in self.seeds if not (k == "seed" and len(self.seeds) > 1 and v == 0))
        return f"{self.method} {self.model}-{self.dataset} {varied}{extra}"


@dataclass
class SweepSpec:
    methods: list[str]
    models: list[str]
    datasets: list[str]
    seeds: list[int] = field(default_factory=list)
    presets: list[str] = field(default_factory=list)
    overrides: dict[str, Any] = field(default_factory=dict)
    store: str | None = None
    engine: str | None = None
    resources: dict[str, Any] | None = None
    data_dir: str | None = None
    seed_key: str = "seed"
    base_seed: int = 0
    init_seeds: list[int] = field(default_factory=list)
    data_seeds: list[int] = field(default_factory=list)
    augment_seeds: list[int] = field(default_factory=list)
    plugins: list[str] = field(default_factory=list)
    pack: int | str | None = None
    slurm: dict[str, Any] | None = None  # the Slurm engine's options (seedbench.sweep.runners.slurm_options)

    def seed_grid(self) -> list[tuple[tuple[str, int], ...]]:
        """Every seed combination: `seeds` on `seed_key`, crossed with the per-stream lists."""
        axes: list[tuple[str, list[int]]] = []
        if self.seeds:
            axes.append((self.seed_key, self.seeds))
        for attr, key in STREAM_LISTS.items():
            values = getattr(self, attr)
            if values:
                if key == self.seed_key and self.seeds:
                    raise ConfigError(f"{attr} and seeds with seed_key={key} both set the {key}; give one of them")
                axes.append((key, values))
        if not axes:
            raise ConfigError("the sweep has no seeds: give seeds (e.g. 0-9) or init_seeds/data_seeds/augment_seeds")
        fixed = [] if any(k == "seed" for k, _ in axes) else [("seed", self.base_seed)]
        return [tuple(fixed + list(zip([k for k, _ in axes], combo, strict=True))) for combo in itertools.product(*[v for _, v in axes])]

    def cells(self) -> list[Cell]:
        if not (self.methods and self.models and self.datasets):
            raise ConfigError("the sweep is empty: give at least one method, model, dataset and seed")
        presets = tuple(p.lstrip("~") for p in self.presets)
        overrides = dict(self.overrides)
        frozen = _hashable(tuple(sorted(overrides.items(), key=lambda kv: kv[0])))
        seeds = self.seed_grid()
        cells = [
            Cell(method, model, dataset, combo, presets, frozen)
            for method in self.methods
            for dataset in self.datasets
            for model in self.models
            for combo in seeds
        ]
        if any(p.startswith("tuned:") for p in presets):  # a tuning study's choices: read, and its seeds refused
            from seedbench.sweep.presets import bind_tuned

            bind_tuned(presets, self.store, cells)
        return cells


class _FrozenDict(tuple):
    """A dict-valued override (e.g. resources={IPU: 1}) kept hashable in a frozen Cell; _thaw restores the dict."""


def _hashable(items: tuple) -> tuple:
    return tuple((k, _FrozenDict(sorted(v.items())) if isinstance(v, dict) else v) for k, v in items)


def _thaw(value: Any) -> Any:
    return dict(value) if isinstance(value, _FrozenDict) else value


def parse_seeds(text: str | int | list, what: str = "seeds") -> list[int]:
    """'0-9', '0,3,7', '0-4,10-12' or a YAML list of non-negative integers -> sorted unique seeds."""
    if isinstance(text, bool):
        raise ConfigError(f"bad {what} {text!r}: use a range like 0-9, a list like 0,3,7, or both (0-4,10)")
    if isinstance(text, int):
        text = [text]
    if isinstance(text, list):
        if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in text):
            raise ConfigError(f"bad {what} {text!r}: every seed must be a non-negative integer, e.g. [0, 1, 2] or 0-9")
        return sorted(set(text))
    seeds: set[int] = set()
    for part in str(text).split(","):
        part = part.strip()
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match:
            raise ConfigError(f"bad {what} {text!r}: use a range like 0-9, a list like 0,3,7, or both (0-4,10)")
        lo, hi = int(match.group(1)), int(match.group(2) or match.group(1))
        if hi < lo:
            raise ConfigError(f"bad seed range {part!r} in {what}: the end is below the start")
        if hi - lo > 1_000_000:
            raise ConfigError(f"bad {what} range {part!r}: more than a million seeds; give a smaller range")
        seeds.update(range(lo, hi + 1))
    return sorted(seeds)


def split_list(text: str | list | None, what: str = "list") -> list[str]:
    if text is None:
        return []
    if isinstance(text, list):
        if not all(isinstance(t, str | int) and not isinstance(t, bool) for t in text):
            raise ConfigError(f"bad {what} {text!r}: give names, e.g. [sgd, rbd] or sgd,rbd")
        return [str(t) for t in text]
    if not isinstance(text, str):
        raise ConfigError(f"bad {what} {text!r}: give names, e.g. [sgd, rbd] or sgd,rbd")
    return [t.strip() for t in text.split(",") if t.strip()]


def _string(path: Path, raw: dict, key: str) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{path}: {key} must be a string, found {type(value).__name__} {value!r}")
    return value


def load_spec(path: Path) -> SweepSpec:
    """Read a sweep YAML file (see experiments/quickstart.yaml)."""
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory; give a sweep YAML file")
    raw = read_yaml(path, "sweep file")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a sweep file is a mapping with methods, models, datasets, seeds")
    unknown = set(raw) - SPEC_KEYS - {"method", "model", "dataset"}
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {sorted(map(str, unknown))}; allowed: {', '.join(sorted(SPEC_KEYS))}")
    missing = [k for k in ("methods", "models", "datasets") if k not in raw and k[:-1] not in raw]
    if not any(k in raw for k in ("seeds", *STREAM_LISTS)):
        missing.append("seeds")
    if missing:
        raise ConfigError(f"{path}: missing {', '.join(missing)}")
    overrides = raw.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise ConfigError(f"{path}: 'overrides' must be a mapping of config keys to values")
    resources = raw.get("resources")
    if resources is not None and not isinstance(resources, dict):
        raise ConfigError(f"{path}: 'resources' must be a mapping, e.g. {{num_cpus: 2}}")
    base_seed = raw.get("base_seed", 0)
    if isinstance(base_seed, bool) or not isinstance(base_seed, int) or base_seed < 0:
        raise ConfigError(f"{path}: base_seed must be a non-negative integer")
    slurm = raw.get("slurm")
    if slurm is not None and not isinstance(slurm, dict):
        raise ConfigError(f"{path}: 'slurm' must be a mapping, e.g. {{partition: gpu, time: 120}}")
    pack = raw.get("pack")
    if pack is not None and pack != "auto" and (isinstance(pack, bool) or not isinstance(pack, int) or pack < 1):
        raise ConfigError(f"{path}: pack must be a positive integer or 'auto'")
    seed_key = raw.get("seed_key", "seed")
    if seed_key not in SEED_KEYS:
        raise ConfigError(f"{path}: seed_key {seed_key!r} must be one of {', '.join(SEED_KEYS)}")
    plugins = split_list(raw.get("plugins"), "plugins")
    # a plugin path in a sweep file is relative to the file, so the file works from any directory
    plugins = [str((path.parent / p).resolve()) if p.endswith(".py") and not Path(p).is_absolute() else p for p in plugins]
    return SweepSpec(
        methods=split_list(raw.get("methods", raw.get("method")), "methods"),
        models=split_list(raw.get("models", raw.get("model")), "models"),
        datasets=split_list(raw.get("datasets", raw.get("dataset")), "datasets"),
        seeds=parse_seeds(raw["seeds"]) if "seeds" in raw else [],
        presets=split_list(raw.get("presets", raw.get("versions")), "presets"),
        overrides=overrides,
        store=_string(path, raw, "store"),
        engine=_string(path, raw, "engine"),
        resources=resources,
        data_dir=_string(path, raw, "data_dir"),
        seed_key=seed_key,
        base_seed=base_seed,
        plugins=plugins,
        pack=pack,
        slurm=slurm,
        **{attr: parse_seeds(raw[attr], attr) for attr in STREAM_LISTS if attr in raw},
    )


def finite(value: Any, what: str) -> Any:
    """Refuse inf/nan anywhere in a user-given value (YAML reads `.inf` as a float)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{what}={value!r}: must be a finite number")
    if isinstance(value, dict):
        for k, v in value.items():
            finite(v, f"{what}.{k}")
    if isinstance(value, list):
        for v in value:
            finite(v, what)
    return value
