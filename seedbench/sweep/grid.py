"""A sweep spec (CLI flags or a YAML file) -> the list of cells, each a (component, version) pair.

Every cell's version is `[{model, dataset}, *presets, {seed, **overrides}]`: the same config, hence the
same identity, as `machinable get components.<method> ~cnn ~digits seed=3` builds by hand, and it also
works for zoo models that have no preset of their own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from seedbench.errors import ConfigError, read_yaml

SPEC_KEYS = {"methods", "models", "datasets", "seeds", "versions", "overrides", "store", "engine", "resources", "data_dir", "seed_key", "base_seed"}
SEED_KEYS = ("seed", "init_seed", "data_seed", "augment_seed")


@dataclass(frozen=True)
class Cell:
    method: str
    model: str
    dataset: str
    seed: int
    presets: tuple[str, ...] = ()
    overrides: tuple[tuple[str, Any], ...] = ()
    # which config key the sweep's seeds go to: "seed" (every stream), or e.g. "init_seed" to vary only
    # the weight initialisation while `seed` (data order, augmentation) stays at `base_seed`
    seed_key: str = "seed"
    base_seed: int = 0

    @property
    def module(self) -> str:
        return f"components.{self.method}"

    @property
    def version(self) -> list:
        varied = {"seed": self.seed} if self.seed_key == "seed" else {"seed": self.base_seed, self.seed_key: self.seed}
        patch = {**varied, **{k: dict(v) if isinstance(v, _FrozenDict) else v for k, v in self.overrides}}
        return [{"model": self.model, "dataset": self.dataset}, *(f"~{p}" for p in self.presets), patch]

    @property
    def label(self) -> str:
        extra = "".join(f" ~{p}" for p in self.presets)
        return f"{self.method} {self.model}-{self.dataset} {self.seed_key}={self.seed}{extra}"


@dataclass
class SweepSpec:
    methods: list[str]
    models: list[str]
    datasets: list[str]
    seeds: list[int]
    versions: list[str] = field(default_factory=list)
    overrides: dict[str, Any] = field(default_factory=dict)
    store: str | None = None
    engine: str | None = None
    resources: dict[str, Any] | None = None
    data_dir: str | None = None
    seed_key: str = "seed"
    base_seed: int = 0

    def cells(self) -> list[Cell]:
        presets = tuple(v.lstrip("~") for v in self.versions)
        overrides = dict(self.overrides)
        if self.data_dir and "data_dir" not in overrides:
            overrides["data_dir"] = self.data_dir
        frozen = tuple(sorted(overrides.items(), key=lambda kv: kv[0]))
        return [
            Cell(method, model, dataset, seed, presets, _hashable(frozen), self.seed_key, self.base_seed)
            for method in self.methods
            for dataset in self.datasets
            for model in self.models
            for seed in self.seeds
        ]


class _FrozenDict(tuple):
    """A dict-valued override (e.g. resources={IPU: 1}) kept hashable in a frozen Cell; Cell.version restores the dict."""


def _hashable(items: tuple) -> tuple:
    return tuple((k, _FrozenDict(sorted(v.items())) if isinstance(v, dict) else v) for k, v in items)


def parse_seeds(text: str | int | list) -> list[int]:
    """'0-9', '0,3,7', '0-4,10-12' or a YAML list -> sorted unique seeds."""
    if isinstance(text, int):
        return [text]
    if isinstance(text, list):
        return sorted({int(s) for s in text})
    seeds: set[int] = set()
    for part in str(text).split(","):
        part = part.strip()
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match:
            raise ConfigError(f"bad seeds {text!r}: use a range like 0-9, a list like 0,3,7, or both (0-4,10)")
        lo, hi = int(match.group(1)), int(match.group(2) or match.group(1))
        if hi < lo:
            raise ConfigError(f"bad seed range {part!r}: the end is below the start")
        seeds.update(range(lo, hi + 1))
    return sorted(seeds)


def split_list(text: str | list | None) -> list[str]:
    if text is None:
        return []
    if isinstance(text, list):
        return [str(t) for t in text]
    return [t.strip() for t in str(text).split(",") if t.strip()]


def load_spec(path: Path) -> SweepSpec:
    """Read a sweep YAML file (see experiments/quickstart.yaml)."""
    raw = read_yaml(path, "sweep file")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a sweep file is a mapping with methods, models, datasets, seeds")
    unknown = set(raw) - SPEC_KEYS - {"method", "model", "dataset"}
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {sorted(unknown)}; allowed: {', '.join(sorted(SPEC_KEYS))}")
    missing = [k for k in ("methods", "models", "datasets", "seeds") if k not in raw and k[:-1] not in raw]
    if missing:
        raise ConfigError(f"{path}: missing {', '.join(missing)}")
    overrides = raw.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise ConfigError(f"{path}: 'overrides' must be a mapping of config keys to values")
    return SweepSpec(
        methods=split_list(raw.get("methods", raw.get("method"))),
        models=split_list(raw.get("models", raw.get("model"))),
        datasets=split_list(raw.get("datasets", raw.get("dataset"))),
        seeds=parse_seeds(raw["seeds"]),
        versions=split_list(raw.get("versions")),
        overrides=overrides,
        store=raw.get("store"),
        engine=raw.get("engine"),
        resources=raw.get("resources"),
        data_dir=raw.get("data_dir"),
        seed_key=_seed_key(path, raw.get("seed_key", "seed")),
        base_seed=int(raw.get("base_seed", 0)),
    )


def _seed_key(path: Path, key: str) -> str:
    if key not in SEED_KEYS:
        raise ConfigError(f"{path}: seed_key {key!r} must be one of {', '.join(SEED_KEYS)}")
    return key
