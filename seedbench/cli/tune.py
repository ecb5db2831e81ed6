"""`seedbench tune` (every method tuned on the same budget) and `seedbench tune-report` (what a study chose)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from seedbench.errors import ConfigError

EPILOG_TUNE = """examples:
  seedbench tune --method sgd,rbd --model fc --dataset digits --trials 16 --seeds 100-102 --epochs 5 --study lr-digits
  seedbench sweep --method sgd,rbd --model fc --dataset digits --seeds 0-19 --preset tuned:lr-digits
  seedbench tune --plugin examples/sam.py --method sam,sgd --model fc --dataset digits --trials 16 --seeds 100-102 --epochs 5 --study sam-digits --halving 2
  seedbench tune experiments/tune-digits.yaml              # the same as a YAML file, with search spaces of its own
  seedbench tune-report lr-digits -o lr-digits.png         # space, budget, chosen values; the sensitivity plot

Every method gets the same number of trials, drawn from one scrambled Halton sequence seeded by the
study's name and mapped onto each method's declared search space (Method.tunable; a tune YAML file's
`space: {method: {key: range}}` overrides it). Each trial runs on every tuning seed; the trial with the
highest final validation accuracy, averaged over those seeds, is chosen (test accuracy is never read)
and written to <store>/tuned/<study>.json. `sweep --preset tuned:<study>` applies the chosen values and
refuses the tuning seeds. Trials are ordinary cells: reused, resumed and run on any engine like a sweep's.
Exit status: 0 tuned, 1 some trials failed (no study written), 2 bad input. See docs/tuning.md."""


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tune",
        help="tune every method on the same budget (quasirandom trials, selection on validation)",
        description="Tune each method's hyperparameters over its declared search space with the same number of trials, "
        "select on validation accuracy, and store the winners as the preset tuned:STUDY.",
        epilog=EPILOG_TUNE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "spec", nargs="?", help="a tune YAML file (study, methods, models, datasets, trials, seeds, epochs, space, ...); flags override it"
    )
    p.add_argument("--method", help="comma-separated methods to tune, e.g. sgd,rbd (each gets the same budget)")
    p.add_argument("--model", help="comma-separated models, e.g. fc (each model x dataset is tuned on its own)")
    p.add_argument("--dataset", help="comma-separated datasets, e.g. digits")
    p.add_argument("--trials", type=int, help="trials per method and workload: points of the study's Halton sequence")
    p.add_argument("--seeds", help="the tuning seeds every trial runs on, e.g. 100-102; the final sweep must use others")
    p.add_argument("--epochs", type=int, help="epochs per trial (the last rung's, with --halving)")
    p.add_argument("--study", help="the study's name: seeds the draw, names <store>/tuned/STUDY.json and the preset tuned:STUDY")
    p.add_argument(
        "--halving",
        type=int,
        metavar="ETA",
        help="successive halving over epochs: rungs of complete shorter runs, the best 1/ETA of the trials go on (default: off)",
    )
    p.add_argument("--preset", metavar="PRESETS", help="comma-separated presets every trial gets, e.g. quick")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="a config key every trial gets (repeatable), e.g. --set batch_size=64")
    p.add_argument("--store", help="results store directory (default: ./storage in the project)")
    p.add_argument("--data-dir", help="directory holding mnist/, fmnist/, cifar10/ (default: $SEEDBENCH_DATA)")
    p.add_argument("--engine", choices=["local", "ray", "slurm"], help="where the trials run, as for `seedbench sweep` (default local)")
    p.add_argument("--ray-address", metavar="auto|HOST:PORT", help="join a running Ray cluster (implies --engine ray)")
    p.add_argument("--resources", metavar="JSON", help="per-cell resources, e.g. '{\"num_gpus\": 0.25}' (identity unchanged)")
    p.add_argument("--pack", metavar="K|auto", help="train a trial's seeds as one vectorized model, as for `seedbench sweep` (default off)")
    p.add_argument("--retry-failed", action="store_true", help="rerun trial cells that failed before")
    p.add_argument("--rerun-stale", action="store_true", help="train again the finished trial cells whose method's code changed since")
    p.add_argument("--keep-stale", action="store_true", help="reuse those cells as they are (as for `seedbench sweep`)")
    p.add_argument("--replace", action="store_true", help="overwrite a study of the same name that was defined otherwise")
    p.add_argument("--dry-run", action="store_true", help="check the study and print its budget and what would run, without running anything")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_tune)

    p = sub.add_parser(
        "tune-report",
        help="what a tuning study searched and chose, per method; the sensitivity plot",
        description="Per method and workload of a tuning study: the search space, the budget, the chosen values and their "
        "validation accuracy (with --trials every trial); -o draws validation accuracy against lr, every trial a point.",
    )
    p.add_argument("study", nargs="?", help="the study's name (default: every study in the store)")
    p.add_argument("--store", help="results store directory (default: ./storage in the project)")
    p.add_argument("--trials", action="store_true", help="list every trial, not only the chosen ones")
    p.add_argument("--format", choices=["terminal", "markdown", "csv", "json", "latex"], default="terminal")
    p.add_argument("-o", "--output", metavar="PLOT", help="write the sensitivity plot (.png or .svg); one study only")
    p.set_defaults(func=cmd_tune_report)


def tune_spec_from_args(args: argparse.Namespace):
    """The study a command line asks for: a YAML file with flags on top, or flags alone."""
    from seedbench.cli.main import _overrides, apply_where_flags
    from seedbench.sweep.grid import parse_seeds, split_list
    from seedbench.sweep.tune import TuneSpec, load_tune_spec

    if args.spec:
        spec = load_tune_spec(Path(args.spec))
    else:
        missing = [f"--{f}" for f in ("method", "model", "dataset", "trials", "seeds", "epochs", "study") if getattr(args, f) in (None, "")]
        if missing:
            raise ConfigError(f"tune needs a YAML file or {', '.join(missing)}; see `seedbench tune --help`")
        spec = TuneSpec(study=args.study, methods=[], models=[], datasets=[], trials=args.trials, seeds=[], epochs=args.epochs)
    for flag, attr in (("method", "methods"), ("model", "models"), ("dataset", "datasets")):
        if getattr(args, flag):
            setattr(spec, attr, split_list(getattr(args, flag)))
    if args.seeds is not None:
        spec.seeds = parse_seeds(args.seeds, "--seeds")
    for flag in ("trials", "epochs", "study", "halving"):
        if getattr(args, flag) is not None:
            setattr(spec, flag, getattr(args, flag))
    if args.preset:
        spec.presets = [p.lstrip("~") for p in split_list(args.preset)]
    spec.plugins = [*spec.plugins, *(args.plugin or [])]
    spec.overrides.update(_overrides(args.set))
    return apply_where_flags(spec, args)


def final_sweep_hint(spec, preset: str) -> str:
    """The final study's command line: the study's grid, budget, presets and --set values, the tuned preset, fresh seeds."""
    import shlex

    from seedbench.sweep.tuned import seed_text

    words = ["seedbench", "sweep", *(w for p in spec.plugins for w in ("--plugin", p))]
    words += ["--method", ",".join(spec.methods), "--model", ",".join(spec.models), "--dataset", ",".join(spec.datasets)]
    words += ["--epochs", str(spec.epochs), "--preset", ",".join([*spec.presets, preset])]
    words += [w for k, v in spec.overrides.items() for w in ("--set", f"{k}={v}")]
    words += [*(["--store", spec.store] if spec.store else []), "--seeds"]
    return shlex.join(words) + f" <seeds other than {seed_text(spec.seeds)}>"


def cmd_tune(args: argparse.Namespace) -> int:
    from seedbench.sweep.tune import dry_run_tune, run_tune

    spec = tune_spec_from_args(args)
    console = Console()
    if args.dry_run:
        plan = dry_run_tune(spec, retry_failed=args.retry_failed, replace=args.replace, rerun_stale=args.rerun_stale, keep_stale=args.keep_stale)
        console.print(plan.describe(), highlight=False)
        return 0
    result = run_tune(
        spec,
        engine=spec.engine,
        address=args.ray_address,
        resources=args.resources,
        retry_failed=args.retry_failed,
        replace=args.replace,
        quiet=args.quiet,
        argv=sys.argv[1:],
        rerun_stale=args.rerun_stale,
        keep_stale=args.keep_stale,
    )
    counts = f"trained {result.trained} (diverged {result.diverged}), reused {result.reused}, failed {len(result.failed)}"
    if not result.ok:
        err = Console(stderr=True)
        for label, error in result.failed:
            err.print(f"[red]failed[/] {escape(label)}: {escape(error)}  [dim](traceback in the cell's folder)[/]", highlight=False, soft_wrap=True)
        for label in result.skipped_failed:
            err.print(f"[yellow]failed earlier[/] {escape(label)} (rerun with --retry-failed)", highlight=False, soft_wrap=True)
        console.print(f"tune {spec.study}: {counts}; not every trial finished, so nothing was chosen (equal budgets); fix and run again")
        return 1
    from seedbench.analysis.tuning import budget_text, chosen_lines

    for line in chosen_lines(result.doc or {}):
        console.print(line, highlight=False, soft_wrap=True)
    console.print(
        f"[bold]tune {spec.study}[/]: {budget_text(result.doc or {})} per method; {counts} in {result.seconds:.1f} s on the {result.engine} engine\n"
        f"wrote {result.path} (version {result.version})\nnext: {final_sweep_hint(spec, result.preset)}\n"
        f'then: seedbench report{" --store " + spec.store if spec.store else ""} --where "seed NOT IN ({", ".join(map(str, spec.seeds))})"'
        "  (the trials are in the store too)",
        highlight=False,
        soft_wrap=True,
    )
    return 0


def cmd_tune_report(args: argparse.Namespace) -> int:
    import pandas as pd

    from seedbench.analysis.tables import render
    from seedbench.analysis.tuning import load_tuning, plot_sensitivity, tuning_summary, tuning_trials
    from seedbench.cli.main import _store_flag
    from seedbench.cli.outputs import check_output
    from seedbench.errors import SeedbenchError
    from seedbench.sweep.runners.store_context import store_dir

    directory = store_dir(_store_flag(args.store) if args.store is not None else None)
    if not directory.is_dir():
        raise SeedbenchError(f"store {directory} does not exist; run `seedbench tune` first or pass --store DIR")
    if args.output:
        if args.study is None:
            raise ConfigError("-o draws one study's sensitivity plot: name the study, e.g. seedbench tune-report lr-digits -o lr.png")
        check_output(args.output, {".png", ".svg"})
    docs = load_tuning(directory, args.study)
    if not docs:
        raise SeedbenchError(f"no tuning study in store {directory}; run `seedbench tune ... --study NAME` first")
    frames = [tuning_trials(doc).assign(study=doc["study"]) if args.trials else tuning_summary(doc) for doc in docs]
    table = pd.concat(frames, ignore_index=True)
    title = docs[0]["study"] if len(docs) == 1 else f"{len(docs)} tuning studies"
    sys.stdout.write(render(table, args.format, title=f"tuning: {title}"))  # as wide as the table needs
    if args.output:
        path = plot_sensitivity(docs[0], args.output)
        Console(stderr=True).print(f"wrote {path}", highlight=False)
    return 0
