"""Which scalar is explained: one pre-softmax logit per video.

A target is given once for the batch and resolved against the logits of the clips explained:

* ``None`` or ``"predicted"`` — each video's most probable class;
* ``"anomaly"`` — each video's most probable *non-normal* class (what an alert is about);
* a class index or name — the same class for every video;
* a sequence of indices or names — one per video (its length must equal the batch);
* a callable ``logits (N, K) → (N,)`` — any row-wise scalar, e.g. ``lambda z: z[:, 0] - z[:, 3]``.

Classes are fixed on the unperturbed clips: Integrated Gradients, SmoothGrad and occlusion
explain that same logit on their perturbed copies, so attributions of one video always
concern one function.

>>> import torch
>>> from vadx.models import CRNN
>>> model = CRNN(backbone_args={"width": 0.0625}, rnn_hidden=8, head_hidden=(4,))
>>> logits = torch.tensor([[0.0, 2.0, 1.0, 5.0], [3.0, 0.0, 1.0, 0.5]])
>>> resolve_target(model, logits, "anomaly").names
('shooting', 'fight')
>>> resolve_target(model, logits, ["fire", 0]).scores(logits)
tensor([1., 3.])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from vadx.errors import ConfigError
from vadx.explain.protocol import ExplainableModel

TargetFn = Callable[[torch.Tensor], torch.Tensor]
TargetSpec = None | int | str | Sequence[int | str] | TargetFn


@dataclass(frozen=True)
class ResolvedTarget:
    """The explained scalar of each video: a fixed class per video, or a row-wise function.

    Attributes:
        indices: ``(B,)`` class indices, or None for a callable target.
        names: one label per video (class names, or ``"custom"`` for a callable).
        spec: what the user asked for, as text for the manifest.
        function: the callable of a custom target.
    """

    indices: torch.Tensor | None
    names: tuple[str, ...]
    spec: str
    function: TargetFn | None = None

    @property
    def batch(self) -> int:
        return len(self.names)

    def scores(self, logits: torch.Tensor, videos: torch.Tensor | None = None) -> torch.Tensor:
        """The explained scalar of each row of ``logits (N, K)``, shape ``(N,)``.

        ``videos`` gives the video each row belongs to; by default rows are copies of the
        batch laid out copy-major (``[c0 b0, c0 b1, c1 b0, …]``), the layout the batched
        methods use for their perturbed clips.
        """
        if self.function is not None:
            return self.function(logits)
        assert self.indices is not None
        if videos is None:
            copies, remainder = divmod(logits.shape[0], self.batch)
            if remainder:
                raise ConfigError(
                    f"{logits.shape[0]} rows are not copies of a batch of {self.batch}"
                )
            videos = torch.arange(self.batch).repeat(copies)
        indices = self.indices[videos.cpu()].to(logits.device)
        return logits.gather(1, indices[:, None])[:, 0]


def resolve_target(
    model: ExplainableModel, logits: torch.Tensor, target: TargetSpec
) -> ResolvedTarget:
    """Resolve ``target`` for the videos whose logits ``(B, K)`` are given (see module doc)."""
    batch = logits.shape[0]
    if callable(target) and not isinstance(target, str | int):
        return _custom_target(logits, target)
    if target is None or target == "predicted":
        indices = logits.argmax(1)
        spec = "predicted"
    elif target == "anomaly":
        anomalies = model.anomaly_indices
        if not anomalies:
            raise ConfigError("the 'anomaly' target needs a model with a non-normal class")
        columns = torch.tensor(anomalies, device=logits.device)
        indices = columns[logits[:, columns].argmax(1)]
        spec = "anomaly"
    elif isinstance(target, str | int):
        indices = torch.full((batch,), model.class_index(target), dtype=torch.long)
        spec = str(target)
    elif isinstance(target, Sequence):
        if len(target) != batch:
            raise ConfigError(
                f"got {len(target)} targets for a batch of {batch} videos; give one target per "
                "video, or a single class for all of them"
            )
        indices = torch.tensor([model.class_index(t) for t in target], dtype=torch.long)
        spec = ",".join(str(t) for t in target)
    else:
        raise ConfigError(
            f"target must be None, 'predicted', 'anomaly', a class index or name, one per video, "
            f"or a callable; got {target!r}"
        )
    indices = indices.detach().cpu()
    names = tuple(model.class_names[i] for i in indices.tolist())
    return ResolvedTarget(indices, names, spec)


def check_target(model: ExplainableModel, target: TargetSpec) -> None:
    """Refuse, before any work, a target ``model`` cannot explain (an unknown class, an index
    out of range, ``"anomaly"`` without a non-normal class)."""
    resolve_target(model, torch.zeros(1, len(model.class_names)), target)


def _custom_target(logits: torch.Tensor, function: TargetFn) -> ResolvedTarget:
    batch = logits.shape[0]
    scores = function(logits)
    if not isinstance(scores, torch.Tensor) or tuple(scores.shape) != (batch,):
        shape = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
        raise ConfigError(
            f"a target callable must map logits (N, K) to one scalar per row (N,); for {batch} "
            f"videos it returned {shape}"
        )
    name = getattr(function, "__name__", "custom")
    return ResolvedTarget(None, ("custom",) * batch, f"callable {name}", function)
