"""Real-time detection and explanation of live streams (``vadx watch``).

:func:`watch` runs the whole thing on a source; :class:`StreamDetector` is the engine alone,
for integrators who feed frames from their own pipeline and want events in a callback.
"""

from vadx.watch.engine import Alert, Decision, FrameInfo, StreamDetector, WindowPlan
from vadx.watch.runner import Watch, WatchConfig, watch

__all__ = [
    "Alert",
    "Decision",
    "FrameInfo",
    "StreamDetector",
    "Watch",
    "WatchConfig",
    "WindowPlan",
    "watch",
]
