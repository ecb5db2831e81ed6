"""Search spaces: the ranges `seedbench tune` may draw a method's hyperparameters from.

A method declares its own (`Method.tunable`), a plugin the same way, and a tuning study may override
any of them in its YAML file:

    from seedbench.methods.space import choice, integer, log_uniform, uniform
    Method(..., tunable={"lr": log_uniform(1e-3, 1.0), "momentum": uniform(0.0, 0.99)})

    space:                                  # a tune YAML file, per method
      sgd: {lr: {log_uniform: [0.001, 1]}, momentum: 0.9}   # a plain value fixes the key

Every range maps a point u in [0, 1) of the quasirandom sequence onto a value (`value(u)`), so
every method gets the same number of evenly spread trials whatever its space looks like. Values
are rounded to 4 significant digits: they end up in configs, arm labels and tables, and 0.04132 is
as good a learning rate as 0.041318762. Torch-free, so the driver checks spaces before anything runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from seedbench.errors import ConfigError

DIGITS = 4  # significant digits of a drawn float


def _round(x: float) -> float:
    return float(f"{x:.{DIGITS}g}")


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{what}: {value!r} is not a finite number")
    return float(value)


class Range:
    """One hyperparameter's range; `kind` is its name in YAML ({kind: [low, high]})."""

    kind = ""
    log = False  # plotted on a log axis

    def value(self, u: float) -> Any:
        raise NotImplementedError

    def bounds(self) -> list[Any]:
        """The values a config must accept for every draw to be valid (the ends, or every option)."""
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class LogUniform(Range):
    low: float
    high: float
    kind = "log_uniform"
    log = True

    def __post_init__(self) -> None:
        if not (0 < self.low < self.high):
            raise ConfigError(f"log_uniform [{self.low}, {self.high}]: need 0 < low < high, e.g. log_uniform: [0.001, 1]")

    def value(self, u: float) -> float:
        return _round(math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low))))

    def bounds(self) -> list[Any]:
        return [self.low, self.high]

    def to_json(self) -> dict[str, Any]:
        return {self.kind: [self.low, self.high]}

    def describe(self) -> str:
        return f"log-uniform [{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class Uniform(Range):
    low: float
    high: float
    kind = "uniform"

    def __post_init__(self) -> None:
        if not self.low < self.high:
            raise ConfigError(f"uniform [{self.low}, {self.high}]: need low < high, e.g. uniform: [0, 0.99]")

    def value(self, u: float) -> float:
        return _round(self.low + u * (self.high - self.low))

    def bounds(self) -> list[Any]:
        return [self.low, self.high]

    def to_json(self) -> dict[str, Any]:
        return {self.kind: [self.low, self.high]}

    def describe(self) -> str:
        return f"uniform [{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class Integer(Range):
    """Integers low..high, both included, equally likely."""

    low: int
    high: int
    kind = "integer"

    def __post_init__(self) -> None:
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (self.low, self.high)) or self.low >= self.high:
            raise ConfigError(f"integer [{self.low}, {self.high}]: need two integers low < high, e.g. integer: [0, 5]")

    def value(self, u: float) -> int:
        return min(self.high, self.low + int(u * (self.high - self.low + 1)))

    def bounds(self) -> list[Any]:
        return [self.low, self.high]

    def to_json(self) -> dict[str, Any]:
        return {self.kind: [self.low, self.high]}

    def describe(self) -> str:
        return f"integer {self.low}..{self.high}"


@dataclass(frozen=True)
class Choice(Range):
    options: tuple[Any, ...]
    kind = "choice"

    def __post_init__(self) -> None:
        if len(self.options) < 2:
            raise ConfigError(f"choice {list(self.options)}: give at least two options, or the value itself to fix the key")

    def value(self, u: float) -> Any:
        return self.options[min(len(self.options) - 1, int(u * len(self.options)))]

    def bounds(self) -> list[Any]:
        return list(self.options)

    def to_json(self) -> dict[str, Any]:
        return {self.kind: list(self.options)}

    def describe(self) -> str:
        return "one of " + ", ".join(map(str, self.options))


@dataclass(frozen=True)
class Fixed(Range):
    """Not searched: every trial uses this value (a study pins a key its method would search)."""

    fixed: Any
    kind = "fixed"

    def value(self, u: float) -> Any:
        return self.fixed

    def bounds(self) -> list[Any]:
        return [self.fixed]

    def to_json(self) -> dict[str, Any]:
        return {self.kind: self.fixed}

    def describe(self) -> str:
        return f"fixed at {self.fixed}"


def log_uniform(low: float, high: float) -> LogUniform:
    """exp(uniform(log low, log high)): learning rates, weight decay, noise scales."""
    return LogUniform(_number(low, "log_uniform low"), _number(high, "log_uniform high"))


def uniform(low: float, high: float) -> Uniform:
    return Uniform(_number(low, "uniform low"), _number(high, "uniform high"))


def integer(low: int, high: int) -> Integer:
    return Integer(low, high)


def choice(*options: Any) -> Choice:
    return Choice(tuple(options))


KINDS = {"log_uniform": log_uniform, "uniform": uniform, "integer": integer, "choice": choice, "fixed": Fixed}
SPELLING = "{log_uniform: [low, high]}, {uniform: [low, high]}, {integer: [low, high]}, {choice: [a, b, ...]} or a plain value"


def parse_range(value: Any, where: str) -> Range:
    """A Range from a declaration (a Range) or from YAML ({kind: [...]}, or a plain value that fixes the key)."""
    if isinstance(value, Range):
        return value
    if isinstance(value, Mapping):
        if len(value) != 1 or next(iter(value)) not in KINDS:
            raise ConfigError(f"{where}: {dict(value)!r} is not a range; write {SPELLING}")
        kind, args = next(iter(value.items()))
        if kind == "fixed":
            return Fixed(args)
        if not isinstance(args, list):
            raise ConfigError(f"{where}: {kind} takes a list, e.g. {{{kind}: [0.001, 1]}}")
        if kind != "choice" and len(args) != 2:
            raise ConfigError(f"{where}: {kind} takes [low, high], got {args!r}")
        try:
            return KINDS[kind](*args)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    if isinstance(value, list):
        raise ConfigError(f"{where}: a bare list {value!r} is ambiguous; write {SPELLING}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where}: {value!r} is not a finite number")
    return Fixed(value)


def parse_space(raw: Mapping[str, Any], where: str) -> dict[str, Range]:
    """{config key: range} from a method's declaration or a study's YAML."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: a search space maps config keys to ranges, e.g. {{lr: {{log_uniform: [0.001, 1]}}}}")
    return {str(key): parse_range(value, f"{where}.{key}") for key, value in raw.items()}


def space_json(space: Mapping[str, Range]) -> dict[str, Any]:
    return {key: r.to_json() for key, r in space.items()}


def searched(space: Mapping[str, Range]) -> list[str]:
    """The keys a quasirandom point moves (fixed keys take no dimension), in a stable order."""
    return sorted(key for key, r in space.items() if not isinstance(r, Fixed))
