"""seedbench.analysis stays in layers: no import circle, nothing inside it imports the API, one home per helper.

The graph is read from the source with `ast`, so an import hidden inside a function (the lazy
imports that keep the command line fast) counts as much as one at the top of a module.
"""

from __future__ import annotations

import ast
import graphlib
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ANALYSIS = ROOT / "seedbench" / "analysis"
PACKAGE = "seedbench.analysis"
API = f"{PACKAGE}.api"
# the layers, bottom up: presentation sits on study/ and stats/, study/ on stats/, the API on all
LAYERS = {"units": 0, "stats": 0, "study": 1, "tables": 2, "plots": 2, "html": 2, "report": 2, "api": 3}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, root: Path, modules: set[str]) -> set[str]:
    """The modules of `modules` that `path` imports anywhere in it; `from pkg import mod` resolves to pkg.mod."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: `from .api import f` in seedbench/analysis/html.py
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        found |= {n for n in names if n in modules}
    return found


def import_graph(package_dir: Path = ANALYSIS, root: Path = ROOT) -> dict[str, set[str]]:
    """module -> the modules of the same package it imports."""
    files = {module_name(p, root): p for p in sorted(package_dir.rglob("*.py"))}
    return {name: imported_modules(path, root, set(files)) - {name} for name, path in files.items()}


def import_circle(graph: dict[str, set[str]]) -> list[str] | None:
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        return list(exc.args[1])
    return None


def test_the_check_sees_a_circle_made_of_lazy_and_relative_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "seedbench" / "analysis"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "api.py").write_text("def report():\n    from seedbench.analysis.html import build\n")
    (pkg / "html.py").write_text("def build():\n    from .api import report\n")
    graph = import_graph(pkg, tmp_path)
    assert graph == {PACKAGE: set(), API: {f"{PACKAGE}.html"}, f"{PACKAGE}.html": {API}}
    assert set(import_circle(graph) or []) == {API, f"{PACKAGE}.html"}
    (pkg / "html.py").write_text("def build():\n    from seedbench.analysis import stats\n")
    assert import_circle(import_graph(pkg, tmp_path)) is None


def test_analysis_has_no_import_circle() -> None:
    graph = import_graph()
    assert {f"{PACKAGE}.stats.runs", f"{PACKAGE}.study.sequential", API} <= set(graph)  # sub-packages walked too
    assert import_circle(graph) is None, f"import circle in seedbench/analysis: {' -> '.join(import_circle(graph) or [])}"


def test_nothing_in_analysis_imports_the_api() -> None:
    graph = import_graph()
    assert [name for name, targets in graph.items() if API in targets] == []


def layer(module: str) -> int | None:
    first = module.removeprefix(PACKAGE).lstrip(".").split(".")[0]
    return LAYERS.get(first) if first else None


def test_layers_import_only_downwards() -> None:
    """stats/ imports nothing above it, study/ only stats/, the presentation stats/, study/ and itself."""
    upward = [
        (a, b)
        for a, targets in import_graph().items()
        for b in targets
        if layer(a) is not None and layer(b) is not None and layer(b) > layer(a)  # type: ignore[operator]
    ]
    assert upward == []
    assert layer(f"{PACKAGE}.stats.runs") == 0 and layer(f"{PACKAGE}.study.power") == 1 and layer(API) == 3


def _top_level(kind: type | tuple[type, ...]) -> list[tuple[str, ast.AST]]:
    out = []
    for path in sorted(ANALYSIS.rglob("*.py")):
        out += [(module_name(path, ROOT), node) for node in ast.parse(path.read_text(encoding="utf-8")).body if isinstance(node, kind)]
    return out


def test_every_function_of_analysis_has_one_home() -> None:
    """An `_iqm` or a finished-runs filter written in two modules drifts apart: import it instead."""
    homes: dict[str, list[str]] = defaultdict(list)
    for module, node in _top_level((ast.FunctionDef, ast.ClassDef)):
        homes[node.name].append(module)  # type: ignore[attr-defined]
    assert {name: modules for name, modules in homes.items() if len(modules) > 1} == {}
    assert [m for m, node in _top_level(ast.FunctionDef) if "iqm" in node.name.lower()] == [f"{PACKAGE}.stats.intervals"]  # type: ignore[attr-defined]


def test_no_constant_is_written_twice() -> None:
    """FINISHED, CONFIDENCE, IQM_TRIM: one definition each. Different things may share a generic name
    (plots' and html's file EXTENSIONS); the same name with the same value twice is a copy."""
    homes: dict[tuple[str, str], list[str]] = defaultdict(list)
    for module, node in _top_level(ast.Assign):
        for target in node.targets:  # type: ignore[attr-defined]
            if isinstance(target, ast.Name) and target.id.isupper():
                homes[(target.id, ast.dump(node.value))].append(module)  # type: ignore[attr-defined]
    assert {name: modules for (name, _), modules in homes.items() if len(modules) > 1} == {}


def test_no_function_body_is_written_twice() -> None:
    """A helper copied under another name (a second trimmed mean, a second status filter) is still a copy."""
    bodies: dict[str, list[str]] = defaultdict(list)
    for path in sorted(ANALYSIS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef):
                body = [s for s in node.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
                bodies[ast.dump(ast.Module(body=body, type_ignores=[]))].append(f"{module_name(path, ROOT)}.{node.name}")
    assert [names for names in bodies.values() if len(names) > 1] == []


def test_the_across_task_iqm_is_the_summary_iqm() -> None:
    from seedbench.analysis.stats import aggregate, intervals

    assert aggregate.iqm is intervals.iqm
