"""Does NES learn on Fashion-MNIST? Two checks of the NES baseline on the study's FC-FMNIST cell.

    .venv/bin/python experiments/nes_check.py cosine   # cosine(update, -gradient) over 40 updates
    .venv/bin/python experiments/nes_check.py train    # 6 epochs through seedbench's train()

The cell is the random-bases study's: FC 784-128-10 (Glorot-uniform kernels, zero biases), batch 32,
population d=250, sigma=0.01, lr 0.5 (table1's FC-FMNIST rate), 10,000 validation images.

`cosine` steps NES by hand so it can compare each update with the exact gradient of the clean
training loss over the whole training split at the same parameters (the direction NES estimates);
members draw plain, un-augmented minibatches so both sides measure the same objective. NES records
the cosine itself whenever the parameters carry gradients (see NES._record_step).

`train` runs the real training loop with augmentation on and prints one row per epoch; the run must
not be marked diverged and should pass 20% validation accuracy within 6 epochs.

Only seedbench.data.load_dataset, seedbench.models.build_model, seedbench.optim.NES and
seedbench.train.loop are used, so the check exercises exactly what a study cell runs.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch
from torch import nn

from seedbench.data import load_dataset
from seedbench.models import build_model
from seedbench.optim import NES
from seedbench.train.loop import TrainSettings, train

LR, DIMS, SIGMA, BATCH, VAL = 0.5, 250, 0.01, 32, 10_000


def _model(seed: int, in_shape: tuple[int, int, int], classes: int) -> nn.Module:
    torch.manual_seed(seed)
    return build_model("fc", in_shape, classes)


def cosine_check(updates: int, seed: int) -> dict:
    """Per update: cosine between NES's update and the negative full-batch gradient; val acc at the end."""
    data = load_dataset("fmnist", val_size=VAL)
    model = _model(seed, data.in_shape, data.num_classes)
    opt = NES(model.parameters(), lr=LR, dims=DIMS, sigma=SIGMA, seed=seed)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(seed + 1)
    n = len(data.x_train)

    @torch.no_grad()
    def closure() -> torch.Tensor:
        idx = torch.randint(0, n, (BATCH,), generator=gen)
        return loss_fn(model(data.x_train[idx]), data.y_train[idx])

    cosines = []
    t0 = time.perf_counter()
    for _ in range(updates):
        model.zero_grad(set_to_none=True)
        loss_fn(model(data.x_train), data.y_train).backward()  # exact gradient of the clean training loss
        opt.step(closure)
        cosines.append(opt.pop_diagnostics()["cosine"])
    seconds = time.perf_counter() - t0
    with torch.no_grad():
        val_acc = (model(data.x_val).argmax(1) == data.y_val).float().mean().item()
    mean = sum(cosines) / len(cosines)
    sd = math.sqrt(sum((c - mean) ** 2 for c in cosines) / (len(cosines) - 1))
    return {
        "updates": updates,
        "cosine_mean": mean,
        "cosine_se": sd / math.sqrt(len(cosines)),
        "cosine_first5": cosines[:5],
        "val_acc": val_acc,
        "seconds": seconds,
    }


def train_check(epochs: int, seed: int) -> dict:
    data = load_dataset("fmnist", val_size=VAL)
    model = _model(seed, data.in_shape, data.num_classes)
    opt = NES(model.parameters(), lr=LR, dims=DIMS, sigma=SIGMA, seed=seed)
    settings = TrainSettings(
        epochs=epochs,
        batch_size=BATCH,
        data_seed=seed + 1,
        augment_seed=seed + 2,
        augment=True,
        on_epoch=lambda row: print(json.dumps(row), flush=True),
    )
    # divergence left at its default: the method's own rule (NES: stop on NaN/inf only)
    return train(model, opt, data, settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("check", choices=["cosine", "train"])
    parser.add_argument("--updates", type=int, default=40, help="cosine: NES updates to measure")
    parser.add_argument("--epochs", type=int, default=6, help="train: epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result = cosine_check(args.updates, args.seed) if args.check == "cosine" else train_check(args.epochs, args.seed)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
