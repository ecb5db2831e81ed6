"""Optimizer steps for a pack of K members (seedbench/train/packed.py), chosen by the method.

`Method.packed_step` names the stepper, as "module:attr", imported on the worker:

* None (the default): `PerMember`. Each member's own optimizer object - the one its solo run would
  use - steps the member's own parameters, which are views into the stacked (K, ...) tensors (see
  packed.py), with its slice of the stacked gradient as their .grad. Nothing is shared between the
  members, so any optimizer that keeps its state per parameter and reads nothing across members is
  faithful, and a fix in the optimizer applies here unchanged. Its `step` gets a closure under the
  loop's contract, which in a pack returns the member's loss already computed by the shared
  forward/backward and refuses a second evaluation (`MemberClosure`).
  An optimizer that declares `gradient_free = True` and `evaluations_per_step = n` (a population
  method) calls its closure n times per step with its parameters perturbed in place; the K members'
  steps then run as coroutines (`population_steps`) so that the K perturbed models are evaluated in
  one packed forward.
* A class of its own, e.g. `VectorSGD` for torch.optim.SGD: an element-wise optimizer written over
  the stacked tensors, one update for all K members. Its contract is the one `PerMember` implements:
  `__init__(optimizers)`, `step(params, member_params, losses)`, `keep(rows)`,
  `hand_back(row, member_params)`, `diagnostics(row)` and an `optimizers` list; an optional
  `refusal(optimizers)` class method says why it cannot step these optimizers.
"""

from __future__ import annotations

import importlib
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

import torch

from seedbench.train.steps import declared_evaluations

# as in the solo loop (seedbench/train/steps.py), which computes no gradient unless the closure is called
NO_CLOSURE_CALL = (
    "{name}.step(closure) returned without calling the closure: seedbench passes every optimizer a loss closure "
    "(zero grads, forward, backward, return the loss); call it in step, as torch.optim.SGD does"
)
SECOND_CLOSURE_CALL = (
    "a packed member's closure is evaluated once per step; a method whose optimizer re-evaluates the loss (SAM) must set packable=False"
)


def stepper_class(ref: str | None) -> type:
    """The stepper a method names in `packed_step` ("module:attr"), or PerMember for None."""
    if ref is None:
        return PerMember
    module, _, path = ref.partition(":")
    obj: Any = importlib.import_module(module)
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def make_stepper(optimizers: Sequence[torch.optim.Optimizer], params: Sequence[Sequence[torch.Tensor]], packed_step: str | None = None) -> Any:
    """The stepper for these members' optimizers; ValueError says why they cannot be packed."""
    why = optimizer_refusal(optimizers, params)
    cls = stepper_class(packed_step)
    if why is None and packed_step is not None and declared_evaluations(optimizers[0]) is not None:
        why = f"{type(optimizers[0]).__name__} is gradient-free: it is stepped per member (packed_step=None), not by {packed_step}"
    refuse = getattr(cls, "refusal", None)
    if why is None and callable(refuse):
        why = refuse(optimizers)
    if why is not None:
        raise ValueError(f"cannot pack these members: {why}")
    return cls(optimizers)


def optimizer_refusal(optimizers: Sequence[torch.optim.Optimizer], params: Sequence[Sequence[torch.Tensor]]) -> str | None:
    """Why these members' optimizers cannot be packed, or None. `params[k]`: member k's parameters."""
    kinds = {type(o) for o in optimizers}
    if len(kinds) != 1:
        return f"a pack needs one optimizer class, got {sorted(k.__name__ for k in kinds)}"
    for opt, member_params in zip(optimizers, params):
        listed = [p for g in opt.param_groups for p in g["params"]]
        if len(listed) != len(member_params) or any(a is not b for a, b in zip(listed, member_params)):
            return "every member's optimizer must hold exactly its model's parameters, in model.parameters() order"
    return None


def _sgd_refusal(optimizers: Sequence[torch.optim.Optimizer]) -> str | None:
    for opt in optimizers:
        if type(opt) is not torch.optim.SGD:
            return f"VectorSGD steps torch.optim.SGD, got {type(opt).__name__}; set packed_step=None to step each member's own optimizer"
        if len(opt.param_groups) != 1:
            return "packed SGD supports one parameter group"
        group = opt.param_groups[0]
        if group.get("maximize") or group.get("differentiable") or group.get("fused"):
            return "packed SGD supports neither maximize, differentiable nor fused"
        if isinstance(group["lr"], torch.Tensor):
            return "packed SGD needs a float learning rate"
    if len({len(o.state) > 0 for o in optimizers}) != 1:
        return "some members' optimizers have stepped and others not (resumed from different checkpoints); train them solo"
    groups = [o.param_groups[0] for o in optimizers]
    for key in ("nesterov", "dampening"):
        if len({g[key] for g in groups}) != 1:
            return f"packed SGD needs one {key} for all members"
    if len({g["momentum"] == 0 for g in groups}) != 1:
        return "packed SGD needs momentum on for all members or off for all"
    return None


def _per_member(values: list[float], like: torch.Tensor) -> float | torch.Tensor:
    """A float when all members agree (the solo kernels exactly), else a (K, 1, ..., 1) tensor."""
    if len(set(values)) == 1:
        return values[0]
    return torch.tensor(values, dtype=like.dtype, device=like.device).view(-1, *([1] * (like.dim() - 1)))


class VectorSGD:
    """torch.optim.SGD (momentum, dampening, Nesterov, weight decay) over stacked tensors.

    torch.optim.SGD is element-wise per parameter, so one update over the stacked (K, ...) tensors is
    K independent SGD updates. It repeats torch's `_single_tensor_sgd` operation by operation (weight
    decay, momentum buffer cloned on the first step, dampening, Nesterov), with each hyperparameter a
    Python float when all members share it - the very same kernels as solo - or a (K, 1, ..., 1)
    tensor when they differ (e.g. one member with another learning rate).
    """

    refusal = staticmethod(_sgd_refusal)

    def __init__(self, optimizers: Sequence[torch.optim.Optimizer]):
        self.optimizers = list(optimizers)  # the members' own, kept to hand their state back at the end
        groups = [o.param_groups[0] for o in self.optimizers]
        self.lr = [float(g["lr"]) for g in groups]
        self.momentum = [float(g["momentum"]) for g in groups]
        self.dampening = float(groups[0]["dampening"])
        self.weight_decay = [float(g["weight_decay"]) for g in groups]
        self.nesterov = bool(groups[0]["nesterov"])
        self.buffers: list[torch.Tensor | None] | None = None
        # members resumed from checkpoints bring their momentum buffers: stack them, so the pack goes on
        # exactly where each member's own torch.optim.SGD would
        members = [[o.state.get(p, {}).get("momentum_buffer") for p in o.param_groups[0]["params"]] for o in self.optimizers]
        if self.momentum[0] != 0 and all(b is not None for own in members for b in own):
            self.buffers = [torch.stack([own[i] for own in members]) for i in range(len(members[0]))]

    @torch.no_grad()
    def step(self, params: Sequence[torch.Tensor], member_params: Sequence[Sequence[torch.Tensor]], losses: torch.Tensor) -> None:
        """One SGD update of every member: `params` are the stacked tensors with their stacked .grad."""
        if self.buffers is None:
            self.buffers = [None] * len(params)
        for i, p in enumerate(params):
            grad = p.grad
            if grad is None:
                continue
            wd = _per_member(self.weight_decay, p)
            if isinstance(wd, torch.Tensor):
                grad = torch.addcmul(grad, p, wd)
            elif wd != 0:
                grad = grad.add(p, alpha=wd)
            if self.momentum[0] != 0:
                buf = self.buffers[i]
                momentum = _per_member(self.momentum, p)
                if buf is None:
                    buf = self.buffers[i] = grad.detach().clone()
                else:
                    buf.mul_(momentum).add_(grad, alpha=1 - self.dampening)
                if self.nesterov:
                    grad = torch.addcmul(grad, buf, momentum) if isinstance(momentum, torch.Tensor) else grad.add(buf, alpha=momentum)
                else:
                    grad = buf
            lr = _per_member(self.lr, p)
            if isinstance(lr, torch.Tensor):
                p.addcmul_(grad, lr, value=-1)
            else:
                p.add_(grad, alpha=-lr)

    def keep(self, rows: list[int]) -> None:
        """Drop the members not in `rows` (positions in the current pack)."""
        self.optimizers = [self.optimizers[r] for r in rows]
        self.lr = [self.lr[r] for r in rows]
        self.momentum = [self.momentum[r] for r in rows]
        self.weight_decay = [self.weight_decay[r] for r in rows]
        if self.buffers is not None:
            index = None
            for i, buf in enumerate(self.buffers):
                if buf is not None:
                    index = torch.tensor(rows, device=buf.device) if index is None else index
                    self.buffers[i] = buf.index_select(0, index)

    def hand_back(self, row: int, member_params: Sequence[torch.Tensor]) -> None:
        """Give member `row` its momentum buffers, as its own torch.optim.SGD would hold them."""
        if self.buffers is None or self.momentum[0] == 0:
            return
        opt = self.optimizers[row]
        for p, buf in zip(member_params, self.buffers):
            if buf is not None:
                opt.state[p]["momentum_buffer"] = buf[row].clone()

    def diagnostics(self, row: int) -> dict[str, float]:
        return {}


class MemberClosure:
    """A pack member's closure: its loss from the pack's shared forward/backward, once.

    The loop's contract gives every optimizer step a closure (zero the grads, forward, backward,
    return the loss). In a pack the forward and backward already ran, for all members at once, so
    the first call returns the member's loss and a second call - an optimizer that re-evaluates the
    loss at other weights, as SAM does - cannot be honoured and says so.
    """

    def __init__(self, loss: torch.Tensor):
        self.loss, self.calls = loss, 0

    def __call__(self) -> torch.Tensor:
        self.calls += 1
        if self.calls > 1:
            raise RuntimeError(SECOND_CLOSURE_CALL)
        return self.loss


class PerMember:
    """Each member's own optimizer steps its own parameters (views into the stacked tensors)."""

    def __init__(self, optimizers: Sequence[torch.optim.Optimizer]):
        self.optimizers = list(optimizers)

    def step(self, params: Sequence[torch.Tensor], member_params: Sequence[Sequence[torch.Tensor]], losses: torch.Tensor) -> None:
        """Point every member parameter's .grad at its slice of the stacked gradient, then step it."""
        for row, (opt, own) in enumerate(zip(self.optimizers, member_params)):
            for p, stacked in zip(own, params):
                p.grad = None if stacked.grad is None else stacked.grad[row]
            closure = MemberClosure(losses[row])
            opt.step(closure)
            if not closure.calls:
                raise RuntimeError(NO_CLOSURE_CALL.format(name=type(opt).__name__))

    def keep(self, rows: list[int]) -> None:
        self.optimizers = [self.optimizers[r] for r in rows]

    def hand_back(self, row: int, member_params: Sequence[torch.Tensor]) -> None:
        for p in member_params:  # no gradient views into the pack may outlive it
            p.grad = None

    def diagnostics(self, row: int) -> dict[str, float]:
        pop = getattr(self.optimizers[row], "pop_diagnostics", None)
        return pop() if callable(pop) else {}


class _Cancelled(BaseException):
    """Raised inside a member's population step when the pack gives up on it (another member failed)."""


_CANCEL = object()


class _Coroutine:
    """`fn(suspend)` in a thread that runs only while the caller waits: strict hand-over, no concurrency.

    `suspend(request)` hands `request` to the caller and blocks until `send(value)` resumes it with
    `value`. Exactly one of the caller and the coroutine runs at any time, so the members' steps
    execute in a fixed order, as deterministically as sequential code.
    """

    def __init__(self, fn: Callable[[Callable[[Any], Any]], Any]):
        self._to_thread: queue.SimpleQueue = queue.SimpleQueue()
        self._to_caller: queue.SimpleQueue = queue.SimpleQueue()
        self.done = False
        self._thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self._thread.start()

    def _run(self, fn: Callable[[Callable[[Any], Any]], Any]) -> None:
        if self._to_thread.get() is _CANCEL:
            self._to_caller.put(("done", None))
            return
        try:
            self._to_caller.put(("done", fn(self._suspend)))
        except _Cancelled:
            self._to_caller.put(("done", None))
        except BaseException as exc:  # handed to the caller, who re-raises it
            self._to_caller.put(("error", exc))

    def _suspend(self, request: Any) -> Any:
        self._to_caller.put(("yield", request))
        value = self._to_thread.get()
        if value is _CANCEL:
            raise _Cancelled
        return value

    def send(self, value: Any = None) -> tuple[str, Any]:
        self._to_thread.put(value)
        kind, payload = self._to_caller.get()
        if kind == "error":
            self.done = True
            self._thread.join()
            raise payload
        if kind == "done":
            self.done = True
            self._thread.join()
        return kind, payload

    def cancel(self) -> None:
        if not self.done:
            self.send(_CANCEL)


def population_steps(
    optimizers: Sequence[torch.optim.Optimizer],
    evaluate: Callable[[list[int]], torch.Tensor],
) -> list[list[torch.Tensor]]:
    """One step of every member's gradient-free optimizer, each round of perturbed models evaluated as one pack.

    Each member's `opt.step(closure)` runs as a coroutine; its closure suspends. When every member
    waits in its closure, its parameters are perturbed in place (they are views into the stacked
    tensors), and `evaluate(rows)` returns the losses (len(rows),) of those members at their
    current parameters, each on a fresh minibatch of its own. Returns each member's losses in
    order (what the solo loop sums for its training loss).
    """
    losses: list[list[torch.Tensor]] = [[] for _ in optimizers]
    coroutines = [_Coroutine(lambda suspend, opt=opt: opt.step(lambda: suspend(None))) for opt in optimizers]
    try:
        waiting = [row for row, co in enumerate(coroutines) if co.send(None)[0] == "yield"]
        while waiting:
            values = evaluate(waiting)
            resumed = []
            for row, value in zip(waiting, values):
                losses[row].append(value)
                if coroutines[row].send(value)[0] == "yield":
                    resumed.append(row)
            waiting = resumed
    finally:
        for co in coroutines:
            co.cancel()
    return losses
