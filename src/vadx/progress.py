"""How long work reports its progress: ``progress(stage, done, total)`` — the stage's name
(``frames``, a method's name, a video's), and how much of it is done. The CLI draws bars from
it, the server turns it into a job's progress, and a callback may raise to cancel the work."""

from __future__ import annotations

from collections.abc import Callable

ProgressFn = Callable[[str, int, int], None]
