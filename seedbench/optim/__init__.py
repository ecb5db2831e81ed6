"""Random-bases optimizers (RBD, FPD, NES) as drop-in torch.optim.Optimizer subclasses.

    opt = RBD(model.parameters(), lr=0.5, dims=250)
    loss.backward(); opt.step()

See docs/random-bases.md for the maths, the normalisations and the Hadamard bases.
"""

from seedbench.optim.directions import DISTRIBUTIONS, generate_directions, step_seed
from seedbench.optim.fpd import FPD
from seedbench.optim.hadamard import fwht, hadamard_directions, next_pow2
from seedbench.optim.nes import NES, rank_utilities
from seedbench.optim.projector import BASES, COMPARTMENTS, NORMALIZATIONS
from seedbench.optim.rbd import RBD

__all__ = [
    "BASES",
    "COMPARTMENTS",
    "DISTRIBUTIONS",
    "FPD",
    "NES",
    "NORMALIZATIONS",
    "RBD",
    "fwht",
    "generate_directions",
    "hadamard_directions",
    "next_pow2",
    "rank_utilities",
    "step_seed",
]
