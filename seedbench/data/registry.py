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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from seedbench.errors import ConfigError, DataError

# Train-time augmentations seedbench.data.augment provides by name (kept here so a spec can be
# checked without importing torch; tests/test_data_safety.py keeps the two lists equal).
BUILTIN_AUGMENTATIONS = frozenset({"mnist", "cifar10"})
# The fixed permutation that carves validation out of train: a property of the dataset, not of a run.
SPLIT_SEED = 20_190_512

DataDir = str | os.PathLike | None


class RawSplits(NamedTuple):
    """What a spec's `load` returns: the dataset's own train and test files, as numpy arrays.

    Images are uint8, (N, H, W) or (N, C, H, W); labels are integers in 0..classes-1. `sources`
    names where each array came from ("train_images", "train_labels", "test_images",
    "test_labels" -> a path), so a fault found later still names the file.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    sources: Mapping[str, str] = {}


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset, as the registry knows it.

    name: what configs and sweeps call it.
    classes: K; labels must lie in 0..K-1, and models get K outputs (even if a split lacks a class).
    shape: (C, H, W) of one stored image; files with another shape are refused at plan time.
    load: `load(location) -> RawSplits`, given what `locate` returned (numpy only, no torch).
    locate: `locate(data_dir) -> Path | None`: the folder or file holding the dataset, searched under
        data_dir (--data-dir) and $SEEDBENCH_DATA (see `data_dirs`); None when it is not installed.
        Leave it out for a dataset the loader generates or finds by itself.
    val_size: training images held out for validation when a config does not say.
    augmentation: "mnist" (pad to 34, crop 28, brightness +-0.5), "cifar10" (pad 40, crop 32,
        flip, per-image standardisation, also at evaluation), a callable
        `(batch: Tensor, generator: torch.Generator) -> Tensor` (train only), or None: the dataset
        has none, and `augment=true` is refused when the sweep is planned.
    how_to_get: one line telling a user how to install it.
    """

    name: str
    classes: int
    shape: tuple[int, int, int]
    load: Callable[[Path], RawSplits]
    val_size: int
    locate: Callable[[DataDir], Path | None] | None = None
    augmentation: str | Callable[..., Any] | None = None
    how_to_get: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        where = f"dataset {self.name!r}"
        if self.locate is None:  # a dataset its loader generates or finds itself: always "installed"
            name = self.name
            object.__setattr__(self, "locate", lambda data_dir: Path(f"<{name}>"))
        if not isinstance(self.name, str) or not self.name or self.name != self.name.strip():
            raise ConfigError(f"dataset name {self.name!r} must be a non-empty string without surrounding spaces; fix register_dataset")
        if not isinstance(self.classes, int) or isinstance(self.classes, bool) or self.classes < 2:
            raise ConfigError(f"{where}: classes={self.classes!r} must be an integer >= 2; fix its DatasetSpec")
        shape = tuple(self.shape) if isinstance(self.shape, (tuple, list)) else None
        if shape is None or len(shape) != 3 or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
            raise ConfigError(f"{where}: shape={self.shape!r} must be (C, H, W) with positive integers; fix its DatasetSpec")
        object.__setattr__(self, "shape", shape)
        if not callable(self.load) or not callable(self.locate):
            raise ConfigError(f"{where}: load and locate must be callables; fix its DatasetSpec")
        if not isinstance(self.val_size, int) or isinstance(self.val_size, bool) or self.val_size < 0:
            raise ConfigError(f"{where}: val_size={self.val_size!r} must be an integer >= 0; fix its DatasetSpec")
        aug = self.augmentation
        if not (aug is None or callable(aug) or (isinstance(aug, str) and aug in BUILTIN_AUGMENTATIONS)):
            raise ConfigError(
                f"{where}: augmentation={aug!r} must be one of {', '.join(sorted(BUILTIN_AUGMENTATIONS))}, a callable or None; "
                "fix its DatasetSpec"
            )
        if not isinstance(self.how_to_get, str) or "\n" in self.how_to_get:
            raise ConfigError(f"{where}: how_to_get must be one line of text; fix its DatasetSpec")

    @property
    def augmentation_name(self) -> str | None:
        aug = self.augmentation
        return aug if isinstance(aug, str) or aug is None else getattr(aug, "__qualname__", repr(aug))


@dataclass(frozen=True)
class DatasetInfo:
    """What a plan needs to know about a dataset, found by `check_dataset` without torch."""

    name: str
    location: str
    in_shape: tuple[int, int, int]
    num_classes: int
    n_train: int  # after the validation split and limit_train
    n_val: int
    n_test: int
    augmentation: str | None = None
    files: tuple[str, ...] = field(default_factory=tuple)


_DATASETS: dict[str, DatasetSpec] = {}
_LOCK = threading.RLock()
_BUILTINS_LOADED = False


def _builtins() -> None:
    """Register the built-in datasets on first use (seedbench.data.builtin calls register_dataset)."""
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    with _LOCK:
        if not _BUILTINS_LOADED:
            _BUILTINS_LOADED = True
            import seedbench.data.builtin  # noqa: F401


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


def data_dirs(data_dir: DataDir = None) -> list[Path]:
    """Directories searched, in order: --data-dir, then $SEEDBENCH_DATA."""
    dirs = []
    for candidate in (data_dir, os.environ.get("SEEDBENCH_DATA")):
        if candidate:
            dirs.append(Path(candidate).expanduser())
    return dirs


def _check_data_dirs(data_dir: DataDir) -> None:
    for directory in data_dirs(data_dir):
        if directory.exists() and not directory.is_dir():
            raise DataError(f"{directory}: the data directory is a file, not a directory; pass the folder holding the datasets as --data-dir (or SEEDBENCH_DATA)")


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
