"""Forward passes of K same-architecture models at once, for seed packing (seedbench/train/packed.py).

The K members' parameters are stacked along a new leading dimension: a Linear weight (out, in)
becomes (K, out, in), a Conv2d weight (out, in/g, kh, kw) becomes (K, out, in/g, kh, kw). Inputs
are (K, B, ...): every member sees its own minibatch. A forward returns logits (K, B, classes).

Two paths:

* `SequentialPack` compiles an nn.Sequential of known layers (Flatten, Linear, Conv2d, pooling,
  element-wise activations) into batched kernels: Linear -> one `baddbmm` over the K members,
  Conv2d -> one grouped convolution (groups = K * g) or, `conv="loop"`, one ordinary convolution
  per member (on a CPU the grouped kernels lose to the per-member ones: see docs/benchmarks.md).
  The study's FC and CNN go this way.
* `VmapPack` is the generic path for any other module: `torch.func.functional_call` under
  `torch.func.vmap` with randomness="error", so a forward that draws random numbers (its solo
  run would draw them from torch's global generator, which has no per-member stream) fails loudly
  instead of silently differing from the solo run.

`refusal(model)` names what no path can pack faithfully (batch norm running statistics, dropout);
the caller then trains those cells solo.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

ELEMENTWISE: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.ReLU6,
    nn.Tanh,
    nn.Sigmoid,
    nn.GELU,
    nn.LeakyReLU,
    nn.ELU,
    nn.SiLU,
    nn.Softplus,
    nn.Identity,
)
POOLS: tuple[type[nn.Module], ...] = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
CONV_MODES = ("grouped", "loop")


def refusal(model: nn.Module) -> str | None:
    """Why `model` cannot be trained as a pack member with the same result as alone, or None."""
    for name, module in model.named_modules():
        where = name or type(model).__name__
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            return f"{where}: batch norm updates running statistics in place during the forward pass; run solo"
        prob = getattr(module, "p", None) if isinstance(module, nn.modules.dropout._DropoutNd) else None
        if prob is None and "drop" in type(module).__name__.lower():
            prob = getattr(module, "drop_prob", getattr(module, "p", 1.0))
        if prob:
            return f"{where}: {type(module).__name__} draws its masks from torch's global generator, which has no per-member stream; run solo"
    return None


class Unsupported(ValueError):
    """The sequential compiler cannot express this model; use the generic path."""


def _leaves(module: nn.Module) -> Iterator[nn.Module]:
    if isinstance(module, nn.Sequential):
        for child in module:
            yield from _leaves(child)
    else:
        yield module


class SequentialPack:
    """Batched kernels for an nn.Sequential of Flatten / Linear / Conv2d / pooling / activations.

    Activations travel in one of three layouts: "member" (K, B, *features); "grouped" (B, K*C, H, W),
    the layout of a grouped convolution, in which pooling and activations act per channel anyway; and
    "dense" (K, features, B) between Linear layers. A Linear computes W @ h + b there, so the weight
    gradient comes out of the batched GEMM already shaped like the (K, out, in) weight: computed as
    h @ W^T, it would come out transposed and autograd would copy every weight gradient once more
    (a third of the time of a packed FC step on a CPU).
    """

    def __init__(self, model: nn.Module, conv: str = "grouped"):
        if not isinstance(model, nn.Sequential):
            raise Unsupported(f"{type(model).__name__} is not an nn.Sequential")
        if conv not in CONV_MODES:
            raise ValueError(f"unknown conv mode {conv!r}; choose one of {', '.join(CONV_MODES)}")
        self.conv = conv
        index = {id(p): i for i, p in enumerate(model.parameters())}
        self.ops: list[tuple[str, nn.Module, tuple[int, ...]]] = []
        for module in _leaves(model):
            own = tuple(index[id(p)] for p in module.parameters(recurse=False))
            # exact types: a subclass may override forward, and then only the generic path is faithful
            if type(module) is nn.Linear:
                self.ops.append(("linear", module, own))
            elif type(module) is nn.Conv2d:
                if module.padding_mode != "zeros":
                    raise Unsupported(f"Conv2d with padding_mode={module.padding_mode!r}")
                self.ops.append(("conv", module, own))
            elif type(module) is nn.Flatten:
                if module.start_dim != 1 or module.end_dim != -1:
                    raise Unsupported("Flatten other than start_dim=1, end_dim=-1")
                self.ops.append(("flatten", module, own))
            elif type(module) in ELEMENTWISE:
                self.ops.append(("elementwise", module, own))
            elif type(module) in POOLS:
                self.ops.append(("pool", module, own))
            else:
                raise Unsupported(f"layer {type(module).__name__}")
            if own and self.ops[-1][0] not in ("linear", "conv"):
                raise Unsupported(f"{type(module).__name__} has parameters")
        # the convolutional prefix: every op up to the Flatten after the last convolution
        kinds = [kind for kind, _, _ in self.ops]
        self.prefix = 0
        if "conv" in kinds:
            last_conv = max(i for i, kind in enumerate(kinds) if kind == "conv")
            flat = [i for i, kind in enumerate(kinds) if kind == "flatten" and i > last_conv]
            if not flat or "linear" in kinds[:last_conv]:
                raise Unsupported("convolutions must come first and end in a Flatten")
            self.prefix = flat[0] + 1

    def _member_prefix(self, params: Sequence[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """conv="loop": the convolutional prefix run member by member, each as its solo forward would.

        Member-major keeps one member's activations in cache through all convolutions, as a solo run
        does (layer-major over K members streams K times the activations through memory).
        """
        outs = []
        for i in range(x.shape[0]):
            h = x[i]
            for kind, module, own in self.ops[: self.prefix]:
                if kind == "conv":
                    bias = params[own[1]][i] if len(own) > 1 else None
                    h = F.conv2d(h, params[own[0]][i], bias, module.stride, module.padding, module.dilation, module.groups)
                elif kind == "flatten":
                    h = h.flatten(1)
                else:
                    h = module(h)
            outs.append(h)
        return torch.stack(outs)  # (K, B, features)

    def __call__(self, params: Sequence[torch.Tensor], buffers: Sequence[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        k, b = x.shape[0], x.shape[1]
        layout = "member"
        h = x
        ops = self.ops
        if self.conv == "loop" and self.prefix:
            h, ops = self._member_prefix(params, x), self.ops[self.prefix :]
        for kind, module, own in ops:
            if kind == "linear":
                if layout == "grouped":
                    raise RuntimeError("Linear after a convolution without Flatten")
                if layout == "member":
                    if h.dim() != 3:
                        raise RuntimeError("Linear on more than one feature dimension")
                    h = h.transpose(1, 2)  # (K, in, B): a view; the GEMM reads it transposed
                    layout = "dense"
                w = params[own[0]]
                if len(own) > 1:
                    h = torch.baddbmm(params[own[1]].unsqueeze(2), w, h)
                else:
                    h = torch.bmm(w, h)
            elif kind == "conv":
                if layout == "dense":
                    raise RuntimeError("Conv2d after a Linear")
                h, layout = self._conv(module, params, own, h, layout, k, b)
            elif kind == "flatten":
                if layout == "grouped":
                    h = h.reshape(b, k, -1).permute(1, 2, 0)  # (K, features, B), a view
                    layout = "dense"
                elif layout == "member":
                    h = h.reshape(k, b, -1)
            elif kind == "elementwise":
                h = module(h)
            else:  # pool
                if layout == "member":
                    h = module(h.reshape(k * b, *h.shape[2:]))
                    h = h.reshape(k, b, *h.shape[1:])
                elif layout == "grouped":
                    h = module(h)
                else:
                    raise RuntimeError("pooling after a Linear")
        if layout == "dense":
            return h.transpose(1, 2)
        if layout != "member" or h.dim() != 3:
            raise RuntimeError("the model must end in logits (Flatten before the classifier)")
        return h

    def _conv(self, module: nn.Conv2d, params, own, h, layout, k, b):
        w = params[own[0]]
        bias = params[own[1]] if len(own) > 1 else None
        args = (module.stride, module.padding, module.dilation)
        if layout == "member":
            h = h.transpose(0, 1).reshape(b, k * h.shape[2], *h.shape[3:])
        out = F.conv2d(h, w.reshape(k * w.shape[1], *w.shape[2:]), None if bias is None else bias.reshape(-1), *args, k * module.groups)
        return out, "grouped"


class VmapPack:
    """Any module, via functional_call under vmap (randomness='error': a random op raises)."""

    def __init__(self, model: nn.Module):
        self.template = copy.deepcopy(model).train()  # as loop.train runs its model (eval-mode-only layers are refused)
        self.param_names = [n for n, _ in model.named_parameters()]
        self.buffer_names = [n for n, _ in model.named_buffers()]

    def __call__(self, params: Sequence[torch.Tensor], buffers: Sequence[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        from torch.func import functional_call, vmap

        def one(p: tuple[torch.Tensor, ...], bufs: tuple[torch.Tensor, ...], xb: torch.Tensor) -> torch.Tensor:
            state = {**dict(zip(self.param_names, p)), **dict(zip(self.buffer_names, bufs))}
            return functional_call(self.template, state, (xb,))

        return vmap(one, in_dims=(0, 0, 0), randomness="error")(tuple(params), tuple(buffers), x)


def build_forward(model: nn.Module, conv: str = "grouped", path: str = "auto"):
    """The packed forward for `model`'s architecture: (params, buffers, x (K, B, ...)) -> (K, B, classes).

    path: "auto" (the sequential compiler when it can express the model, else vmap), "sequential"
    or "vmap". Returns (forward, path taken). Raises ValueError when `refusal(model)` says no.
    """
    reason = refusal(model)
    if reason is not None:
        raise ValueError(reason)
    if path not in ("auto", "sequential", "vmap"):
        raise ValueError(f"unknown forward path {path!r}; choose auto, sequential or vmap")
    if path in ("auto", "sequential"):
        try:
            return SequentialPack(model, conv), "sequential"
        except Unsupported:
            if path == "sequential":
                raise
    return VmapPack(model), "vmap"
