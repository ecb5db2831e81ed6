"""The machinable Execution the engines prepare each cell's run-record with.

It is machinable's own Execution with one change: code provenance (a git Manifest, which costs
about seven `git` processes per run-record) is captured once per sweep and related to every run of
that sweep, instead of once per run. The sweep's code does not change while its driver plans it.

Kept alone in its module: machinable resolves an Execution's class by importing its module and taking
the single Execution subclass defined there (`Execution.from_directory` in the workers does this).
"""

from __future__ import annotations

from typing import cast

from machinable import Execution


class SweepExecution(Execution):
    def _capture_manifest(self) -> None:
        from machinable.interface import Interface
        from machinable.project import Project

        from seedbench.sweep.runners.provenance import MANIFESTS  # a module machinable never re-executes

        if not Project.is_connected():
            return
        for module in Project.get().provider().on_resolve_manifests() or []:
            if module not in MANIFESTS:
                manifest = None
                try:
                    manifest = cast("Interface", Interface.make(module)).capture()
                except Exception:  # noqa: BLE001 - as in machinable: provenance never breaks a run
                    manifest = None
                if manifest is not None and manifest.entries:
                    manifest.materialize()
                else:
                    manifest = None  # nothing to capture (e.g. not a git checkout): do not ask again this sweep
                MANIFESTS[module] = manifest
            if MANIFESTS[module] is not None:
                self.relate("uses", MANIFESTS[module])
