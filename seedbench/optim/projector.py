"""g -> g_hat = sum_i <g, phi_i> phi_i for seeded random directions, shared by RBD and FPD.

RBD asks for a fresh set of directions every step, FPD for the same set every step; the projection
itself is identical, so both delegate here. The hot loop is fused per chunk of directions: fill the
chunk buffer, one matrix-vector product for the coordinates, one `addmv_` to accumulate the update,
so every direction is generated once and touched twice while still in memory, and nothing of size
d x D ever exists.

FPD is the exception worth making: its directions never change, so regenerating them every step
spends nearly all of a step drawing the same random numbers again. A projector built with
`keep=True` draws the raw Gaussian matrix of a (seed, step) once, with the same generator and the
same chunks, and then walks the kept rows in the same chunks, so every product sees the same
numbers in the same order and the result is bitwise the one regeneration gives, only faster.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from seedbench.optim.directions import SECOND_MOMENT, iter_chunks, step_seed
from seedbench.optim.hadamard import draw_signs_rows, fwht, hadamard_project, next_pow2

BASES = ("gaussian", "hadamard")
NORMALIZATIONS = ("auto", "unbiased")
COMPARTMENTS = ("network", "layer")


@dataclass(frozen=True)
class Compartment:
    """A block of the flat vector with its own d coordinates (the whole network, or one tensor)."""

    offset: int
    size: int
    dims: int  # directions drawn for this block (capped for small Hadamard blocks)
    scale: float  # phi = scale * raw direction


def direction_scale(normalization: str, distribution: str, total: int, dims: int, block_dims: int) -> float:
    """The factor s with phi = s * e, so that g_hat = s^2 E E^T g.

    auto:     s^2 = 1/D (the table1 preset: entries / sqrt(D), D = whole network), times d/d_k when a
              Hadamard block can only offer d_k < d rows, so every block keeps E[g_hat_k] = (d/D) g_k.
    unbiased: s^2 = 1/(d_k E[e^2]), so E[g_hat] = g for every distribution.
    """
    if normalization == "auto":
        return (dims / (total * block_dims)) ** 0.5
    if normalization == "unbiased":
        return (1.0 / (block_dims * SECOND_MOMENT[distribution])) ** 0.5
    raise ValueError(f"unknown normalization {normalization!r}; choose one of {', '.join(NORMALIZATIONS)}")


class Projector:
    """Projects flat gradients onto the directions of (seed, step), one compartment at a time."""

    def __init__(
        self,
        sizes: list[int],
        dims: int,
        distribution: str,
        normalization: str,
        bases: str,
        chunk: int,
        compartments: str,
        keep: bool = False,
    ):
        total = sum(sizes)
        if compartments == "network":
            blocks = [(0, total)]
        elif compartments == "layer":
            offsets = [sum(sizes[:i]) for i in range(len(sizes))]
            blocks = list(zip(offsets, sizes))
        else:
            raise ValueError(f"unknown compartments {compartments!r}; choose one of {', '.join(COMPARTMENTS)}")
        self.compartments: list[Compartment] = []
        for offset, size in blocks:
            block_dims = dims
            if bases == "hadamard":
                padded = next_pow2(size)
                if compartments == "network" and dims > padded:
                    raise ValueError(f"bases='hadamard' offers at most {padded} orthogonal directions for D={total}, asked for dims={dims}")
                block_dims = min(dims, padded)
            scale = direction_scale(normalization, distribution, total, dims, block_dims)
            self.compartments.append(Compartment(offset, size, block_dims, scale))
        self.total, self.dims, self.distribution = total, dims, distribution
        self.bases, self.chunk = bases, chunk
        self._gens: dict[torch.device, torch.Generator] = {}
        self._buffer: torch.Tensor | None = None
        self.keep = keep and bases == "gaussian"  # Hadamard directions cost a transform, not a draw
        self._kept: dict[tuple, torch.Tensor] = {}

    def _generator(self, device: torch.device, seed: int) -> torch.Generator:
        gen = self._gens.get(device)
        if gen is None:
            gen = self._gens[device] = torch.Generator(device=device)
        return gen.manual_seed(seed)

    def _chunk_buffer(self, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        need = min(self.chunk, self.dims) * max(c.size for c in self.compartments)
        buf = self._buffer
        if buf is None or buf.device != device or buf.dtype != dtype or buf.numel() < need:
            buf = self._buffer = torch.empty(need, device=device, dtype=dtype)
        return buf

    def _raw_chunks(
        self, seed: int, step: int, k: int, comp: Compartment, device: torch.device, dtype: torch.dtype
    ) -> Iterator[tuple[int, torch.Tensor]]:
        """The raw Gaussian-family rows of compartment k at (seed, step), `chunk` rows at a time."""
        if not self.keep:
            gen = self._generator(device, step_seed(seed, step, k))
            yield from iter_chunks(gen, comp.dims, comp.size, self.distribution, self.chunk, self._chunk_buffer(device, dtype))
            return
        key = (seed, step, k, device, dtype)
        raw = self._kept.get(key)
        if raw is None:
            gen = self._generator(device, step_seed(seed, step, k))
            raw = torch.empty(comp.dims, comp.size, device=device, dtype=dtype)
            for start, e in iter_chunks(gen, comp.dims, comp.size, self.distribution, self.chunk, self._chunk_buffer(device, dtype)):
                raw[start : start + e.shape[0]] = e
            self._kept[key] = raw
        for start in range(0, comp.dims, self.chunk):
            yield start, raw[start : start + self.chunk]

    def project(self, g: torch.Tensor, seed: int, step: int, out: torch.Tensor) -> list[torch.Tensor]:
        """out <- g_hat; returns the coordinates <g, phi_i> of every compartment (what workers would exchange)."""
        coords: list[torch.Tensor] = []
        for k, comp in enumerate(self.compartments):
            gk = g[comp.offset : comp.offset + comp.size]
            hk = out[comp.offset : comp.offset + comp.size]
            if self.bases == "hadamard":
                gen = self._generator(g.device, step_seed(seed, step, k))
                signs, rows = draw_signs_rows(gen, next_pow2(comp.size), comp.dims, g.device, g.dtype)
                ck = hadamard_project(gk, signs, rows, hk)
            else:
                ck = torch.empty(comp.dims, device=g.device, dtype=g.dtype)
                hk.zero_()
                for start, e in self._raw_chunks(seed, step, k, comp, g.device, g.dtype):
                    c = ck[start : start + e.shape[0]]
                    torch.mv(e, gk, out=c)
                    hk.addmv_(e.t(), c)
            hk.mul_(comp.scale * comp.scale)
            coords.append(ck.mul_(comp.scale))
        return coords

    def combine(self, seed: int, step: int, coords: list[torch.Tensor], out: torch.Tensor) -> torch.Tensor:
        """out <- sum_i c_i phi_i: rebuild a point or an update from coordinates and seeds alone."""
        for k, comp in enumerate(self.compartments):
            ck = coords[k].to(device=out.device, dtype=out.dtype)
            hk = out[comp.offset : comp.offset + comp.size]
            if self.bases == "hadamard":
                padded = next_pow2(comp.size)
                gen = self._generator(out.device, step_seed(seed, step, k))
                signs, rows = draw_signs_rows(gen, padded, comp.dims, out.device, out.dtype)
                z = torch.zeros(padded, device=out.device, dtype=out.dtype)
                z.index_copy_(0, rows, ck)
                torch.mul(fwht(z)[: comp.size], signs[: comp.size], out=hk)
            else:
                hk.zero_()
                for start, e in self._raw_chunks(seed, step, k, comp, out.device, out.dtype):
                    hk.addmv_(e.t(), ck[start : start + e.shape[0]])
            hk.mul_(comp.scale)
        return out

    def directions(self, seed: int, step: int, device: torch.device, dtype: torch.dtype) -> list[torch.Tensor]:
        """The normalised directions phi (d_k x D_k per compartment) of (seed, step), materialised."""
        result = []
        for k, comp in enumerate(self.compartments):
            gen = self._generator(device, step_seed(seed, step, k))
            if self.bases == "hadamard":
                padded = next_pow2(comp.size)
                signs, rows = draw_signs_rows(gen, padded, comp.dims, device, dtype)
                onehot = torch.zeros(comp.dims, padded, device=device, dtype=dtype)
                onehot[torch.arange(comp.dims, device=device), rows] = 1
                raw = (fwht(onehot) * signs)[:, : comp.size]
            else:
                raw = torch.empty(comp.dims, comp.size, device=device, dtype=dtype)
                buf = torch.empty(min(self.chunk, comp.dims) * comp.size, device=device, dtype=dtype)
                for start, e in iter_chunks(gen, comp.dims, comp.size, self.distribution, self.chunk, buf):
                    raw[start : start + e.shape[0]] = e
            result.append(raw * comp.scale)
        return result
