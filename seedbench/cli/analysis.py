"""`seedbench report | compare | plot`: statistics over a store, from the command line.

Each command reads the store's `runs` (and for curves `epochs`) view through DuckDB, optionally
filtered with `--where` (SQL), and hands the frame to seedbench.analysis.stats / tables / plots.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from seedbench.analysis.api import PLOT_KINDS, TIME_MEASURES
from seedbench.analysis.tables import FORMATS

if TYPE_CHECKING:
    import pandas as pd

# the file extensions -o accepts, per --format
EXTENSIONS = {"terminal": {".txt"}, "markdown": {".md", ".txt"}, "csv": {".csv"}, "json": {".json"}, "latex": {".tex"}}


def open_store(args: argparse.Namespace):
    """The analysis Store of --store; unreadable run folders are named in one warning line."""
    from seedbench.analysis.api import Store

    store = Store(args.store)
    store.sql  # noqa: B018 - open now, so the warning comes before the table
    if store.skipped:
        first = store.skipped[0]
        Console(stderr=True).print(
            f"[yellow]warning:[/] skipped {len(store.skipped)} unreadable run folder(s), e.g. {first.path}: {first.reason}",
            highlight=False,
            soft_wrap=True,
        )
    return store


def check_out(args: argparse.Namespace) -> None:
    """-o is checked before any work: its folder exists, its extension fits --format, it is writable."""
    from seedbench.cli.outputs import check_output

    if getattr(args, "output", None):
        check_output(args.output, EXTENSIONS[args.format], "-o")


def emit(frame: pd.DataFrame, fmt: str, title: str, out: str | None, max_width: int | None = None) -> None:
    from seedbench.analysis.tables import render

    # on a real terminal rich fits the table to the window; piped output gets the full-width text (or max_width)
    live = fmt == "terminal" and not out and sys.stdout.isatty()
    console = Console(width=min(Console().width, max_width) if max_width else None) if live else None
    text = render(frame, fmt, title=title, console=console, max_width=max_width)
    if out:
        Path(out).write_text(text)
        Console(stderr=True).print(f"wrote {out}")
    elif not live:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def cmd_report(args: argparse.Namespace) -> int:
    if args.html:
        from seedbench.cli.outputs import check_output

        path = check_output(args.html, {".html", ".htm"}, "--html")
        written = open_store(args).html(
            path,
            args.metric,
            by=args.by or "arm",
            within=args.within,
            baseline=args.baseline,
            correction=args.correction,
            where=args.where,
            argv=["seedbench", *sys.argv[1:]],
            target=args.target,
            time=args.time,
        )
        Console(stderr=True).print(f"wrote {written}")
        return 0
    check_out(args)
    table = open_store(args).report(
        args.metric,
        baseline=args.baseline,
        study=args.study,
        by=args.by,
        within=args.within,
        baseline_arm=args.baseline_arm,
        correction=args.correction,
        where=args.where,
        target=args.target,
    )
    emit(table, args.format, table.attrs["title"], args.output)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    check_out(args)
    result = open_store(args).compare(
        args.metric,
        by=args.by,
        within=args.within,
        correction=args.correction,
        paired=not args.unpaired,
        pair_on=args.pair_on,
        equivalence=args.equivalence,
        where=args.where,
    )
    title = result.attrs["title"]
    if args.format == "terminal" and not args.wide:
        from seedbench.analysis.tables import COMPACT_WIDTH, compare_view

        title += "; p adj: Welch t-test, paired p adj: paired t-test on shared seeds; --wide: every statistic"
        emit(compare_view(result, result.attrs["within"]), args.format, title, args.output, max_width=COMPACT_WIDTH)
        return 0
    emit(result, args.format, title, args.output)
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from seedbench.analysis.plots import EXTENSIONS as PLOT_EXTENSIONS
    from seedbench.cli.outputs import check_output

    check_output(args.output, set(PLOT_EXTENSIONS), "-o")
    path = open_store(args).plot(
        args.kind, args.metric, by=args.by, within=args.within, output=args.output, where=args.where, target=args.target, time=args.time
    )
    Console(stderr=True).print(f"wrote {path}")
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", help="results store directory (default: ./storage in the project)")
    p.add_argument("--where", help="SQL filter on the runs view, e.g. \"dataset = 'digits' AND epochs = 10\"")


def _target(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--target",
        type=float,
        metavar="PCT",
        help=f"{what}: the accuracy in %% (0-100) whose first epoch >= it is each run's time to target, e.g. 90",
    )
    p.add_argument(
        "--time",
        choices=TIME_MEASURES,
        default="seconds",
        help="the clock of the time-to-target performance profile: seconds (wall clock, default, as AlgoPerf), step (optimizer updates) or epoch",
    )


def add_parsers(sub) -> None:
    p = sub.add_parser(
        "report",
        help="summarise a store: the thin table, Table-1 layout (--baseline), a variance study or the time to a target",
        description="Without options: one row per method x model x dataset (n, diverged, failed, mean +- std of val/test accuracy). "
        "--baseline METHOD: the random-bases Table 1 layout (methods as columns, 'mean +- std (ratio to baseline)'). "
        "--study variance: per arm mean, std, min, max and the Brown-Forsythe test against the baseline arm, corrected. "
        "--target 90: per arm the epoch, step and seconds at which validation accuracy first reaches 90%% (median over seeds "
        "with a distribution-free interval; runs that never reach it are counted as never). Accuracies are in %% throughout.",
        epilog="examples:\n  seedbench report\n  seedbench report --baseline sgd --metric val_acc --format latex\n"
        "  seedbench report --target 90\n"
        "  seedbench report --html study.html --metric test_acc --where \"dataset = 'digits'\"\n"
        "  seedbench report --study variance --by init,stabilize,rewire --within model,dataset --metric test_acc",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(p)
    p.add_argument("--baseline", help="baseline arm for the Table-1 layout, e.g. sgd (--html: default the reference method's arm)")
    p.add_argument("--study", choices=["variance"], help="a variance-study table instead")
    p.add_argument("--metric", default="val_acc", help="metric column (default: val_acc, as the published Table 1)")
    p.add_argument("--by", help="arm column(s) for --study variance (default: init,stabilize,rewire)")
    p.add_argument("--within", help="group columns for --study variance (default: method,model,dataset)")
    p.add_argument("--baseline-arm", help="the arm the variance tests compare against (default: the first arm)")
    p.add_argument("--correction", default="holm", help="multiple-comparison correction: holm (default), fdr_bh, bonferroni, ...")
    p.add_argument("--format", choices=FORMATS, default="terminal")
    p.add_argument("-o", "--output", help="write the table to this file instead of the terminal")
    p.add_argument(
        "--html",
        metavar="FILE",
        help="write one self-contained HTML study report (tables, corrected comparisons, "
        "embedded plots, variance decomposition where the design allows, provenance); --by sets the arms (default arm), "
        "--within the tasks (default model,dataset); with --target also the time to target and its performance profile",
    )
    _target(p, "time to target instead of the summary (with --html: a section of the report)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "compare",
        help="every pair of arms: difference with CI, Welch, Mann-Whitney, variance tests, Hedges' g",
        description="For every pair of arms (values of --by) within each group (--within): difference of means with a CI, "
        "Welch's t-test, Mann-Whitney U with P(A>B), Brown-Forsythe and Levene tests with a bootstrap CI of the std ratio, "
        "Hedges' g, and - when the arms share seeds - paired t and Wilcoxon tests. p-values are corrected across all rows.",
        epilog="examples:\n  seedbench compare --metric test_acc --by method\n  seedbench compare --metric test_acc --by init --within model,dataset --correction fdr_bh",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(p)
    p.add_argument("--metric", default="test_acc")
    p.add_argument(
        "--by", default="arm", help="arm column(s): arm (default: what each run did), method, init, ... (several: combined into one label)"
    )
    p.add_argument("--within", help="group columns (default: model,dataset minus the --by columns)")
    p.add_argument("--correction", default="holm", help="holm (default), fdr_bh, bonferroni, ... (statsmodels names)")
    p.add_argument("--unpaired", action="store_true", help="skip the paired tests even where arms share seeds")
    p.add_argument("--pair-on", help="column that pairs runs across arms (default: init_seed when the study varies only it, else seed)")
    p.add_argument(
        "--wide",
        "--all-columns",
        dest="wide",
        action="store_true",
        help="every statistic in the terminal table (default: the main ones, 120 columns)",
    )
    p.add_argument(
        "--equivalence",
        type=float,
        metavar="MARGIN",
        help="also test equivalence within +-MARGIN by TOST, corrected like the rest; in the metric's units (percentage points for accuracies)",
    )
    p.add_argument("--format", choices=FORMATS, default="terminal")
    p.add_argument("-o", "--output", help="write the table to this file")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser(
        "plot",
        help="across-seed distributions per arm, or learning curves with CI bands",
        description="box/violin/strip/ecdf: one point per seed per arm; curve: mean per epoch with a 95%% t-interval band over seeds; "
        "profile: fraction of runs above each threshold, over tasks, with stratified-bootstrap bands; cd: Demsar's critical-difference "
        "diagram (Friedman test, Nemenyi CD); time-profile: AlgoPerf-style performance profile of the time to --target over the "
        "workloads (--within, default model,dataset). Accuracies are drawn in %%.",
        epilog="examples:\n  seedbench plot --kind box --metric test_acc --by method --within model -o acc.png\n"
        "  seedbench plot --kind curve --metric val_acc --by model -o curves.svg\n"
        "  seedbench plot --kind time-profile --target 90 --time step -o ttt.png",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(p)
    p.add_argument(
        "--kind",
        choices=PLOT_KINDS,
        default="box",
        help="profile: performance profile over tasks (--within = task columns, default model,dataset); "
        "cd: critical-difference diagram of average ranks (>= 3 arms on >= 3 tasks); time-profile: time to --target over tasks",
    )
    p.add_argument("--metric", help="default: val_acc for curve and time-profile (the per-epoch history), test_acc otherwise")
    p.add_argument("--by", default="arm", help="arm column(s) (default: arm, what each run did)")
    p.add_argument("--within", help="one panel per value of these columns")
    p.add_argument("-o", "--output", required=True, help="output file: .png or .svg")
    _target(p, "with --kind time-profile")
    p.set_defaults(func=cmd_plot)
