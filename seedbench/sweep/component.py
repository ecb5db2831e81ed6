"""Every method is a machinable component: one Interface per method, whose Config is the method's config.

A built-in method's component is a few lines in components/<method>.py (a MethodComponent subclass
naming the method and its config class). A plugin's method gets the same class under the same kind
of name, `components.<method>`, without a file: `ComponentFinder` (installed by the `components`
package) builds it from the registered method the first time the module is imported, so machinable's
own module resolution finds it like any other module - `get("components.signsgd")` once the plugin is
loaded, `Interface.from_directory` in a Ray worker that loaded the sweep's plugins from its
environment. (machinable imports a project module from its file if there is one, else with
`importlib.import_module`, which consults the finder.)

A cell's config is its method's resolved config, field by field: `get("components.rbd", ["~hadamard",
{"model": "fc", "seed": 3, ...}])`. The method's presets and machinable.yaml's science presets are
machinable versions (`~hadamard`, `~table1`), so machinable's index finds "the RBD runs with Hadamard
bases" by module and config field or version, and model.json reads as the config it is.

Composing that config the way machinable does (omegaconf merges and trees of ~85 nodes) costs ~10 ms
a cell; the driver already holds the validated config, so `new_interface` hands machinable the layers
it would have computed (`fill_config`), and a component's DictConfig holds the resolved keys only.
tests/test_components.py checks the layers and the identity key against machinable's own composition.
"""

from __future__ import annotations

import copy
import importlib.abc
import importlib.machinery
import random
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from machinable import Interface

from seedbench.config import TrialConfig, split_placement
from seedbench.errors import ConfigError
from seedbench.seeding import seed_torch

PACKAGE = "components"


def component_module(method: str) -> str:
    """The machinable module of a method's cells."""
    return f"{PACKAGE}.{method}"


def preset_patch(method: str, name: str) -> dict[str, Any] | None:
    """The science part of preset `name` as `method` sees it (its own presets first), or None."""
    from seedbench.registry import get_method
    from seedbench.sweep.presets import load_catalog

    patch = get_method(method).presets.get(name)
    if patch is None:
        patch = load_catalog().presets.get(name)
    if patch is None:
        return None
    science, _ = split_placement(dict(patch))
    return science or None


class MethodComponent(Interface):
    """The run logic every method's component shares; a subclass names its method and config class.

    Versions: `~name` is preset `name` (the method's own, then machinable.yaml's), science keys only
    (placement presets such as ~gpu never enter a config); `version_names()` lists them.
    """

    method_name: ClassVar[str] = ""
    Config: ClassVar[type[TrialConfig]] = TrialConfig

    def __getattr__(self, name: str) -> Any:
        """`version_<preset>`, which machinable calls for `~preset`: served from the method's presets and
        machinable.yaml as they are now (each has one home), instead of copied into methods here."""
        if name.startswith("version_") and type(self).method_name:
            patch = preset_patch(type(self).method_name, name[len("version_") :])
            if patch is not None:
                return lambda: dict(patch)
        raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")

    @classmethod
    def version_names(cls) -> list[str]:
        """The `~versions` this component accepts: its method's presets and machinable.yaml's science presets."""
        from seedbench.registry import get_method
        from seedbench.sweep.presets import load_catalog

        names = dict.fromkeys([*get_method(cls.method_name).presets, *load_catalog().presets])
        return sorted(n for n in names if preset_patch(cls.method_name, n) is not None)

    def params(self) -> dict[str, Any]:
        """The resolved config as a plain dict (what seedbench.train.trial.run_cell takes)."""
        self.config  # noqa: B018 - composed by machinable if nothing has
        return {k: copy.deepcopy(v) for k, v in self.__model__.config.items() if not k.startswith("_")}

    def on_seeding(self) -> bool:
        """Global RNGs get the run seed too; training itself uses the per-stream generators."""
        import numpy as np

        seed = int(self.config.seed)
        random.seed(seed)
        np.random.seed(seed % 2**32)
        seed_torch(seed)
        return True

    def __call__(self) -> None:
        from seedbench.sweep.runners.dispatch import contained
        from seedbench.train.trial import run_cell

        params = self.params()
        directory = Path(self.local_directory())
        # a failure is recorded in the folder (status, traceback.txt) and reported by the engine in one line;
        # letting it through would make machinable print the whole traceback on the terminal
        contained(lambda: run_cell(type(self).method_name, params, directory, run_id=self.uuid), directory)

    # -- the driver's shortcut through machinable's config composition --------------------------------
    @property
    def config(self) -> Any:
        """machinable's read-only DictConfig of the resolved config, without the layers.

        machinable keeps the layers (`_default_`, `_version_`, `_update_`) in the DictConfig too, ~85
        omegaconf nodes and ~4 ms a cell; nothing reads a component's layers from there
        (`config_layers` reads the model, where machinable keeps them as well).
        """
        if self._config is None:
            from omegaconf import OmegaConf

            if self.__model__.config is None:  # machinable composes it from the version (the model gets the layers)
                super().config  # noqa: B018
            self._config = OmegaConf.create({k: v for k, v in self.__model__.config.items() if not k.startswith("_")})
            OmegaConf.set_readonly(self._config, True)
        return self._config

    def config_layers(self) -> Any:
        """machinable's config layers, read from the model."""
        from machinable.interface import _config_layers_from_model

        self.config  # noqa: B018 - composed by machinable if nothing has
        return _config_layers_from_model(self.__model__)

    def fill_config(self, resolved: Mapping[str, Any]) -> None:
        """Set the config layers machinable would compose from this interface's version, given the result.

        `resolved` is the method's validated config (seedbench.sweep.plan), which the version must
        compose to (`version_for`); only the `_update_` layer needs the versions' patches.
        """
        version = copy.deepcopy(list(self.__model__.version))
        update: dict[str, Any] = {}
        for element in version:
            patch = getattr(self, "version_" + element[1:])() if isinstance(element, str) else element
            update.update(copy.deepcopy(patch))
        self.__model__.config = {**copy.deepcopy(dict(resolved)), "_default_": defaults(self.Config), "_version_": version, "_update_": update}
        self._config = None


_DEFAULTS: dict[type, dict[str, Any]] = {}


def defaults(config: type[TrialConfig]) -> dict[str, Any]:
    """machinable's `_default_` layer of a component: its Config's defaults (dumped once per config class)."""
    if config not in _DEFAULTS:
        _DEFAULTS[config] = config().model_dump()
    return copy.deepcopy(_DEFAULTS[config])


def version_for(method: str, presets: Iterable[str], resolved: Mapping[str, Any]) -> list[Any]:
    """A cell's machinable version: its science presets as `~name`, then what they leave to set, as one dict.

    Applying the version to the config's defaults gives `resolved` exactly. A config with a mapping
    value is given whole (machinable deep-merges mappings, so a preset's mapping could leave keys behind).
    """
    from seedbench.registry import get_method

    names = [name for name in presets if preset_patch(method, name) is not None]
    if any(isinstance(value, Mapping) for value in resolved.values()):
        return [dict(resolved)]
    composed = defaults(get_method(method).config)
    for name in names:
        composed.update(preset_patch(method, name) or {})
    rest = {key: value for key, value in resolved.items() if key not in composed or composed[key] != value}
    return [*("~" + name for name in names), rest]


def presets_within(method: str, resolved: Mapping[str, Any]) -> list[str]:
    """The method's own presets whose every key has the preset's value in `resolved` (`~hadamard` for bases=hadamard)."""
    from seedbench.registry import get_method

    out = []
    for name in get_method(method).presets:
        patch = preset_patch(method, name)
        if patch and all(key in resolved and resolved[key] == value for key, value in patch.items()):
            out.append(name)
    return out


def new_interface(method: Any, presets: Iterable[str], params: Mapping[str, Any]) -> MethodComponent:
    """A new, unmaterialised interface of `method`'s component with the resolved config `params`.

    Refuses, in one line, a method whose name is taken by a file in components/ that is not its component.
    """
    from machinable import get

    interface = get.new(component_module(method.name), version_for(method.name, presets, params))
    cls = type(interface)
    if not (issubclass(cls, MethodComponent) and cls.method_name == method.name and cls.Config is method.config):
        raise ConfigError(
            f"method {method.name!r}: {PACKAGE}/{method.name}.py is not its component (a MethodComponent with "
            f"method_name = {method.name!r} and Config = its config class); rename the method or fix that file"
        )
    interface.fill_config(params)
    return interface


# -- a component for every registered method ----------------------------------------------------------


def build_component(method: str) -> type[MethodComponent]:
    """The component class of a registered method that has no file in components/ (a plugin's)."""
    from seedbench.registry import get_method

    found = get_method(method)
    name = "".join(part.capitalize() for part in method.split("_")) or method
    return type(name, (MethodComponent,), {"method_name": method, "Config": found.config, "__module__": component_module(method)})


class ComponentFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports `components.<method>` for a registered method that has no file there: its built component.

    Consulted after Python's own finders found no file. A worker registers the sweep's plugins from
    its environment first ($SEEDBENCH_PLUGINS), as its cells' training does.
    """

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        package, _, method = fullname.partition(".")
        if package != PACKAGE or not method.isidentifier():
            return None
        from seedbench.registry import load_plugins_from_env, method_names

        load_plugins_from_env()
        if method not in method_names(aliases=False):
            return None
        return importlib.machinery.ModuleSpec(fullname, self, origin=f"seedbench method {method}")

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None  # Python's default module object

    def exec_module(self, module: Any) -> None:
        method = module.__name__.partition(".")[2]
        cls = build_component(method)
        setattr(module, cls.__name__, cls)
        module.__doc__ = f"The machinable component of method {method!r}, built by seedbench (no file in {PACKAGE}/)."


def install_finder() -> None:
    """Put ComponentFinder on sys.meta_path once (after the standard finders)."""
    if not any(isinstance(finder, ComponentFinder) for finder in sys.meta_path):
        sys.meta_path.append(ComponentFinder())
