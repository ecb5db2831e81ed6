"""`Sweep`: a grid as a Python object, for experiment scripts and notebooks.

    from seedbench import Sweep
    Sweep(methods=["sgd", "rbd"], models=["fc"], datasets=["digits"], seeds=range(10), presets=["quick"]).run()

It builds the same SweepSpec the CLI builds, so a grid run from a script and the same grid run from
the command line are the same cells (the same identities, reused across both).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from seedbench.sweep.grid import Cell, SweepSpec, parse_seeds


def _names(value: str | Iterable[str]) -> list[str]:
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _seeds(value: int | str | Iterable[int] | None, what: str) -> list[int]:
    if value is None:
        return []
    if isinstance(value, int | str):
        return parse_seeds(value, what)
    return parse_seeds(list(value), what)


class Sweep:
    """A methods x models x datasets x seeds grid; `.run()` trains what is not finished yet."""

    def __init__(
        self,
        methods: str | Iterable[str],
        models: str | Iterable[str] = ("fc",),
        datasets: str | Iterable[str] = ("digits",),
        seeds: int | str | Iterable[int] | None = None,
        *,
        presets: str | Iterable[str] = (),
        overrides: Mapping[str, Any] | None = None,
        init_seeds: int | str | Iterable[int] | None = None,
        data_seeds: int | str | Iterable[int] | None = None,
        augment_seeds: int | str | Iterable[int] | None = None,
        seed_key: str = "seed",
        base_seed: int = 0,
        store: str | None = None,
        data_dir: str | None = None,
        plugins: str | Iterable[str] = (),
        resources: Mapping[str, Any] | None = None,
        pack: int | str | None = None,
    ):
        self.spec = SweepSpec(
            methods=_names(methods),
            models=_names(models),
            datasets=_names(datasets),
            seeds=_seeds(seeds, "seeds"),
            presets=[p.lstrip("~") for p in _names(presets)],
            overrides=dict(overrides or {}),
            store=store,
            data_dir=data_dir,
            seed_key=seed_key,
            base_seed=base_seed,
            init_seeds=_seeds(init_seeds, "init_seeds"),
            data_seeds=_seeds(data_seeds, "data_seeds"),
            augment_seeds=_seeds(augment_seeds, "augment_seeds"),
            plugins=_names(plugins),
            resources=dict(resources) if resources else None,
            pack=pack,
        )

    @classmethod
    def from_yaml(cls, path: str) -> Sweep:
        from pathlib import Path

        from seedbench.sweep.grid import load_spec

        sweep = cls.__new__(cls)
        sweep.spec = load_spec(Path(path))
        return sweep

    def cells(self) -> list[Cell]:
        return self.spec.cells()

    def check(self) -> list[Any]:
        """Resolve and validate every cell (names, values, datasets) without running anything."""
        from seedbench.registry import load_plugins
        from seedbench.sweep.plan import resolve_grid

        load_plugins(self.spec.plugins)
        placement = {"data_dir": self.spec.data_dir} if self.spec.data_dir else {}
        return resolve_grid(self.cells(), placement)

    def run(
        self,
        engine: str = "local",
        *,
        address: str | None = None,
        retry_failed: bool = False,
        quiet: bool = True,
        resources: str | dict | None = None,
        pack: int | str | None = None,
        slurm: dict | None = None,
        detach: bool = False,
        rerun_stale: bool = False,
        keep_stale: bool = False,
    ):
        """Train the grid's unfinished cells; returns the SweepSummary (trained, reused, failed, store).

        `pack`: K seeds trained as one vectorized model, "auto" (the measured rule) or 1 (off); None keeps
        the Sweep's own setting (docs/engine.md, "Seed packing"). `slurm` ({"partition": "gpu", "time": 120})
        and `detach` are for engine="slurm" (docs/cluster.md).
        Finished cells whose method's code changed since raise StaleCode before anything runs, unless
        `rerun_stale` (train them again) or `keep_stale` (reuse them) says what to do (docs/store.md).
        """
        from seedbench.sweep.run import run_sweep

        return run_sweep(
            self.spec,
            retry_failed=retry_failed,
            quiet=quiet,
            engine=engine,
            address=address,
            resources=resources,
            pack=pack,
            slurm=slurm,
            detach=detach,
            rerun_stale=rerun_stale,
            keep_stale=keep_stale,
        )

    def dry_run(self, retry_failed: bool = False, pack: int | str | None = None, rerun_stale: bool = False, keep_stale: bool = False):
        """What `.run()` would do - new, reused, failed-before cells and packs - without running or writing anything."""
        from seedbench.sweep.run import dry_run

        return dry_run(self.spec, retry_failed=retry_failed, pack=pack, rerun_stale=rerun_stale, keep_stale=keep_stale)

    def run_until_decided(
        self,
        *,
        by: str = "arm",
        metric: str = "val_acc",
        alpha: float = 0.05,
        max_seeds: int = 20,
        step: int = 5,
        engine: str = "local",
        margin: float | None = None,
        quiet: bool = True,
    ):
        """Add seeds in rounds until a group-sequential test decides every pair of arms; returns the SequentialResult."""
        from seedbench.sweep.run import run_sweep
        from seedbench.sweep.until_decided import run_until_decided

        return run_until_decided(
            self.spec,
            by=by,
            metric=metric,
            alpha=alpha,
            max_seeds=max_seeds,
            step=step,
            margin=margin,
            run=lambda grid: run_sweep(grid, quiet=quiet, engine=engine),
        )

    def __repr__(self) -> str:
        s = self.spec
        return f"Sweep(methods={s.methods}, models={s.models}, datasets={s.datasets}, cells={len(self.cells())})"
