"""Run the random-bases Table 1 grid and print it in the paper's layout.

    python experiments/table1.py                       # full budget: 100 epochs, 3 seeds
    python experiments/table1.py --epochs 2 --seeds 0-1 --methods rbd,sgd --engine ray
    python experiments/table1.py --bases hadamard      # RBD with structured (Walsh-Hadamard) bases as an extra arm

Datasets that are not installed are skipped with a message saying how to get them; the table is then
printed with `seedbench report --baseline sgd` over the runs of this study's store.
"""

from __future__ import annotations

import argparse
import sys

from seedbench import Store, Sweep
from seedbench.analysis.tables import render
from seedbench.data.datasets import present_datasets
from seedbench.sweep.grid import parse_seeds, split_list


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default="nes,fpd,rbd,sgd")
    parser.add_argument("--models", default="fc,cnn")
    parser.add_argument("--datasets", default="mnist,fmnist,cifar10")
    parser.add_argument("--seeds", default="0-2")
    parser.add_argument("--epochs", type=int, help="override the preset's 100 epochs")
    parser.add_argument("--limit-train", type=int, help="train on the first N images only (quick looks)")
    parser.add_argument("--bases", choices=["gaussian", "hadamard", "both"], default="gaussian", help="RBD's bases")
    parser.add_argument("--store", default=None, help="results store (default: ./storage)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--engine", choices=["local", "ray"], default="local")
    args = parser.parse_args(argv)

    datasets = present_datasets(split_list(args.datasets), args.data_dir)
    if not datasets:
        print("no dataset of the study is available; nothing to run", file=sys.stderr)
        return 2
    overrides: dict = {}
    if args.epochs:
        overrides["epochs"] = args.epochs
    if args.limit_train:
        overrides["limit_train"] = args.limit_train
    methods = split_list(args.methods)
    common = {
        "models": split_list(args.models),
        "datasets": datasets,
        "seeds": parse_seeds(args.seeds),
        "presets": ["table1"],
        "store": args.store,
        "data_dir": args.data_dir,
    }
    sweeps = [Sweep([m for m in methods if not (m == "rbd" and args.bases == "hadamard")], overrides=overrides, **common)]
    if "rbd" in methods and args.bases in ("hadamard", "both"):
        sweeps.append(Sweep(["rbd"], overrides={**overrides, "bases": "hadamard"}, **common))
    failed = sum(len(sweep.run(engine=args.engine, quiet=False).failed) for sweep in sweeps)
    where = f"lr_table = 'table1' AND dataset IN ({', '.join(repr(d) for d in datasets)})"
    if args.epochs:
        where += f" AND epochs = {args.epochs}"
    for metric in ("val_acc", "best_val_acc", "val_acc_last10"):
        table = Store(args.store).report(metric, baseline="sgd", where=where)
        print(render(table, "terminal", title=table.attrs["title"]))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
