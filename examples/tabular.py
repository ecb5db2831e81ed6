"""A workload of your own: a 13-feature table (3 classes) and a two-layer MLP for it, as a seedbench plugin.

    python examples/tabular.py data                      # writes data/tabular.npz, a synthetic example table
    seedbench sweep --plugin examples/tabular.py --method sgd --model mlp2 --dataset tabular --data-dir data --seeds 0-9
    seedbench sweep --plugin examples/tabular.py --method sgd --model cnn --dataset tabular --data-dir data --seeds 0-9
    error: model cnn does not fit dataset tabular (input 1x1x13): ...

Each declaration carries the facts the driver plans with (shape, classes, the model's smallest input),
so a model that cannot take the data is refused before anything runs. docs/extending.md, "Workloads".
"""

from pathlib import Path

import numpy as np

from seedbench import register_dataset, register_model
from seedbench.data.registry import DatasetSpec, RawSplits, data_dirs


def locate(data_dir):  # where the files are, or None: "not installed" (the hint below is shown)
    for base in data_dirs(data_dir):  # --data-dir, then $SEEDBENCH_DATA
        if (base / "tabular.npz").is_file():
            return base / "tabular.npz"
    return None


def load(path: Path) -> RawSplits:  # numpy only: uint8 samples (N, C, H, W), integer labels
    with np.load(path, allow_pickle=False) as f:
        return RawSplits(f["x_train"], f["y_train"], f["x_test"], f["y_test"])


register_dataset(
    DatasetSpec(
        name="tabular",
        classes=3,
        shape=(1, 1, 13),  # 13 features: a 1x1x13 sample
        load=load,
        locate=locate,
        val_size=30,
        how_to_get="write tabular.npz (x_train, y_train, x_test, y_test) into --data-dir",
        description="13 features, 3 classes",
    )
)


def mlp(in_shape, num_classes):  # in_shape = (C, H, W); import torch inside, not at the top
    import torch

    c, h, w = in_shape
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(c * h * w, 32), torch.nn.ReLU(), torch.nn.Linear(32, num_classes))


register_model("mlp2", mlp, min_side=1, description="two-layer MLP")


if __name__ == "__main__":  # a synthetic table in the format `load` reads: three classes, separable by feature sums
    import sys

    out = Path(sys.argv[1] if len(sys.argv) > 1 else "data")
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 600)
    x = np.clip(rng.normal(60 + 60 * y[:, None], 40, (600, 13)), 0, 255).astype(np.uint8).reshape(600, 1, 1, 13)
    np.savez(out / "tabular.npz", x_train=x[:500], y_train=y[:500], x_test=x[500:], y_test=y[500:])
    print(f"wrote {out / 'tabular.npz'}")
