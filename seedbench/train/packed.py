"""Seed packing: K cells that differ only in their seeds, trained together as one vectorized model.

    members = [PackMember(model_k, optimizer_k, data_seed=s["data"], augment_seed=s["augment"],
                          metrics_path=out_k / "epochs.jsonl") for ...]
    results = train_packed(members, data, PackSettings(epochs=5, batch_size=32))

Each member arrives as its solo run would build it: its model initialised from its own init stream
(init pipelines such as stabilize and rewire included) and its optimizer made by its method's
factory with its own method seed. The pack stacks the K models' parameters into (K, ...) tensors and
turns each member's parameters into views of its slice, so a member's model always holds the
member's current weights, and its own optimizer object can step it unchanged.

What is shared is only the arithmetic: one batched matmul / convolution for K forward passes. All
randomness stays per member and is drawn in the solo loop's order from the member's own generators:
its batch indices (`_Batches` of seedbench.train.loop with its data seed), its augmentation
(`Augmenter` with its augment seed) and its method's own randomness (inside its optimizer).
So a member ends where its solo run ends, up to float reassociation (tests/test_packed.py: 1e-10
relative in float64; docs/benchmarks.md, "Seed packing", for float32).

A member that diverges is frozen at the end of that epoch - exactly where its solo run stops - and
leaves the pack; the others continue. How the members' optimizers step is the method's choice
(`Method.packed_step`, seedbench/train/packed_optim.py); which cells may be packed and how many is
decided on the driver from what the method and the model declare (seedbench/train/pack_rules.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from seedbench.data.augment import Augmenter
from seedbench.data.datasets import Dataset
from seedbench.seeding import generator
from seedbench.train import checkpoint as ckpt_io
from seedbench.train.checkpoint import Checkpointing
from seedbench.train.loop import (
    EVAL_BATCH,
    DivergenceRules,
    _Batches,
    _jsonable,
    gradient_free_updates,
    optimizer_stop_rule,
    summarize_val_acc,
)
from seedbench.train.packed_models import build_forward, refusal
from seedbench.train.packed_optim import make_stepper, population_steps
from seedbench.train.steps import declared_evaluations


@dataclass
class PackMember:
    """One cell of a pack: what its solo run would pass to loop.train, minus the shared settings.

    model: the member's initialised model, built exactly as the solo path builds it.
    optimizer: the member's optimizer over `model.parameters()`, made by its method's factory with
        its method seed; all members' optimizers are of one class.
    data_seed, augment_seed: the member's data-order and augmentation streams (stream_seeds()).
    metrics_path: where its epochs.jsonl rows go (appended, as loop.train does).
    divergence: its stop rules, checked after every epoch.
    on_epoch: called with each of its epoch rows (progress reporting).
    name: a label for error messages.
    checkpoint: where the member saves its training state at epoch ends, in the solo loop's format, so
        a killed pack resumes as a pack (members at one epoch) or member by member, solo.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    data_seed: int
    augment_seed: int
    metrics_path: Path | None = None
    divergence: DivergenceRules = field(default_factory=DivergenceRules)
    on_epoch: Callable[[dict[str, Any]], None] | None = None
    name: str | None = None
    checkpoint: Checkpointing | None = None


@dataclass
class PackSettings:
    """What the members share (they must: one batched computation).

    conv: how convolutions are packed - "grouped" (one grouped convolution, groups = K), "loop"
        (one convolution per member inside the pack) or "auto" (loop on a CPU, grouped elsewhere,
        from bench/bench_pack.py).
    forward: "auto" (the sequential compiler for nn.Sequential of known layers, else vmap),
        "sequential" or "vmap".
    pack_id: provenance, copied into every member's result.
    packed_step: the method's `packed_step` ("module:attr" of a class that steps all members at
        once, e.g. VectorSGD for torch.optim.SGD), or None: each member's own optimizer steps its slice.
    """

    epochs: int
    batch_size: int
    augment: bool = False
    device: str = "cpu"
    conv: str = "auto"
    forward: str = "auto"
    pack_id: str | None = None
    packed_step: str | None = None


# ---------------------------------------------------------------------------------------------- pack


class _Stack:
    """The members' parameters stacked (K, ...), with every member parameter a view of its slice."""

    def __init__(self, models: Sequence[nn.Module], device: torch.device):
        self.member_params = [list(m.parameters()) for m in models]
        member_buffers = [list(m.buffers()) for m in models]
        first = self.member_params[0]
        seen: set[int] = set()
        for k, own in enumerate(self.member_params):
            shapes = [(p.shape, p.dtype, p.requires_grad) for p in own]
            if shapes != [(p.shape, p.dtype, p.requires_grad) for p in first]:
                raise ValueError(f"member {k} has another architecture than member 0; a pack needs identical models")
            for p in own:
                if id(p) in seen:
                    raise ValueError("two members share a parameter tensor; give every member a model of its own")
                seen.add(id(p))
        self.params = [
            torch.stack([own[i].detach().to(device) for own in self.member_params]).requires_grad_(first[i].requires_grad) for i in range(len(first))
        ]
        self.buffers = [torch.stack([own[i].detach().to(device) for own in member_buffers]) for i in range(len(member_buffers[0]))]
        self._alias()

    def _alias(self) -> None:
        for row, own in enumerate(self.member_params):
            for p, stacked in zip(own, self.params):
                p.data = stacked.data[row]

    def release(self, row: int) -> None:
        """Give member `row` storage of its own again (its weights stay as they are)."""
        for p in self.member_params[row]:
            p.data = p.data.clone()

    def keep(self, rows: list[int]) -> None:
        index = torch.tensor(rows, device=self.params[0].device)
        self.params = [p.detach().index_select(0, index).requires_grad_(p.requires_grad) for p in self.params]
        self.buffers = [b.index_select(0, index) for b in self.buffers]
        self.member_params = [self.member_params[r] for r in rows]
        self._alias()

    def select(self, rows: list[int]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        if rows == list(range(len(self.member_params))):
            return self.params, self.buffers
        index = torch.tensor(rows, device=self.params[0].device)
        return [p.index_select(0, index) for p in self.params], [b.index_select(0, index) for b in self.buffers]


def _conv_mode(settings: PackSettings, device: torch.device) -> str:
    if settings.conv != "auto":
        return settings.conv
    return "loop" if device.type == "cpu" else "grouped"


def _check_members(members: Sequence[PackMember], settings: PackSettings, data: Dataset) -> Any:
    """The pack's stepper, once the members are known to pack faithfully (ValueError otherwise)."""
    if settings.batch_size > len(data.x_train):
        raise ValueError(f"batch size {settings.batch_size} exceeds the {len(data.x_train)} training images")
    why = refusal(members[0].model)
    if why is not None:
        raise ValueError(f"cannot pack these members: {why}")
    return make_stepper([m.optimizer for m in members], [list(m.model.parameters()) for m in members], settings.packed_step)


def _load_member_checkpoints(members: Sequence[PackMember]) -> list[dict[str, Any]] | None:
    """Every member's checkpoint, loaded into its model and optimizer; None when none has one.

    A pack trains its members in lockstep, so it resumes only when all of them stopped at the same
    epoch; otherwise ValueError, and the caller trains the members solo, each from its own checkpoint.
    """
    payloads = [ckpt_io.load(m.checkpoint.path) if m.checkpoint is not None else None for m in members]
    if all(p is None for p in payloads):
        return None
    epochs = {len(p["history"]) if p is not None else 0 for p in payloads}
    if len(epochs) != 1 or any(p is None for p in payloads):
        raise ValueError(f"cannot pack these members: they stopped at different epochs ({sorted(epochs)}); each resumes solo")
    for m, p in zip(members, payloads):
        m.model.load_state_dict(p["model"])
        m.optimizer.load_state_dict(p["optimizer"])
    torch.set_rng_state(payloads[0]["rng"]["torch_global"])
    return payloads  # type: ignore[return-value]


def train_packed(members: list[PackMember], data: Dataset, settings: PackSettings) -> list[dict[str, Any]]:
    """Train the members together; one result per member with loop.train's keys plus pack_size, pack_id.

    Members' models are updated in place, as loop.train updates its model; each ends with storage of
    its own (no view into the pack outlives the call). Raises ValueError for members that cannot be
    packed (see can_pack): the caller trains those solo.
    """
    if not members:
        return []
    device = torch.device(settings.device)
    for m in members:
        m.model.to(device).train()
    saved = _load_member_checkpoints(members)  # before the stepper exists: it takes the optimizers' state
    stepper = _check_members(members, settings, data)
    data = data.to(device)
    forward, _path = build_forward(members[0].model, _conv_mode(settings, device), settings.forward)
    size = len(members)
    batch = settings.batch_size
    augs = [Augmenter(data, generator(m.augment_seed, device)) if settings.augment else None for m in members]
    eval_transform = augs[0].eval_transform if augs[0] is not None else None
    streams = [_Batches(len(data.x_train), batch, generator(m.data_seed), device) for m in members]
    images_per_epoch = streams[0].per_epoch * batch
    optimizers = [m.optimizer for m in members]
    evaluations = declared_evaluations(optimizers[0])  # a population method's closure calls per step, else None
    gradient_free = evaluations is not None
    rules = [m.divergence.resolved(optimizer_stop_rule(m.optimizer)) for m in members]
    images_per_update = (evaluations or 1) * batch
    files = [open(m.metrics_path, "a", encoding="utf-8") if m.metrics_path else None for m in members]
    histories: list[list[dict[str, Any]]] = [[] for _ in members]
    status, reasons = ["finished"] * size, [None] * size
    train_seconds = [0.0] * size
    updates = 0  # every member makes the same updates while it is in the pack
    member_updates = [0] * size
    member_images = [(0, 0.0)] * size  # (images, seconds) while the member was in the pack
    images_total, seconds_total = 0, 0.0
    drawn = [0] * size  # images each member drew from its data stream
    seconds_before = [0.0] * size
    if saved is not None:
        for i, payload in enumerate(saved):
            ckpt_io.restore_rng_states(payload["rng"], {"data": streams[i].gen, "augment": augs[i].generator if augs[i] is not None else None})
            streams[i].restore(payload["batches"])
            drawn[i], histories[i], seconds_before[i] = int(payload["drawn"]), list(payload["history"]), float(payload["train_seconds"])
            if files[i] is not None:  # the curve up to the checkpoint; later rows are trained again
                files[i].seek(0)
                files[i].truncate()
                files[i].writelines(json.dumps(_jsonable(row)) + "\n" for row in histories[i])
                files[i].flush()
        updates = int(saved[0]["updates"])
        member_updates = [updates] * size
        images_total, seconds_total = int(saved[0]["images_total"]), float(saved[0]["seconds_total"])
    first_epoch = len(histories[0]) + 1
    stack = _Stack([m.model for m in members], device)
    active = list(range(size))  # active[row] = index into members of the row-th slice of the pack
    started = time.perf_counter()

    def batches(rows: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Each member's next minibatch, (len(rows), B, ...): its own indices, then its own augmentation."""
        for r in rows:
            drawn[active[r]] += batch
        idx = torch.stack([streams[active[r]].next() for r in rows])
        xb = data.x_train[idx]  # one gather for the pack
        if settings.augment:
            xb = torch.stack([augs[active[r]](xb[i]) for i, r in enumerate(rows)])  # type: ignore[misc]
        return xb, data.y_train[idx]

    def member_losses(params, buffers, xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = forward(params, buffers, xb)
        per = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), yb.reshape(-1), reduction="none")
        return per.view(yb.shape).mean(1), logits

    @torch.no_grad()
    def population_evaluate(rows: list[int]) -> list[torch.Tensor]:
        params, buffers = stack.select(rows)
        xb, yb = batches(rows)
        return list(member_losses(params, buffers, xb, yb)[0].unbind())

    def leave(row: int) -> None:
        stepper.hand_back(row, stack.member_params[row])
        stack.release(row)

    def save_checkpoints(epoch: int) -> None:
        for r, i in enumerate(active):
            member = members[i]
            if member.checkpoint is None or not member.checkpoint.due(epoch, last=epoch == settings.epochs):
                continue
            stepper.hand_back(r, stack.member_params[r])  # a copy of its optimizer state, as its own optimizer holds it
            ckpt_io.save(
                member.checkpoint.path,
                {
                    "model": {k: v.detach().clone() for k, v in member.model.state_dict().items()},  # not views of the pack
                    "optimizer": member.optimizer.state_dict(),
                    "schedule": None,
                    "extra": {},
                    "rng": ckpt_io.rng_states({"data": streams[i].gen, "augment": augs[i].generator if augs[i] is not None else None}),
                    "batches": streams[i].snapshot(),
                    "drawn": drawn[i],
                    "history": [_jsonable(h) for h in histories[i]],
                    "updates": updates,
                    "images_total": images_total,
                    "seconds_total": seconds_total,
                    "train_seconds": seconds_before[i] + time.perf_counter() - started,
                    "meta": member.checkpoint.meta or {},
                },
            )

    try:
        for epoch in range(first_epoch, settings.epochs + 1):
            if not active:
                break
            t0 = time.perf_counter()
            rows = list(range(len(active)))
            loss_sum = torch.zeros(len(active), dtype=torch.float64, device=device)
            correct = torch.zeros(len(active), dtype=torch.int64, device=device)
            seen = 0
            if gradient_free:
                target = gradient_free_updates(epoch, len(data.x_train), images_per_update)
                while updates < target:
                    losses = population_steps(stepper.optimizers, population_evaluate)
                    for r, member_losses_r in enumerate(losses):
                        if len(member_losses_r) * batch != images_per_update:
                            raise RuntimeError(
                                f"{type(optimizers[0]).__name__} called the closure {len(member_losses_r)} times in "
                                f"one step, not the {images_per_update // batch} it declares"
                            )
                        loss_sum[r] += torch.stack(member_losses_r).double().sum() * batch
                    seen += images_per_update
                    updates += 1
            else:
                while seen < images_per_epoch:
                    xb, yb = batches(rows)
                    loss, logits = member_losses(stack.params, stack.buffers, xb, yb)
                    for p in stack.params:
                        p.grad = None
                    loss.sum().backward()
                    stepper.step(stack.params, stack.member_params, loss.detach())
                    loss_sum += loss.detach().double() * batch
                    correct += (logits.detach().argmax(-1) == yb).sum(1)
                    seen += batch
                    updates += 1
            val_loss, val_acc = _evaluate(forward, stack, data.x_val, data.y_val, eval_transform, batch)
            seconds = time.perf_counter() - t0
            images_total += seen
            seconds_total += seconds
            # None, not NaN, for an epoch without a finished update (a population method), as loop.train
            train_loss = (loss_sum / seen).tolist() if seen else [None] * len(active)
            train_acc = (correct.double() / seen).tolist() if seen and not gradient_free else [None] * len(active)
            leaving = []
            for r, member_index in enumerate(active):
                member = members[member_index]
                member_updates[member_index] = updates
                row: dict[str, Any] = {
                    "epoch": epoch,
                    "updates": updates,
                    "lr": float(stepper.optimizers[r].param_groups[0]["lr"]),
                    "train_loss": train_loss[r],
                    # gradient-free updates evaluate perturbed models only: no clean training accuracy
                    "train_acc": train_acc[r],
                    "val_loss": val_loss[r],
                    "val_acc": val_acc[r],
                    "seconds": seconds,
                    "images_per_s": seen / seconds if seconds > 0 else None,
                }
                row.update(stepper.diagnostics(r))
                histories[member_index].append(row)
                out = files[member_index]
                if out is not None:
                    out.write(json.dumps(_jsonable(row)) + "\n")
                    out.flush()
                if member.on_epoch is not None:
                    member.on_epoch(row)
                reason = rules[member_index].check(epoch, train_loss[r], val_loss[r], val_acc[r])
                if reason is not None:
                    status[member_index], reasons[member_index] = "diverged", reason
                    train_seconds[member_index] = seconds_before[member_index] + time.perf_counter() - started
                    member_images[member_index] = (images_total, seconds_total)
                    leaving.append(r)
            if leaving:
                for r in leaving:
                    leave(r)
                staying = [r for r in range(len(active)) if r not in leaving]
                active = [active[r] for r in staying]
                if active:
                    stack.keep(staying)
                    stepper.keep(staying)
            save_checkpoints(epoch)
        for member_index in active:
            train_seconds[member_index] = seconds_before[member_index] + time.perf_counter() - started
            member_images[member_index] = (images_total, seconds_total)
        tests: dict[int, tuple[float, float]] = {}
        if active:
            test_loss, test_acc = _evaluate(forward, stack, data.x_test, data.y_test, eval_transform, batch)
            tests = {m: (test_loss[r], test_acc[r]) for r, m in enumerate(active)}
    finally:
        for r in range(len(active)):
            leave(r)
        for out in files:
            if out is not None:
                out.close()

    results = []
    for i in range(size):
        history = histories[i]
        result: dict[str, Any] = {
            "status": status[i],
            "reason": reasons[i],
            "stop_rule": rules[i].mode,
            "epochs_completed": len(history),
            "updates": member_updates[i],
            "train_seconds": train_seconds[i],
            "resumed_from_epoch": first_epoch - 1 if saved is not None else None,
        }
        if history:
            last = history[-1]
            result.update({k: last[k] for k in ("train_loss", "train_acc", "val_loss", "val_acc")})
            # this member's images over the pack's time: what one cell of the pack ran at
            images, seconds = member_images[i]
            result["images_per_s"] = images / seconds if seconds > 0 else None
        result.update(summarize_val_acc(history))
        if i in tests:
            result["test_loss"], result["test_acc"] = tests[i]
        result["pack_size"] = size
        result["pack_id"] = settings.pack_id
        results.append(_jsonable(result))
    return results


@torch.no_grad()
def _evaluate(forward, stack: _Stack, x: torch.Tensor, y: torch.Tensor, transform: Callable | None, batch: int) -> tuple[list[float], list[float]]:
    """Each member's mean cross-entropy and accuracy over a whole split (all members see the same images).

    Chunks of max(EVAL_BATCH // K, batch) images, so a chunk of the pack holds about as many
    activations as a solo evaluation chunk or a training step.
    """
    size = len(stack.member_params)
    loss_sum = torch.zeros(size, dtype=torch.float64, device=x.device)
    correct = torch.zeros(size, dtype=torch.int64, device=x.device)
    chunk = max(EVAL_BATCH // size, batch)
    for start in range(0, len(x), chunk):
        xb, yb = x[start : start + chunk], y[start : start + chunk]
        if transform is not None:
            xb = transform(xb)
        logits = forward(stack.params, stack.buffers, xb.unsqueeze(0).expand(size, *xb.shape))
        per = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), yb.repeat(size), reduction="none")
        loss_sum += per.view(size, -1).sum(1).double()
        correct += (logits.argmax(-1) == yb).sum(1)
    n = max(len(x), 1)
    return (loss_sum / n).tolist(), (correct.double() / n).tolist()


# ------------------------------------------------------------------------------------ float tolerance


def longest_sum(model: nn.Module, in_shape: tuple[int, ...], batch: int) -> int:
    """The most terms any one sum of a training step adds up: the reduction length that rounding scales with.

    Linear: the fan-in (forward), the fan-out (input gradient) and the batch (weight gradient);
    Conv2d: the window in/g x kh x kw (forward), out/g x kh x kw (input gradient) and
    batch x H_out x W_out (weight gradient). Measured with one forward pass of a probe batch.
    """
    sizes = [batch]
    hooks = []

    def linear(module: nn.Linear, _inp, _out) -> None:
        sizes.extend([module.in_features, module.out_features])

    def conv(module: nn.Conv2d, _inp, out: torch.Tensor) -> None:
        window = module.kernel_size[0] * module.kernel_size[1]
        sizes.extend(
            [module.in_channels // module.groups * window, module.out_channels // module.groups * window, batch * out.shape[-2] * out.shape[-1]]
        )

    for module in model.modules():
        if isinstance(module, nn.Linear):
            hooks.append(module.register_forward_hook(linear))
        elif isinstance(module, nn.Conv2d):
            hooks.append(module.register_forward_hook(conv))
    try:
        with torch.no_grad():
            p = next(model.parameters())
            model(torch.zeros(1, *in_shape, dtype=p.dtype, device=p.device))
    finally:
        for h in hooks:
            h.remove()
    return max(sizes)


def float_tolerance(steps: int, longest: int, dtype: torch.dtype) -> float:
    """How far a member may drift from its solo run, relative to how far training moved it.

    err = max|theta_pack - theta_solo| / max|theta_solo - theta_0|. A pack computes the same sums as
    solo runs, possibly added in another order (a batched GEMM blocks differently from K single ones,
    a grouped convolution from K plain ones); a sum of n terms reordered changes by at most n * eps
    relative to the sum of its magnitudes. Each step's update inherits that, and over `steps` steps
    the errors add at most linearly: steps * longest * eps. A model, not a proof (cancellation in a
    sum and the training dynamics can amplify it), but orders of magnitude above what is measured
    (docs/benchmarks.md, "Seed packing") and orders below what a wrong stream or a coupling between
    members produces (err ~ 1).
    """
    return steps * longest * torch.finfo(dtype).eps
