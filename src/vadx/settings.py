"""Settings that the command line shows as defaults, in a module without torch (``vadx
--help`` stays light): each is the one home of its defaults — the CLI, the HTTP API's schema and
the library all read them from here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from vadx.errors import InputError

#: what detection does with windows outside the model's training domain (:mod:`vadx.detect.domain`)
DomainMode = Literal["flag", "suppress", "off"]
DOMAIN_MODES: tuple[DomainMode, ...] = ("flag", "suppress", "off")
#: where the per-frame CNN runs: PyTorch, or ONNX Runtime on the CPU (``vadx[onnx]``)
Runtime = Literal["torch", "onnx"]
RUNTIMES: tuple[Runtime, ...] = ("torch", "onnx")


@dataclass(frozen=True)
class DetectConfig:
    """Settings of :func:`detect`.

    Attributes:
        stride: frames between window starts (default: a quarter of a window's span,
            rounded down to a multiple of ``step`` — see :func:`default_stride`).
        step: frames between a window's frames (default: the training clips' spacing, from the
            checkpoint; 1 if unknown).
        smooth: frames of the centred moving average applied to the anomaly score.
        on, off: hysteresis thresholds of the anomaly score (``on ≥ off``).
        min_frames: shortest event kept.
        batch_size: frames per CNN batch.
        per_class: one hysteresis per anomaly class, on its own smoothed probability (events
            of different classes may overlap), instead of one on the anomaly score.
        domain: what the domain check (:mod:`vadx.detect.domain`) does with windows outside the
            model's training domain: ``"flag"`` them (events carry the flag), ``"suppress"``
            their alerts (their frames score 0), or ``"off"`` (no check).
    """

    stride: int | None = None
    step: int | None = None
    smooth: int = 5
    on: float = 0.5
    off: float = 0.35
    min_frames: int = 3
    batch_size: int = 32
    per_class: bool = False
    domain: DomainMode = "flag"

    def __post_init__(self) -> None:
        if self.domain not in DOMAIN_MODES:
            raise InputError(f"domain must be {', '.join(DOMAIN_MODES)}; got {self.domain!r}")
        if not 0 <= self.off <= self.on <= 1:
            raise InputError(f"thresholds need 0 ≤ off ≤ on ≤ 1, got on={self.on} off={self.off}")
        for name in ("stride", "step"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise InputError(f"{name} must be at least 1, got {value}")
        if self.smooth < 1 or self.min_frames < 1 or self.batch_size < 1:
            raise InputError("smooth, min_frames and batch_size must be at least 1")


@dataclass(frozen=True)
class DetectionSettings:
    """The detection settings in effect for one video: a :class:`DetectConfig` with its
    defaults resolved (``stride``, ``step``), the window's length in frames and where the CNN
    ran — what ``events.json`` records under ``settings``."""

    stride: int
    step: int
    smooth: int
    on: float
    off: float
    min_frames: int
    batch_size: int
    per_class: bool
    domain: DomainMode
    window: int
    runtime: str = "torch"

    @classmethod
    def resolved(
        cls, config: DetectConfig, stride: int, step: int, window: int, runtime: str
    ) -> DetectionSettings:
        return cls(
            **{**asdict(config), "stride": stride, "step": step}, window=window, runtime=runtime
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> DetectionSettings:
        """The settings ``events.json`` records (older files lack ``runtime``: torch)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in document.items() if k in known})


#: which clips of a video ``vadx explain`` explains: one span, every sliding window, or the
#: windows detection flagged
WindowMode = Literal["one", "all", "flagged"]
WINDOW_MODES: tuple[WindowMode, ...] = ("one", "all", "flagged")
#: the pictures an explanation renders only when asked, besides its report
Export = Literal["frames", "mp4", "gif", "sheets"]
EXPORTS: tuple[Export, ...] = ("frames", "mp4", "gif", "sheets")
