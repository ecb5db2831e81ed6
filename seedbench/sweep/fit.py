"""Does every model of a grid fit the data it will be fed? Checked on the driver before anything runs.

A `cnn` on a table of 13 features cannot run: its first 3x3 convolution is larger than the 1x13
input. Found only when a cell trains, that would be a stored "failed" cell per seed; the mismatch is
known from the model's and the dataset's declarations alone, so the planner refuses the grid in one
line instead ("model cnn does not fit dataset tabular (input 1x1x13): ...; pick another model or set
image_size=18"), before any run folder exists.

The check runs once per distinct (model, dataset, image_size, grayscale) of a grid, not per cell, and
its verdicts are kept for the life of the process. For each group:

1. the dataset's input shape and classes come from its spec (`DatasetSpec.input_shape`, `classes`),
   which the planner has already checked against the files, so nothing is loaded;
2. the model's declared facts (`ModelSpec.channels`, `classes`, `min_side`) are checked against them:
   no torch. A model that declares `min_side` is decided here - every built-in model does, so
   planning a grid of them stays torch-free;
3. a model without a declared `min_side` (typically a plugin's) is built on torch's meta device
   (shapes only, no memory) and run forward once on a meta tensor of a batch of 2; an exception or an
   output that is not (2, classes) refuses the grid, with the exception's text as the reason. Only
   this step imports torch (1.5-2.5 s on a loaded 2-core machine, once per process).

A failure that only the meta device causes (an operation with no meta kernel, a value read out of a
tensor) is retried once on the CPU with real zeros, so a model that would train is never refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from operator import attrgetter
from typing import Any

from seedbench.errors import ConfigError
from seedbench.models.spec import ModelSpec, shape_text

# (model spec, dataset spec, image_size, grayscale) -> None (fits) or the refusal; a spec registered anew is a new key
_VERDICTS: dict[tuple[ModelSpec, Any, int | None, bool], str | None] = {}
_CONFIG = attrgetter("config")
_GROUP = attrgetter("model", "dataset", "image_size", "grayscale")
PROBE_BATCH = 2
LARGEST_SIDE = 512  # the largest square side tried when looking for an image_size to suggest
COMMON_SIDES = (8, 16, 28, 32, 64, 96, 128, 224, 256)


def check_fit(resolved: Iterable[Any]) -> None:
    """Refuse the grid (ConfigError, one line) at the first (model, dataset) group that does not fit.

    `resolved`: the planner's resolved cells (anything with a `config` holding model, dataset,
    image_size and grayscale). Groups are checked in the grid's order.
    """
    groups = dict.fromkeys(map(_GROUP, map(_CONFIG, resolved)))  # one pass, ~0.5 us a cell
    for group in groups:
        refusal = fit_refusal(*group)
        if refusal is not None:
            raise ConfigError(refusal)


def fit_refusal(model: str, dataset: str, image_size: int | None = None, grayscale: bool = False) -> str | None:
    """None when registered `model` fits registered `dataset` as a cell feeds it, else the one-line refusal."""
    from seedbench.data.registry import get_dataset_spec
    from seedbench.registry import get_model

    model_spec, data_spec = get_model(model), get_dataset_spec(dataset)
    key = (model_spec, data_spec, image_size, bool(grayscale))
    if key not in _VERDICTS:
        in_shape = data_spec.input_shape(image_size, grayscale)
        misfit = judge(model_spec, in_shape, data_spec.classes)
        if misfit is not None and grayscale and model_spec.channels == data_spec.shape[0] != in_shape[0]:
            misfit = (misfit[0], "drop grayscale=true or pick another model")  # the stored images have what it takes
        _VERDICTS[key] = (
            None if misfit is None else f"model {model} does not fit dataset {dataset} (input {shape_text(in_shape)}): {misfit[0]}; {misfit[1]}"
        )
    return _VERDICTS[key]


def judge(spec: ModelSpec, in_shape: tuple[int, int, int], num_classes: int) -> tuple[str, str] | None:
    """(the reason, the fix) when `spec` cannot take `in_shape` inputs or give `num_classes` outputs; None when it can."""
    declared = spec.declared_misfit(in_shape, num_classes)
    if declared is not None or spec.shape_declared:
        return declared
    reason = forward_failure(spec, in_shape, num_classes)
    if reason is None:
        return None
    side = smallest_side(spec, in_shape[0], num_classes)
    if side is not None and side > min(in_shape[1:]):
        return reason, f"pick another model or set image_size={max(side, 8)}"
    return reason, "pick another model"


def forward_failure(spec: ModelSpec, in_shape: tuple[int, int, int], num_classes: int, cpu_retry: bool = True) -> str | None:
    """Build the model on the meta device and run a batch forward: None if it gives (batch, classes), else why not."""
    try:
        out = _forward(spec, in_shape, num_classes, "meta")
    except Exception as exc:  # noqa: BLE001 - any failure to build or run is the reason to refuse
        if not (cpu_retry and _meta_only(exc)):
            return _one_line(exc)
        try:
            out = _forward(spec, in_shape, num_classes, "cpu")
        except Exception as exc:  # noqa: BLE001
            return _one_line(exc)
    shape = getattr(out, "shape", None)
    if shape is None:
        return f"it returns a {type(out).__name__}, not a tensor of logits"
    if tuple(shape) != (PROBE_BATCH, num_classes):
        return f"it returns shape {shape_text(tuple(shape))} for a batch of {PROBE_BATCH}, not {PROBE_BATCH}x{num_classes} (batch x classes)"
    return None


def smallest_side(spec: ModelSpec, channels: int, num_classes: int) -> int | None:
    """The smallest square side S such that the model takes channels x S x S (None: none found), for the fix.

    Assumes what holds for every built-in network (tests/test_workloads.py): a model that takes S
    takes every larger side too. A bisection over 1..512 on the meta device, a dozen builds at most;
    it runs only when a grid is refused.
    """

    def fits(side: int) -> bool:
        return forward_failure(spec, (channels, side, side), num_classes, cpu_retry=False) is None

    if not fits(LARGEST_SIDE):
        return next((side for side in COMMON_SIDES if fits(side)), None)
    low, high = 1, LARGEST_SIDE
    while low < high:
        middle = (low + high) // 2
        low, high = (low, middle) if fits(middle) else (middle + 1, high)
    return low


def _forward(spec: ModelSpec, in_shape: tuple[int, int, int], num_classes: int, device: str) -> Any:
    import torch

    with torch.random.fork_rng(devices=[]), torch.device(device):  # the driver's own random stream stays untouched
        model = spec.builder()(tuple(in_shape), num_classes)
        if isinstance(model, torch.nn.Module):
            model.eval()  # batch norm takes a 1x1 feature map, dropout is off: shapes are what is checked
        with torch.no_grad():
            return model(torch.zeros(PROBE_BATCH, *in_shape))


def _meta_only(exc: Exception) -> bool:
    """Whether a failure may be the meta device's own (no kernel for an op, no data to read), not the model's."""
    return isinstance(exc, NotImplementedError) or "meta" in str(exc).lower()


def _one_line(exc: Exception) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
