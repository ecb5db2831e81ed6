"""Errors a user can fix, carrying one line that names the problem and the fix.

The CLI prints these without a traceback and exits non-zero; anything else is a bug and keeps its
traceback.
"""


class SeedbenchError(Exception):
    """A problem with the user's input or environment, explained in one line."""

    exit_code = 2


class DataError(SeedbenchError):
    """A dataset is missing, corrupt or inconsistent."""


class ConfigError(SeedbenchError):
    """A config, preset, sweep file or command-line value is invalid."""


class StoreError(SeedbenchError):
    """A results store cannot be read or a query is invalid."""
