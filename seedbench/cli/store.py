"""`seedbench query` and `seedbench export`: SQL over a results store from the command line.

Wire-in: `add_query_parser(sub)` and `add_export_parser(sub)` on the `seedbench` subparsers; each sets
`func`, which returns an exit status and raises SeedbenchError for problems the user can fix. Data go
to stdout, warnings (skipped run folders) to stderr, so `--format csv > file` stays clean.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import decimal
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

STORE_HELP = "results store directory (default: ./storage in the project)"

VIEWS_TEXT = """views:
  runs    one row per run: run_id, path, method, model, dataset, seed, status (running, finished,
          diverged, failed), reason, error, every config key (a config key the run overrides at top
          level is kept as config_<key>, e.g. config_lr), lr, started_at, finished_at, seconds,
          train_seconds, host, python, torch, device, epochs_completed, train/val/test loss and acc,
          D, images_per_s, seeds_<stream>
  epochs  one row per run per epoch: run_id, path, epoch, train_loss, train_acc, val_loss, val_acc,
          seconds, images_per_s, and any optimizer diagnostics the method records
  Accuracies are fractions (0..1). `DESCRIBE runs` lists the columns and their types."""

EPILOG_QUERY = f"""examples:
  seedbench query "SELECT model, count(*) AS n, avg(test_acc) AS test_acc FROM runs WHERE status = 'finished' GROUP BY model"
  seedbench query "SELECT method, model, dataset, count(*) AS n, avg(val_acc), stddev(val_acc) FROM runs GROUP BY ALL ORDER BY ALL"
  seedbench query "SELECT r.method, e.epoch, avg(e.val_acc) AS val_acc FROM epochs e JOIN runs r USING (run_id) GROUP BY ALL ORDER BY ALL" --format csv
  seedbench query "SELECT path, error FROM runs WHERE status = 'failed'" --format markdown --store /tmp/mystore
  seedbench query "DESCRIBE runs"
  seedbench query "SELECT * FROM runs WHERE status = 'failed'" -o failed.csv      (the extension picks the format)

{VIEWS_TEXT}

Only one read-only statement (SELECT, WITH, DESCRIBE, SUMMARIZE, EXPLAIN of a SELECT) runs, in a
database that cannot read or write files, load extensions or change its settings: the run folders
and anything outside the store are never touched. Each call refreshes a cache in <store>/.seedbench-cache, re-reading only run folders
changed since the last call; deleting that folder loses nothing. Corrupt or half-written run folders
are skipped with a warning on stderr. Exit status: 0 ok, 2 bad SQL, unknown column or missing store."""

EPILOG_EXPORT = f"""examples:
  seedbench export --format parquet -o runs.parquet
  seedbench export --format csv --table epochs -o curves.csv --store /tmp/mystore
  seedbench export --format parquet --table both -o results/     (writes results/runs.parquet, results/epochs.parquet)

Writes the `runs` and/or `epochs` views as they are seen by `seedbench query` (ordered by path, epoch)
for pandas, R, Excel, DuckDB or Spark. With --table both, -o is a folder; otherwise -o is a file whose
extension matches --format, or an existing folder to write <table>.<format> into. The path is checked
before the store is read; files are written whole or not at all.

{VIEWS_TEXT}"""


def _stderr_warn(message: str) -> None:
    Console(stderr=True).print(f"[yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True)


def _open(args: argparse.Namespace):
    from seedbench.store import Store
    from seedbench.sweep.runners.store_context import store_dir

    return Store(store_dir(args.store), rebuild=getattr(args, "rebuild_cache", False), warn=_stderr_warn)


# -- value formatting ------------------------------------------------------------------------------


def _scalar(value: Any) -> Any:
    """A JSON-able value: NaN/inf become null (JSON has no NaN), decimals and dates become text."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (dt.date, dt.datetime, dt.time, dt.timedelta)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_scalar(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _scalar(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.hex()
    return value


def _text(value: Any, precise: bool = False) -> str:
    """A cell as text: floats to 6 significant digits for reading, full precision for CSV."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if precise else f"{value:.6g}"
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(_scalar(value))
    return str(value)


def _numeric(rows: list[tuple], index: int) -> bool:
    values = [row[index] for row in rows if row[index] is not None]
    return bool(values) and all(isinstance(v, (int, float, decimal.Decimal)) and not isinstance(v, bool) for v in values)


def write_csv(columns: Sequence[str], rows: list[tuple], out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([_text(v, precise=True) for v in row] for row in rows)


def write_json(columns: Sequence[str], rows: list[tuple], out: TextIO) -> None:
    records = [{c: _scalar(v) for c, v in zip(columns, row)} for row in rows]
    out.write(json.dumps(records, indent=1, allow_nan=False) + "\n")


def write_markdown(columns: Sequence[str], rows: list[tuple], out: TextIO) -> None:
    """A GitHub-flavoured table, numbers right-aligned (no `tabulate` needed)."""

    def cell(text: str) -> str:
        return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")

    numeric = [_numeric(rows, i) for i in range(len(columns))]
    body = [[cell(_text(v)) for v in row] for row in rows]
    head = [cell(str(c)) for c in columns]
    widths = [max([len(head[i]), 3, *(len(r[i]) for r in body)]) for i in range(len(columns))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cells, widths, numeric)) + " |"

    rule = "| " + " | ".join(("-" * (w - 1) + ":") if num else "-" * w for w, num in zip(widths, numeric)) + " |"
    out.write("\n".join([line(head), rule, *(line(r) for r in body)]) + "\n")


def print_table(columns: Sequence[str], rows: list[tuple], console: Console, title: str | None = None) -> None:
    table = Table(title=title, caption=f"{len(rows)} row{'s' if len(rows) != 1 else ''}")
    for i, column in enumerate(columns):
        table.add_column(Text(str(column)), justify="right" if _numeric(rows, i) else "left", overflow="fold")
    for row in rows:
        table.add_row(*(Text(_text(v)) if v is not None else Text("NULL", style="dim") for v in row))
    console.print(table)


# -- commands --------------------------------------------------------------------------------------


# The files `seedbench query -o` writes, by --format; with -o and no --format the extension decides.
QUERY_EXTENSIONS = {"csv": (".csv",), "json": (".json",), "markdown": (".md", ".markdown"), "table": (".txt",)}


def _query_output(args: argparse.Namespace) -> tuple[str, Path | None]:
    """(format, output file or None), checked before the store is opened."""
    from seedbench.cli.outputs import check_output

    output = getattr(args, "output", None)
    if output is None:
        return args.format or "table", None
    if args.format is None:
        allowed = {ext for exts in QUERY_EXTENSIONS.values() for ext in exts}
        target = check_output(output, allowed, "-o")
        fmt = next(f for f, exts in QUERY_EXTENSIONS.items() if target.suffix.lower() in exts)
        return fmt, target
    return args.format, check_output(output, set(QUERY_EXTENSIONS[args.format]), "-o")


def _write_result(fmt: str, columns: list[str], rows: list[tuple], out: TextIO, console: Console) -> None:
    if fmt == "csv":
        write_csv(columns, rows, out)
    elif fmt == "json":
        write_json(columns, rows, out)
    elif fmt == "markdown":
        write_markdown(columns, rows, out)
    else:
        print_table(columns, rows, console)


def cmd_query(args: argparse.Namespace) -> int:
    import io
    import os

    from seedbench.errors import StoreError

    if not args.sql.strip():
        raise StoreError('give a query, e.g. seedbench query "SELECT model, avg(test_acc) FROM runs GROUP BY model"')
    fmt, target = _query_output(args)
    with _open(args) as store:
        columns, rows = store.fetch(args.sql)
    if target is None:
        _write_result(fmt, columns, rows, sys.stdout, Console())
        return 0
    buffer = io.StringIO()
    _write_result(fmt, columns, rows, buffer, Console(file=buffer, width=200, color_system=None))
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:  # whole or not at all, like export
        tmp.write_text(buffer.getvalue())
        os.replace(tmp, target)
    except OSError as exc:
        raise StoreError(f"-o {target}: cannot write ({exc.strerror or exc}); choose another path") from None
    finally:
        tmp.unlink(missing_ok=True)
    Console(stderr=True).print(f"wrote {len(rows)} row{'s' if len(rows) != 1 else ''} to {target}", highlight=False, soft_wrap=True)
    return 0


def _export_target(args: argparse.Namespace) -> Path:
    """-o checked before the store is opened: a folder for --table both (or an existing folder), else a file."""
    from seedbench.cli.outputs import check_output, check_output_dir

    if args.table == "both" or Path(args.output).expanduser().is_dir():
        return check_output_dir(args.output, "-o")
    return check_output(args.output, {f".{args.format}"}, "-o")


def cmd_export(args: argparse.Namespace) -> int:
    target = _export_target(args)
    with _open(args) as store:
        targets = store.export(target, format=args.format, table=args.table)
        views = ["runs", "epochs"] if args.table == "both" else [args.table]
        counts = {v: store.fetch(f"SELECT count(*) FROM {v}")[1][0][0] for v in views}
    console = Console()
    for view, target in zip(views, targets):
        console.print(f"wrote {view} ({counts[view]} rows) to {target}", highlight=False, soft_wrap=True)
    return 0


def add_query_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "query",
        help="run SQL over the store's runs and epochs views",
        description="Run one SQL query (DuckDB dialect) over the store's `runs` and `epochs` views and print the result.",
        epilog=EPILOG_QUERY,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("sql", metavar="SQL", help='the query, e.g. "SELECT model, avg(test_acc) FROM runs GROUP BY model"')
    p.add_argument("--store", help=STORE_HELP)
    p.add_argument(
        "--format",
        choices=["table", "csv", "json", "markdown"],
        default=None,
        help="output: table (terminal), csv (full precision), json (records; NaN as null), markdown "
        "(default: table, or what the -o file's extension says)",
    )
    p.add_argument(
        "-o", "--output", metavar="FILE", help="write the result to FILE (.csv, .json, .md, .txt) instead of stdout; checked before the query runs"
    )
    p.add_argument("--rebuild-cache", action="store_true", help="re-read every run folder instead of only the changed ones")
    p.set_defaults(func=cmd_query)
    return p


def add_export_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "export",
        help="write the runs/epochs views to Parquet or CSV files",
        description="Write the store's `runs` and/or `epochs` views to Parquet or CSV files for other tools.",
        epilog=EPILOG_EXPORT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--format", choices=["parquet", "csv"], default="parquet", help="file format (default: parquet)")
    p.add_argument(
        "--table",
        choices=["runs", "epochs", "both"],
        default="runs",
        help="which view to write (default: runs); both: -o is a folder receiving runs.<format> and epochs.<format>",
    )
    p.add_argument("-o", "--output", required=True, metavar="PATH", help="output file, or folder (always a folder with --table both)")
    p.add_argument("--store", help=STORE_HELP)
    p.add_argument("--rebuild-cache", action="store_true", help="re-read every run folder instead of only the changed ones")
    p.set_defaults(func=cmd_export)
    return p


# -- seedbench store migrate -------------------------------------------------------------------------

EPILOG_MIGRATE = """examples:
  seedbench store migrate --store /tmp/mystore --dry-run     (what would change; writes nothing)
  seedbench store migrate --store /tmp/mystore --plugin examples/signsgd.py

Re-keys, in place, the cell records that today's sweeps would not find: cells of the one-component
layout (module components.cell, the config as one JSON string) become records of their method's
component (components/<method>.py), and records made when a config's defaults were different are
re-keyed under today's defaults. Folders, run records and executions stay where they are; the next
sweep of the same science reuses every finished cell. Cells of a plugin's method need that plugin
(--plugin). Run it while no sweep trains into the store; running it twice changes nothing.
Exit status: 0 done (skipped records are named), 2 no such store."""


def cmd_store_migrate(args: argparse.Namespace) -> int:
    from seedbench.errors import StoreError
    from seedbench.store.migrate import migrate_store
    from seedbench.sweep.runners.store_context import index_database, store_dir

    directory = store_dir(args.store)
    database = index_database(args.store)
    if not directory.is_dir() or not Path(database or directory / ".machinable.sqlite").is_file():
        raise StoreError(f"store {directory}: no seedbench store there (no index database); pass --store with the folder a sweep wrote")
    report = migrate_store(args.store, dry_run=args.dry_run)
    Console(highlight=False, soft_wrap=True).print(escape(report.describe(dry_run=args.dry_run)))
    return 0


def add_store_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "store",
        help="maintain a results store (migrate, export, import)",
        description="Maintain a results store.",
    )
    actions = p.add_subparsers(dest="store_command", metavar="ACTION", required=True)
    m = actions.add_parser(
        "migrate",
        help="re-key old cell records so that today's sweeps reuse them",
        description="Re-key a store's cell records for today's per-method components and config defaults.",
        epilog=EPILOG_MIGRATE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    m.add_argument("--store", help=STORE_HELP)
    m.add_argument("--dry-run", action="store_true", help="print what would be re-keyed without writing anything")
    m.add_argument("--plugin", action="append", metavar="PATH_OR_MODULE", help="a plugin whose methods' cells are in the store (repeatable)")
    m.set_defaults(func=cmd_store_migrate)
    add_transfer_parsers(actions)
    return p


# -- seedbench store export / import ------------------------------------------------------------------

EPILOG_STORE_EXPORT = """examples:
  seedbench store export --store /work/table1-store -o docs/results/fc-fmnist-table1.jsonl.gz
  seedbench store export --store /tmp/mystore --where "method = 'rbd'" -o rbd.jsonl.gz

Writes every cell that ended (finished or diverged) as one gzip-compressed JSON Lines file: per cell
its method's component, machinable identity, presets, resolved config, run.json and epochs.jsonl
(about 10 kB for a 100-epoch cell). Running, failed and interrupted cells are left out and counted.
`seedbench store import FILE --store OTHER` files them into another store (docs/store.md).
Exit status: 0 written, 2 no such store or a bad -o path."""

EPILOG_STORE_IMPORT = """examples:
  seedbench store import docs/results/fc-fmnist-table1.jsonl.gz --store /tmp/mystore
  seedbench store import cells.jsonl.gz --store /tmp/mystore --plugin my_method.py

Files each cell of an export as a record of its method's component, under the identity the export
names (checked: it must be the identity this checkout computes), so a later sweep of the same science
reuses it instead of training it. A cell the store already holds with the same result is stored once;
one it holds with another result is a conflict. Everything is checked before anything is written.
Exit status: 0 imported, 2 a bad file, an unknown method, an identity mismatch or a conflict
(one line; nothing changed)."""


def cmd_store_export(args: argparse.Namespace) -> int:
    from seedbench.store.transfer import export_store

    report = export_store(args.store, args.output, where=args.where)
    Console(highlight=False, soft_wrap=True).print(escape(report.describe()))
    return 0


def cmd_store_import(args: argparse.Namespace) -> int:
    from seedbench.store.transfer import import_cells

    report = import_cells(args.file, args.store)
    Console(highlight=False, soft_wrap=True).print(escape(report.describe()))
    return 0


def add_transfer_parsers(actions: argparse._SubParsersAction) -> None:
    e = actions.add_parser(
        "export",
        help="write a store's finished cells to one compact file (for another store)",
        description="Write every finished cell of a store, identity and records, to one gzip-compressed JSON Lines file.",
        epilog=EPILOG_STORE_EXPORT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    e.add_argument("--store", help=STORE_HELP)
    e.add_argument("-o", "--output", required=True, metavar="FILE", help="the file to write (*.jsonl.gz)")
    e.add_argument("--where", help="SQL filter on the runs view, e.g. \"method = 'rbd'\"")
    e.set_defaults(func=cmd_store_export)
    i = actions.add_parser(
        "import",
        help="file the cells of an export into a store",
        description="File the cells of a `seedbench store export` file into a store, identity intact.",
        epilog=EPILOG_STORE_IMPORT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    i.add_argument("file", metavar="FILE", help="a file written by `seedbench store export`")
    i.add_argument("--store", help=STORE_HELP)
    i.add_argument("--plugin", action="append", metavar="PATH_OR_MODULE", help="a plugin whose methods' cells are in the file (repeatable)")
    i.set_defaults(func=cmd_store_import)
