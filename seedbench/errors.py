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


def read_yaml(path, what: str):
    """Parse a YAML file, turning a missing file or bad syntax into a one-line ConfigError with the line."""
    import yaml

    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory; give the {what} itself (a YAML file)") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (it is not UTF-8: binary, or another encoding); give the {what} as UTF-8 YAML") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {what} ({exc.strerror or type(exc).__name__}); check its permissions") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)}); fix the syntax") from None
