"""A corpus of bad inputs, each run through the real command line in a subprocess.

The project's rule for bad input (a typo in a name, a malformed config or YAML file, a missing or
corrupt data file, invalid labels, a bad query, an unwritable output path, a broken store): ONE line
on stderr naming the problem and the fix, exit status 2, no traceback, and nothing stored changed -
no run folder created, no output file written. Every case below runs against its own copy of one
small real store (trained once per module) and checks all of that by hashing every file under the
test's folder before and after the command.

Only a valid cell that raises while it runs exits 1 ("failed", traceback in the cell's folder), and
Ctrl-C exits 130 with one line; both are tested at the end, with the store faults that are not exit 2
(a corrupt sweep file for `status`, a truncated run.json the next sweep must redo).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from seedbench.data.cifar import write_batch
from seedbench.data.idx import write_idx
from tests.conftest import ROOT, make_cifar_dataset, make_idx_dataset, run_cli
from tests.tiny_fs import fill, read_only, tmpfs

# The one cell every sweep case aims at: the same cell the module's store holds, so a case that were
# wrongly accepted would reuse it (or train and add a folder, which the snapshot catches).
GRID = ["--method", "sgd", "--model", "fc", "--dataset", "digits", "--seeds", "0"]
TINY = ["--set", "epochs=1", "--set", "limit_train=32", "--set", "val_size=16"]
# Nothing from the caller's environment may point a case at other data, another catalogue, index or Ray.
CLEAN_ENV = {"SEEDBENCH_DATA": "", "SEEDBENCH_CATALOG": "", "MACHINABLE_INDEX": "", "RAY_ADDRESS": ""}
CACHE_DIR = ".seedbench-cache"  # derived and disposable (docs/security.md); its fingerprints hold inodes, so a copy refreshes it
N_TRAIN, N_TEST = 60, 20  # the small IDX datasets written per case


# -- the shared store and the per-case context ------------------------------------------------------


@pytest.fixture(scope="module")
def base_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("base") / "store"
    result = run_cli("sweep", *GRID, "--store", str(store), *TINY, "--quiet", env=CLEAN_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 cells: trained 1" in result.stdout, result.stdout
    assert len(list(store.rglob("run.json"))) == 1
    return store


@dataclass
class Ctx:
    tmp: Path
    store: Path
    env: dict[str, str] = field(default_factory=lambda: dict(CLEAN_ENV))

    def write(self, name: str, content: str | bytes) -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path

    def sweep(self, *extra: str) -> list[str]:
        """The module's one-cell sweep on this case's store copy; later flags override the grid's."""
        return ["sweep", *GRID, "--store", str(self.store), *TINY, "--quiet", *extra]

    def spec(self, text: str) -> list[str]:
        """A sweep from a YAML file whose store is this case's copy unless the text says otherwise."""
        path = self.write("sweep.yaml", text)
        return ["sweep", str(path), "--store", str(self.store), "--quiet"]

    def catalog(self, text: str) -> list[str]:
        self.env["SEEDBENCH_CATALOG"] = str(self.write("catalog.yaml", text))
        return self.sweep()

    def plugin(self, source: str, name: str = "plugin.py") -> str:
        return str(self.write(name, source))

    @property
    def data(self) -> Path:
        return self.tmp / "data"

    def mnist(self, gz: bool = False) -> Path:
        return make_idx_dataset(self.data / "mnist", n_train=N_TRAIN, n_test=N_TEST, gz=gz)

    def cifar(self) -> Path:
        return make_cifar_dataset(self.data / "cifar10", per_batch=10)

    def on(self, dataset: str, *extra: str) -> list[str]:
        return self.sweep("--dataset", dataset, "--data-dir", str(self.data), *extra)

    def analysis(self, command: str, *extra: str) -> list[str]:
        return [command, "--store", str(self.store), *extra]

    def query(self, sql: str, *extra: str) -> list[str]:
        return ["query", "--store", str(self.store), sql, *extra]


@pytest.fixture
def ctx(tmp_path: Path, base_store: Path) -> Iterator[Ctx]:
    store = tmp_path / "store"
    shutil.copytree(base_store, store, symlinks=True)
    yield Ctx(tmp_path, store)
    for folder in [tmp_path, *(p for p in tmp_path.rglob("*") if p.is_dir() and not p.is_symlink())]:
        folder.chmod(0o755)  # a read-only case's folders, so pytest can clean up


def snapshot(root: Path) -> dict[str, str | None]:
    """Every folder and every file's sha256 under `root` (the disposable query cache excepted)."""
    out: dict[str, str | None] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != CACHE_DIR)
        base = Path(dirpath)
        out[str(base.relative_to(root)) + "/"] = None
        for name in filenames:
            path = base / name
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "not a file"
    return out


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    everything = result.stdout + result.stderr
    assert result.returncode == 2, f"exit {result.returncode}\n{everything}"
    assert "Traceback" not in everything, everything
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"{len(lines)} stderr lines:\n{result.stderr}"
    assert lines[0].startswith("error:"), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]


# -- plugins and files the cases use ---------------------------------------------------------------

# These three are refused when they register, so their optimizers never run (and the plugins skip importing torch).
BAD_NAME_METHOD = """
from seedbench import Method, TrialConfig, register_method
register_method(Method(name="my-sgd", config=TrialConfig, learning_rates={"default": {"*": 0.1}},
                       optimizer=lambda p, lr, cfg, seed: __import__('torch').optim.SGD(p, lr=lr)))
"""

BAD_CONFIG_METHOD = """
from seedbench import Method, register_method
register_method(Method(name="dictcfg", config=dict, learning_rates={"default": {"*": 0.1}},
                       optimizer=lambda p, lr, cfg, seed: __import__('torch').optim.SGD(p, lr=lr)))
"""

ALIAS_CLASH_METHOD = """
from seedbench import Method, TrialConfig, register_method
register_method(Method(name="pa_rewiring", config=TrialConfig, learning_rates={"default": {"*": 0.1}},
                       optimizer=lambda p, lr, cfg, seed: __import__('torch').optim.SGD(p, lr=lr)))
"""

PLAIN_DATASET = """
from pathlib import Path
import numpy as np
from seedbench.data import DatasetSpec, RawSplits, register_dataset

def load(location):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (64, 1, 28, 28)).astype(np.uint8)
    y = np.arange(64) % 3
    return RawSplits(x, y, x[:16], y[:16], {})

register_dataset(DatasetSpec(name="plain", classes=3, shape=(1, 28, 28), load=load, locate=lambda data_dir: Path(__file__),
                             val_size=8, augmentation=None, how_to_get="written by the test"))
"""

# A table of 13 features, each sample a 1x1x13 "image": no convolution fits it (the cnn needs 18x18).
TABULAR_DATASET = """
from pathlib import Path
import numpy as np
from seedbench.data import DatasetSpec, RawSplits, register_dataset

def load(location):
    x = np.random.default_rng(0).integers(0, 256, (64, 1, 1, 13)).astype(np.uint8)
    y = np.arange(64) % 3
    return RawSplits(x, y, x[:16], y[:16], {})

register_dataset(DatasetSpec(name="tabular", classes=3, shape=(1, 1, 13), load=load, locate=lambda data_dir: Path(__file__),
                             val_size=16, how_to_get="written by the test"))
"""

# A valid method whose optimizer, on request ($SB_PROBE), raises or holds still: the exit-1 and Ctrl-C cases.
PROBE_METHOD = """
import os, time
from pathlib import Path
import torch
from seedbench import Method, TrialConfig, register_method

class Probe(torch.optim.SGD):
    def step(self, closure=None):
        mode = os.environ.get("SB_PROBE", "")
        if mode == "raise":
            raise RuntimeError("the probe optimizer raised on purpose")
        if mode.startswith("hold:"):
            Path(mode[5:]).touch()
            time.sleep(120)
        return super().step(closure)

register_method(Method(name="probe", config=TrialConfig, learning_rates={"default": {"*": 0.1}},
                       optimizer=lambda p, lr, cfg, seed: Probe(p, lr=lr)))
"""


class _OpenFile:
    """Pickles as a call to builtins.open(path, "w"): a CIFAR batch that would create a file if it ran."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


class _System:
    """Pickles as os.system(command)."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def idx_bytes(dtype_code: int, array: np.ndarray, big_endian_dtype: str) -> bytes:
    header = bytes([0, 0, dtype_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=big_endian_dtype).tobytes()


def _idx(ctx: Ctx, stem: str, gz: bool = False) -> Path:
    return ctx.mnist(gz) / (stem + (".gz" if gz else ""))


def _truncated_idx(ctx: Ctx) -> list[str]:
    path = _idx(ctx, "train-images-idx3-ubyte")
    path.write_bytes(path.read_bytes()[:-1])
    return ctx.on("mnist")


def _wrong_magic(ctx: Ctx) -> list[str]:
    path = _idx(ctx, "train-labels-idx1-ubyte")
    path.write_bytes(b"\x12\x34" + path.read_bytes()[2:])
    return ctx.on("mnist")


def _labels_255(ctx: Ctx) -> list[str]:
    labels = np.zeros(N_TRAIN, np.uint8)
    labels[7] = 255
    write_idx(_idx(ctx, "train-labels-idx1-ubyte"), labels)
    return ctx.on("mnist")


def _float_labels(ctx: Ctx) -> list[str]:
    _idx(ctx, "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(0x0D, np.arange(N_TEST) % 10, ">f4"))
    return ctx.on("mnist")


def _count_mismatch(ctx: Ctx) -> list[str]:
    write_idx(_idx(ctx, "train-labels-idx1-ubyte"), np.zeros(N_TRAIN - 1, np.uint8))
    return ctx.on("mnist")


def _corrupt_gzip(ctx: Ctx) -> list[str]:
    _idx(ctx, "t10k-images-idx3-ubyte", gz=True).write_bytes(b"\x1f\x8b" + b"garbage" * 10)
    return ctx.on("mnist")


def _missing_idx_file(ctx: Ctx) -> list[str]:
    _idx(ctx, "t10k-labels-idx1-ubyte").unlink()
    return ctx.on("mnist")


def _cifar_label_50(ctx: Ctx) -> list[str]:
    labels = np.arange(10) % 10
    labels[3] = 50
    write_batch(ctx.cifar() / "data_batch_4", np.zeros((10, 3072), np.uint8), labels)
    return ctx.on("cifar10")


def _cifar_payload_open(ctx: Ctx) -> list[str]:
    with open(ctx.cifar() / "data_batch_1", "wb") as fh:
        pickle.dump({b"data": _OpenFile(ctx.tmp / "pwned"), b"labels": [0] * 10}, fh)
    return ctx.on("cifar10")


def _cifar_payload_system(ctx: Ctx) -> list[str]:
    with open(ctx.cifar() / "test_batch", "wb") as fh:
        pickle.dump({b"data": _System(f"touch {ctx.tmp / 'pwned'}"), b"labels": [0] * 10}, fh)
    return ctx.on("cifar10")


def _cifar_missing_batch(ctx: Ctx) -> list[str]:
    (ctx.cifar() / "data_batch_5").unlink()
    return ctx.on("cifar10")


def _cifar_wrong_shape(ctx: Ctx) -> list[str]:
    write_batch(ctx.cifar() / "data_batch_2", np.zeros((10, 1024), np.uint8), np.zeros(10))
    return ctx.on("cifar10")


def _data_dir_is_file(ctx: Ctx) -> list[str]:
    ctx.write("data", b"not a folder")
    return ctx.on("mnist")


def _made_by_other_code(ctx: Ctx, *extra: str) -> list[str]:
    """The store's finished cell as a record of an earlier version of SGD's code would hold it."""
    from seedbench.sweep.runners.store_context import relocate_index

    relocate_index(ctx.store / ".machinable.sqlite", ctx.store)  # what any sweep of a copied store does first
    (record_file,) = ctx.store.rglob("run.json")
    record = json.loads(record_file.read_text())
    record["code_sha256"] = "0" * 64
    record["code_files"] = [{**f, "sha256": "0" * 64} if f["path"] == "seedbench/methods/sgd.py" else f for f in record["code_files"]]
    record_file.write_text(json.dumps(record))
    return ctx.sweep(*extra)


def _empty_data_dir(ctx: Ctx) -> list[str]:
    ctx.data.mkdir()
    return ctx.on("mnist")


def _val_size_over_files(ctx: Ctx) -> list[str]:
    ctx.mnist()
    return ctx.on("mnist", "--set", "limit_train=null", "--set", f"val_size={N_TRAIN}")


def _read_only_store(ctx: Ctx) -> list[str]:
    folders = [ctx.store, *(p for p in ctx.store.rglob("*") if p.is_dir())]
    for folder in folders:
        folder.chmod(0o555)
    if os.access(ctx.store, os.W_OK):  # root: mode bits do not stop writes (the store-is-a-file cases cover this user)
        for folder in folders:
            folder.chmod(0o755)
        pytest.skip("chmod does not make a folder read-only for this user (root); a read-only store cannot be made here")
    return ctx.sweep("--seeds", "1")


def _store_is_file(ctx: Ctx, command: Callable[[Ctx], list[str]]) -> list[str]:
    ctx.store = ctx.write("store-file", b"I am not a folder")
    return command(ctx)


def _store_under_file(ctx: Ctx) -> list[str]:
    ctx.store = ctx.write("store-file", b"I am not a folder") / "sub"
    return ctx.sweep()


# -- the corpus ------------------------------------------------------------------------------------

Build = Callable[[Ctx], list[str]]
CASES: list = []


def case(id: str, build: Build, *fragments: str, marks=()) -> None:
    CASES.append(pytest.param(build, fragments, id=id, marks=marks))


# command-line flags of `sweep`
case("flag-unknown-method", lambda c: c.sweep("--method", "sgdd"), "sgdd", "did you mean 'sgd'")
case("flag-unknown-model", lambda c: c.sweep("--model", "fcc"), "unknown model 'fcc'")
case("flag-unknown-dataset", lambda c: c.sweep("--dataset", "digitz"), "unknown dataset 'digitz'")
case("flag-unknown-initializer", lambda c: c.sweep("--set", "init=orthgonal"), "orthgonal", "did you mean 'orthogonal'")
case("flag-unknown-preset", lambda c: c.sweep("--preset", "tabel1"), "tabel1", "did you mean ~table1")
case("flag-unknown-device", lambda c: c.sweep("--set", "device=gpu"), "device='gpu'")
case("flag-device-not-on-this-machine", lambda c: c.sweep("--set", "device=cuda:99"), "device=cuda:99", "device=auto or cpu")
case("flag-seeds-letters", lambda c: c.sweep("--seeds", "a-b"), "bad seeds 'a-b'")
case("flag-seeds-reversed", lambda c: c.sweep("--seeds", "3-1"), "3-1", "below the start")
case("flag-seeds-negative", lambda c: c.sweep("--seeds", "-1"), "bad seeds '-1'")
case("flag-seeds-empty", lambda c: c.sweep("--seeds", ""), "--seeds")
case("flag-set-without-equals", lambda c: c.sweep("--set", "lr"), "--set 'lr'", "KEY=VALUE")
case("flag-set-unknown-key", lambda c: c.sweep("--set", "momentm=0.9"), "unknown config key 'momentm'")
case("flag-set-wrong-type", lambda c: c.sweep("--set", "epochs=many"), "epochs", "many")
case("flag-set-lr-inf", lambda c: c.sweep("--set", "lr=.inf"), "lr", "finite")
case("flag-set-lr-nan", lambda c: c.sweep("--set", "lr=nan"), "lr=")
case("flag-set-lr-negative", lambda c: c.sweep("--set", "lr=-1"), "lr", "-1")
case("flag-set-epochs-zero", lambda c: c.sweep("--set", "epochs=0"), "epochs=0")
case("flag-epochs-zero", lambda c: c.sweep("--epochs", "0"), "epochs=0")
case("flag-resources-not-json", lambda c: c.sweep("--resources", "{num_gpus: 1"), "--resources", "not JSON")
case("flag-resources-not-object", lambda c: c.sweep("--resources", "[1, 2]"), "--resources", "JSON object")
case("flag-resources-negative", lambda c: c.sweep("--resources", '{"num_cpus": -1}'), "num_cpus", ">= 0")
case("flag-resources-gpu-fraction-over-1", lambda c: c.sweep("--resources", '{"num_gpus": 1.5}'), "num_gpus=1.5")
case("flag-resources-unknown-on-local", lambda c: c.sweep("--resources", '{"bogus": 1}'), "bogus", "local engine")
case("flag-pack-zero", lambda c: c.sweep("--pack", "0"), "--pack", "positive integer")
case("flag-pack-letters", lambda c: c.sweep("--pack", "x"), "--pack", "positive integer")
case("dry-run-pack-zero", lambda c: c.sweep("--dry-run", "--pack", "0"), "--pack", "positive integer")
# --pack K on cells that cannot pack is an explicit request that cannot be honoured: refused, with the method's reason
case(
    "flag-pack-method-cannot-pack",
    lambda c: c.sweep("--method", "sup_walsh", "--pack", "4"),
    "--pack 4",
    "sup_walsh",
    "its pretraining",
    "drop --pack or use --pack auto",
)
case("dry-run-pack-method-cannot-pack", lambda c: c.sweep("--dry-run", "--method", "sup_walsh", "--pack", "4"), "sup_walsh", "drop --pack")
case(
    "flag-pack-plugin-not-packable",
    lambda c: c.sweep("--plugin", c.plugin(PROBE_METHOD), "--method", "probe", "--pack", "2"),
    "method probe cannot be packed",
    "packable=True",
    "drop --pack or use --pack auto",
)
case("dry-run-unknown-method", lambda c: c.sweep("--dry-run", "--method", "sgdd"), "unknown method", "sgd")
case("flag-engine-bogus", lambda c: c.sweep("--engine", "bogus"), "bogus", "--help")
case("flag-ray-address-on-local-engine", lambda c: c.sweep("--engine", "local", "--ray-address", "127.0.0.1:1"), "--ray-address", "--engine ray")
case("flag-ray-address-unreachable", lambda c: c.sweep("--ray-address", "127.0.0.1:1"), "127.0.0.1:1")
case("flag-ray-address-malformed", lambda c: c.sweep("--ray-address", "no-port-here"), "no-port-here")
case("flag-unknown-flag", lambda c: c.sweep("--bogus-flag"), "unrecognized arguments: --bogus-flag", "--help")
case("flag-unknown-command", lambda c: ["swep", "--store", str(c.store)], "swep", "--help")
# an empty --store (an unset variable) must not mean the project's ./storage; --dry-run keeps a regression harmless
case("flag-store-empty", lambda c: ["sweep", *GRID, "--store", "", "--dry-run"], "--store ''")
case("status-store-empty", lambda c: ["status", "--store", ""], "--store ''")
case("flag-data-dir-is-file", _data_dir_is_file, "is a file")
case("flag-batch-size-over-train", lambda c: c.sweep("--set", "batch_size=64"), "batch_size 64", "lower batch_size")
# finished cells made by other code: the sweep stops before anything runs; the two answers at once contradict
case("flag-rerun-and-keep-stale", lambda c: c.sweep("--rerun-stale", "--keep-stale"), "--rerun-stale and --keep-stale", "give one")
case("dry-run-rerun-and-keep-stale", lambda c: c.sweep("--dry-run", "--keep-stale", "--rerun-stale"), "--rerun-stale and --keep-stale")
case("stale-cell-stops-the-sweep", _made_by_other_code, "sgd (1 cell", "seedbench/methods/sgd.py", "--rerun-stale", "--keep-stale")
case("stale-cell-stops-a-retry-failed-sweep-too", lambda c: _made_by_other_code(c, "--retry-failed"), "other code than today's")

# analysis commands: flags and missing stores
case("report-correction-bogus", lambda c: c.analysis("report", "--correction", "bogus"), "unknown correction 'bogus'")
case("compare-correction-bogus", lambda c: c.analysis("compare", "--by", "method", "--correction", "bogus"), "unknown correction 'bogus'")
case("compare-text-metric", lambda c: c.analysis("compare", "--by", "method", "--metric", "host"), "'host' is not numeric")
case("report-text-metric", lambda c: c.analysis("report", "--metric", "status"), "'status' is not numeric")
case("compare-unknown-by", lambda c: c.analysis("compare", "--by", "methd"), "methd", "--by")
case("plot-unknown-kind", lambda c: c.analysis("plot", "--kind", "nope", "-o", str(c.tmp / "p.png")), "nope", "--help")
case("report-target-over-100", lambda c: c.analysis("report", "--target", "150"), "--target 150", "between 0 and 100")
case("report-target-unknown-metric", lambda c: c.analysis("report", "--target", "90", "--metric", "val_accc"), "no 'val_accc'", "val_acc")
case("report-target-on-a-loss", lambda c: c.analysis("report", "--target", "90", "--metric", "val_loss"), "accuracy metric", "--metric val_acc")
case("status-missing-store", lambda c: ["status", "--store", str(c.tmp / "nope")], "does not exist")
case("report-missing-store", lambda c: ["report", "--store", str(c.tmp / "nope")], "nope does not exist")
case("query-missing-store", lambda c: ["query", "--store", str(c.tmp / "nope"), "SELECT 1"], "nope does not exist")
case("export-missing-store", lambda c: ["export", "--store", str(c.tmp / "nope"), "-o", str(c.tmp / "x.parquet")], "nope does not exist")

# sweep YAML files
SPEC = "methods: [sgd]\nmodels: [fc]\ndatasets: [digits]\nseeds: 0\noverrides: {epochs: 1, limit_train: 32, val_size: 16}\n"
case("yaml-not-a-mapping", lambda c: c.spec("- sgd\n- fc\n"), "mapping")
case(
    "yaml-binary-file",
    lambda c: ["sweep", str(c.write("sweep.yaml", bytes(range(256)) * 4)), "--store", str(c.store)],
    "sweep.yaml",
    "not a text file",
)
case("yaml-directory", lambda c: ["sweep", str(c.tmp), "--store", str(c.store)], "directory")
case("yaml-unknown-key", lambda c: c.spec(SPEC + "epochz: 3\n"), "epochz")
case("yaml-seeds-letters", lambda c: c.spec(SPEC.replace("seeds: 0", "seeds: [a, b]")), "bad seeds")
case("yaml-seeds-negative", lambda c: c.spec(SPEC.replace("seeds: 0", "seeds: -3")), "bad seeds", "-3")
case("yaml-store-not-string", lambda c: ["sweep", str(c.write("sweep.yaml", SPEC + "store: 5\n"))], "store", "5")
case("yaml-overrides-list", lambda c: c.spec(SPEC.replace("overrides: {epochs: 1, limit_train: 32, val_size: 16}", "overrides: [1]")), "overrides")
case("yaml-resources-number", lambda c: c.spec(SPEC + "resources: 5\n"), "resources")
case("yaml-engine-number", lambda c: c.spec(SPEC + "engine: 3\n"), "engine")
case("yaml-plugin-missing", lambda c: c.spec(SPEC + "plugins: [missing.py]\n"), "missing.py")
case(
    "yaml-python-tag",
    lambda c: c.spec(SPEC.replace("methods: [sgd]", f'methods: !!python/object/apply:os.system ["touch {c.tmp / "pwned"}"]')),
    "not valid YAML",
)
case("yaml-bad-syntax", lambda c: c.spec("methods: [sgd\nmodels: fc\n"), "not valid YAML")
case("yaml-empty-file", lambda c: c.spec(""), "sweep.yaml", "mapping")
case("yaml-methods-number", lambda c: c.spec(SPEC.replace("methods: [sgd]", "methods: 5")), "bad methods 5")
case("yaml-pack-zero", lambda c: c.spec(SPEC + "pack: 0\n"), "pack")
case("yaml-base-seed-negative", lambda c: c.spec(SPEC + "base_seed: -1\n"), "base_seed")

# machinable.yaml, through $SEEDBENCH_CATALOG
case("catalog-bad-yaml", lambda c: c.catalog("presets:\n  quick: {epochs: 1\n"), "not valid YAML")
case("catalog-unknown-section", lambda c: c.catalog("presets: {}\nschedules: {}\n"), "schedules")
case("catalog-preset-unknown-key", lambda c: c.catalog("presets:\n  quick: {epochz: 1}\n"), "quick", "epochz")
case("catalog-preset-wrong-type", lambda c: c.catalog("presets:\n  quick: {epochs: many}\n"), "quick", "epochs")
case("catalog-learning-rates", lambda c: c.catalog("presets: {}\nlearning_rates: {sgd: 0.1}\n"), "learning_rates")


def _catalog_env(c: Ctx, path: Path) -> list[str]:
    c.env["SEEDBENCH_CATALOG"] = str(path)
    return c.sweep()


case("catalog-directory", lambda c: _catalog_env(c, c.tmp), "is a directory", "SEEDBENCH_CATALOG")
case("catalog-missing", lambda c: _catalog_env(c, c.tmp / "nope.yaml"), "nope.yaml", "not found")

# plugins
case("plugin-missing-file", lambda c: c.sweep("--plugin", str(c.tmp / "missing.py")), "missing.py: no such file")
case("plugin-syntax-error", lambda c: c.sweep("--plugin", c.plugin("def broken(:\n    pass\n")), "plugin.py", "SyntaxError")
case("plugin-raises-at-import", lambda c: c.sweep("--plugin", c.plugin("raise RuntimeError('plugin says no')\n")), "plugin says no")
case("plugin-method-name-dash", lambda c: c.sweep("--plugin", c.plugin(BAD_NAME_METHOD)), "my-sgd")
case("plugin-method-config-not-trialconfig", lambda c: c.sweep("--plugin", c.plugin(BAD_CONFIG_METHOD)), "TrialConfig")
case("plugin-method-alias-clash", lambda c: c.sweep("--plugin", c.plugin(ALIAS_CLASH_METHOD)), "pa_rewiring")
case("plugin-raises-on-methods-command", lambda c: ["methods", "--plugin", c.plugin("raise ValueError('nope')\n")], "ValueError: nope")
case(
    "plugin-augment-without-augmentation",
    lambda c: c.sweep("--plugin", c.plugin(PLAIN_DATASET), "--dataset", "plain", "--set", "augment=true"),
    "plain",
    "augment",
)
case(
    "plugin-model-does-not-fit-dataset",
    lambda c: c.sweep("--plugin", c.plugin(TABULAR_DATASET), "--dataset", "tabular", "--model", "cnn"),
    "model cnn does not fit dataset tabular (input 1x1x13)",
    "image_size=18",
)
case(
    "dry-run-model-does-not-fit-dataset",
    lambda c: c.sweep("--dry-run", "--plugin", c.plugin(TABULAR_DATASET), "--dataset", "tabular", "--model", "cnn"),
    "model cnn does not fit dataset tabular",
)
case("flag-image-size-too-small-for-cnn", lambda c: c.sweep("--model", "cnn", "--set", "image_size=8"), "input 1x8x8", "image_size=18")

# data files, written in the real formats
case("data-missing-dataset", _empty_data_dir, "mnist", "not found")
case("data-idx-truncated", _truncated_idx, "train-images-idx3-ubyte", "truncated")
case("data-idx-wrong-magic", _wrong_magic, "train-labels-idx1-ubyte", "magic")
case("data-idx-label-255", _labels_255, "label 255")
case("data-idx-float32-labels", _float_labels, "t10k-labels-idx1-ubyte", "float32")
case("data-idx-count-mismatch", _count_mismatch, f"{N_TRAIN} images", f"{N_TRAIN - 1} labels")
case("data-idx-corrupt-gzip", _corrupt_gzip, "t10k-images-idx3-ubyte.gz", "gzip")
case("data-idx-missing-file", _missing_idx_file, "t10k-labels-idx1-ubyte", "missing")
case("data-val-size-over-train", _val_size_over_files, f"validation size {N_TRAIN}", "val_size")
case("data-cifar-label-50", _cifar_label_50, "data_batch_4", "label 50")
case("data-cifar-payload-open", _cifar_payload_open, "data_batch_1", "refused")
case("data-cifar-payload-system", _cifar_payload_system, "test_batch", "refused")
case("data-cifar-missing-batch", _cifar_missing_batch, "data_batch_5", "missing")
case("data-cifar-wrong-shape", _cifar_wrong_shape, "data_batch_2", "1024 values", "3072")

# queries: only a single SELECT over the store's views, no file or extension access
case("query-copy-to", lambda c: c.query(f"COPY runs TO '{c.tmp / 'out.csv'}'"), "COPY")
case("query-explain-analyze-copy", lambda c: c.query(f"EXPLAIN ANALYZE COPY runs TO '{c.tmp / 'out.csv'}'"), "COPY")
case("query-attach", lambda c: c.query(f"ATTACH '{c.tmp / 'other.db'}' AS other"), "ATTACH")
case("query-install", lambda c: c.query("INSTALL httpfs"), "INSTALL")
case("query-load", lambda c: c.query("LOAD httpfs"), "LOAD")
case("query-create", lambda c: c.query("CREATE TABLE t AS SELECT 1 AS x"), "CREATE")
case("query-drop", lambda c: c.query("DROP VIEW runs"), "DROP")
case("query-set-external-access", lambda c: c.query("SET enable_external_access = true"), "SET")
case("query-stacked", lambda c: c.query("SELECT 1; DROP VIEW runs"), "one SQL statement")
case("query-read-csv-passwd", lambda c: c.query("SELECT * FROM read_csv('/etc/passwd')"), "/etc/passwd")
case("query-syntax-error", lambda c: c.query("SELEC model FROM runs"), "SELEC")
case("query-unknown-column", lambda c: c.query("SELECT no_such_column FROM runs"), "no_such_column")
case("query-unknown-table", lambda c: c.query("SELECT * FROM no_such_table"), "no_such_table")
case("where-stacked", lambda c: c.analysis("report", "--where", "1=1; DROP VIEW runs"), "--where")
case("where-unknown-column", lambda c: c.analysis("report", "--where", "no_such_column = 1"), "no_such_column")

# output paths (-o), checked before anything is computed or written
case("out-report-parent-is-file", lambda c: c.analysis("report", "-o", str(c.write("afile", "x") / "t.txt")), "afile is a file")
case("out-report-missing-dir", lambda c: c.analysis("report", "-o", str(c.tmp / "nodir" / "t.txt")), "nodir does not exist")
case("out-report-directory", lambda c: c.analysis("report", "-o", str(c.tmp)), "is a folder")
case("out-compare-parent-is-file", lambda c: c.analysis("compare", "--by", "method", "-o", str(c.write("afile", "x") / "t.txt")), "afile is a file")
case("out-plot-extension", lambda c: c.analysis("plot", "-o", str(c.tmp / "plot.txt")), ".txt")
case("out-plot-directory", lambda c: c.analysis("plot", "-o", str(c.tmp)), "is a folder")
case("out-export-parent-is-file", lambda c: ["export", "--store", str(c.store), "-o", str(c.write("afile", "x") / "r.parquet")], "afile is a file")
case("out-query-extension", lambda c: c.query("SELECT 1", "-o", str(c.tmp / "r.xlsx")), ".xlsx")
case("out-query-directory", lambda c: c.query("SELECT 1", "-o", str(c.tmp)), "is a folder")

# store faults
case("store-read-only", _read_only_store, "read-only")
case("store-is-file-sweep", lambda c: _store_is_file(c, Ctx.sweep), "store-file is a file")
case("store-under-file-sweep", _store_under_file, "store-file is a file")
case("store-is-file-status", lambda c: _store_is_file(c, lambda c: ["status", "--store", str(c.store)]), "store-file is a file")
case("store-is-file-report", lambda c: _store_is_file(c, lambda c: c.analysis("report")), "store-file is a file")
case("store-is-file-query", lambda c: _store_is_file(c, lambda c: c.query("SELECT 1")), "store-file is a file")


# seedbench tune, and sweeps of a tuning study's choices (--preset tuned:STUDY)
TINY_TRIAL = ["--set", "limit_train=32", "--set", "val_size=16"]  # a study's epochs are --epochs, never --set


def _tune(c: Ctx, *extra: str) -> list[str]:
    grid = ["--method", "sgd", "--model", "fc", "--dataset", "digits", "--trials", "2", "--seeds", "100", "--epochs", "1", "--study", "s"]
    return ["tune", *grid, "--store", str(c.store), *TINY_TRIAL, "--quiet", *extra]


def _tune_yaml(c: Ctx, space: str) -> list[str]:
    path = c.write("tune.yaml", f"study: y\nmethods: [sgd]\nmodels: [fc]\ndatasets: [digits]\ntrials: 2\nseeds: 100\nepochs: 1\nspace: {space}\n")
    return ["tune", str(path), "--store", str(c.store), *TINY_TRIAL, "--quiet"]


def _tuned_study(c: Ctx, seeds: list[int], edit: bool = False) -> None:
    """A tuning study's file in the case's store, written by seedbench's own writer (sgd on fc-digits, lr 0.1)."""
    from seedbench.sweep.tuned import FORMAT, write_study

    chosen = {"chosen": {"lr": 0.1}, "trial": 0, "val_acc": 0.9, "trials": []}
    doc = {
        "format": FORMAT,
        "study": "t",
        "budget": {"trials": 1, "seeds": seeds, "epochs": 1},
        "methods": {"sgd": {"space": {}, "workloads": {"fc-digits": chosen}}},
    }
    path = write_study(c.store, doc)
    if edit:  # a chosen value changed by hand: the file no longer matches its version
        path.write_text(path.read_text().replace('"lr": 0.1', '"lr": 0.5'))


case("tune-missing-flags", lambda c: ["tune", "--method", "sgd", "--store", str(c.store)], "tune needs", "--trials")
case("tune-unknown-method", lambda c: _tune(c, "--method", "sgdd"), "sgdd", "did you mean 'sgd'")
case("tune-trials-zero", lambda c: _tune(c, "--trials", "0"), "--trials 0")
case("tune-halving-one", lambda c: _tune(c, "--halving", "1"), "--halving 1")
case("tune-study-name-path", lambda c: _tune(c, "--study", "../x"), "study name '../x'")
case("tune-searched-and-set", lambda c: _tune(c, "--set", "lr=0.1"), "lr is both searched", "drop one")
case("tune-epochs-as-set", lambda c: _tune(c, "--set", "epochs=3"), "--epochs")
case("tune-alias", lambda c: _tune(c, "--method", "pa_rewiring"), "alias of sgd")
case("tune-range-log-zero", lambda c: _tune_yaml(c, "{sgd: {lr: {log_uniform: [0, 1]}}}"), "space.sgd.lr", "0 < low < high")
case("tune-range-reversed", lambda c: _tune_yaml(c, "{sgd: {momentum: {uniform: [0.9, 0.1]}}}"), "space.sgd.momentum", "low < high")
case("tune-range-invalid-value", lambda c: _tune_yaml(c, "{sgd: {momentum: {uniform: [-1, 0.5]}}}"), "momentum=-1", "narrow the range")
case("tune-range-unknown-key", lambda c: _tune_yaml(c, "{sgd: {momentm: {uniform: [0, 0.5]}}}"), "momentm", "did you mean 'momentum'")
case("tune-range-unknown-kind", lambda c: _tune_yaml(c, "{sgd: {lr: {loguniform: [0.01, 1]}}}"), "not a range", "log_uniform")
case("tune-range-budget-key", lambda c: _tune_yaml(c, "{sgd: {epochs: {integer: [1, 5]}}}"), "epochs is part of the study's budget")
case("tune-space-other-method", lambda c: _tune_yaml(c, "{rbd: {lr: 0.1}}"), "rbd", "does not tune")
case("tune-dry-run-bad-range", lambda c: [*_tune_yaml(c, "{sgd: {lr: {log_uniform: [1, 0.1]}}}"), "--dry-run"], "0 < low < high")
case("sweep-tuned-study-missing", lambda c: c.sweep("--preset", "tuned:nope"), "no tuned study 'nope'", "seedbench tune")
case("sweep-tuned-seed-reused", lambda c: (_tuned_study(c, [0, 1]), c.sweep("--preset", "tuned:t"))[1], "seed 0 was used to tune study t", "--seeds")
case("sweep-tuned-method-not-tuned", lambda c: (_tuned_study(c, [7]), c.sweep("--preset", "tuned:t", "--method", "rbd"))[1], "rbd was not tuned")
case("sweep-tuned-workload-not-tuned", lambda c: (_tuned_study(c, [7]), c.sweep("--preset", "tuned:t", "--model", "cnn"))[1], "not on cnn-digits")
case("sweep-tuned-edited-by-hand", lambda c: (_tuned_study(c, [7], edit=True), c.sweep("--preset", "tuned:t"))[1], "does not match its version")
case(
    "sweep-tuned-wrong-version",
    lambda c: (_tuned_study(c, [7]), c.sweep("--preset", "tuned:t@000000000000"))[1],
    "tuned:t@000000000000",
    "holds version",
)
case("tune-report-missing-study", lambda c: ["tune-report", "nope", "--store", str(c.store)], "no tuned study 'nope'")


@pytest.mark.parametrize(("build", "fragments"), CASES)
def test_bad_input_is_one_line_exit_2_and_changes_nothing(ctx: Ctx, build: Build, fragments: tuple[str, ...]) -> None:
    args = build(ctx)
    before = snapshot(ctx.tmp)
    result = run_cli(*args, env=ctx.env, timeout=30 if "--ray-address" in args else 300)
    assert_one_line_error(result, *fragments)
    after = snapshot(ctx.tmp)
    created = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    assert not (created or removed or changed), f"created {created}, removed {removed}, changed {changed}"
    assert not (ctx.tmp / "pwned").exists()


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 100


# -- not exit 2: store faults a command survives, a cell that fails, Ctrl-C --------------------------


@pytest.mark.parametrize("content", [b"{ not json", b"[1, 2, 3]", bytes(range(256))], ids=["truncated", "not-a-record", "binary"])
def test_status_names_a_corrupt_sweep_file_and_lists_the_others(ctx: Ctx, content: bytes) -> None:
    good = [json.loads(p.read_text())["id"] for p in (ctx.store / "sweeps").glob("*.json")]
    assert good, "the module's store records its sweep"
    broken = ctx.write("store/sweeps/0000broken.json", content)
    result = run_cli("status", "--store", str(ctx.store), env=ctx.env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("warning:") and broken.name in lines[0], result.stderr
    for ident in good:
        assert ident[:8] in result.stdout, result.stdout


def test_a_truncated_run_record_is_redone_not_reused(ctx: Ctx, base_store: Path) -> None:
    """In a copy of the store: the copy's index must lead to the copy's folders, never the original's."""
    original = snapshot(base_store)
    (record,) = ctx.store.rglob("run.json")
    text = record.read_text()
    record.write_text(text[: len(text) // 2])
    result = run_cli(*ctx.sweep(), env=ctx.env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 cells: trained 1" in result.stdout and "reused 0" in result.stdout, result.stdout
    records = [json.loads(p.read_text()) for p in ctx.store.rglob("run.json")]
    assert [r["status"] for r in records] == ["finished"]
    assert snapshot(base_store) == original


def _probe_sweep(ctx: Ctx, seeds: str) -> list[str]:
    return [
        "sweep",
        "--plugin",
        ctx.plugin(PROBE_METHOD, "probe.py"),
        "--method",
        "probe",
        "--model",
        "fc",
        "--dataset",
        "digits",
        "--seeds",
        seeds,
        "--store",
        str(ctx.store),
        *TINY,
        "--quiet",
    ]


def test_a_valid_cell_that_raises_exits_1_with_one_line_per_cell(ctx: Ctx) -> None:
    seeds = [0, 1]
    result = run_cli(*_probe_sweep(ctx, f"{seeds[0]}-{seeds[-1]}"), env={**ctx.env, "SB_PROBE": "raise"})
    everything = result.stdout + result.stderr
    assert result.returncode == 1, everything
    assert "Traceback" not in everything
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == len(seeds), result.stderr
    for seed, line in zip(seeds, lines, strict=True):
        assert line.startswith("failed") and f"seed={seed}" in line and "raised on purpose" in line, line
    assert f"failed {len(seeds)}" in result.stdout
    tracebacks = sorted(ctx.store.rglob("traceback.txt"))
    assert len(tracebacks) == len(seeds)
    for path in tracebacks:
        text = path.read_text()
        assert "Traceback" in text and "raised on purpose" in text
        assert json.loads((path.parent / "run.json").read_text())["status"] == "failed"


def test_ctrl_c_stops_in_one_line_and_the_same_command_resumes(ctx: Ctx) -> None:
    marker = ctx.tmp / "cell-is-running"
    args = _probe_sweep(ctx, "0-1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "seedbench.cli", *args],
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **ctx.env, "SB_PROBE": f"hold:{marker}"},
        # as from a terminal: a suite started in the background (`make test &`) inherits SIGINT ignored,
        # and Python then installs no Ctrl-C handler at all, so the signal would never arrive
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.exists(), f"no cell started (exit {proc.poll()})"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, out + err
    assert "Traceback" not in out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "interrupted" in lines[0], err
    again = run_cli(*args, env=ctx.env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "2 cells: trained 2" in again.stdout and "failed 0" in again.stdout, again.stdout
    assert sorted(json.loads(p.read_text())["status"] for p in ctx.store.rglob("run.json")).count("finished") == 3  # the module's cell too


# -- a full or read-only disk (a real tmpfs; root only, skipped in one line elsewhere) -----------------

QUERY = "SELECT method, model, dataset, seed, status, test_acc FROM runs ORDER BY seed"


def _store_on_small_disk(ctx: Ctx, disk: Path) -> Path:
    """The case's store copied onto `disk` without its query cache, and the user's cache folder there too."""
    store = disk / "store"
    shutil.copytree(ctx.store, store, symlinks=True, ignore=shutil.ignore_patterns(CACHE_DIR))
    ctx.store = store
    ctx.env.update({"XDG_CACHE_HOME": str(disk / "user-cache"), "HOME": str(disk / "home")})
    return store


def test_a_sweep_on_a_full_disk_is_refused_in_one_line_and_changes_nothing(ctx: Ctx) -> None:
    with tmpfs(ctx.tmp / "disk", "3m") as disk:
        store = _store_on_small_disk(ctx, disk)
        fill(disk)
        before = snapshot(disk)
        result = run_cli(*ctx.sweep("--seeds", "1"), env=ctx.env)
        assert_one_line_error(result, str(store), "disk is full", "free space")
        assert snapshot(disk) == before


@pytest.mark.parametrize("how", ["full", "read-only"])
def test_a_query_on_a_full_or_read_only_disk_answers_from_the_run_folders(ctx: Ctx, how: str) -> None:
    """A query never needs to write: with nowhere to put its cache it answers from the run folders, says so
    in one warning line, and writes nothing."""
    expected = run_cli("query", "--store", str(ctx.store), QUERY, "--format", "csv", env=ctx.env)
    assert expected.returncode == 0 and expected.stdout.count("\n") == 2, expected.stdout + expected.stderr
    with tmpfs(ctx.tmp / "disk", "3m") as disk:
        store = _store_on_small_disk(ctx, disk)
        if how == "full":
            fill(disk)
        else:
            read_only(disk)
        before = snapshot(disk)
        for args in (["query", "--store", str(store), QUERY, "--format", "csv"], ["report", "--store", str(store)]):
            result = run_cli(*args, env=ctx.env)
            everything = result.stdout + result.stderr
            assert result.returncode == 0, everything
            assert "Traceback" not in everything, everything
            warnings = [line for line in result.stderr.splitlines() if line.strip()]
            if args[0] == "query":  # `query` says why it is slower this time; the analysis commands keep quiet
                assert len(warnings) == 1 and warnings[0].startswith("warning:") and "cannot be written" in warnings[0], result.stderr
                assert result.stdout == expected.stdout
            else:
                assert not warnings, result.stderr
                assert "sgd" in result.stdout and "fc" in result.stdout, result.stdout
        assert snapshot(disk) == before, "a query wrote to the store"
        assert not [p for p in disk.rglob(f"{CACHE_DIR}/*") if p.name != ".lock"], "nor to its cache"


def test_a_malformed_background_threshold_is_one_line_before_anything_is_written(tmp_path):
    """A typo in SEEDBENCH_SLURM_BACKGROUND_OVER is refused before Slurm is asked or the store exists."""
    store = tmp_path / "new-store"
    for value in ("lots", "-5"):
        result = run_cli(
            "sweep", "--method", "sgd", "--model", "fc", "--dataset", "digits", "--seeds", "0", "--store", str(store),
            "--engine", "slurm", "--detach", env={"SEEDBENCH_SLURM_BACKGROUND_OVER": value},
        )  # fmt: skip
        assert_one_line_error(result, "SEEDBENCH_SLURM_BACKGROUND_OVER", "whole number")
        assert not store.exists()
