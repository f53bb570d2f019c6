"""The ranges of the numbers vadx accepts, in one place: the library checks values against
them (:func:`check_range`), and the CLI's number options declare them (``vadx … --help`` shows
each). Nothing here imports torch or NumPy.

The bounds are what works on a machine with tens of GiB of memory, not what the hardware of the
day allows: a frame side of 30,000 pixels is refused before anything tries to allocate it.
"""

from __future__ import annotations

import math

from vadx.errors import ConfigError

Span = tuple[float, float]

#: seeds: 32-bit, as NumPy's generators and every data loader worker take them
SEED: Span = (0, 2**32 - 1)
#: frame rates of videos vadx writes or paces, frames per second
FPS: Span = (0.1, 1000.0)
#: a model's frame side, pixels (the backbone sets the smallest it takes)
FRAME_SIDE: Span = (1, 4096)
#: frames per clip, and a frame's side in pixels, that ``vadx synth`` renders
SYNTH_FRAMES: Span = (8, 100_000)
SYNTH_SIDE: Span = (48, FRAME_SIDE[1])
#: a model's clip length, frames
CLIP_FRAMES: Span = (1, 1024)
#: units of a recurrent layer, and widths of the head's hidden layers
UNITS: Span = (1, 16_384)
#: stacked recurrent layers
RNN_LAYERS: Span = (1, 16)
#: frame counts and frame indices in a video (a stride, an event's length, a first frame, …)
FRAMES: Span = (0, 10**9)
#: frames a normality model's statistics are fitted on (``vadx learn-normal --fitting-frames``)
FITTING_FRAMES: Span = (2, 1_000_000)
#: cells around a location a normality model's Gaussian is fitted on too (``--neighbourhood``)
NEIGHBOURHOOD: Span = (0, 256)
#: learnt features a normality model's memory keeps (``vadx learn-normal --memory-size``)
MEMORY_SIZE: Span = (1, 1_000_000)
#: lists of a normality model's memory (``vadx learn-normal --memory-lists``; 0: none)
MEMORY_LISTS: Span = (0, 65_536)
#: a normality model analyses every k-th frame
FRAME_STEP: Span = (1, 100)
#: clips per batch, frames per CNN batch
BATCH: Span = (1, 4096)
#: decoding processes
WORKERS: Span = (0, 256)
#: a TCP port to listen on (0: any free one)
PORT: Span = (0, 65_535)


def show(span: Span) -> str:
    """``low to high``, as a person writes them: ``0.1 to 1,000``, ``0 to 4,294,967,295``."""
    return " to ".join(f"{int(x):,}" if float(x).is_integer() else f"{x:,}" for x in span)


def check_range(
    field: str,
    value: object,
    span: Span,
    error: type[Exception] = ConfigError,
    integer: bool = False,
):
    """``value`` itself when it is a finite number (an ``int`` with ``integer``) within
    ``span``; else ``error`` naming ``field``, the range and the value. Booleans are not
    numbers here."""
    low, high = span
    number = isinstance(value, int if integer else int | float) and not isinstance(value, bool)
    if not (number and math.isfinite(value) and low <= value <= high):  # type: ignore[arg-type]
        kind = "an integer" if integer else "a finite number"
        raise error(f"{field} must be {kind} from {show(span)}, got {value!r}")
    return value
