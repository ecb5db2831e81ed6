"""Random directions that are regenerated from integer seeds instead of being stored.

The whole point of random-bases methods is that a direction costs an integer seed, not D floats:
a worker that knows (base seed, step) can rebuild the exact directions another worker used and
exchange only d coordinates. Everything here is therefore a pure function of its seeds, generated
on the parameters' device with a device generator, and produced in chunks so that memory stays
O(chunk * D) however large d is.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

# Second moment E[e^2] of one direction entry: the factor that turns E E^T g into an unbiased estimate.
SECOND_MOMENT: dict[str, float] = {"normal": 1.0, "uniform": 1.0 / 3.0, "bernoulli": 1.0}
# Fourth moment E[e^4]: enters the variance of the estimator (used by the statistical tests and docs).
FOURTH_MOMENT: dict[str, float] = {"normal": 3.0, "uniform": 1.0 / 5.0, "bernoulli": 1.0}
DISTRIBUTIONS: tuple[str, ...] = tuple(SECOND_MOMENT)
DEFAULT_CHUNK = 50

_MASK64 = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def step_seed(seed: int, step: int, compartment: int = 0) -> int:
    """A 63-bit generator seed for (base seed, step, compartment).

    Mixed with splitmix64 rather than e.g. `seed + step`, so that neighbouring runs (seed s, step t+1)
    and (seed s+1, step t) never share a stream. Pure integer arithmetic: identical on every platform.
    """
    h = 0
    for value in (seed, step, compartment):
        h = _splitmix64(h ^ (int(value) & _MASK64))
    return h >> 1


def make_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    return torch.Generator(device=torch.device(device)).manual_seed(seed)


def fill_(out: torch.Tensor, distribution: str, gen: torch.Generator) -> torch.Tensor:
    """Overwrite `out` with i.i.d. entries in place (no allocation in the hot loop)."""
    if distribution == "normal":
        return out.normal_(generator=gen)
    if distribution == "uniform":
        return out.uniform_(-1.0, 1.0, generator=gen)
    if distribution == "bernoulli":
        return out.random_(0, 2, generator=gen).mul_(2).sub_(1)
    raise ValueError(f"unknown distribution {distribution!r}; choose one of {', '.join(DISTRIBUTIONS)}")


def iter_chunks(
    gen: torch.Generator,
    dims: int,
    dim: int,
    distribution: str,
    chunk: int,
    buffer: torch.Tensor,
) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield (first row, rows) of the raw d x D direction matrix, `chunk` rows at a time.

    The rows are views into `buffer` (at least chunk * dim elements), valid until the next chunk:
    callers consume each chunk before asking for the next. The random stream depends on the chunk
    size, so the same `chunk` must be used to regenerate.
    """
    for start in range(0, dims, chunk):
        rows = min(chunk, dims - start)
        block = buffer[: rows * dim].view(rows, dim)
        yield start, fill_(block, distribution, gen)


def generate_directions(
    seed: int,
    step: int,
    dim: int,
    dims: int,
    distribution: str = "normal",
    chunk: int = DEFAULT_CHUNK,
    compartment: int = 0,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """The raw (unnormalised) dims x dim matrix E of one step, exactly as the optimizers draw it.

    Materialises all of E, so it is for tests and for workers that want to inspect directions; the
    optimizers themselves never hold more than one chunk.
    """
    if distribution not in SECOND_MOMENT:
        raise ValueError(f"unknown distribution {distribution!r}; choose one of {', '.join(DISTRIBUTIONS)}")
    gen = make_generator(step_seed(seed, step, compartment), device)
    buffer = torch.empty(min(chunk, dims) * dim, device=device, dtype=dtype)
    out = torch.empty(dims, dim, device=device, dtype=dtype)
    for start, rows in iter_chunks(gen, dims, dim, distribution, chunk, buffer):
        out[start : start + rows.shape[0]] = rows
    return out
