"""The `seedbench` command line: one module per command group, wired together in main."""

from seedbench.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
