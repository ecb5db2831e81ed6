"""The `seedbench` command line.

Errors the user can fix (SeedbenchError) print one line and exit 2, with no traceback; failed cells
make `sweep` exit 1 after the whole grid has been tried.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from seedbench.errors import ConfigError, SeedbenchError

if TYPE_CHECKING:
    from seedbench.sweep.run import SweepSummary

EPILOG_SWEEP = """examples:
  seedbench sweep --method sgd --model fc,cnn --dataset digits --seeds 0-9
  seedbench sweep --method sgd --model fc --dataset fmnist --seeds 0-2 --version ~table1 --epochs 5
  seedbench sweep experiments/quickstart.yaml
  seedbench sweep experiments/quickstart.yaml --set lr=0.1 --store /tmp/mystore
  seedbench sweep experiments/quickstart.yaml --engine ray                  # a local Ray, all cores
  seedbench sweep experiments/quickstart.yaml --ray-address auto --resources '{"num_gpus": 0.25}'
  seedbench sweep experiments/quickstart.yaml --engine slurm --slurm partition=gpu --slurm time=60 --detach

Finished cells are reused (content-addressed identity); cells that failed before are skipped unless
--retry-failed is given. A finished cell whose method's code changed since stops the sweep before
anything runs, until --rerun-stale or --keep-stale says what to do with it.
Exit status: 0 all cells done, 1 some cells failed, 2 bad input or stale cells."""


def _console() -> Console:
    return Console()


def _parse_value(text: str):
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _overrides(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ConfigError(f"--set {pair!r}: use KEY=VALUE, e.g. --set lr=0.1")
        key, value = pair.split("=", 1)
        out[key.strip()] = _parse_value(value)
    return out


def _store_flag(text: str) -> str:
    """--store as given; an empty one (an unset shell variable) would silently mean the project's ./storage."""
    if not text.strip():
        raise ConfigError("--store '': empty path; give the store's folder, or leave --store out for the project's ./storage")
    return text


def sweep_spec_from_args(args: argparse.Namespace):
    """The sweep a command line asks for: a YAML file with flags on top, or flags alone."""
    from seedbench.sweep.grid import STREAM_LISTS, SweepSpec, load_spec, parse_seeds, split_list

    if args.spec:
        spec = load_spec(Path(args.spec))
        for flag, attr in (("method", "methods"), ("model", "models"), ("dataset", "datasets")):
            if getattr(args, flag):
                setattr(spec, attr, split_list(getattr(args, flag)))
        if args.seeds:
            spec.seeds = parse_seeds(args.seeds)
    else:
        missing = [f"--{f}" for f in ("method", "model", "dataset") if not getattr(args, f)]
        if not (args.seeds or any(getattr(args, a) for a in STREAM_LISTS) or args.until_decided):
            missing.append("--seeds")
        if missing:
            raise ConfigError(f"sweep needs a YAML file or {', '.join(missing)}; see `seedbench sweep --help`")
        spec = SweepSpec(
            methods=split_list(args.method),
            models=split_list(args.model),
            datasets=split_list(args.dataset),
            seeds=parse_seeds(args.seeds) if args.seeds else ([0] if args.until_decided else []),
        )
    for attr in STREAM_LISTS:
        if getattr(args, attr):
            setattr(spec, attr, parse_seeds(getattr(args, attr), "--" + attr.replace("_", "-")))
    if args.preset:
        spec.presets = split_list(args.preset)
    spec.plugins = [*spec.plugins, *(args.plugin or [])]
    spec.overrides.update(_overrides(args.set))
    if args.epochs is not None:
        spec.overrides["epochs"] = args.epochs
    return apply_where_flags(spec, args)


def apply_where_flags(spec, args: argparse.Namespace):
    """The flags that say where a sweep or a tune runs and stores (--store, --data-dir, --pack, --engine)."""
    if args.store is not None:
        spec.store = _store_flag(args.store)
    if args.data_dir:
        spec.data_dir = args.data_dir
    if args.pack is not None:
        spec.pack = args.pack
    if args.engine:
        spec.engine = args.engine
    elif args.ray_address:
        spec.engine = "ray"
    return spec


def slurm_flags(args: argparse.Namespace) -> list[str] | None:
    """--slurm pairs, with --slurm-array-parallelism as one more (None: neither given)."""
    pairs = list(args.slurm or [])
    if args.slurm_array_parallelism is not None:
        pairs.append(f"array_parallelism={args.slurm_array_parallelism}")
    return pairs or None


def cmd_sweep(args: argparse.Namespace) -> int:
    from seedbench.sweep.run import run_sweep

    spec = sweep_spec_from_args(args)
    console = _console()

    def run(grid):
        return run_sweep(
            grid,
            retry_failed=args.retry_failed,
            quiet=args.quiet,
            engine=grid.engine,
            address=args.ray_address,
            resources=args.resources,
            argv=sys.argv[1:],
            slurm=slurm_flags(args),
            detach=args.detach,
            rerun_stale=args.rerun_stale,
            keep_stale=args.keep_stale,
        )

    if args.until_decided:
        if args.detach:
            raise ConfigError("--until-decided needs each round's results before the next: drop --detach")
        from seedbench.sweep.until_decided import run_until_decided

        def round_of(grid):
            summary = run(grid)
            console.print(f"round of {len(grid.seeds)} seeds: trained {summary.trained}, reused {summary.reused}, failed {len(summary.failed)}")
            return summary

        result = run_until_decided(
            spec,
            by=args.by,
            metric=args.metric,
            alpha=args.alpha,
            max_seeds=args.max_seeds,
            step=args.step,
            spending=args.spending,
            margin=args.equivalence,
            run=round_of,
        )
        sys.stdout.write(result.render() + "\n")
        return 0
    if args.dry_run:
        from seedbench.sweep.run import dry_run

        plan = dry_run(spec, retry_failed=args.retry_failed, resources=args.resources, rerun_stale=args.rerun_stale, keep_stale=args.keep_stale)
        console.print(plan.describe())
        return 0
    summary = run(spec)
    if summary.slurm and summary.slurm["detached"]:
        return _print_detached(console, summary)
    console.print(
        f"[bold]{summary.total} cells[/]: trained {summary.trained} (diverged {summary.diverged}"
        + (f", resumed from a checkpoint {summary.resumed}" if summary.resumed else "")
        + f"), reused {summary.reused}, failed {len(summary.failed)}"
        + (f", collected {summary.slurm['adopted']} from jobs of an earlier submission" if summary.slurm and summary.slurm["adopted"] else "")
        + (f", failed earlier and skipped {len(summary.skipped_failed)}" if summary.skipped_failed else "")
        + _stale_note(summary)
        + (f", in {len(summary.packs)} packs of {min(summary.packs)}-{max(summary.packs)} seeds" if summary.packs else "")
        + f" in {summary.seconds:.1f} s on the {summary.engine} engine  [dim]store: {summary.store}[/]"
    )
    for label, error in summary.failed:
        Console(stderr=True).print(
            f"[red]failed[/] {escape(label)}: {escape(error)}  [dim](traceback in the cell's folder)[/]", highlight=False, soft_wrap=True
        )
    for label in summary.skipped_failed:
        console.print(f"[yellow]failed earlier[/] {escape(label)} (rerun with --retry-failed)")
    return 0 if summary.ok else 1


def _stale_note(summary: SweepSummary) -> str:
    """What became of finished cells made by other code (--rerun-stale / --keep-stale), for the summary line."""
    if not summary.stale:
        return ""
    cells = sum(g.cells for g in summary.stale)
    how = "trained again" if summary.stale_policy == "rerun" else "kept, counted as reused"
    return f" ({cells} stale from other code {how}: {', '.join(g.method for g in summary.stale)})"


def _print_detached(console: Console, summary: SweepSummary) -> int:
    """The closing lines of `sweep --detach`: what went to Slurm, and how to follow and collect it."""
    slurm = summary.slurm
    queued = f", {slurm['already_queued']} already queued or running from an earlier submission" if slurm["already_queued"] else ""
    skipped = f", failed earlier and skipped {len(summary.skipped_failed)}" if summary.skipped_failed else ""
    background = slurm.get("background")
    if background:
        console.print(
            f"[bold]{summary.total} cells[/]: {background['cells']} to prepare and submit{queued}, reused {summary.reused}{skipped}"
            f"; checked and planned in {summary.seconds:.1f} s  [dim]store: {summary.store}[/]"
        )
        console.print(
            f"a background submitter (pid {background['pid']}) prepares them and submits them array by array, so the first jobs "
            f"start in seconds (log: {background['log']}); `seedbench status` shows its progress; run the same command again "
            "later to collect the results and submit whatever is missing"
        )
        return 0
    arrays = slurm["arrays"]
    ids = ", ".join(arrays[:5]) + (", ..." if len(arrays) > 5 else "")
    console.print(
        f"[bold]{summary.total} cells[/]: submitted {slurm['submitted']} to Slurm"
        + (f" as {len(arrays)} job array{'s' if len(arrays) != 1 else ''} ({ids})" if arrays else "")
        + f"{queued}, reused {summary.reused}{skipped}"
        + f" in {summary.seconds:.1f} s  [dim]store: {summary.store}[/]"
    )
    console.print("`seedbench status` shows their progress; run the same command again to collect the results and submit what is missing")
    for label in summary.skipped_failed:
        console.print(f"[yellow]failed earlier[/] {escape(label)} (rerun with --retry-failed)")
    return 0 if summary.ok else 1


def cmd_status(args: argparse.Namespace) -> int:
    import datetime

    from seedbench.sweep.runners.store_context import store_dir
    from seedbench.sweep.status import SLURM_STATES, STATES, sweep_status

    directory = store_dir(_store_flag(args.store) if args.store is not None else None)
    if directory.exists() and not directory.is_dir():
        raise SeedbenchError(f"store {directory} is a file, not a folder; pass --store with the store's folder")
    if not directory.is_dir():
        raise SeedbenchError(f"store {directory} does not exist; run `seedbench sweep` first or pass --store DIR")
    warnings: list[str] = []
    sweeps = sweep_status(directory, warnings)
    for warning in warnings:
        Console(stderr=True).print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
    from seedbench.sweep.runners.slurm_background import describe, submitter_state

    submitters = {s.id: submitter_state(directory, s.id) for s in sweeps if s.engine == "slurm"}
    if args.format == "json":
        rows = [
            {
                "sweep": s.id,
                "grid": s.summary,
                "engine": s.engine,
                "updated_at": s.updated_at,
                "cells": s.total,
                **s.counts,
                "stale": sum(g["cells"] for g in s.stale.values()),  # finished, by code that has changed since
                "stale_methods": s.stale,
                **({"not_finished": [c for c in s.cells if c["state"] != "finished"]} if args.cells else {}),
                **({"submitter": submitters[s.id]} if submitters.get(s.id) else {}),
            }
            for s in sweeps
        ]
        sys.stdout.write(json.dumps(rows, indent=1) + "\n")
        return 0
    console = _console()
    if not sweeps:
        console.print(f"no sweeps recorded in {directory}")
        return 0
    colours = {"finished": "green", "running": "cyan", "failed": "red", "diverged": "yellow", "pending": "white"}
    colours.update(queued="blue", preempted="magenta")
    states = STATES + (SLURM_STATES if any(k in s.counts for s in sweeps for k in SLURM_STATES) else ())  # Slurm sweeps' own states
    rows = [
        [
            s.id[:8],
            s.summary,
            datetime.datetime.fromtimestamp(s.updated_at).strftime("%m-%d %H:%M"),
            str(s.total),
            *(str(s.counts.get(k, "-")) for k in states),
        ]
        for s in sweeps
    ]
    table = Table(title=f"sweeps in {directory}", title_justify="left", box=None, padding=(0, 1, 0, 0), header_style="bold underline")
    # on a narrow terminal only the grid column wraps: ids, times and counts keep their full width
    for i, column in enumerate(("sweep", "grid", "updated", "cells", *states)):
        width = None if column == "grid" else max(len(column), *(len(r[i]) for r in rows))
        table.add_column(column, justify="right" if i >= 3 else "left", min_width=width, style=colours.get(column))
    for row in rows:
        table.add_row(*row)
    console.print(table)
    for sweep, state in submitters.items():  # a detached sweep's background submitter: running, done, or ended early
        if state is not None:
            console.print(f"{sweep[:8]} {escape(describe(state))}", highlight=False, soft_wrap=True)
    for s in sweeps:  # finished cells made by code that has changed since: counted finished, named here
        for method, group in s.stale.items():
            console.print(
                f"{s.id[:8]} [magenta]stale[/] {escape(method)}: {group['cells']} finished cells, {escape('; '.join(group['reasons']))}; "
                "the next sweep stops on them: --rerun-stale redoes them, --keep-stale keeps them",
                highlight=False,
                soft_wrap=True,
            )
    if args.cells:
        for s in sweeps:
            for c in s.cells:
                if c["state"] != "finished":
                    console.print(f"{s.id[:8]} [yellow]{c['state']}[/] {c['label']}  [dim]{c['dir'] or ''}[/]")
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from seedbench.data import availability

    rows = availability(args.data_dir)
    if args.format == "json":
        sys.stdout.write(json.dumps(rows, indent=1) + "\n")
        return 0
    table = Table(title="datasets")
    for column in ("dataset", "status", "location", "how_to_get"):
        table.add_column(column, overflow="fold")
    for row in rows:
        style = "green" if row["status"] == "available" else "yellow"
        table.add_row(row["dataset"], f"[{style}]{row['status']}[/]", row["location"], row["how_to_get"])
    _console().print(table)
    return 0


class OneLineParser(argparse.ArgumentParser):
    """argparse's errors as one line with a pointer to --help, instead of the whole usage block."""

    def error(self, message: str):  # type: ignore[override]
        Console(stderr=True).print(f"[red]error:[/] {escape(message)}; see `{self.prog} --help`", highlight=False, soft_wrap=True)
        raise SystemExit(2)


def _seed_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", help="seeds: 0-9, 0,3,7 or 0-4,10 (every stream derives from the seed)")
    p.add_argument("--init-seeds", dest="init_seeds", metavar="SEEDS", help="cross weight-init seeds, e.g. 0-9 (variance decomposition)")
    p.add_argument("--data-seeds", dest="data_seeds", metavar="SEEDS", help="cross data-order seeds, e.g. 0-9")
    p.add_argument("--augment-seeds", dest="augment_seeds", metavar="SEEDS", help="cross augmentation seeds, e.g. 0-4")


OWN_COMMANDS = ("sweep", "status", "methods", "datasets")  # defined here; the others live in cli.analysis, cli.studies, cli.store


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with `command` one of OWN_COMMANDS, only the commands of this module.

    The analysis commands' modules import pandas and scipy (about a second), which a sweep, a typo in
    a sweep or `status` need not wait for; help and unknown commands still get every command.
    """
    from seedbench import __version__

    parser = OneLineParser(
        prog="seedbench",
        description="Run seeds x models x datasets grids of training methods and compare them honestly.",
        epilog="Run `seedbench COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"seedbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "sweep",
        help="train a grid of cells (reusing finished ones)",
        description="Train every cell of a methods x models x datasets x seeds grid and store the results.",
        epilog=EPILOG_SWEEP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("spec", nargs="?", help="a sweep YAML file (keys: methods, models, datasets, seeds, presets, overrides, store, plugins)")
    p.add_argument("--method", help="comma-separated methods, e.g. sgd,rbd (`seedbench methods` lists them)")
    p.add_argument("--model", help="comma-separated models, e.g. fc,cnn")
    p.add_argument("--dataset", help="comma-separated datasets, e.g. digits,fmnist")
    _seed_flags(p)
    p.add_argument(
        "--preset",
        "--version",
        dest="preset",
        metavar="PRESETS",
        help="comma-separated presets applied after model/dataset, e.g. table1 (the method's own, then machinable.yaml's)",
    )
    p.add_argument("--epochs", type=int, help="override the number of epochs")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override any config key (repeatable), e.g. --set lr=0.1")
    p.add_argument("--store", help="results store directory (default: ./storage in the project)")
    p.add_argument("--data-dir", help="directory holding mnist/, fmnist/, cifar10/ (default: $SEEDBENCH_DATA)")
    p.add_argument("--retry-failed", action="store_true", help="rerun cells that failed in an earlier sweep")
    p.add_argument(
        "--rerun-stale", action="store_true", help="train again the finished cells whose method's code changed since (docs/store.md, 'Code versions')"
    )
    p.add_argument(
        "--keep-stale", action="store_true", help="reuse those cells as they are, and remember that choice for this code (e.g. after a cosmetic edit)"
    )
    p.add_argument(
        "--engine",
        choices=["local", "ray", "slurm"],
        help="local: one cell after another in this process (default); ray: every cell a Ray task; slurm: Slurm job arrays (docs/cluster.md)",
    )
    p.add_argument(
        "--ray-address",
        metavar="auto|HOST:PORT",
        help="join a running Ray cluster (implies --engine ray); default: start a local Ray sized to this machine",
    )
    p.add_argument(
        "--resources",
        metavar="JSON",
        help='per-cell resources overriding the presets, e.g. \'{"num_gpus": 0.25}\' or \'{"num_cpus": 2, "IPU": 1}\' (identity unchanged)',
    )
    p.add_argument(
        "--slurm",
        action="append",
        metavar="KEY=VALUE",
        help="a Slurm option for --engine slurm (repeatable): partition, time, cpus, gpus, mem, account, qos, constraint, cells_per_task",
    )
    p.add_argument("--slurm-array-parallelism", type=int, metavar="N", help="--engine slurm: at most N array tasks run at once (%%N)")
    p.add_argument("--detach", action="store_true", help="--engine slurm: return once the cells are submitted; the same command later collects them")
    p.add_argument(
        "--pack",
        metavar="K|auto",
        help="train K cells that differ only in their seeds as one vectorized model (1 = off, the default; auto = the measured best K per model, method and device)",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="validate and print what would run (new, reused, failed before, packs) without running anything"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    seq = p.add_argument_group("sequential seeds (--until-decided): stop as soon as every pair of arms is decided")
    seq.add_argument(
        "--until-decided", action="store_true", help="run seeds in rounds with a group-sequential test (Lan-DeMets alpha spending, Holm across pairs)"
    )
    seq.add_argument("--by", default="arm", help="what the arms are: arm (default), method or a config key")
    seq.add_argument("--metric", default="val_acc", help="the metric compared (default val_acc)")
    seq.add_argument("--alpha", type=float, default=0.05, help="family-wise error rate over all looks and pairs (default 0.05)")
    seq.add_argument("--max-seeds", type=int, default=20, help="seeds per arm at most (default 20)")
    seq.add_argument("--step", type=int, default=5, help="seeds added per round (default 5)")
    seq.add_argument("--spending", choices=["obf", "pocock"], default="obf", help="alpha-spending function (default O'Brien-Fleming type)")
    seq.add_argument("--equivalence", type=float, metavar="MARGIN", help="also stop a pair whose repeated CI lies within +-MARGIN")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser(
        "status",
        help="per sweep: finished / running / failed / diverged / pending cells",
        description="For every sweep recorded in a store, count its cells by state (from the run folders; works while sweeps run).",
    )
    p.add_argument("--store", help="results store directory (default: ./storage in the project)")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument("--cells", action="store_true", help="also list every cell that is not finished")
    p.set_defaults(func=cmd_status)

    if command not in OWN_COMMANDS:
        from seedbench.cli.analysis import add_parsers
        from seedbench.cli.store import add_export_parser, add_query_parser, add_store_parser
        from seedbench.cli.studies import add_parsers as add_study_parsers

        add_parsers(sub)  # report, compare, plot
        add_study_parsers(sub)  # decompose, power
        add_query_parser(sub)
        add_export_parser(sub)
        add_store_parser(sub)  # store migrate
    from seedbench.cli.tune import add_parsers as add_tune_parsers

    add_tune_parsers(sub)  # tune, tune-report (seedbench/cli/tune.py)

    p = sub.add_parser(
        "methods",
        help="the registered methods, models, datasets and initializers (plugins included)",
        description="List what a sweep can name: methods (with aliases), models, datasets and initializers, including those of --plugin files.",
    )
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=cmd_methods)

    p = sub.add_parser(
        "datasets",
        help="which datasets are available where, and how to get the missing ones",
        description="List the datasets seedbench knows, where each was found, and how to get the missing ones.",
    )
    p.add_argument("--data-dir", help="directory holding mnist/, fmnist/, cifar10/ (default: $SEEDBENCH_DATA)")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=cmd_datasets)
    for command in sub.choices.values():  # every command can load the user's own methods, models, datasets
        command.add_argument(
            "--plugin",
            action="append",
            metavar="PATH_OR_MODULE",
            help="a Python file or module that registers methods, models, datasets or initializers (repeatable)",
        )
    return parser


def cmd_methods(args: argparse.Namespace) -> int:
    from seedbench import registry

    methods = [registry.get_method(m) for m in registry.method_names(aliases=False)]
    rows = {
        "methods": [
            {"name": m.name, "description": m.description, "presets": sorted(m.presets), "packable": m.packable, "frameworks": list(m.frameworks)}
            for m in methods
        ],
        "aliases": [{"name": n, "method": t, "patch": p} for n, (t, p) in sorted(registry.aliases().items())],
        "models": [registry.get_model(n).facts() for n in registry.model_names()],
        "datasets": registry.dataset_names(),
        "initializers": registry.initializer_names(),
    }
    if args.format == "json":
        sys.stdout.write(json.dumps(rows, indent=1) + "\n")
        return 0
    table = Table(title="methods", title_justify="left")
    for column in ("method", "what it does", "presets", "packable"):
        table.add_column(column, overflow="fold")
    for m in rows["methods"]:
        table.add_row(m["name"], m["description"], ", ".join(m["presets"]), "yes" if m["packable"] else "no")
    for a in rows["aliases"]:
        table.add_row(a["name"], f"= {a['method']} with " + ", ".join(f"{k}={v}" for k, v in a["patch"].items()), "", "")
    console = _console()
    console.print(table)
    console.print("models: " + ", ".join(f"{m['name']} (init {m['default_init']})" for m in rows["models"]))
    console.print("datasets: " + ", ".join(rows["datasets"]))
    console.print("initializers: " + ", ".join(rows["initializers"]))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)  # the top level has only flags without values
    parser = build_parser(command if command in OWN_COMMANDS else None)
    args = parser.parse_args(argv)
    try:
        if getattr(args, "plugin", None) and args.func is not cmd_sweep:  # a sweep loads its own, with the YAML's
            from seedbench.registry import load_plugins

            load_plugins(args.plugin)
        return int(args.func(args) or 0)
    except SeedbenchError as exc:
        Console(stderr=True).print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        Console(stderr=True).print("[yellow]interrupted[/]: finished cells are kept; run the same command to resume")
        return 130


if __name__ == "__main__":
    sys.exit(main())
