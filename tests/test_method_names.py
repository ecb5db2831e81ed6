"""No built-in method's name is hard-coded outside its own declaration: the engine, the loop, the pack rules,
the planner and the TensorFlow runner ask the Method object, so a plugin's method is a peer of the built-ins."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import ROOT
from tests.source_scan import named_constants

BUILT_IN = {"sgd", "rbd", "fpd", "nes", "sup_walsh", "pa_rewiring", "stabilized_strength"}
# A method's names belong to its own modules: its declaration (seedbench/methods), its optimizer in the
# torch.optim-style library (seedbench/optim), its TensorFlow implementation (seedbench/train/tf_methods.py)
# and its component (components/). Everything else - the loop, packing, the planner, the engines, the TF
# runner, the store, analysis and the CLI - asks the Method object.
OWN = ("seedbench/methods/", "seedbench/optim/", "seedbench/train/tf_methods.py")
GENERIC = ["seedbench/train/loop.py", "seedbench/train/pack_rules.py", "seedbench/train/tf_runner.py", "seedbench/sweep/plan.py"]


def _files() -> list[Path]:
    return [p for p in sorted((ROOT / "seedbench").rglob("*.py")) if not str(p.relative_to(ROOT)).startswith(OWN)]


def _named(path: Path) -> list[tuple[int, str]]:
    return named_constants(path, BUILT_IN)


def test_the_generic_layers_name_no_built_in_method() -> None:
    files = _files()
    assert {str(p.relative_to(ROOT)) for p in files} >= set(GENERIC), "the scan covers the layers named in the issue"
    found = {str(p.relative_to(ROOT)): hits for p in files if (hits := _named(p))}
    assert found == {}, f"built-in method names hard-coded in generic code: {found}"


def test_the_check_sees_a_name_when_there_is_one(tmp_path: Path) -> None:
    """The scan itself can fail: a planted name is found, a docstring mention is not."""
    planted = tmp_path / "planted.py"
    planted.write_text('"""Mentions rbd in prose."""\nif method == "nes":\n    pass\n')
    assert _named(planted) == [(2, "nes")]
