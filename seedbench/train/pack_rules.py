"""When cells may be packed, and how many: decided on the driver, which never imports torch to plan.

seedbench.train.packed trains the packs; this module holds its rules - which methods a pack steps
faithfully, which models it can stack, and the pack sizes measured by bench/bench_pack.py - so the
sweep planner and `--dry-run` can apply them without loading torch (a model outside fc/cnn is
inspected on torch's meta device, the one case that imports it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Methods whose cells may be packed: their optimizer is one the pack steps faithfully (VectorSGD, or the
# member's own RBD/FPD/NES) and they have no per-cell stage besides initialisation, which is built solo.
PACKABLE_METHODS: dict[str, str] = {
    "sgd": "SGD, vectorized over the stacked parameters",
    "pa_rewiring": "SGD after the rewire init pipeline (built per member)",
    "stabilized_strength": "SGD after the stabilize init pipeline (built per member)",
    "rbd": "each member's own RBD on its parameter slice",
    "fpd": "each member's own FPD on its parameter slice",
    "nes": "each member's own NES; the population's forwards are packed across members",
}
NOT_PACKABLE: dict[str, str] = {
    "sup_walsh": "its prepare hook pretrains each model with an Adam loop of its own, not covered by the pack's equivalence tests; run solo",
}
STUDY_MODELS = ("fc", "cnn")


def can_pack(method_config: Any, method: str | None = None, model: Any = None) -> tuple[bool, str]:
    """Whether cells of this configuration may be trained in a pack, and why (or why not).

    method_config: a config (pydantic model, mapping or object) with at least "model"; the method
    name comes from `method` or the config's "method" key. `model`, when given, is inspected for
    layers that cannot be packed faithfully (batch norm, dropout); otherwise a model outside the
    study's fc/cnn is built on the meta device (no memory) and inspected.
    """
    cfg = _as_mapping(method_config)
    name = method or cfg.get("method")
    if name in NOT_PACKABLE:
        return False, f"method {name}: {NOT_PACKABLE[name]}"
    if name not in PACKABLE_METHODS:
        return False, (
            f"method {name!r} is not verified packed (packable: {', '.join(PACKABLE_METHODS)}); an optimizer "
            "with whole-tensor norms or state shared across members would couple them; run solo"
        )
    if cfg.get("framework", "torch") != "torch":
        return False, f"framework {cfg.get('framework')}: packing is implemented for torch only"
    if model is None and cfg.get("model") not in STUDY_MODELS:
        model, why = _meta_model(cfg)
        if model is None:
            return False, why
    if model is not None:
        from seedbench.train.packed_models import refusal

        why = refusal(model)
        if why is not None:
            return False, f"model {cfg.get('model', type(model).__name__)}: {why}"
    return True, PACKABLE_METHODS[name]


def _as_mapping(cfg: Any) -> dict[str, Any]:
    if isinstance(cfg, Mapping):
        return dict(cfg)
    dump = getattr(cfg, "model_dump", None)
    if callable(dump):
        return dump()
    return dict(vars(cfg))


def _meta_model(cfg: dict[str, Any]) -> tuple[Any, str]:
    import torch

    from seedbench.models import build_model

    channels = 3 if cfg.get("dataset") == "cifar10" and not cfg.get("grayscale") else 1
    size = cfg.get("image_size") or (32 if cfg.get("dataset") == "cifar10" else 28)
    try:
        with torch.device("meta"):
            return build_model(cfg.get("model", "fc"), (channels, size, size)), ""
    except Exception as exc:  # noqa: BLE001 - any build failure means: do not pack, say why
        return None, f"model {cfg.get('model')!r} could not be inspected ({type(exc).__name__}: {exc}); run solo"


# Measured by bench/bench_pack.py (docs/benchmarks.md, "Seed packing"). The rule: the smallest K whose
# seeds per hour are within 5% of the best K's, and only where the best beats solo by more than the
# spread of the paired measurements (otherwise 1). On a CPU that is the FC with SGD alone: K = 16 gave
# 4.25x solo with 2 threads (the most seeds/h; K = 8: 3.05x) and 3.00x with 1 thread. The CNN
# (1.0-1.2x at 2 threads, 0.96-1.05x at 1; grouped convolutions down to 0.61-0.79x at K = 64), RBD with
# Hadamard bases (0.96-1.10x) and NES (0.93-1.01x) did not pay: their cost is convolutions or each
# member's own direction / noise generation, which a pack cannot share. Combinations not listed (every
# GPU: none was available to measure) train solo.
MEASURED_PACK_SIZES: dict[tuple[str, str, str], int] = {("fc", "sgd", "cpu"): 16}
SGD_METHODS = ("sgd", "pa_rewiring", "stabilized_strength")


def auto_pack_size(model_name: str, method: str, device: str) -> int:
    """How many seeds to pack for (model, method, device): the measured best, 1 where packing does not pay.

    `device` may be "cpu", "cuda" or "cuda:N" (the kind is what counts). Only measured combinations
    pack; everything else returns 1 (solo), so an unmeasured device never runs slower than today.
    """
    if device == "auto":
        import torch

        kind = "cuda" if torch.cuda.is_available() else "cpu"
    else:
        kind = device.split(":", 1)[0]
    key_method = "sgd" if method in SGD_METHODS else method
    if method not in PACKABLE_METHODS:
        return 1
    return MEASURED_PACK_SIZES.get((model_name, key_method, kind), 1)
