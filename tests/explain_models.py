"""Models and slow references for the explanation tests.

``pointwise_crnn`` is small enough to differentiate by hand: a 1×1 conv with one output channel
and a ReLU per frame, average pooling, a GRU with one unit whose gates are constant
(``r = z = ½``, so ``h_t = ½·tanh(a·f_t) + ½·h_{t−1}``) and a linear head ``y = c·h_T``:

    ∂y/∂f_t = c · a · ½^(T−t) · ½ · (1 − tanh²(a·f_t))      (t = 1 … T)

``PlainPointwise`` is the same function written from torch modules alone — no CRNN, no vadx
backbone — with the stages of :class:`vadx.explain.protocol.ExplainableModel`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from vadx.errors import ConfigError, InputError
from vadx.models import CRNN, CRNNConfig
from vadx.models.backbones import Backbone, register_backbone

COLOUR_WEIGHTS = (1.0, -0.5, 0.25)
GRU_A, HEAD_C = 2.0, 3.0


@register_backbone("test_pointwise")
class Pointwise(Backbone):
    """One 1×1 conv (3 → 1 channel, no bias) and a ReLU: ``A = ReLU(Σ_c w_c x_c)``."""

    out_channels = 1

    def __init__(self) -> None:
        super().__init__()
        conv = nn.Conv2d(3, 1, 1, bias=False)
        conv.weight.data = torch.tensor(COLOUR_WEIGHTS).view(1, 3, 1, 1)
        self.features = nn.Sequential(conv, nn.ReLU())
        self.aliases = {"conv": "features.0", "relu": "features.1"}
        self.default_layer = "features.1"

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.features(frames)

    def layer_names(self) -> list[str]:
        return ["features.0", "features.1"]

    def freeze_units(self) -> list[tuple[str, list[nn.Module]]]:
        return [("conv", [self.features[0]])]

    def load_pretrained(self, state_dict: Mapping[str, torch.Tensor], source: str = "") -> None:
        raise NotImplementedError


def pointwise_crnn(steps: int = 4, size: int = 4) -> CRNN:
    config = CRNNConfig(
        backbone="test_pointwise",
        rnn_hidden=1,
        head_hidden=(),
        class_names=("fight", "normal"),
        num_frames=steps,
        frame_size=(size, size),
    )
    model = CRNN(config).eval()
    with torch.no_grad():
        for parameter in model.rnn.parameters():
            parameter.zero_()
        model.rnn.weight_ih_l0[2, 0] = GRU_A  # the candidate n_t = tanh(a·f_t)
        model.head[0].weight.copy_(torch.tensor([[HEAD_C], [-HEAD_C]]))
        model.head[0].bias.zero_()
    return model


@dataclass(frozen=True)
class PlainConfig:
    """What an explained model's configuration must say: the input normalisation."""

    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": list(self.mean), "std": list(self.std)}


class PlainBackbone(nn.Module):
    """The pointwise CNN with named layers: ``features.0`` (the conv), ``features.1`` (ReLU)."""

    def __init__(self) -> None:
        super().__init__()
        conv = nn.Conv2d(3, 1, 1, bias=False)
        conv.weight.data = torch.tensor(COLOUR_WEIGHTS).view(1, 3, 1, 1)
        self.features = nn.Sequential(conv, nn.ReLU())

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.features(frames)

    def get_layer(self, name: str) -> nn.Module:
        modules = dict(self.named_modules())
        if name not in modules or not name:
            raise ConfigError(f"no layer {name!r}; layers: features.0, features.1")
        return modules[name]

    def cam_layer(self, fine: bool = False) -> str:
        return "features.1"


class PlainPointwise(nn.Module):
    """:func:`pointwise_crnn`'s function without CRNN: the explained stages written out."""

    class_names = ("fight", "normal")
    anomaly_indices = (0,)

    def __init__(self) -> None:
        super().__init__()
        self.config = PlainConfig()
        self.backbone = PlainBackbone()
        self.rnn = nn.GRU(1, 1, batch_first=True)
        self.head = nn.Linear(1, 2)
        with torch.no_grad():
            for parameter in self.rnn.parameters():
                parameter.zero_()
            self.rnn.weight_ih_l0[2, 0] = GRU_A  # the candidate n_t = tanh(a·f_t)
            self.head.weight.copy_(torch.tensor([[HEAD_C], [-HEAD_C]]))
            self.head.bias.zero_()

    def class_index(self, name_or_index: str | int) -> int:
        if name_or_index in self.class_names:
            return self.class_names.index(name_or_index)  # type: ignore[arg-type]
        if isinstance(name_or_index, int) and 0 <= name_or_index < len(self.class_names):
            return name_or_index
        raise ConfigError(f"unknown class {name_or_index!r}")

    def check_clip(self, clip: torch.Tensor) -> None:
        if clip.dim() != 5:
            raise InputError(f"expected a clip (B, T, 3, H, W), got {tuple(clip.shape)}")

    def frame_maps(self, clip: torch.Tensor) -> torch.Tensor:
        self.check_clip(clip)
        return self.backbone(clip.flatten(0, 1)).unflatten(0, clip.shape[:2])

    def pool_maps(self, maps: torch.Tensor) -> torch.Tensor:
        return maps.mean((-2, -1))

    def forward_features(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(features)[0][:, -1])

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        return self.forward_features(self.pool_maps(self.frame_maps(clip)))


def pointwise_output(features: list[float]) -> float:
    """``y`` (the fight logit) of the pointwise model for per-frame features, by hand."""
    h = 0.0
    for f in features:
        h = 0.5 * math.tanh(GRU_A * f) + 0.5 * h
    return HEAD_C * h


def pointwise_feature_grads(features: list[float]) -> list[float]:
    """``∂y/∂f_t`` of the pointwise model, by hand (module doc)."""
    steps = len(features)
    return [
        HEAD_C * GRU_A * 0.5 ** (steps - t) * 0.5 * (1 - math.tanh(GRU_A * f) ** 2)
        for t, f in enumerate(features, start=1)
    ]


def loop_gradcam(model: CRNN, clip: torch.Tensor, layer: str, target: int) -> torch.Tensor:
    """Grad-CAM the way Keras users compute it on a TimeDistributed model: one whole forward
    and backward per frame t, keeping frame t of the layer's gradient."""
    module = model.get_layer(layer)
    maps = []
    for t in range(clip.shape[1]):
        captured: list[torch.Tensor] = []
        handle = module.register_forward_hook(lambda m, i, out, c=captured: c.append(out))
        try:
            x = clip.clone().requires_grad_(True)
            y = model(x)[:, target].sum()
        finally:
            handle.remove()
        activations = captured[0].unflatten(0, clip.shape[:2])
        grads = torch.autograd.grad(y, captured[0])[0].unflatten(0, clip.shape[:2])
        weights = grads[:, t].mean((-2, -1), keepdim=True)
        maps.append((weights * activations[:, t]).sum(1).relu().detach())
    return torch.stack(maps, 1)


def loop_saliency(model: CRNN, clip: torch.Tensor, target: int) -> torch.Tensor:
    """Saliency with one pass per frame: the gradient with respect to frame t only."""
    maps = []
    for t in range(clip.shape[1]):
        frame = clip[:, t].clone().requires_grad_(True)
        x = torch.cat([clip[:, :t], frame[:, None], clip[:, t + 1 :]], dim=1)
        (grad,) = torch.autograd.grad(model(x)[:, target].sum(), frame)
        maps.append(grad.abs().amax(1))
    return torch.stack(maps, 1)


def hooks_left(model: nn.Module) -> int:
    """Every forward, pre-forward and backward hook registered on any module of ``model``."""
    return sum(
        len(m._forward_hooks)
        + len(m._forward_pre_hooks)
        + len(m._backward_hooks)
        + len(getattr(m, "_backward_pre_hooks", {}))
        for m in model.modules()
    )


@register_backbone("test_one_pixel")
class OnePixel(Backbone):
    """Reads one pixel of the red channel, ``(2, 3)``, and nothing else."""

    out_channels = 1

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Identity())
        self.aliases = {"pixel": "features.0"}
        self.default_layer = "features.0"

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.features(frames[:, :1, 2:3, 3:4])

    def layer_names(self) -> list[str]:
        return ["features.0"]

    def freeze_units(self) -> list[tuple[str, list[nn.Module]]]:
        return [("pixel", [self.features[0]])]

    def load_pretrained(self, state_dict: Mapping[str, torch.Tensor], source: str = "") -> None:
        raise NotImplementedError


def one_pixel_crnn(steps: int = 3, size: int = 8) -> CRNN:
    """The pointwise model's GRU and head on the single pixel ``(2, 3)`` of each frame."""
    model = pointwise_crnn(steps, size)
    reader = CRNN(model.config.replace(backbone="test_one_pixel")).eval()
    reader.rnn.load_state_dict(model.rnn.state_dict())
    reader.head.load_state_dict(model.head.state_dict())
    return reader
