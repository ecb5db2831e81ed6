"""Methods: a Method is a config, an optimizer factory, an optional model hook and its defaults."""

from seedbench.methods.base import Method

__all__ = ["Method"]
