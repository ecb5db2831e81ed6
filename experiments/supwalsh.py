"""Sup-Walsh studied over many seeds: with vs without pretraining, plus the ablations that make it honest.

Arms (all share the main training: optimizer, budget, data order, validation split):
    without        no pretraining
    with           Sup-Walsh pretraining: t-SNE points, Walsh codes (the method)
    random-inputs  random 2-D points instead of t-SNE
    onehot-codes   one-hot codes instead of Walsh codes
    random-codes   random +-1 codes
    control        the same number of extra Adam steps on noise images, without Sup-Walsh
Each arm runs on the same seeds, so paired tests apply.

    python experiments/supwalsh.py                                   # Base on digits, 10 seeds, ~supwalsh_tuned
    python experiments/supwalsh.py --models base,squeezenet --datasets digits,fmnist --limit-train 10000
    python experiments/supwalsh.py --protocol supwalsh_ref           # the reference's lr 3e-5 protocol

Ends with the comparison by arm label (difference with CI, Holm-corrected p-values) against 'without'.
"""

from __future__ import annotations

import argparse
import sys

from seedbench import Store, Sweep
from seedbench.analysis.tables import render
from seedbench.data.datasets import present_datasets
from seedbench.sweep.grid import parse_seeds, split_list

ARMS = {
    "without": {"supwalsh": False},
    "with": {},
    "random-inputs": {"pretrain_inputs": "random"},
    "onehot-codes": {"codes": "onehot"},
    "random-codes": {"codes": "random"},
    "control": {"supwalsh": False, "control": True},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="base")
    parser.add_argument("--datasets", default="digits")
    parser.add_argument("--seeds", default="0-9")
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--protocol", default="supwalsh_tuned", help="preset of machinable.yaml (supwalsh_tuned or supwalsh_ref)")
    parser.add_argument("--epochs", type=int, help="override the protocol's main-training epochs")
    parser.add_argument("--pretrain-epochs", type=int)
    parser.add_argument("--limit-train", type=int)
    parser.add_argument("--store", default=None)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--engine", choices=["local", "ray"], default="local")
    args = parser.parse_args(argv)

    datasets = present_datasets(split_list(args.datasets), args.data_dir)
    if not datasets:
        return 2
    failed = 0
    for arm in split_list(args.arms):
        overrides = {**ARMS[arm], "label": arm}
        for key, value in (("epochs", args.epochs), ("pretrain_epochs", args.pretrain_epochs), ("limit_train", args.limit_train)):
            if value is not None:
                overrides[key] = value
        sweep = Sweep(
            ["sup_walsh"],
            split_list(args.models),
            datasets,
            parse_seeds(args.seeds),
            presets=[args.protocol],
            overrides=overrides,
            store=args.store,
            data_dir=args.data_dir,
        )
        print(f"arm {arm}: {len(sweep.cells())} cells", file=sys.stderr)
        failed += len(sweep.run(engine=args.engine, quiet=False).failed)
    where = f"method = 'sup_walsh' AND label IS NOT NULL AND dataset IN ({', '.join(repr(d) for d in datasets)})"
    if args.epochs:
        where += f" AND epochs = {args.epochs}"
    result = Store(args.store).compare("test_acc", by="label", within="model,dataset", where=where)
    print(render(result, "terminal", title="test_acc: every pair of arms (Holm-corrected)"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
