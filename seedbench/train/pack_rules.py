"""When cells may be packed, and how many: decided on the driver, which never imports torch to plan.

seedbench.train.packed trains the packs; this module holds its rules, and every rule reads what a
method or a model declares about itself, so a plugin's method packs exactly as a built-in one does:

- the method: `Method.packable` (its optimizer is per member, nothing couples the members),
  `Method.pack_note` (why not) and `Method.pack_sizes` (the sizes bench/bench_pack.py measured);
- the model: `packable=True` in its registration (no batch norm, no dropout). The driver trusts the
  declaration; the worker inspects the real model before it trains a pack (packed_models.refusal)
  and trains the members solo if the declaration was wrong (the reason is kept in pack-error.txt).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from seedbench.methods.base import Method

FIX = "drop --pack or use --pack auto (under auto such cells run solo)"


def can_pack(method: Method, config: Any, model: Any = None) -> tuple[bool, str]:
    """Whether cells of `method` with this configuration may be trained as a pack, and why (or why not).

    config: the cell's config (pydantic model, mapping or object) with at least "model". `model`, a
    built torch module, is inspected for layers that no pack reproduces faithfully (batch norm,
    dropout); without it the registered model's own `packable` declaration decides.
    """
    if not method.packable:
        note = method.pack_note or "it does not declare packable=True (an optimizer that steps each member on its own)"
        return False, f"method {method.name} cannot be packed: {note}"
    cfg = _as_mapping(config)
    framework = cfg.get("framework") or "torch"
    if framework != "torch":
        return False, f"framework {framework} cannot be packed: packing is implemented for torch only"
    if model is not None:
        from seedbench.train.packed_models import refusal

        why = refusal(model)
        if why is not None:
            return False, f"model {cfg.get('model', type(model).__name__)} cannot be packed: {why}"
    else:
        from seedbench.registry import get_model

        name = cfg.get("model")
        if not get_model(name).packable:
            return False, (
                f"model {name} cannot be packed: it does not declare packable=True (a model without batch norm or dropout may, in register_model)"
            )
    return True, f"method {method.name}: " + ("its packed step " + method.packed_step if method.packed_step else "each member's own optimizer")


def auto_pack_size(method: Method, model_name: str, device: str) -> int:
    """How many seeds `--pack auto` packs for (method, model, device): the method's measured size, else 1.

    `device` may be "cpu", "cuda", "cuda:N" (the kind is what counts) or "auto" (the GPU when this
    process sees one). Only measured combinations pack (Method.pack_sizes, measured with
    bench/bench_pack.py); everything else returns 1, so an unmeasured device never runs slower than solo.
    """
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    return method.pack_size(model_name, device)


def _as_mapping(cfg: Any) -> dict[str, Any]:
    if isinstance(cfg, Mapping):
        return dict(cfg)
    dump = getattr(cfg, "model_dump", None)
    if callable(dump):
        return dump()
    return dict(vars(cfg))
