"""The four registries - methods, models, datasets, initializers - and the plugins that extend them.

A plugin is a Python file (or an importable module) that calls `register_method`, `register_model`,
`register_dataset` or `register_initializer` when it is imported. Built-ins are registered the same
way. Names are looked up on the driver when a sweep is planned, so a typo fails with one line and a
suggestion before any cell exists; torch is imported only when a model or initializer is built.

Plugins are code and run with the user's rights: see docs/security.md.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seedbench.errors import ConfigError
from seedbench.models.spec import ModelSpec

if TYPE_CHECKING:
    from seedbench.methods.base import Method

_METHODS: dict[str, Method] = {}
_ALIASES: dict[str, tuple[str, dict[str, Any]]] = {}
_MODELS: dict[str, ModelSpec] = {}
_INITIALIZERS: dict[str, Callable[..., Any] | str] = {}
_BUILTINS_LOADED = False


def _unknown(kind: str, name: str, known: Iterable[str], fix: str) -> ConfigError:
    known = sorted(known)
    close = difflib.get_close_matches(str(name), known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(f"unknown {kind} {name!r}{hint}; choose one of {', '.join(known)}, {fix}")


def _import_ref(ref: str) -> Any:
    """ "package.module:attr.key" -> the object (dict entries by key), imported only now."""
    module, _, path = ref.partition(":")
    obj: Any = importlib.import_module(module)
    for part in path.split("."):
        obj = obj[part] if isinstance(obj, dict) else getattr(obj, part)
    return obj


# -- methods ----------------------------------------------------------------------------------------


def register_method(method: Method, replace: bool = False) -> Method:
    """Make `method` available to sweeps, the Python API and reports under `method.name`."""
    _builtins()
    if not replace and method.name in _METHODS and _METHODS[method.name] is not method:
        if _METHODS[method.name].config is not method.config:
            raise ConfigError(f"method {method.name!r} is registered twice; rename one or pass replace=True")
    if method.name in _ALIASES:
        raise ConfigError(f"method name {method.name!r} is taken by a built-in alias; choose another name")
    _METHODS[method.name] = method
    return method


def register_alias(name: str, method: str, patch: Mapping[str, Any]) -> None:
    """A second name for a method with a fixed config patch (e.g. pa_rewiring = sgd + rewiring)."""
    _ALIASES[name] = (method, dict(patch))


def resolve_method(name: str) -> tuple[Method, dict[str, Any]]:
    """A method name or alias -> (the method, the patch the alias implies)."""
    _builtins()
    if name in _ALIASES:
        target, patch = _ALIASES[name]
        return _METHODS[target], dict(patch)
    if name not in _METHODS:
        raise _unknown("method", name, [*_METHODS, *_ALIASES], "or load your own with --plugin FILE")
    return _METHODS[name], {}


def get_method(name: str) -> Method:
    return resolve_method(name)[0]


def method_names(aliases: bool = True) -> list[str]:
    _builtins()
    return sorted([*_METHODS, *(_ALIASES if aliases else ())])


def aliases() -> dict[str, tuple[str, dict[str, Any]]]:
    _builtins()
    return dict(_ALIASES)


# -- models -----------------------------------------------------------------------------------------


def register_model(
    name: str | ModelSpec,
    build: Callable[..., Any] | str | None = None,
    default_init: str = "default",
    packable: bool = False,
    description: str = "",
    *,
    channels: int | None = None,
    min_side: int | None = None,
    classes: int | None = None,
    tensorflow: str | None = None,
    replace: bool = False,
) -> ModelSpec:
    """Register `build(in_shape: (C, H, W), num_classes) -> torch.nn.Module` under `name`, with its facts.

    Takes a ModelSpec, or its fields (seedbench/models/spec.py says what each declares). Registering
    another model under a taken name is refused unless `replace=True`, so a plugin cannot silently
    swap a built-in model for a different one.
    """
    _builtins()
    if isinstance(name, ModelSpec):
        spec = name
    else:
        if build is None:
            raise ConfigError(f"model {name!r}: register_model needs a build function (or 'module:attr'); fix the plugin")
        spec = ModelSpec(name, build, default_init, packable, description, channels, min_side, classes, tensorflow)
    old = _MODELS.get(spec.name)
    if old is not None and not replace and _identity(old) != _identity(spec):
        raise ConfigError(f"model {spec.name!r} is registered twice; rename one or pass replace=True")
    _MODELS[spec.name] = spec
    return spec


def _identity(spec: Any) -> tuple:
    """A spec's fields with callables by qualified name: a plugin imported twice registers the same spec."""

    def key(value: Any) -> Any:
        return (getattr(value, "__module__", None), getattr(value, "__qualname__", repr(value))) if callable(value) else value

    return tuple(key(getattr(spec, f)) for f in spec.__dataclass_fields__)


def get_model(name: str) -> ModelSpec:
    _builtins()
    if name not in _MODELS:
        raise _unknown("model", name, _MODELS, "or register your own with --plugin FILE")
    return _MODELS[name]


def model_names() -> list[str]:
    _builtins()
    return sorted(_MODELS)


# -- initializers -----------------------------------------------------------------------------------


def register_initializer(name: str, fn: Callable[..., Any] | str) -> None:
    """Register `fn(tensor, generator=None) -> tensor` (in place, torch.nn.init style) under `name`."""
    _builtins()
    _INITIALIZERS[name] = fn


def check_initializer(name: str) -> str:
    """The name, if an initializer is registered under it (nothing is imported: the driver calls this)."""
    _builtins()
    if name not in _INITIALIZERS:
        raise _unknown("initializer", name, _INITIALIZERS, "or register your own with --plugin FILE")
    return name


def get_initializer(name: str) -> Callable[..., Any]:
    fn = _INITIALIZERS[check_initializer(name)]
    return fn if callable(fn) else _import_ref(fn)


def initializer_names() -> list[str]:
    _builtins()
    return sorted(_INITIALIZERS)


# -- datasets (the registry lives with the data layer) ----------------------------------------------


def register_dataset(*args: Any, **kwargs: Any) -> Any:
    """See seedbench.data.registry.register_dataset."""
    from seedbench.data.registry import register_dataset as register

    return register(*args, **kwargs)


def dataset_names() -> list[str]:
    from seedbench.data.registry import dataset_names as names

    return names()


# -- plugins ----------------------------------------------------------------------------------------

_LOADED: dict[str, dict[str, str]] = {}


@dataclass(frozen=True)
class Plugin:
    """A plugin as a worker receives it: a module name, or a file's name and source text.

    Files travel as text inside the task, so a worker on another node needs neither the file nor a
    shared filesystem; modules must be importable on every node.
    """

    ref: str
    source: str | None = None
    sha256: str | None = None

    def describe(self) -> dict[str, str]:
        return {"ref": self.ref, **({"sha256": self.sha256} if self.sha256 else {})}


def read_plugin(ref: str) -> Plugin:
    """A path (ends in .py or exists) is read now; anything else is a module name."""
    path = Path(ref).expanduser()
    if ref.endswith(".py") or path.exists():
        if not path.is_file():
            raise ConfigError(f"plugin {ref}: no such file; give a .py file or an importable module name")
        try:
            source = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"plugin {ref}: cannot read it ({exc.__class__.__name__}); give a readable .py file") from None
        return Plugin(str(path.resolve()), source, hashlib.sha256(source.encode()).hexdigest())
    return Plugin(ref)


def load_plugin(plugin: Plugin | str) -> None:
    """Import a plugin once per process; its register_* calls extend the registries."""
    _builtins()
    plugin = read_plugin(plugin) if isinstance(plugin, str) else plugin
    key = plugin.sha256 or plugin.ref
    if key in _LOADED:
        return
    try:
        if plugin.source is None:
            importlib.import_module(plugin.ref)
        else:
            name = f"seedbench_plugin_{Path(plugin.ref).stem}_{plugin.sha256[:12]}"  # type: ignore[index]
            spec = importlib.util.spec_from_loader(name, loader=None, origin=plugin.ref)
            module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
            module.__file__ = plugin.ref
            sys.modules[name] = module
            exec(compile(plugin.source, plugin.ref, "exec"), module.__dict__)  # noqa: S102 - plugins are code by design
    except ConfigError as exc:
        raise ConfigError(f"plugin {plugin.ref}: {exc}") from None
    except ModuleNotFoundError as exc:
        if plugin.source is None and exc.name == plugin.ref.split(".")[0]:
            raise ConfigError(f"plugin {plugin.ref!r}: no such module or file; give a .py path or an importable module") from None
        raise ConfigError(f"plugin {plugin.ref}: import failed: {exc}") from None
    except Exception as exc:
        raise ConfigError(f"plugin {plugin.ref}: raised {type(exc).__name__}: {exc}; fix the plugin") from None
    _LOADED[key] = plugin.describe()


def load_plugins(refs: Iterable[Plugin | str]) -> list[Plugin]:
    plugins = [read_plugin(r) if isinstance(r, str) else r for r in refs]
    for plugin in plugins:
        load_plugin(plugin)
    return plugins


def loaded_plugins() -> list[dict[str, str]]:
    return list(_LOADED.values())


def plugins_to_env(plugins: Iterable[Plugin]) -> str:
    import json

    return json.dumps([{"ref": p.ref, "source": p.source, "sha256": p.sha256} for p in plugins])


def load_plugins_from_env() -> None:
    """Workers: import the plugins the driver handed over in $SEEDBENCH_PLUGINS."""
    import json

    from seedbench.config import PLUGIN_ENV

    text = os.environ.get(PLUGIN_ENV)
    if text:
        load_plugins(Plugin(**p) for p in json.loads(text))


# -- built-ins --------------------------------------------------------------------------------------


def _builtins() -> None:
    """Register the built-in methods, aliases, models and initializers on first use, as a plugin would."""
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    _BUILTINS_LOADED = True
    from seedbench.methods.builtin import ALIASES, INITIALIZERS, METHODS
    from seedbench.models.builtin import MODELS

    for method in METHODS:
        register_method(method)
    for name, (target, patch) in ALIASES.items():
        register_alias(name, target, patch)
    for model in MODELS:
        register_model(model)
    for name, ref in INITIALIZERS.items():
        register_initializer(name, ref)
