"""Find names written as string constants in source files: how the tests check that a layer names no built-in."""

from __future__ import annotations

import ast
from collections.abc import Collection
from pathlib import Path


def named_constants(path: Path, names: Collection[str]) -> list[tuple[int, str]]:
    """String constants (outside docstrings) that are exactly one of `names`, as (line, name).

    Docstrings are prose and may mention a method or model; a constant equal to the name is code that
    branches on it or looks it up.
    """
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
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names and id(node) not in docstrings
    ]
