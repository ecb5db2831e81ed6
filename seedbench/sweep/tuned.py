"""A tuning study's result as a named, versioned file in the store: `<store>/tuned/<study>.json`.

`seedbench tune` writes it (seedbench.sweep.tune); `--preset tuned:<study>` reads the chosen values
from it (seedbench.sweep.presets); the reports read it for the tuning section (seedbench.analysis.tuning).
It holds the study's whole definition - methods, workloads, search spaces, budget (trials, tuning
seeds, epochs, halving), the sampler, presets and overrides - every trial's validation accuracy per
seed, and per method and workload the chosen values. It holds no test accuracy: selection never saw one.

The version is a hash of that content, so the same study run again (every cell reused) keeps its
version, and a file edited by hand no longer matches it and is refused. `--preset tuned:<study>@<version>`
pins one version. Torch- and machinable-free: the driver reads it while it plans.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from seedbench.errors import ConfigError
from seedbench.record import write_json_atomic

TUNED_DIR = "tuned"
PREFIX = "tuned:"
FORMAT = 1
UNVERSIONED = ("version", "written_at")  # what the version hash leaves out
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


def check_study_name(name: Any) -> str:
    """A study name is a file name in the store: letters, digits, '_', '.', '-' (not first)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name.endswith(".json"):
        raise ConfigError(f"study name {name!r}: use letters, digits, _, . and - (e.g. --study lr-digits)")
    return name


def study_path(store: Path, study: str) -> Path:
    return Path(store) / TUNED_DIR / f"{check_study_name(study)}.json"


def content_version(doc: dict[str, Any]) -> str:
    """12 hex digits of the sha256 of the study's content (canonical JSON, `UNVERSIONED` keys left out)."""
    body = {k: v for k, v in doc.items() if k not in UNVERSIONED}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()[:12]


def write_study(store: Path, doc: dict[str, Any]) -> Path:
    """Write (or replace) the study's file atomically; sets doc['version']."""
    path = study_path(store, doc["study"])
    path.parent.mkdir(parents=True, exist_ok=True)
    doc["version"] = content_version(doc)
    write_json_atomic(path, doc)
    return path


def list_studies(store: Path) -> list[str]:
    folder = Path(store) / TUNED_DIR
    return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []


def read_study(store: Path, study: str, version: str | None = None) -> dict[str, Any]:
    """The study's document, checked against its version; one ConfigError line when it cannot be used."""
    path = study_path(store, study)
    if not path.is_file():
        known = list_studies(store)
        there = f" (tuned studies there: {', '.join(known)})" if known else ""
        raise ConfigError(f"no tuned study {study!r} in store {store}{there}; run `seedbench tune ... --study {study}` first (with the same --store)")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable tuned study ({type(exc).__name__}); run `seedbench tune ... --study {study}` again") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("methods"), dict):
        raise ConfigError(f"{path}: not a tuned study of format {FORMAT}; run `seedbench tune ... --study {study}` again")
    if doc.get("version") != content_version(doc):
        raise ConfigError(
            f"{path}: its content does not match its version {doc.get('version')!r} (edited by hand?); run the study's `seedbench tune` again"
        )
    if version is not None and version != doc["version"]:
        raise ConfigError(
            f"tuned:{study}@{version}: the store holds version {doc['version']} of study {study}; use tuned:{study}@{doc['version']} or tuned:{study}"
        )
    return doc


def split_name(preset: str) -> tuple[str, str | None]:
    """'tuned:lr-digits@3fa2c1d0e9b8' -> ('lr-digits', '3fa2c1d0e9b8'); the version is optional."""
    study, _, version = preset[len(PREFIX) :].partition("@")
    return check_study_name(study), (version or None)


def workload(model: str, dataset: str) -> str:
    return f"{model}-{dataset}"


def chosen(doc: dict[str, Any], method: str, model: str, dataset: str) -> dict[str, Any]:
    """The values the study chose for `method` on `model`-`dataset`; one line when it did not tune that."""
    study = doc["study"]
    methods = doc["methods"]
    if method not in methods:
        raise ConfigError(
            f"method {method} was not tuned in study {study} (tuned: {', '.join(sorted(methods))}); "
            f"add it to the study (seedbench tune ... --study {study}) or leave it out of this sweep"
        )
    workloads = methods[method]["workloads"]
    key = workload(model, dataset)
    if key not in workloads:
        raise ConfigError(
            f"study {study} tuned {method} on {', '.join(sorted(workloads))}, not on {key}; tune that workload too, or sweep a tuned one"
        )
    return dict(workloads[key]["chosen"])


def tuning_seeds(doc: dict[str, Any]) -> list[int]:
    return [int(s) for s in doc["budget"]["seeds"]]


def seed_text(seeds: list[int]) -> str:
    """[100, 101, 102, 107] -> '100-102,107': how a user writes them on the command line."""
    parts: list[str] = []
    ordered = sorted(set(seeds))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)
