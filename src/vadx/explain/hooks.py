"""Context managers that reach inside a model and always leave it as they found it.

Every hook is registered in ``__enter__`` and removed in ``__exit__`` — also when the block
raises (the model's train/eval flags are borrowed by :func:`vadx.borrowed.eval_mode`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from vadx.errors import InputError
from vadx.explain.protocol import ExplainableModel
from vadx.models.crnn import unfold_time


class LayerRecorder(contextlib.AbstractContextManager):
    """Records the outputs of backbone layers during a forward pass, for every frame.

    A CRNN folds time into the batch, so a layer fires once with ``B·T`` frames. A backbone
    called in a Python loop over time fires ``T`` times with ``B`` frames each: the outputs are
    stacked in call order, never one kept. Any other pattern is refused loudly.

    With ``make_leaf=True`` an output that is not part of an autograd graph (a frozen backbone
    on a clip that needs no gradient) becomes a leaf that does, so gradients reach the layer
    without building a graph upstream of it.
    """

    def __init__(
        self, model: ExplainableModel, layers: Sequence[str], make_leaf: bool = False
    ) -> None:
        self.modules = {name: model.backbone.get_layer(name) for name in layers}
        self.make_leaf = make_leaf
        self.outputs: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def __enter__(self) -> LayerRecorder:
        try:
            for name, module in self.modules.items():
                self._handles.append(module.register_forward_hook(self._hook(name)))
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _hook(self, name: str):
        def record(module: nn.Module, inputs: object, output: torch.Tensor) -> torch.Tensor:
            if not isinstance(output, torch.Tensor):
                raise InputError(f"layer {name!r} returns {type(output).__name__}, not a tensor")
            if self.make_leaf and not output.requires_grad:
                output = output.detach().requires_grad_(True)
            self.outputs[name].append(output)
            return output

        return record

    def stacked(self, name: str, batch: int, steps: int) -> torch.Tensor:
        """The recorded output of ``name`` as ``(B, T, C, h, w)``."""
        return stack_calls(self.outputs[name], name, batch, steps)


def stack_calls(calls: list[torch.Tensor], name: str, batch: int, steps: int) -> torch.Tensor:
    """``(B, T, ...)`` from one folded call of ``B·T`` frames or ``T`` calls of ``B`` frames."""
    sizes = [c.shape[0] for c in calls]
    if len(calls) == 1 and sizes[0] == batch * steps:
        return unfold_time(calls[0], batch, steps)
    if len(calls) == steps and all(size == batch for size in sizes):
        return torch.stack(calls, dim=1)
    raise InputError(
        f"layer {name!r} ran {len(calls)} time(s) with {sizes} frames for a clip batch of "
        f"{batch}×{steps} frames; expected one call of {batch * steps} (time folded into the "
        f"batch) or {steps} calls of {batch} (a loop over time)"
    )


class _Guided(torch.autograd.Function):
    """Identity forward; backward lets only positive gradients through (guided backprop)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return grad.clamp(min=0)


ACTIVATIONS = (nn.ReLU, nn.ReLU6)


@contextlib.contextmanager
def guided_relus(model: nn.Module) -> Iterator[int]:
    """Guided backpropagation (Springenberg et al. 2015) for every ReLU/ReLU6 of ``model``.

    The gradient reaching each activation's output is clamped at zero, then flows through the
    activation's own backward (which zeroes it where the input was not positive): exactly the
    guided rule ``(x > 0)·max(g, 0)``, for any activation module, inplace-safe. Yields the number
    of activations guided.
    """
    handles = []
    try:
        for module in model.modules():
            if isinstance(module, ACTIVATIONS):
                handles.append(module.register_forward_hook(lambda m, i, out: _Guided.apply(out)))
        yield len(handles)
    finally:
        for handle in handles:
            handle.remove()


def rnn_context(device: torch.device) -> contextlib.AbstractContextManager:
    """cuDNN off for the RNN on a GPU: cuDNN's RNN backward refuses eval mode ("cudnn RNN
    backward can only be called in training mode"); the native kernel gives the same values."""
    if device.type == "cuda":
        return torch.backends.cudnn.flags(enabled=False)
    return contextlib.nullcontext()
