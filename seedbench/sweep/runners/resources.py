"""What a cell asks the scheduler for: CPUs, (fractional) GPUs and custom resources such as {"IPU": 1}.

The request comes from the cell's config/preset (`num_cpus`, `num_gpus`, `resources`) and can be
overridden for a whole sweep from the command line (`--resources '{"num_gpus": 0.25}'`). The override
is applied at dispatch time only: it never changes a cell's identity, so the same grid run with other
resources reuses its finished cells.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from seedbench.errors import ConfigError

# names a user may give for Ray's built-in resources
_CPU_KEYS = {"num_cpus", "cpu", "CPU"}
_GPU_KEYS = {"num_gpus", "gpu", "GPU"}


@dataclass(frozen=True)
class Request:
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    custom: tuple[tuple[str, float], ...] = ()

    @property
    def threads(self) -> int:
        """torch threads for a worker holding this many CPUs: its share, at least one."""
        return max(1, int(math.floor(self.num_cpus)))

    def totals(self) -> dict[str, float]:
        """In the names Ray's node tables use (CPU, GPU, custom...)."""
        out = {"CPU": self.num_cpus, "GPU": self.num_gpus, **dict(self.custom)}
        return {k: v for k, v in out.items() if v}

    def ray_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus}
        if self.custom:
            options["resources"] = dict(self.custom)
        return options

    def describe(self) -> str:
        parts = {"num_cpus": self.num_cpus}
        if self.num_gpus:
            parts["num_gpus"] = self.num_gpus
        parts.update(dict(self.custom))
        return json.dumps({k: (int(v) if float(v).is_integer() else v) for k, v in parts.items()})


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or not math.isfinite(value):
        raise ConfigError(f"resource {key!r}={value!r}: use a number >= 0, e.g. '{{\"{key}\": 1}}'")
    return float(value)


def parse_resources(text: str | Mapping | None) -> dict[str, float]:
    """`--resources` JSON (or a YAML mapping) -> {"num_cpus"?, "num_gpus"?, custom...}."""
    if text is None or text == "":
        return {}
    if isinstance(text, Mapping):
        raw = dict(text)
    else:
        try:
            raw = json.loads(text)
        except ValueError:
            raise ConfigError(f"--resources {text!r}: not JSON; use e.g. '{{\"num_gpus\": 0.25}}' or '{{\"IPU\": 1}}'") from None
    if not isinstance(raw, dict):
        raise ConfigError(f'--resources {text!r}: give a JSON object, e.g. \'{{"num_cpus": 2, "IPU": 1}}\'')
    out: dict[str, float] = {}
    for key, value in raw.items():
        if key == "resources" and isinstance(value, Mapping):
            for k, v in value.items():
                out[str(k)] = _number(str(k), v)
        elif key in _CPU_KEYS:
            out["num_cpus"] = _number(key, value)
        elif key in _GPU_KEYS:
            out["num_gpus"] = _number(key, value)
        else:
            out[str(key)] = _number(str(key), value)
    return out


def request_for(config: Mapping[str, Any], override: Mapping[str, float] | None = None) -> Request:
    """A cell's request: its config's num_cpus / num_gpus / resources, then the sweep's override."""
    num_cpus = float(config.get("num_cpus", 1) or 0)
    num_gpus = float(config.get("num_gpus", 0) or 0)
    custom = {str(k): float(v) for k, v in dict(config.get("resources") or {}).items()}
    for key, value in (override or {}).items():
        if key == "num_cpus":
            num_cpus = value
        elif key == "num_gpus":
            num_gpus = value
        else:
            custom[key] = value
    if num_cpus <= 0 and num_gpus <= 0 and not any(custom.values()):
        raise ConfigError("a cell must request some resource: num_cpus > 0, num_gpus > 0 or a custom resource")
    if num_gpus > 1 and not num_gpus.is_integer():
        raise ConfigError(f"num_gpus={num_gpus:g}: a fraction of a GPU must be below 1 (e.g. 0.25); more than one must be whole")
    return Request(num_cpus, num_gpus, tuple(sorted((k, v) for k, v in custom.items() if v)))


def _node_label(node: Mapping[str, Any]) -> str:
    resources = node.get("Resources") or {}
    shown = {k: v for k, v in resources.items() if not k.startswith("node:") and k not in ("memory", "object_store_memory")}
    inner = ", ".join(f"{k} {int(v) if float(v).is_integer() else v}" for k, v in sorted(shown.items()))
    return f"{node.get('NodeManagerAddress', '?')} ({inner})"


def fits(request: Request, node: Mapping[str, Any]) -> bool:
    resources = node.get("Resources") or {}
    return all(resources.get(key, 0.0) + 1e-9 >= value for key, value in request.totals().items())


def check_feasible(requests: Mapping[Request, Iterable[str]], nodes: list[Mapping[str, Any]]) -> None:
    """Refuse, up front and in one line, any request that no live node can ever satisfy (Ray would wait forever)."""
    alive = [n for n in nodes if n.get("Alive", n.get("alive"))]
    for request, labels in requests.items():
        if any(fits(request, node) for node in alive):
            continue
        labels = list(labels)
        first = labels[0] if labels else "a cell"
        more = f" (and {len(labels) - 1} more cells)" if len(labels) > 1 else ""
        offered = "; ".join(_node_label(n) for n in alive) or "none alive"
        raise ConfigError(
            f"{first}{more} requests {request.describe()}, which no node of the Ray cluster can ever provide "
            f"(nodes: {offered}); change the preset or --resources, or start a node that declares it"
        )


def check_local(requests: Mapping[Request, Iterable[str]]) -> None:
    """The local engine runs cells one after another in this process: it has CPUs and maybe a GPU, nothing else."""
    for request, labels in requests.items():
        custom = [k for k, _ in request.custom]
        if custom:
            first = next(iter(labels), "a cell")
            raise ConfigError(
                f"{first} requests resource(s) {', '.join(custom)}, which the local engine does not have; "
                "use --engine ray with a node that declares them, or drop them from --resources / the preset"
            )


def check_local_devices(cells: Iterable[tuple[str, str]]) -> None:
    """(label, device) of every cell: a device this machine lacks is refused now, not in the cell's folder.

    The local engine trains in this process, so what it can use is known on the driver. torch is
    imported only when some cell names a device other than auto or cpu (it would be imported to
    train anyway).
    """
    wanted: dict[str, str] = {}
    for label, device in cells:
        if device not in ("auto", "cpu"):
            wanted.setdefault(device, label)
    if not wanted:
        return
    import torch

    for device, label in wanted.items():
        kind, _, index = device.partition(":")
        if kind == "cuda":
            count = torch.cuda.device_count() if torch.cuda.is_available() else 0
            if count > (int(index) if index else 0):
                continue
            have = f"only {count} CUDA device(s) (cuda:0..cuda:{count - 1})" if count else "no CUDA device torch can use"
        elif kind == "mps":
            if torch.backends.mps.is_available():
                continue
            have = "no MPS device"
        else:
            continue
        raise ConfigError(
            f"{label}: device={device}, but this machine has {have}; use device=auto or cpu here, "
            "or run the sweep where that device exists (--engine ray with a GPU node and num_gpus)"
        )
