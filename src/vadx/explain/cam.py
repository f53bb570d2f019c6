"""Class activation maps of every frame at any backbone layer (default: the last conv block;
LayerCAM: the last layer at stride 8).

With ``A[t]`` the layer's maps of frame ``t`` ``(C, h, w)`` and ``G[t] = ∂y/∂A[t]``:

* Grad-CAM (Selvaraju et al. 2017): ``ReLU(Σ_c w[t, c]·A[t, c])`` with channel weights
  ``w`` from one of two **weightings**:

  - ``frame`` — ``w[t, c] = mean_ij G[t, c, i, j]``: each frame weighted by its own gradient,
    mmaction2's recipe for 2D recognisers (default);
  - ``clip`` — ``w[c] = mean_tij G[t, c, i, j]``: one set of weights for the clip, what
    tf-keras-vis computes on a TimeDistributed layer;

* Grad-CAM++ (Chattopadhay et al. 2018): ``w[t, c] = Σ_ij α·ReLU(G)`` with
  ``α = G² / (2G² + Σ_ij A·G³)``;
* LayerCAM (Jiang et al. 2021): ``ReLU(Σ_c ReLU(G)·A)``, element-wise weights, which stay
  meaningful at finer layers than Grad-CAM's (default: the last layer at stride 8);
* activation maps: the channel mean of ``A`` (no gradient), and the ``top_k`` channels most
  active over the clip;
* Guided Grad-CAM: guided backpropagation saliency × Grad-CAM upsampled to the frame.

Maps are not normalised here: a frame the model ignored keeps a small map.
"""

from __future__ import annotations

import torch

from vadx.catalogue import WEIGHTINGS, Weighting
from vadx.explain.base import Method, Output, SettingValue, check_choice, check_positive
from vadx.explain.gradients import guided_input_gradient, saliency_of
from vadx.explain.normalise import display, upsample
from vadx.explain.passes import Need, Pass
from vadx.explain.protocol import ExplainableModel


def grad_cam(
    activations: torch.Tensor, gradients: torch.Tensor, weighting: Weighting
) -> torch.Tensor:
    """Grad-CAM maps ``(B, T, h, w)`` from ``(B, T, C, h, w)`` activations and gradients."""
    check_choice("weighting", weighting, WEIGHTINGS)
    axes = (-2, -1) if weighting == "frame" else (1, -2, -1)
    weights = gradients.mean(axes, keepdim=True)
    return (weights * activations).sum(2).relu()


class LayerMethod(Method):
    """A method that reads one backbone layer from the shared pass. Default: the layer chosen
    for this method by faithfulness and recorded in the model's checkpoint
    (``model.explanation_layers``, see :mod:`vadx.quality.layers`), as if it had been given;
    else the backbone's last conv block, or its last layer at stride 8 for a ``fine`` method."""

    uses_gradients = True
    fine = False

    def __init__(self, model: ExplainableModel, layer: str | None = None) -> None:
        super().__init__(model)
        if layer is None:
            layer = (getattr(model, "explanation_layers", None) or {}).get(self.name)
        #: whether the layer was given (or chosen for the model), not the backbone's default
        self.layer_given = layer is not None
        self.layer = self.resolve_layer(layer, self.fine)

    def need(self) -> Need:
        return Need(layers=frozenset({self.layer}), layer_grads=self.uses_gradients)

    def settings(self) -> dict[str, SettingValue]:
        return {"layer": self.layer}


class GradCAM(LayerMethod):
    """Grad-CAM of every frame with ``frame`` (default) or ``clip`` channel weighting."""

    name = "gradcam"
    display_name = "Grad-CAM"
    description = (
        "Where the last convolutional layer's features pushed the decision (coarse, class-"
        "specific)."
    )

    def __init__(
        self, model: ExplainableModel, layer: str | None = None, weighting: Weighting = "frame"
    ) -> None:
        super().__init__(model, layer)
        check_choice("weighting", weighting, WEIGHTINGS)
        self.weighting = weighting

    def settings(self) -> dict[str, SettingValue]:
        return {"layer": self.layer, "weighting": self.weighting}

    def compute(self, shared: Pass) -> Output:
        return Output(
            grad_cam(shared.activations[self.layer], shared.gradients[self.layer], self.weighting)
        )


class GradCAMPlusPlus(LayerMethod):
    """Grad-CAM++ of every frame (per-frame weights)."""

    name = "gradcam_plus_plus"
    display_name = "Grad-CAM++"
    description = "Grad-CAM with per-pixel weights: several objects of one class show up together."

    def compute(self, shared: Pass) -> Output:
        activations, grads = shared.activations[self.layer], shared.gradients[self.layer]
        squared = grads.pow(2)
        denominator = 2 * squared + activations.sum((-2, -1), keepdim=True) * grads.pow(3)
        alpha = torch.where(grads != 0, squared / (denominator + 1e-7), torch.zeros_like(grads))
        weights = (alpha * grads.relu()).sum((-2, -1), keepdim=True)
        return Output((weights * activations).sum(2).relu())


class LayerCAM(LayerMethod):
    """LayerCAM of every frame: element-wise positive-gradient weighting, by default at the
    backbone's last layer at stride 8 (``model.fine_layer``), where its maps resolve objects
    of a few dozen pixels; Grad-CAM's channel-wide weights turn to noise at such layers
    (Jiang et al. 2021).

    ``M = ReLU(Σ_c ReLU(∂y/∂A_c) ⊙ A_c)`` at ``layer``. By default (``gate="auto"``, with no
    ``layer`` given) that fine map is **gated** by the LayerCAM of the backbone's last conv block
    — Jiang et al.'s fusion of layers, as a geometric mean: each map divided by its largest
    value over the clip, the coarse one upsampled to the fine grid, ``raw = √(M_fine · M_last)``.
    The last block says which part of the frame carries the class; the fine map resolves the
    object inside it. Measured against ground truth by intervention (``docs/ground-truth.md``):
    the fine map alone also lights up look-alikes the decision does not rest on (a walker in
    flame-coloured clothes beside a fire). ``gate=None`` (or any explicit ``layer``, or one
    chosen for the model) gives the single-layer map; ``gate`` may name another layer.
    """

    name = "layercam"
    display_name = "LayerCAM"
    description = (
        "Grad-CAM at a finer layer, weighting each position by its own gradient and confirmed "
        "by the last layer: sharper regions."
    )
    fine = True

    def __init__(
        self, model: ExplainableModel, layer: str | None = None, gate: str | None = "auto"
    ) -> None:
        super().__init__(model, layer)
        if gate == "auto":
            gate = None if self.layer_given else self.resolve_layer(None, fine=False)
        elif gate is not None:
            gate = self.resolve_layer(gate)
        self.gate = None if gate == self.layer else gate

    def need(self) -> Need:
        layers = {self.layer} | ({self.gate} if self.gate else set())
        return Need(layers=frozenset(layers), layer_grads=True)

    def settings(self) -> dict[str, SettingValue]:
        return {"layer": self.layer, "gate": self.gate}

    def compute(self, shared: Pass) -> Output:
        fine = layercam(shared.activations[self.layer], shared.gradients[self.layer])
        if self.gate is None:
            return Output(fine)
        coarse = layercam(shared.activations[self.gate], shared.gradients[self.gate])
        coarse = upsample(display(coarse, "clip"), fine.shape[-2:]).clamp_min(0)
        return Output((display(fine, "clip") * coarse).sqrt())


def layercam(activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
    """LayerCAM maps ``(B, T, h, w)`` from ``(B, T, C, h, w)`` activations and gradients."""
    return (gradients.relu() * activations).sum(2).relu()


class ActivationMap(LayerMethod):
    """The channel mean of a layer's maps; extras ``channels`` ``(B, k)`` — the ``top_k``
    channels with the largest mean activation over the clip — and their maps
    ``channel_maps`` ``(B, k, T, h, w)``."""

    name = "activation"
    display_name = "Activation map"
    description = (
        "What the network looks at regardless of the class: the mean of a layer's features."
    )
    uses_gradients = False

    def __init__(self, model: ExplainableModel, layer: str | None = None, top_k: int = 4) -> None:
        super().__init__(model, layer)
        check_positive("top_k", top_k)
        self.top_k = top_k

    def settings(self) -> dict[str, SettingValue]:
        return {"layer": self.layer, "top_k": self.top_k}

    def compute(self, shared: Pass) -> Output:
        activations = shared.activations[self.layer]
        top_k = min(self.top_k, activations.shape[2])
        channels = activations.mean((1, -2, -1)).topk(top_k, dim=1).indices
        index = channels[:, None, :, None, None].expand(
            -1, activations.shape[1], -1, *activations.shape[-2:]
        )
        channel_maps = activations.gather(2, index).transpose(1, 2)
        return Output(activations.mean(2), {"channels": channels, "channel_maps": channel_maps})


class GuidedGradCAM(GradCAM):
    """Guided backpropagation saliency × Grad-CAM (upsampled bilinearly to the frame)."""

    name = "guided_gradcam"
    display_name = "Guided Grad-CAM"
    description = "Grad-CAM sharpened to pixel edges by guided backpropagation."

    def compute(self, shared: Pass) -> Output:
        cam = super().compute(shared).raw
        guided = saliency_of(guided_input_gradient(self.model, shared))
        return Output(guided * upsample(cam, guided.shape[-2:]))
