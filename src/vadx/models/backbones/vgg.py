"""VGG19's convolutional part, with torchvision's parameter names.

The module holds one ``features`` :class:`~torch.nn.Sequential` laid out exactly as
torchvision's ``vgg19().features``: 16 conv layers, each followed by a ReLU, and 5 max-pools,
indices 0…36. A torchvision ImageNet checkpoint (``vgg19-dcbb9e9d.pth``) therefore loads
unchanged (its ``classifier.*`` entries are ignored).

Keras names are aliases: ``blockB_convI`` is the ReLU *after* that conv (Keras convs carry their
activation, so this is what ``model.get_layer("block5_conv4").output`` is in the reference),
``blockB_pool`` the block's max-pool. The conv itself (pre-activation) stays reachable by its
index, e.g. ``features.34``.

``width`` scales every layer's channels (same depth, ``round(c * width)`` channels) so tests,
the CPU demo and CPU real-time use can run a narrower VGG19; full width (1.0) is the default
and the only one ImageNet weights fit.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from vadx.errors import ConfigError, WeightsError
from vadx.models.backbones.base import Backbone, load_matching_state_dict, register_backbone

#: VGG19 ("configuration E"): conv widths, "M" for a 2×2 max-pool.
VGG19_LAYOUT: tuple[int | str, ...] = (
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    512,
    "M",
)


@register_backbone("vgg19")
class VGG19(Backbone):
    """VGG19 conv stack (16 conv layers + 5 pools), output stride 32.

    Args:
        width: channel multiplier; 1.0 is the reference (512 output channels).
        batch_norm: a batch-norm after every conv — torchvision's ``vgg19_bn`` layout
            (``features.0`` conv, ``features.1`` BN, ``features.2`` ReLU, …). A narrow VGG19
            trained from scratch on a CPU needs it: without it, gradients through 16 plain
            convs barely move the first layers.

    >>> import torch
    >>> net = VGG19(width=0.125)
    >>> net(torch.zeros(2, 3, 64, 64)).shape
    torch.Size([2, 64, 2, 2])
    """

    min_input_size = 32

    def __init__(self, width: float = 1.0, batch_norm: bool = False) -> None:
        super().__init__()
        if not isinstance(width, int | float) or not 0 < width <= 4:
            raise ConfigError(f"VGG19 width must be a number in (0, 4], got {width!r}")
        self.width = float(width)
        self.batch_norm = bool(batch_norm)
        layers: list[nn.Module] = []
        self.aliases = {}
        self._conv_indices: list[int] = []
        in_channels, block, conv_in_block = 3, 1, 0
        for spec in VGG19_LAYOUT:
            if spec == "M":
                self.aliases[f"block{block}_pool"] = f"features.{len(layers)}"
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                block, conv_in_block = block + 1, 0
                continue
            channels = max(1, round(int(spec) * self.width))
            conv_in_block += 1
            self._conv_indices.append(len(layers))
            layers.append(nn.Conv2d(in_channels, channels, kernel_size=3, padding=1))
            if self.batch_norm:
                layers.append(nn.BatchNorm2d(channels))
            # Not in-place: hooks on the conv output must see the pre-activation values.
            self.aliases[f"block{block}_conv{conv_in_block}"] = f"features.{len(layers)}"
            layers.append(nn.ReLU(inplace=False))
            in_channels = channels
        self.features = nn.Sequential(*layers)
        self.out_channels = in_channels
        self.default_layer = "block5_conv4"
        self.fine_layer = "block4_conv4"
        self._init_weights()

    def _init_weights(self) -> None:
        # torchvision's VGG initialisation, so a model trained from scratch starts the same way.
        for module in self.features:
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.features(frames)

    def layer_names(self) -> list[str]:
        return [f"features.{i}" for i in range(len(self.features))]

    def freeze_units(self) -> list[tuple[str, list[nn.Module]]]:
        span = 2 if self.batch_norm else 1  # a conv and its batch-norm
        return [(f"features.{i}", list(self.features[i : i + span])) for i in self._conv_indices]

    def split(self, trainable: int) -> tuple[nn.Module, nn.Module]:
        """The features before and from the conv of the ``trainable``-th last unit."""
        if not 0 <= trainable <= len(self._conv_indices):
            raise ConfigError(f"VGG19 has {len(self._conv_indices)} units, not {trainable}")
        cut = len(self.features) if trainable == 0 else self._conv_indices[-trainable]
        return self.features[:cut], self.features[cut:]

    def builtin_weights(self) -> tuple[Mapping[str, torch.Tensor], str]:
        raise WeightsError(
            "VGG19 ImageNet weights are not bundled and vadx downloads nothing on its own: give "
            "the path of torchvision's vgg19-dcbb9e9d.pth, or its URL to download it once"
        )

    def load_pretrained(self, state_dict: Mapping[str, torch.Tensor], source: str = "") -> None:
        hint = (
            "Expected a torchvision VGG19 state dict (features.0.weight … features.34.bias), "
            "e.g. vgg19-dcbb9e9d.pth"
            + (" — of vgg19_bn, as this model has batch-norm" if self.batch_norm else "")
        )
        if self.width != 1.0:
            hint += f"; ImageNet weights only fit width 1.0 (this model has width {self.width})"
        load_matching_state_dict(self, state_dict, "features.", source, hint)
