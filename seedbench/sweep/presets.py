"""machinable.yaml: the catalogue of named presets shared by every method.

Presets are config patches composed in order (`--preset cnn,table1`), as in the random-bases study.
A method's own presets (e.g. rbd's `hadamard`) live in its declaration; the catalogue holds the ones
that cut across methods: models, datasets, budgets, initializer arms, scheduling. The file is
validated when it is loaded - an unknown key or a value of the wrong type is reported with the
preset's name - so a typo fails before a sweep, not inside a worker. It is re-read when it changes.

`tuned:<study>` is a preset too: the values a tuning study chose for the cell's method and workload,
read from `<store>/tuned/<study>.json` (seedbench.sweep.tuned). A sweep binds the studies it names
when it lists its cells (`bind_tuned`), which is where it refuses seeds the study tuned on: the
final study must run on seeds that selection never saw. The chosen values enter the cell's config
as values (lr=0.0413), so its identity records them, as it would any --set.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from seedbench.errors import ConfigError, read_yaml
from seedbench.sweep.tuned import PREFIX as TUNED_PREFIX

CATALOG_ENV = "SEEDBENCH_CATALOG"


def catalog_path() -> Path:
    """$SEEDBENCH_CATALOG, else machinable.yaml at the project root (beside the seedbench package)."""
    if os.environ.get(CATALOG_ENV):
        return Path(os.environ[CATALOG_ENV])
    return Path(__file__).resolve().parents[2] / "machinable.yaml"


@dataclass(frozen=True)
class Catalog:
    path: Path
    presets: dict[str, dict[str, Any]]

    def preset(self, name: str, method: Any = None, values: dict[str, Any] | None = None) -> dict[str, Any]:
        """The patch of preset `name`: the method's own first, then the catalogue's.

        `values`: the cell's config so far (its model and dataset), which a `tuned:` preset needs.
        """
        if name.startswith(TUNED_PREFIX):
            return tuned_patch(name, method, values or {})
        own = dict(getattr(method, "presets", {}) or {})
        if name in own:
            return dict(own[name])
        if name in self.presets:
            return dict(self.presets[name])
        known = sorted({*own, *self.presets})
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean ~{close[0]}?)" if close else ""
        where = f"{self.path.name}" + (f" and method {method.name}" if own else "")
        raise ConfigError(f"unknown preset ~{name}{hint}; presets in {where}: " + ", ".join("~" + p for p in known))


def field_types() -> dict[str, list[Any]]:
    """Every config key any registered method (or the placement) accepts, with its possible types."""
    from seedbench.config import Placement
    from seedbench.registry import get_method, method_names

    types: dict[str, list[Any]] = {}
    configs = [get_method(m).config for m in method_names(aliases=False)] + [Placement]
    for cfg in configs:
        for key, field in cfg.model_fields.items():
            if field.annotation not in types.setdefault(key, []):
                types[key].append(field.annotation)
    return types


def check_patch(where: str, patch: Any, types: dict[str, list[Any]] | None = None) -> dict[str, Any]:
    """A preset's patch: a mapping of known keys to values of the right type."""
    types = types or field_types()
    if patch is None:
        return {}
    if not isinstance(patch, dict):
        raise ConfigError(f"{where} must be a mapping of config keys, found {type(patch).__name__}")
    for key, value in patch.items():
        if key not in types:
            close = difflib.get_close_matches(str(key), types, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{where} sets unknown key {key!r}{hint}")
        errors = []
        for annotation in types[key]:
            try:
                TypeAdapter(annotation).validate_python(value)
                break
            except ValidationError as exc:
                errors.append(exc.errors()[0]["msg"])
        else:
            raise ConfigError(f"{where} key {key!r} = {value!r} has the wrong type ({errors[0]})")
    return dict(patch)


_CACHE: dict[Path, tuple[float, Catalog]] = {}


def load_catalog(path: Path | None = None) -> Catalog:
    path = Path(path) if path else catalog_path()
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        raise ConfigError(f"{path}: catalogue not found; run from the seedbench project root or set {CATALOG_ENV}") from None
    cached = _CACHE.get(path)
    if cached and cached[0] == mtime:
        return cached[1]
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory; {CATALOG_ENV} must name a YAML file")
    raw = read_yaml(path, "catalogue") or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path.name}: expected a mapping with a 'presets' section")
    if "learning_rates" in raw:
        raise ConfigError(f"{path.name}: 'learning_rates' moved into each method's declaration (docs/extending.md); remove the section")
    unknown = set(raw) - {"presets"}
    if unknown:
        raise ConfigError(f"{path.name}: unknown top-level section(s) {sorted(map(str, unknown))}; use 'presets'")
    presets_raw = raw.get("presets") or {}
    if not isinstance(presets_raw, dict):
        raise ConfigError(f"{path.name}: 'presets' must be a mapping of names to config patches")
    types = field_types()
    presets = {str(n): check_patch(f"{path.name}: preset {n!r}", p, types) for n, p in presets_raw.items()}
    catalog = Catalog(path=path, presets=presets)
    _CACHE[path] = (mtime, catalog)
    return catalog


# -- tuned:<study> -----------------------------------------------------------------------------------

_BOUND: dict[str, dict[str, Any]] = {}  # preset name -> the study document the last sweep that named it bound


def bind_tuned(presets: Any, store: str | None, cells: list[Any]) -> None:
    """Read every `tuned:` study among `presets` from `store`, and refuse cells on seeds it tuned on.

    Called when a sweep lists its cells (SweepSpec.cells), before anything is resolved or run, so the
    study's file is read once per sweep and a reused tuning seed costs one line, not a run folder.
    """
    from seedbench.sweep.runners.store_context import store_dir
    from seedbench.sweep.tuned import read_study, seed_text, split_name, tuning_seeds

    for name in presets:
        if not name.startswith(TUNED_PREFIX):
            continue
        study, version = split_name(name)
        doc = read_study(store_dir(store), study, version)
        tuned = set(tuning_seeds(doc))
        reused = sorted({value for cell in cells for _, value in cell.seeds if value in tuned})
        if reused:
            wanted = len({value for cell in cells for _, value in cell.seeds})
            fresh = [seed for seed in range(wanted + len(tuned)) if seed not in tuned][:wanted]
            many = len(reused) > 1
            raise ConfigError(
                f"{'seeds' if many else 'seed'} {seed_text(reused)} {'were' if many else 'was'} used to tune study {study} "
                f"(its tuning seeds: {seed_text(sorted(tuned))}); the final study must run on seeds selection never saw, e.g. --seeds {seed_text(fresh)}"
            )
        _BOUND[name] = doc


def tuned_patch(name: str, method: Any, values: dict[str, Any]) -> dict[str, Any]:
    """The values study `name` chose for `method` on the cell's model and dataset."""
    from seedbench.sweep.tuned import chosen, split_name

    doc = _BOUND.get(name)
    if doc is None:  # a cell resolved outside a sweep (seedbench.sweep.plan.resolve_cell on its own): the default store
        from seedbench.sweep.runners.store_context import store_dir
        from seedbench.sweep.tuned import read_study

        doc = read_study(store_dir(None), *split_name(name))
    return chosen(doc, getattr(method, "name", str(method)), str(values.get("model")), str(values.get("dataset")))
