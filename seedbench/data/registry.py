"""The dataset registry, and the plan-time check that opens a dataset's files without torch.

A dataset is a `DatasetSpec`: how many classes, the shape of one stored image, how to find its files
(`locate`), how to read them into numpy arrays (`load`), how many training images the validation
split holds out, which train-time augmentation suits it, and a one-line hint for getting it. The
built-ins (digits, mnist, fmnist, cifar10; seedbench.data.builtin) are registered exactly the way a
plugin registers its own:

    from seedbench.data.registry import DatasetSpec, RawSplits, register_dataset

    register_dataset(DatasetSpec(
        name="kmnist", classes=10, shape=(1, 28, 28),
        locate=lambda data_dir: ...,          # the folder/file holding it, or None when not installed
        load=lambda location: RawSplits(...), # uint8 images (N,H,W) or (N,C,H,W), integer labels
        val_size=10_000, augmentation="mnist", how_to_get="put the KMNIST IDX files in DIR/kmnist",
    ))

`check_dataset` runs on the driver when a sweep is planned: it opens every file once, validates
format, counts, image shape and label range against the spec, and returns sizes - all with numpy,
so a sweep over a broken dataset fails with one line before any worker (or torch) starts. Nothing
in this module imports torch; seedbench.data.datasets turns the same arrays into tensors.
"""

from __future__ import annotations

import difflib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# Train-time augmentations seedbench.data.augment provides by name (kept here so a spec can be
# checked without importing torch; tests/test_data_safety.py keeps the two lists equal).
from seedbench.data.spec import (  # noqa: F401 - the types a dataset is declared with, re-exported for plugins
    BUILTIN_AUGMENTATIONS,
    SPLIT_SEED,
    DataDir,
    DatasetInfo,
    DatasetSpec,
    RawSplits,
    data_dirs,
)
from seedbench.errors import ConfigError, DataError

_DATASETS: dict[str, DatasetSpec] = {}
_LOCK = threading.RLock()
_BUILTINS_LOADED = False


def _builtins() -> None:
    """Register the built-in datasets on first use, exactly as a plugin registers its own."""
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    with _LOCK:
        if not _BUILTINS_LOADED:
            _BUILTINS_LOADED = True
            from seedbench.data.builtin import BUILTINS

            for spec in BUILTINS:
                register_dataset(spec)


def register_dataset(spec: DatasetSpec, replace: bool = False) -> DatasetSpec:
    """Make `spec` available to configs, sweeps and `seedbench datasets` under `spec.name`.

    Registering another spec under a taken name is refused unless `replace=True`, so a plugin
    cannot silently swap a built-in dataset for a different one.
    """
    if not isinstance(spec, DatasetSpec):
        raise ConfigError(f"register_dataset takes a DatasetSpec, got {type(spec).__name__}; build one with DatasetSpec(...)")
    _builtins()
    with _LOCK:
        old = _DATASETS.get(spec.name)
        if old is not None and not replace and _identity(old) != _identity(spec):
            raise ConfigError(f"dataset {spec.name!r} is registered twice; rename one or pass replace=True")
        _DATASETS[spec.name] = spec
    _CHECKED.clear()
    return spec


def _identity(spec: DatasetSpec) -> tuple:
    """A spec's fields with callables by qualified name: a plugin imported twice registers the same spec."""

    def key(value: Any) -> Any:
        return (getattr(value, "__module__", None), getattr(value, "__qualname__", repr(value))) if callable(value) else value

    return tuple(key(getattr(spec, f)) for f in spec.__dataclass_fields__)


def get_dataset_spec(name: str) -> DatasetSpec:
    """The spec registered as `name`; an unknown name is a ConfigError with a suggestion."""
    _builtins()
    spec = _DATASETS.get(name)
    if spec is None:
        known = sorted(_DATASETS)
        close = difflib.get_close_matches(str(name), known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown dataset {name!r}{hint}; choose one of {', '.join(known)}, or register your own with --plugin FILE")
    return spec


def dataset_names() -> list[str]:
    _builtins()
    return sorted(_DATASETS)


# -- finding files ------------------------------------------------------------------------------------


def _check_data_dirs(data_dir: DataDir) -> None:
    for directory in data_dirs(data_dir):
        if directory.exists() and not directory.is_dir():
            raise DataError(
                f"{directory}: the data directory is a file, not a directory; pass the folder holding the datasets as --data-dir (or SEEDBENCH_DATA)"
            )


def locate_or_raise(spec: DatasetSpec, data_dir: DataDir = None) -> Path:
    """Where `spec`'s files are; a DataError saying where we looked and how to get them otherwise."""
    _check_data_dirs(data_dir)
    location = spec.locate(data_dir)
    if location is None:
        looked = ", ".join(f"{d}" + ("" if d.is_dir() else " (does not exist)") for d in data_dirs(data_dir))
        looked = looked or "no --data-dir or SEEDBENCH_DATA given"
        raise DataError(f"dataset {spec.name!r} not found (looked in: {looked}); to get it: {spec.how_to_get}")
    return Path(location)


def _fingerprint(location: Path) -> tuple:
    """What identifies the dataset's files on disk: names, kinds, sizes and mtimes (one stat each)."""

    def stat(path: Path, name: str) -> tuple:
        try:
            st = path.stat()
        except OSError:
            return (name, None)
        return (name, path.is_dir(), st.st_size, st.st_mtime_ns, st.st_ino)

    if location.is_dir():
        try:
            entries = sorted(os.scandir(location), key=lambda e: e.name)
        except OSError:
            return (str(location), None)
        return tuple(stat(Path(e.path), e.name) for e in entries)
    return (stat(location, location.name),)


# -- validation ---------------------------------------------------------------------------------------


def validate_splits(spec: DatasetSpec, raw: RawSplits, location: Path) -> RawSplits:
    """Arrays as the spec promises them, (N, C, H, W) uint8 and int64 labels, or a one-line DataError.

    Catches what a reader cannot know: a file of another dataset (shape), labels beyond K-1 (255 in a
    corrupt IDX file), float or boolean labels, a split with no images, counts that differ.
    """
    if not isinstance(raw, tuple) or len(raw) < 4:
        raise DataError(f"{location}: the loader of dataset {spec.name!r} returned {type(raw).__name__}, not RawSplits; fix the loader")
    raw = RawSplits(*raw) if not isinstance(raw, RawSplits) else raw
    sources = dict(raw.sources or {})
    out = []
    for split, x, y in (("train", raw.x_train, raw.y_train), ("test", raw.x_test, raw.y_test)):
        img_src = sources.get(f"{split}_images", f"{location} ({split} images)")
        lab_src = sources.get(f"{split}_labels", f"{location} ({split} labels)")
        if not isinstance(x, np.ndarray) or x.dtype != np.uint8:
            kind = f"{x.dtype} array" if isinstance(x, np.ndarray) else type(x).__name__
            raise DataError(f"{img_src}: images are a {kind}, expected uint8 pixels; wrong file, or fix the loader of dataset {spec.name!r}")
        if x.ndim == 3:
            x = x[:, None]
        if x.ndim != 4:
            raise DataError(f"{img_src}: images have shape {x.shape}, expected (N, H, W) or (N, C, H, W); wrong file, re-download it")
        if tuple(x.shape[1:]) != spec.shape:
            got, want = "x".join(map(str, x.shape[1:])), "x".join(map(str, spec.shape))
            raise DataError(
                f"{img_src}: images are {got} (CxHxW) but dataset {spec.name!r} is {want}; "
                "the file belongs to another dataset or is corrupt, put the right file there"
            )
        if len(x) == 0:
            raise DataError(f"{img_src}: holds no images; re-download it")
        if not isinstance(y, np.ndarray) or y.dtype.kind not in "iu":
            kind = f"{y.dtype}" if isinstance(y, np.ndarray) else type(y).__name__
            raise DataError(f"{lab_src}: labels are {kind}, expected integers 0..{spec.classes - 1}; wrong file, re-download it")
        if y.ndim != 1:
            raise DataError(f"{lab_src}: labels have shape {y.shape}, expected one label per image; wrong file, re-download it")
        if len(x) != len(y):
            raise DataError(f"{img_src}: {len(x)} images but {lab_src} has {len(y)} labels; the pair does not match, re-download them")
        bad = (y < 0) | (y >= spec.classes)
        if bad.any():
            first = int(np.argmax(bad))
            raise DataError(
                f"{lab_src}: label {int(y[first])} (image {first}) is outside 0..{spec.classes - 1} "
                f"(dataset {spec.name!r} has {spec.classes} classes); the file is corrupt or from another dataset, re-download it"
            )
        out += [x, y.astype(np.int64, copy=False)]
    return RawSplits(out[0], out[1], out[2], out[3], sources)


def read_splits(spec: DatasetSpec, location: Path) -> RawSplits:
    """Run the spec's loader and validate what it returns; an OSError becomes a one-line DataError."""
    try:
        raw = spec.load(location)
    except OSError as exc:
        where = exc.filename or location
        raise DataError(f"{where}: cannot read dataset {spec.name!r} ({' '.join(str(exc.strerror or exc).split())}); check the files") from None
    return validate_splits(spec, raw, location)


def resolve_sizes(spec: DatasetSpec, n_train_files: int, val_size: int | None, limit_train: int | None) -> tuple[int, int]:
    """(training images, validation images) after the hold-out and limit_train, or a one-line DataError."""
    val = spec.val_size if val_size is None else val_size
    if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or not 0 <= val < n_train_files:
        raise DataError(
            f"{spec.name}: validation size {val} must be between 0 and {n_train_files - 1} "
            f"(the training files hold {n_train_files} images); lower val_size"
        )
    n_train = n_train_files - int(val)
    if limit_train is not None:
        if isinstance(limit_train, bool) or not isinstance(limit_train, (int, np.integer)) or limit_train < 1:
            raise ConfigError(f"{spec.name}: limit_train={limit_train!r} must be a positive integer; fix the config")
        n_train = min(n_train, int(limit_train))
    return n_train, int(val)


# -- the plan-time check --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Checked:
    n_train_files: int
    n_test: int
    files: tuple[str, ...]


# (name, spec identity, location, fingerprint) -> what the files held; valid while no file changes
_CHECKED: dict[tuple, _Checked] = {}


def check_dataset(
    name: str,
    data_dir: DataDir = None,
    val_size: int | None = None,
    limit_train: int | None = None,
    *,
    augment: bool = False,
) -> DatasetInfo:
    """Open and validate every file of dataset `name` once, with numpy only; sizes and shapes.

    Raises ConfigError (unknown name; augment=True for a dataset without augmentation; bad
    limit_train) or DataError (missing, unreadable, truncated, wrong format, wrong shape, labels not
    integers in 0..K-1, val_size too large): one line naming the file, the fault and the fix.
    Results are cached per (dataset, location, file sizes and mtimes) for the life of the process.
    """
    spec = get_dataset_spec(name)
    if augment and spec.augmentation is None:
        raise ConfigError(f"dataset {name!r} declares no augmentation; set augment=false or register the dataset with one")
    location = locate_or_raise(spec, data_dir)
    key = (name, id(spec), str(location.resolve()), _fingerprint(location))
    checked = _CHECKED.get(key)
    if checked is None:
        raw = read_splits(spec, location)
        files = tuple(dict.fromkeys(str(v) for v in (raw.sources or {}).values())) or (str(location),)
        checked = _Checked(len(raw.x_train), len(raw.x_test), files)
        _CHECKED[key] = checked
    n_train, n_val = resolve_sizes(spec, checked.n_train_files, val_size, limit_train)
    return DatasetInfo(
        name=name,
        location=str(location),
        in_shape=spec.shape,
        num_classes=spec.classes,
        n_train=n_train,
        n_val=n_val,
        n_test=checked.n_test,
        augmentation=spec.augmentation_name,
        files=checked.files,
    )
