"""The code that made a cell: a hash of each method's own source, the checkout, and the software versions.

A cell's identity is its science (method and config), so a finished cell would be reused after the
code that trains it changed. This module says what that code is, as a set of files and their
sha256, so that a sweep can tell a cell made by other code (seedbench/sweep/runners/provenance.py
decides what then happens; docs/store.md, "Code versions").

A method's code is:

- the files its `Method` object's hooks and config class are defined in (a plugin's file, or the
  method's module under seedbench/methods), and its `packed_step` and, for a TensorFlow cell, its
  `tensorflow` implementation;
- the fixed training modules every cell runs (TRAINING: the loop, its steps, packing, checkpoints;
  TENSORFLOW in addition for a TensorFlow cell);
- transitively, the modules of the training packages (TRAINING_PACKAGES: seedbench.methods,
  seedbench.optim, seedbench.train, seedbench.init) those files import, read from their source
  with `ast` (so `from seedbench.optim import RBD` inside a function brings in optim/rbd.py and
  what it imports, not the other optimizers), minus the modules that only declare, check or wire
  (NOT_METHOD_CODE).

So editing a plugin's file, the loop, or a method's optimizer changes the hash; editing the docs,
analysis, the CLI, the store or an unrelated method does not. The data, models and seeding are the
workload's, not the method's: the record names the seedbench version and git commit for those.

Hashing reads and parses each file once per process while it is unchanged (cached by its
mtime, size and inode), so the driver computes a method's version once per sweep in milliseconds
and a worker can verify what the driver computed. Torch-free and machinable-free: the driver,
workers and `seedbench status` import it.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import json
import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROVENANCE_ENV = "SEEDBENCH_PROVENANCE"  # the driver's code versions and checkout, handed to workers
LIBRARY_ROOT = Path(__file__).resolve().parent.parent  # the folder holding the seedbench package

TRAINING: tuple[str, ...] = (
    "seedbench.train.loop",
    "seedbench.train.steps",
    "seedbench.train.packed",
    "seedbench.train.packed_models",
    "seedbench.train.packed_optim",
    "seedbench.train.checkpoint",
)
TENSORFLOW: tuple[str, ...] = (
    "seedbench.train.tf_runner",
    "seedbench.train.tf_methods",
    "seedbench.train.tf_optim",
    "seedbench.train.tf_models",
)
TRAINING_PACKAGES: tuple[str, ...] = ("seedbench.methods", "seedbench.optim", "seedbench.train", "seedbench.init")
# declarations, checks and wiring inside those packages: editing them changes no method's training
NOT_METHOD_CODE = frozenset(
    {
        "seedbench.methods",
        "seedbench.methods.base",
        "seedbench.methods.space",
        "seedbench.methods.builtin",
        "seedbench.train",
        "seedbench.train.trial",
        "seedbench.train.pack_rules",
        "seedbench.train.tf_check",
    }
)
PLUGIN_PREFIX = "seedbench_plugin_"  # the module name seedbench.registry gives a plugin file
HOOKS = ("optimizer", "schedule", "loss", "initialize", "prepare", "init_state", "step", "epoch")


@dataclass(frozen=True)
class CodeVersion:
    """A method's code for one framework: its files (key -> sha256) and one hash over all of them.

    Keys are paths relative to the library root for seedbench's own files ("seedbench/train/loop.py")
    and absolute paths for everything else (a plugin's file).
    """

    sha256: str
    files: dict[str, str] = field(default_factory=dict)


def version_of(files: dict[str, str]) -> str:
    """The one hash of a set of files: what the record's code_sha256 holds.

    A file outside the library (a plugin) counts by its name and content, not its folder: the same
    plugin copied elsewhere, or the store read on another machine, is the same code.
    """
    named = sorted((Path(key).name if os.path.isabs(key) else key, sha) for key, sha in files.items())
    return hashlib.sha256("".join(f"{key}\0{sha}\n" for key, sha in named).encode()).hexdigest()


def files_to_record(files: dict[str, str]) -> list[dict[str, str]]:
    """The record's form of a file set: a list, so that the store's `runs` view keeps it as one column."""
    return [{"path": key, "sha256": files[key]} for key in sorted(files)]


def files_from_record(entries: Any) -> dict[str, str]:
    """A record's code_files back as path -> sha256 (empty for a record without them, or a malformed one)."""
    if not isinstance(entries, list):
        return {}
    return {e["path"]: e["sha256"] for e in entries if isinstance(e, dict) and isinstance(e.get("path"), str) and isinstance(e.get("sha256"), str)}


def changed_files(then: dict[str, str] | None, now: dict[str, str]) -> list[str]:
    """The files of `now` that differ from `then` (added, changed or gone), by key."""
    then = then or {}
    return sorted(k for k in set(then) | set(now) if then.get(k) != now.get(k))


# -- files ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    """What hashing needs of one source file: its sha256 and the seedbench modules it imports, by scope.

    Imports are dotted names; `from seedbench.optim import RBD` is "seedbench.optim:RBD", resolved
    later to the submodule that defines RBD. `scopes` maps each top-level name (a function, class,
    assignment or imported name) to the imports inside it and the names it refers to, so that the
    imports one hook needs can be told from those of another hook in the same file.
    """

    sha256: str
    imports: tuple[str, ...]  # every one, anywhere in the file
    module_imports: tuple[str, ...]  # those run at import time outside any named scope
    roots: frozenset[str]  # names those module-level statements refer to
    scopes: dict[str, tuple[tuple[str, ...], frozenset[str]]]

    def imports_of(self, names: list[str]) -> list[str]:
        """The imports the top-level `names` need: their own, those of what they refer to, and the module's."""
        found = list(self.module_imports)
        todo, seen = [*names, *self.roots], set()
        while todo:
            name = todo.pop()
            if name in seen or name not in self.scopes:
                continue
            seen.add(name)
            imports, refs = self.scopes[name]
            found.extend(imports)
            todo.extend(refs)
        return found


_FILES: dict[str, tuple[tuple[int, int, int], _Source]] = {}  # path -> (stat, its summary)


def _stat(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def file_digest(path: Path) -> str | None:
    """sha256 of a file's bytes (cached while its mtime, size and inode are unchanged); None if unreadable."""
    source = _read(path, LIBRARY_ROOT)
    return source.sha256 if source is not None else None


def _read(path: Path, root: Path) -> _Source | None:
    """A file's summary (`root`: the folder its package lives in, for relative imports); None if unreadable."""
    stat = _stat(path)
    if stat is None:
        return None
    cached = _FILES.get(str(path))
    if cached is not None and cached[0] == stat:
        return cached[1]
    try:
        data = path.read_bytes()
    except OSError:
        return None
    module = _module_of(path, root)
    package = module if path.name == "__init__.py" else (module or "").rpartition(".")[0]
    source = summarize(data, package)
    _FILES[str(path)] = (stat, source)
    return source


def summarize(source: bytes | str, package: str | None = None) -> _Source:
    """The summary of one file's source; `package`: the package its relative imports start from."""
    sha = hashlib.sha256(source if isinstance(source, bytes) else source.encode()).hexdigest()
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return _Source(sha, (), (), frozenset(), {})

    def imports_in(node: ast.AST) -> list[str]:
        found: list[str] = []
        for child in _walk(node):
            if isinstance(child, ast.Import):
                found.extend(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                found.extend(f"{_absolute(child, package)}:{alias.name}" for alias in child.names)
        return [name for name in found if name.split(":")[0].split(".")[0] == "seedbench"]

    def names_in(node: ast.AST) -> frozenset[str]:
        return frozenset(child.id for child in _walk(node) if isinstance(child, ast.Name))

    scopes: dict[str, tuple[tuple[str, ...], frozenset[str]]] = {}
    module_imports: list[str] = []
    roots: set[str] = set()

    def bind(name: str, imports: list[str], refs: frozenset[str]) -> None:
        old = scopes.get(name, ((), frozenset()))
        scopes[name] = ((*old[0], *imports), old[1] | refs)

    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bind(node.name, imports_in(node), names_in(node))
        elif isinstance(node, ast.Assign | ast.AnnAssign) and all(isinstance(t, ast.Name) for t in _targets(node)):
            for target in _targets(node):
                bind(target.id, imports_in(node), names_in(node))  # type: ignore[attr-defined]
        elif isinstance(node, ast.Import | ast.ImportFrom) and not any(alias.name == "*" for alias in node.names):
            for alias in node.names:
                full = alias.name if isinstance(node, ast.Import) else f"{_absolute(node, package)}:{alias.name}"
                local = full.split(":")[0].split(".")[0] == "seedbench"
                bind(alias.asname or alias.name.split(".")[0], [full] if local else [], frozenset())
        elif isinstance(node, ast.If) and _type_checking(node.test):
            continue
        else:  # runs at import time: its imports always count, and so does what it refers to
            module_imports.extend(imports_in(node))
            roots |= names_in(node)
    return _Source(sha, tuple(imports_in(tree)), tuple(module_imports), frozenset(roots), scopes)


def _targets(node: ast.Assign | ast.AnnAssign) -> list[ast.expr]:
    return list(node.targets) if isinstance(node, ast.Assign) else [node.target]


def _walk(node: ast.AST):
    """ast.walk without the bodies of `if TYPE_CHECKING:` (type hints, never run)."""
    todo = [node]
    while todo:
        current = todo.pop()
        yield current
        if isinstance(current, ast.If) and _type_checking(current.test):
            todo.extend(current.orelse)
            continue
        todo.extend(ast.iter_child_nodes(current))


def _absolute(node: ast.ImportFrom, package: str | None) -> str:
    base = node.module or ""
    if not node.level:
        return base
    parts = package.split(".") if package else []
    parts = parts[: len(parts) - node.level + 1]
    return ".".join([*parts, base] if base else parts)


def _type_checking(test: ast.AST) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _module_of(path: Path, root: Path) -> str | None:
    """The dotted name of a file under `root` (for its relative imports); None elsewhere."""
    try:
        rel = path.resolve().relative_to(root.resolve())
    except ValueError:
        return None
    parts = list(rel.with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.lru_cache(maxsize=4096)
def _library_file(module: str, root: Path) -> Path | None:
    """seedbench.x.y -> root/seedbench/x/y.py (or its package's __init__.py), if it exists.

    Cached per process: a method's code version walks ~80 module names per cell, two stats each,
    and which file holds a module does not change while a process runs (a file's content may, and
    `_read` checks that by its stat every time).
    """
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _in_training(module: str) -> bool:
    return module not in NOT_METHOD_CODE and any(module == p or module.startswith(p + ".") for p in TRAINING_PACKAGES)


# -- a method's files ------------------------------------------------------------------------------


def _object_module(obj: Any) -> str | None:
    """The module an object of a Method was defined in (partials, bound methods and instances unwrapped)."""
    while callable(getattr(obj, "func", None)):  # functools.partial
        obj = obj.func
    obj = getattr(obj, "__func__", obj)  # a bound method
    return getattr(obj, "__module__", None) or type(obj).__module__


def _plugin_entry(module: str) -> tuple[str, str, str | None] | None:
    """(file, sha256, source) of a plugin module loaded from a file: the source that ran, not the file now."""
    mod = sys.modules.get(module)
    ref = getattr(mod, "__file__", None)
    prefix = module.rsplit("_", 1)[-1]
    from seedbench.registry import loaded_plugins

    sha = next((p["sha256"] for p in loaded_plugins() if p.get("sha256", "").startswith(prefix) and p.get("ref") == ref), None)
    if ref is None or sha is None:
        return None
    return ref, sha, _plugin_source(ref, sha)


_PLUGINS: dict[str, _Source] = {}


def _plugin_summary(sha: str, text: str) -> _Source:
    """summarize(text), once per process per plugin source: `sha` is the text's own sha256, so the
    entry cannot go stale. Parsing a plugin file again for every cell cost ~10 ms a cell."""
    source = _PLUGINS.get(sha)
    if source is None:
        source = _PLUGINS[sha] = summarize(text)
    return source


def _plugin_source(ref: str, sha: str) -> str | None:
    """The plugin's source: from the sweep's hand-over on a worker, else its file while it is unchanged."""
    from seedbench.config import PLUGIN_ENV

    try:
        for plugin in json.loads(os.environ.get(PLUGIN_ENV) or "[]"):
            if plugin.get("sha256") == sha and plugin.get("source") is not None:
                return plugin["source"]
    except (ValueError, AttributeError, TypeError):
        pass
    try:
        text = Path(ref).read_text()
    except (OSError, UnicodeDecodeError):
        return None
    return text if hashlib.sha256(text.encode()).hexdigest() == sha else None


def method_modules(method: Any, framework: str = "torch") -> dict[str, list[str] | None]:
    """The modules a Method's own objects come from, and the fixed training modules of its framework.

    module -> the top-level names of the method's objects defined there (whose imports alone count),
    or None where the whole file counts (a lambda, a nested function, a "module:attr" reference, the
    training modules).
    """
    objects: list[Any] = [getattr(method, hook) for hook in HOOKS if getattr(method, hook, None) is not None]
    for cls in getattr(method.config, "__mro__", ()):
        if cls.__module__ not in ("seedbench.config", "builtins") and not cls.__module__.startswith("pydantic"):
            objects.append(cls)
    modules: dict[str, list[str] | None] = {}
    for obj in objects:
        module = _object_module(obj)
        if not module:
            continue
        name = getattr(getattr(obj, "__func__", obj), "__qualname__", None)
        if not isinstance(name, str) or not name.isidentifier() or module.startswith(PLUGIN_PREFIX):
            modules[module] = None  # a lambda, a nested or partial function, a plugin file: the whole file
        elif module not in modules:
            modules[module] = [name]
        elif modules[module] is not None:
            modules[module].append(name)  # type: ignore[union-attr]
    refs = [method.packed_step] + ([method.tensorflow] if framework == "tensorflow" else [])
    for module in [*(ref.split(":", 1)[0] for ref in refs if ref), *TRAINING, *(TENSORFLOW if framework == "tensorflow" else ())]:
        modules[module] = None
    return modules


def method_files(method: Any, framework: str = "torch", root: Path | None = None) -> dict[str, str]:
    """key -> sha256 of every file of the method's code (see the module docstring); `root`: the library's folder."""
    root = Path(root) if root is not None else LIBRARY_ROOT
    start = method_modules(method, framework)
    files: dict[str, str] = {}
    seen: set[str] = set()
    todo = list(start)
    while todo:
        name = todo.pop()
        module, _, attr = name.partition(":")
        if attr:  # `from package import name`: the submodule if there is one, else where the package gets it
            sub = f"{module}.{attr}"
            todo.extend([sub] if _library_file(sub, root) is not None else _defining(module, attr, root))
            continue
        if module in seen or (module not in start and not _in_training(module)):
            continue
        seen.add(module)
        source: _Source | None = None
        if module.startswith(PLUGIN_PREFIX):
            entry = _plugin_entry(module)
            if entry is not None:
                ref, sha, text = entry
                files[ref] = sha
                source = _plugin_summary(sha, text) if text is not None else None
        else:
            local = module.split(".")[0] == "seedbench"
            path = _library_file(module, root) if local else _module_file(module)  # a module plugin, a package of the user's
            source = _read(path, root) if path is not None else None
            if source is not None and path is not None:
                files[path.relative_to(root).as_posix() if local else str(path)] = source.sha256
        if source is not None:
            names = start.get(module)
            todo.extend(source.imports if names is None else source.imports_of(names))
    return files


def _defining(package: str, name: str, root: Path) -> list[str]:
    """The module a package's `__init__` takes `name` from; the package itself if it defines it."""
    path = _library_file(package, root)
    source = _read(path, root) if path is not None else None
    if source is None:
        return []
    origin = [m.split(":")[0] for m in source.imports if m.endswith(f":{name}")]
    return origin or [package]


def _module_file(module: str) -> Path | None:
    mod = sys.modules.get(module)
    path = getattr(mod, "__file__", None)
    if path is None:
        try:
            import importlib.util

            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            return None
        path = spec.origin if spec is not None else None
    return Path(path) if path and str(path).endswith(".py") else None


def code_version(method: Any, framework: str = "torch", root: Path | None = None) -> CodeVersion:
    """The method's code version for cells of `framework` (see the module docstring)."""
    files = method_files(method, framework, root)
    return CodeVersion(version_of(files), files)


def current_files(files: dict[str, str], root: Path | None = None) -> dict[str, str]:
    """The same files as a record names them, hashed as they are now (a missing file hashes as "missing").

    `seedbench status` judges a cell with this, without loading the method or its plugin.
    """
    root = Path(root) if root is not None else LIBRARY_ROOT
    now = {}
    for key in files:
        path = Path(key) if os.path.isabs(key) else root / key
        now[key] = file_digest(path) or "missing"
    return now


# -- the checkout and the software -------------------------------------------------------------------


def git_state(root: Path | None = None) -> dict[str, Any] | None:
    """The library checkout's commit and a sha256 of its uncommitted diff (None when clean); None outside a checkout.

    The diff is `git diff HEAD` (staged and unstaged changes to tracked files); untracked files are
    not in it. Computed once per sweep on the driver.
    """
    root = Path(root) if root is not None else LIBRARY_ROOT
    if not (root / ".git").exists():
        return None

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, timeout=20, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.decode(errors="replace") if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return None
    diff = git("diff", "HEAD", "--no-ext-diff", "--no-color", "--", ".")
    return {"commit": commit.strip(), "diff_sha256": hashlib.sha256(diff.encode()).hexdigest() if diff else None}


def versions(framework: str = "torch") -> dict[str, str | None]:
    """Python, torch, numpy and (for a TensorFlow cell) TensorFlow versions, read without importing them."""
    return {
        "python": platform.python_version(),
        "torch": _version_of("torch"),
        "numpy": _version_of("numpy"),
        "tensorflow": _version_of("tensorflow") if framework == "tensorflow" else None,
    }


_VERSIONS: dict[str, str | None] = {}


def _version_of(name: str) -> str | None:
    """An imported module's __version__, else its distribution's (found once per process: the lookup scans every one)."""
    module = sys.modules.get(name)
    if module is not None and getattr(module, "__version__", None):
        return str(module.__version__)
    if name not in _VERSIONS:
        from importlib.metadata import PackageNotFoundError, packages_distributions, version

        _VERSIONS[name] = None
        try:
            _VERSIONS[name] = version(name)
        except PackageNotFoundError:  # installed under another name (tensorflow-cpu provides tensorflow)
            for dist in packages_distributions().get(name) or []:
                with contextlib.suppress(PackageNotFoundError):
                    _VERSIONS[name] = version(dist)
                    break
    return _VERSIONS[name]


def device_name(device: str) -> str | None:
    """The GPU's name for a CUDA device, else the CPU's model (/proc/cpuinfo, or platform.processor())."""
    if device.startswith("cuda"):
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            try:
                return str(torch.cuda.get_device_name(torch.device(device)))
            except Exception:  # noqa: BLE001 - a name is provenance, never a reason to fail a cell
                return None
        return None
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip() or None
    except OSError:
        pass
    return platform.processor() or platform.machine() or None


# -- the driver's hand-over -------------------------------------------------------------------------


def sweep_provenance(methods: list[tuple[Any, str]], with_git: bool = True) -> dict[str, Any]:
    """What the driver hands to workers: the checkout (once per sweep) and each (method, framework)'s version."""
    code = {}
    for method, framework in methods:
        key = f"{method.name}/{framework}"
        if key not in code:
            version = code_version(method, framework)
            code[key] = {"sha256": version.sha256, "files": version.files}
    return {"git": git_state() if with_git else None, "code": code}


def handed_over() -> dict[str, Any] | None:
    """The driver's hand-over in this worker's environment, if there is one."""
    text = os.environ.get(PROVENANCE_ENV)
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


_GIT: list[Any] = []  # this process's own git state, when no driver handed one over (run_trial by hand)


def record_fields(method: Any, framework: str, device: str) -> dict[str, Any]:
    """A run record's provenance fields, from the driver's hand-over, verified here.

    The worker hashes the method's code itself (cached per process); where that differs from what
    the driver computed (a node with another checkout), the record holds what really ran here, and
    `code_driver_sha256` what the driver expected, so the next sweep sees the cell as stale.
    """
    given = handed_over() or {}
    here = code_version(method, framework)
    driver = (given.get("code") or {}).get(f"{method.name}/{framework}")
    if "git" in given:
        git = given["git"]
    else:
        if not _GIT:
            _GIT.append(git_state())
        git = _GIT[0]
    from seedbench import __version__

    return {
        "seedbench": __version__,
        "code_sha256": here.sha256,
        "code_files": files_to_record(here.files),
        "code_driver_sha256": driver["sha256"] if driver and driver.get("sha256") != here.sha256 else None,
        "git_commit": (git or {}).get("commit"),
        "git_diff_sha256": (git or {}).get("diff_sha256"),
        **versions(framework),
        "device_name": device_name(device),
    }
