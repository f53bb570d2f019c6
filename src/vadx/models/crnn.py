"""The CRNN of the reference system: a CNN on every frame, an RNN over time, an MLP head.

Keras' ``TimeDistributed`` wrapper is a reshape here: time is folded into the batch,
``(B, T, 3, H, W) → (B·T, 3, H, W)``, the backbone runs once on all frames, and its maps are
unfolded back to ``(B, T, C, h, w)``. Every stage is reachable on its own so explanation methods
and the stream engine can cache and reuse what they need::

    clip (B, T, 3, H, W)
      --frame_maps-->      (B, T, C, h, w)     backbone on the folded batch
      --pool_maps-->       (B, T, F)           global avg/max pooling (F = C) or flatten
      --forward_features-> (B, K) logits       RNN over time, last step → MLP head

>>> import torch
>>> from vadx.models import CRNN
>>> model = CRNN(backbone_args={"width": 0.0625}, rnn_hidden=32, head_hidden=(16,)).eval()
>>> model(torch.zeros(2, 20, 3, 64, 64)).shape
torch.Size([2, 4])
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import nn

from vadx.borrowed import eval_mode
from vadx.errors import ConfigError, InputError
from vadx.models.backbones import Backbone, build_backbone
from vadx.models.config import CRNNConfig, Freeze
from vadx.models.head import build_head
from vadx.models.rnn import build_rnn, last_state


def fold_time(x: torch.Tensor) -> torch.Tensor:
    """``(B, T, ...) → (B·T, ...)``: frames of all clips as one batch, clip-major."""
    return x.reshape(x.shape[0] * x.shape[1], *x.shape[2:])


def unfold_time(x: torch.Tensor, batch: int, steps: int) -> torch.Tensor:
    """Inverse of :func:`fold_time`: ``(B·T, ...) → (B, T, ...)``."""
    return x.reshape(batch, steps, *x.shape[1:])


class CRNN(nn.Module):
    """TimeDistributed CNN → RNN → MLP video classifier returning logits ``(B, num_classes)``.

    Args:
        config: a :class:`CRNNConfig`; keyword ``overrides`` are applied on top of it (or of the
            reference defaults when ``config`` is None), e.g. ``CRNN(rnn_hidden=256)``.
    """

    def __init__(self, config: CRNNConfig | None = None, **overrides: Any) -> None:
        super().__init__()
        config = (config or CRNNConfig()).replace(**overrides)
        self.backbone: Backbone = build_backbone(config.backbone, **config.backbone_args)
        smallest = self.backbone.min_input_size
        if min(config.frame_size) < smallest:
            raise ConfigError(
                f"frame_size {tuple(config.frame_size)} is too small: {config.backbone} needs "
                f"frames of at least {smallest}×{smallest}"
            )
        config = config.replace(
            mean=config.mean or self.backbone.input_mean,
            std=config.std or self.backbone.input_std,
        )
        self.config = config
        self.rnn = build_rnn(
            config.rnn,
            self.feature_size,
            config.rnn_hidden,
            config.rnn_layers,
            config.rnn_bidirectional,
        )
        directions = 2 if config.rnn_bidirectional else 1
        self.head = build_head(
            config.rnn_hidden * directions,
            config.num_classes,
            config.head_hidden,
            config.dropout,
            config.head_layers,
        )
        #: the CheckpointInfo of a model from :func:`vadx.load_model`, else None
        self.checkpoint: Any = None
        self.domain: Any = None  # DomainStats from the checkpoint (vadx.detect.domain)
        #: CAM method name → layer chosen by faithfulness (vadx.quality.layers), from the checkpoint
        self.explanation_layers: dict[str, str] = {}
        self._frozen_modules: list[nn.Module] = []
        self.freeze_backbone(config.freeze)

    # ----------------------------------------------------------------- classes
    @property
    def device(self) -> torch.device:
        """Where the model's parameters are."""
        return next(self.parameters()).device

    @property
    def model_id(self) -> str | None:
        """Its checkpoint's model id (the hash of its weights); None for a model not saved."""
        return self.checkpoint.model_id if self.checkpoint is not None else None

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.config.class_names

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    @property
    def feature_size(self) -> int:
        """Per-frame feature size F after pooling (the RNN's input size)."""
        if self.config.pooling != "flatten":
            return self.backbone.out_channels
        height, width = self.map_size
        return self.backbone.out_channels * height * width

    @functools.cached_property
    def map_size(self) -> tuple[int, int]:
        """``(h, w)`` of the backbone's maps for frames of ``frame_size``."""
        # a probe must not move batch-norm statistics
        with eval_mode(self.backbone), torch.no_grad():
            probe = next(self.backbone.parameters())
            maps = self.backbone(probe.new_zeros(1, 3, *self.config.frame_size))
        return (int(maps.shape[-2]), int(maps.shape[-1]))

    def class_index(self, name_or_index: str | int) -> int:
        """Index of a class given by name or index, with a clear error if it does not exist."""
        if isinstance(name_or_index, str):
            if name_or_index not in self.class_names:
                raise ConfigError(
                    f"unknown class {name_or_index!r}; the model's classes are "
                    f"{', '.join(self.class_names)}"
                )
            return self.class_names.index(name_or_index)
        if not 0 <= int(name_or_index) < self.num_classes:
            raise ConfigError(
                f"class index {name_or_index} out of range for {self.num_classes} classes"
            )
        return int(name_or_index)

    @property
    def anomaly_indices(self) -> list[int]:
        """Indices of the anomaly classes (every class but ``normal_class``)."""
        normal = self.config.normal_class
        return [i for i, name in enumerate(self.class_names) if name != normal]

    # ----------------------------------------------------------------- forward
    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, num_classes)`` of clips ``(B, T, 3, H, W)``."""
        return self.forward_maps(self.frame_maps(clip))

    def frame_maps(self, clip: torch.Tensor) -> torch.Tensor:
        """Backbone feature maps of every frame, ``(B, T, C, h, w)``, in one folded pass."""
        self.check_clip(clip)
        batch, steps = clip.shape[:2]
        return unfold_time(self.backbone(fold_time(clip)), batch, steps)

    def pool_maps(self, maps: torch.Tensor) -> torch.Tensor:
        """Per-frame pooling of the last three axes: ``(..., C, h, w) → (..., F)`` — global
        average or max (F = C), or flatten (F = C·h·w, channel-major)."""
        if self.config.pooling == "flatten":
            return maps.flatten(-3)
        return maps.amax(dim=(-2, -1)) if self.config.pooling == "max" else maps.mean((-2, -1))

    def frame_features(self, clip: torch.Tensor) -> torch.Tensor:
        """Pooled per-frame features ``(B, T, F)`` — what a feature cache stores."""
        return self.pool_maps(self.frame_maps(clip))

    def forward_maps(self, maps: torch.Tensor) -> torch.Tensor:
        """Pool → RNN → head on given backbone maps ``(B, T, C, h, w)``."""
        return self.forward_features(self.pool_maps(maps))

    def rnn_outputs(self, features: torch.Tensor) -> torch.Tensor:
        """RNN outputs at every step ``(B, T, rnn_hidden)`` for per-frame features ``(B, T, F)``."""
        if features.dim() != 3 or features.shape[-1] != self.feature_size:
            raise InputError(
                f"expected per-frame features (B, T, {self.feature_size}), "
                f"got shape {tuple(features.shape)}"
            )
        return self.rnn(features)[0]

    def rnn_state(self, features: torch.Tensor) -> torch.Tensor:
        """What the head sees: the RNN's final state ``(B, D·rnn_hidden)`` (both directions'
        when bidirectional, see :func:`vadx.models.rnn.last_state`)."""
        return last_state(self.rnn_outputs(features), self.config.rnn_bidirectional)

    def forward_features(self, features: torch.Tensor) -> torch.Tensor:
        """RNN → head on per-frame features ``(B, T, F)``; logits ``(B, num_classes)``."""
        return self.head(self.rnn_state(features))

    def check_clip(self, clip: torch.Tensor) -> None:
        """Raise :class:`InputError` unless ``clip`` is a float ``(B, T, 3, H, W)`` tensor."""
        if not isinstance(clip, torch.Tensor):
            raise InputError(f"expected a clip tensor (B, T, 3, H, W), got {type(clip).__name__}")
        if clip.dim() != 5 or clip.shape[2] != 3:
            hint = " (for one clip, use clip.unsqueeze(0))" if clip.dim() == 4 else ""
            raise InputError(
                f"expected a clip tensor (B, T, 3, H, W), got shape {tuple(clip.shape)}{hint}"
            )
        if not clip.is_floating_point():
            raise InputError(
                f"expected a float clip normalised with the model's mean/std, got {clip.dtype}; "
                "convert uint8 frames with the preprocessing of vadx.video"
            )
        smallest = self.backbone.min_input_size
        if min(clip.shape[-2:]) < smallest or clip.shape[0] == 0 or clip.shape[1] == 0:
            raise InputError(
                f"clip of shape {tuple(clip.shape)} is too small: {self.config.backbone} needs "
                f"frames of at least {smallest}×{smallest} and at least one clip and frame"
            )
        size = tuple(self.config.frame_size)
        if self.config.pooling == "flatten" and tuple(clip.shape[-2:]) != size:
            raise InputError(
                f"clip of shape {tuple(clip.shape)}: this model flattens its maps, so its frames "
                f"must be exactly {size[0]}×{size[1]}"
            )

    # ----------------------------------------------------------------- layers
    def layer_names(self) -> dict[str, str]:
        """Hookable backbone layers: alias or canonical name → canonical module name."""
        names = {name: name for name in self.backbone.layer_names()}
        return {**self.backbone.aliases, **names}

    def get_layer(self, name: str) -> nn.Module:
        """A backbone layer by alias (``block5_conv4``) or module name (``features.35``).

        Names of the whole model (``backbone.features.35``, ``rnn``, ``head.0``) work too; a
        backbone name wins a clash (EfficientNet-Lite's ``head`` is its last conv block, not
        the CRNN's MLP head).
        """
        try:
            return self.backbone.get_layer(name.removeprefix("backbone."))
        except ConfigError:
            modules = dict(self.named_modules())
            if name in modules and name != "":
                return modules[name]
            raise

    @property
    def default_layer(self) -> str:
        """The layer Grad-CAM uses by default: the backbone's last conv block."""
        return self.backbone.default_layer

    @property
    def fine_layer(self) -> str:
        """The layer LayerCAM uses by default: the backbone's last layer at stride 8 (its
        default layer when it names none)."""
        return self.backbone.cam_layer(fine=True)

    # ----------------------------------------------------------------- freezing
    def freeze_backbone(self, freeze: Freeze) -> None:
        """Freeze ``"all"``, ``"none"``, or all but the last N units of the backbone.

        Frozen parameters stop requiring gradients and frozen batch-norm layers keep their
        running statistics (they stay in eval mode when the model trains).
        """
        units = self.backbone.freeze_units()
        if freeze == "none":
            keep = len(units)
        elif freeze == "all":
            keep = 0
        elif isinstance(freeze, int) and not isinstance(freeze, bool) and freeze >= 0:
            if freeze > len(units):
                raise ConfigError(
                    f"cannot keep the last {freeze} units trainable: {self.config.backbone} "
                    f"has {len(units)} ({', '.join(name for name, _ in units)})"
                )
            keep = freeze
        else:
            raise ConfigError(f"freeze must be 'none', 'all' or an int, got {freeze!r}")
        frozen_units = units[: len(units) - keep]
        frozen = [m for _, modules in frozen_units for m in modules]
        for parameter in self.backbone.parameters():
            parameter.requires_grad_(True)
        for module in frozen:
            for parameter in module.parameters():
                parameter.requires_grad_(False)
        self._frozen_modules = frozen
        self.config = self.config.replace(freeze=freeze)
        self.train(self.training)

    def train(self, mode: bool = True) -> CRNN:
        super().train(mode)
        for module in self._frozen_modules:
            module.eval()
        return self

    # ----------------------------------------------------------------- summary
    def parameter_counts(self) -> dict[str, dict[str, int]]:
        """``{part: {"total": n, "trainable": n}}`` for backbone, rnn, head and all."""
        parts = {"backbone": self.backbone, "rnn": self.rnn, "head": self.head, "all": self}
        return {
            name: {
                "total": sum(p.numel() for p in part.parameters()),
                "trainable": sum(p.numel() for p in part.parameters() if p.requires_grad),
            }
            for name, part in parts.items()
        }
