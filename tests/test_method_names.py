"""No built-in method's name is hard-coded outside its own declaration: the engine, the loop, the pack rules,
the planner and the TensorFlow runner ask the Method object, so a plugin's method is a peer of the built-ins."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

BUILT_IN = {"sgd", "rbd", "fpd", "nes", "sup_walsh", "pa_rewiring", "stabilized_strength"}
# the layers that must know no method by name; a method's own modules (seedbench/methods, components,
# the optimizer library seedbench/optim, the TF implementations a method points at) are where names belong
GENERIC = [
    "seedbench/train/loop.py",
    "seedbench/train/steps.py",
    "seedbench/train/trial.py",
    "seedbench/train/packed.py",
    "seedbench/train/packed_optim.py",
    "seedbench/train/packed_models.py",
    "seedbench/train/pack_rules.py",
    "seedbench/train/tf_runner.py",
    "seedbench/sweep",
]


def _files() -> list[Path]:
    out: list[Path] = []
    for entry in GENERIC:
        path = ROOT / entry
        out.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    return out


def _named(path: Path) -> list[tuple[int, str]]:
    """String constants (outside docstrings) that are exactly a built-in method's name, as (line, name)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in BUILT_IN and id(node) not in docstrings
    ]


def test_the_generic_layers_name_no_built_in_method() -> None:
    files = _files()
    assert len(files) >= len(GENERIC), "every listed layer exists"
    found = {str(p.relative_to(ROOT)): hits for p in files if (hits := _named(p))}
    assert found == {}, f"built-in method names hard-coded in generic code: {found}"


def test_the_check_sees_a_name_when_there_is_one(tmp_path: Path) -> None:
    """The scan itself can fail: a planted name is found, a docstring mention is not."""
    planted = tmp_path / "planted.py"
    planted.write_text('"""Mentions rbd in prose."""\nif method == "nes":\n    pass\n')
    assert _named(planted) == [(2, "nes")]
