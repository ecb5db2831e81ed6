"""Stabilized strength: random minimisation of strength variance (docs/methods.md, "Stabilized strength").

Draw the base initialization K times and keep the draw whose neuron strengths are most uniform. It
changes nothing about the base distribution of each value, only which of K equally likely draws is
used. Combined with PA rewiring the order is stabilize THEN rewire.

Reference bug avoided: the reference re-initialises a 2-D view after its first try, so for a conv layer
fan_out (and thus Xavier or Kaiming fan_out scales) silently changes between tries. Here every try
initialises a tensor of the ORIGINAL shape.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from seedbench.init.baselines import GeneratorLike, get_initializer, resolve_generator
from seedbench.init.strength import as_matrix, strength_score

InitFn = Callable[..., torch.Tensor]


def stabilize_strength_(tensor: torch.Tensor, init_fn: InitFn | str, tries: int = 100, generator: GeneratorLike = None) -> torch.Tensor:
    """Fill `tensor` in place with the lowest-score of `tries` draws of `init_fn`; returns `tensor`.

    `init_fn` is a torch.nn.init-style callable (tensor -> tensor, optionally taking `generator=`) or a
    registered initializer name. Score = mean(var(column sums), var(row sums)), unbiased.
    """
    as_matrix(tensor)  # the same >= 2-D requirement and message as the strength metrics
    if tries < 1:
        raise ValueError(f"tries must be >= 1, got {tries}")
    fn = get_initializer(init_fn) if isinstance(init_fn, str) else init_fn
    gen = resolve_generator(generator, tensor.device)
    with torch.no_grad(), _seeded_calls(fn, gen) as draw:
        candidate = torch.empty_like(tensor)  # original shape: fans are those of the real layer
        best = float("inf")
        for k in range(tries):
            draw(candidate)
            score = float(strength_score(candidate))
            if k == 0 or score < best:
                best = score
                tensor.copy_(candidate)
    return tensor


def _accepts_generator(fn: InitFn) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # some builtins have no signature
        return False
    return any(p.name == "generator" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


@contextmanager
def _seeded_calls(fn: InitFn, gen: torch.Generator | None) -> Iterator[Callable[[torch.Tensor], object]]:
    """`fn` bound to the caller's random stream.

    An initializer that takes no generator is still made reproducible: it runs on torch's global RNG,
    seeded from `gen` inside fork_rng, so the caller's global RNG state is left exactly as it was.
    """
    if gen is None:
        yield fn
    elif _accepts_generator(fn):
        yield lambda t: fn(t, generator=gen)
    else:
        seed = int(torch.randint(0, 2**62, (1,), generator=gen, device=gen.device).item())
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            yield fn
