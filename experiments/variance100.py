"""The PA-rewiring variance study: does an initializer reduce the across-seed variance of accuracy?

100 seeds per arm, varying ONLY the weight-initialisation seed (`init_seed`); data order and
augmentation use the fixed `seed` (the PA-rewiring study's design, docs/methods.md). Arms, for each base init:
    base            the base initializer alone
    + PA            base -> PA rewiring
    + stab + PA     base -> stabilized strength -> PA rewiring
    + stab          base -> stabilized strength
All arms train with the same SGD settings (the study did not publish its optimizer: ours is plain SGD
at the catalogue's learning rate, identical for every arm).

    python experiments/variance100.py                                   # FC and CNN on digits, 100 seeds
    python experiments/variance100.py --models fc,cnn,convmixer,resnet18 --datasets digits,fmnist --seeds 0-99
    python experiments/variance100.py --seeds 0-9 --epochs 2            # a quick look
    python experiments/variance100.py --models fc --datasets fmnist --inits kaiming_normal --pack auto --solo-sample 16

Seeds of one arm differ only in init_seed, so they can train as packs (`--pack`, default auto: the
measured rule packs FC + SGD on a CPU and runs the CNN solo, docs/engine.md). `--solo-sample N` ends
with a side-by-side timing: the first arm's first N seeds for `--sample-epochs` epochs, packed (at the
size the study used, or 8 where it ran solo) and solo, each into a fresh temporary store.

Ends with the variance-study report (mean, std, min, max, Brown-Forsythe test against the base arm,
Holm-corrected) and a box/strip plot per model x base init.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

from seedbench import Store, Sweep
from seedbench.analysis.tables import render
from seedbench.data.datasets import present_datasets
from seedbench.sweep.grid import parse_seeds, split_list

ARMS = {"base": (False, False), "+PA": (False, True), "+stab+PA": (True, True), "+stab": (True, False)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="fc,cnn")
    parser.add_argument("--datasets", default="digits")
    parser.add_argument("--inits", default="orthogonal,kaiming_normal")
    parser.add_argument("--seeds", default="0-99", help="init seeds (the only thing that varies)")
    parser.add_argument("--data-seed", type=int, default=0, help="the fixed seed of data order and augmentation")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--tries", type=int, default=100, help="stabilized-strength draws")
    parser.add_argument("--limit-train", type=int)
    parser.add_argument("--store", default=None)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--engine", choices=["local", "ray"], default="local")
    parser.add_argument("--plot", default="docs/variance-study.png", help="box/strip plot file ('' for none)")
    parser.add_argument("--arms", default=",".join(ARMS), help=f"arms to train, of {', '.join(ARMS)} (the report covers every arm stored)")
    parser.add_argument("--pack", default="auto", help="seeds per pack: K, auto (default) or 1 (solo)")
    parser.add_argument("--solo-sample", type=int, default=0, help="also time N seeds packed vs solo (0: skip)")
    parser.add_argument("--sample-epochs", type=int, default=2)
    args = parser.parse_args(argv)
    unknown = sorted(set(split_list(args.arms)) - set(ARMS))
    if unknown:
        parser.error(f"--arms: unknown {', '.join(unknown)}; choose from {', '.join(ARMS)}")

    datasets = present_datasets(split_list(args.datasets), args.data_dir)
    if not datasets:
        return 2
    failed = 0
    started = time.time()
    packs: list[int] = []
    first: Sweep | None = None
    for init in split_list(args.inits):
        for arm, (stabilize, rewire) in ARMS.items():
            if arm not in split_list(args.arms):
                continue
            overrides = {"init": init, "stabilize": stabilize, "rewire": rewire, "epochs": args.epochs, "stabilize_tries": args.tries}
            if args.limit_train:
                overrides["limit_train"] = args.limit_train
            sweep = Sweep(
                ["sgd"],
                split_list(args.models),
                datasets,
                init_seeds=parse_seeds(args.seeds),
                base_seed=args.data_seed,
                overrides=overrides,
                store=args.store,
                data_dir=args.data_dir,
            )
            print(f"arm {init} {arm}: {len(sweep.cells())} cells", file=sys.stderr)
            summary = sweep.run(engine=args.engine, quiet=False, pack=args.pack)
            failed += len(summary.failed)
            packs += summary.packs
            first = first or sweep
            print(
                f"arm {init} {arm}: {summary.trained} trained, {summary.reused} reused in {summary.seconds:.0f} s, packs {summary.packs or 'none'}",
                file=sys.stderr,
            )
    print(f"study wall time {time.time() - started:.0f} s; {len(packs)} packs of sizes {sorted(set(packs)) or '-'}", file=sys.stderr)
    where = (
        f"method = 'sgd' AND init_seed IS NOT NULL AND seed = {args.data_seed} AND epochs = {args.epochs} "
        f"AND dataset IN ({', '.join(repr(d) for d in datasets)}) AND init IN ({', '.join(repr(i) for i in split_list(args.inits))})"
    )
    store = Store(args.store)
    table = store.report("test_acc", study="variance", by="stabilize,rewire", within="model,dataset,init", where=where)
    print(render(table, "terminal", title=table.attrs["title"]))
    if args.plot:
        print(f"wrote {store.plot('box', 'test_acc', by='stabilize,rewire', within='model,init', where=where, output=args.plot)}", file=sys.stderr)
    if args.solo_sample and first is not None:
        solo_sample(first, args.solo_sample, args.sample_epochs, max(packs) if packs else 8, args.engine)
    return 1 if failed else 0


def solo_sample(sweep: Sweep, n: int, epochs: int, k: int, engine: str) -> None:
    """Wall time of n seeds packed (K = k) and solo, side by side, each into a fresh temporary store."""
    spec = sweep.spec
    seconds = {}
    for label, pack in (("packed", k), ("solo", 1)):
        with tempfile.TemporaryDirectory() as store:
            sample = Sweep(
                spec.methods,
                spec.models,
                spec.datasets,
                init_seeds=spec.init_seeds[:n],
                base_seed=spec.base_seed,
                overrides={**spec.overrides, "epochs": epochs},
                store=store,
                data_dir=spec.data_dir,
            )
            summary = sample.run(engine=engine, quiet=True, pack=pack)
            seconds[label] = summary.seconds
            print(f"sample {label}: {n} seeds x {epochs} epochs in {summary.seconds:.1f} s (packs {summary.packs or 'none'})", file=sys.stderr)
    print(f"sample solo / packed wall time: {seconds['solo'] / seconds['packed']:.2f}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
