"""Recording through storage faults: :class:`Recording` and its :class:`Writer` threads.

The console writes each event's row, its clip and its explanation's row off the analysis
thread, in order, each kind on its own writer thread. When a write fails because the disk is
full, read-only or not writable (:class:`OSError`: ``ENOSPC``, ``EDQUOT``, ``EROFS``,
``EACCES``…) or the database cannot be written (SQLAlchemy's ``OperationalError``: SQLite's
"database or disk is full", a PostgreSQL server gone), no thread dies and nothing is dropped:

* the write stays at the head of its writer's queue and is tried again after 1, 2, 4… and at
  most 30 seconds; later writes wait behind it, in memory;
* :attr:`Recording.status` says ``stopped`` with the reason (``disk full —
  /data/console/events/12/clip.mp4: No space left on device``), and a ``warning:`` line says
  so once per outage;
* the first write that works again resumes recording (said once), and the writes that waited
  are stored in their order.

Memory is bounded: a writer holds at most :data:`MOST_WAITING` writes and
:data:`MOST_BYTES` of frames; a write beyond that is given up and counted in ``lost`` (the
console keeps an event's row and gives up its clip first). Writes still waiting when the
console closes are lost too, and said.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa

LOG = logging.getLogger("vadx.console")
#: what a write may fail with when the disk or the database cannot take it
STORAGE_ERRORS: tuple[type[BaseException], ...] = (OSError, sa.exc.OperationalError)
#: seconds before the first retry of a failed write, and the most between two
RETRY_FIRST, RETRY_MOST = 1.0, 30.0
#: writes, and bytes of frames, that each writer keeps waiting at most
MOST_WAITING, MOST_BYTES = 100_000, 512 * 2**20
#: what a failed OS write means, by errno
_OS_FAULTS = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk full",
    errno.EROFS: "read-only",
    errno.EACCES: "no permission",
    errno.EPERM: "no permission",
}


@dataclass(frozen=True)
class RecordingStatus:
    """Whether the console stores its events.

    Attributes:
        state: ``recording``, or ``stopped`` while writes fail (they wait in memory).
        reason: why it stopped: what failed, where, and the system's words.
        since: when it stopped (``time.time()``).
        waiting: writes (events' rows, clips, explanations) waiting in memory to be stored.
        lost: writes given up since the console started: more than memory holds, an
            explanation that could not be written, or still waiting when the console closed.
    """

    state: Literal["recording", "stopped"] = "recording"
    reason: str | None = None
    since: float | None = None
    waiting: int = 0
    lost: int = 0


def describe(error: BaseException, database: str) -> str:
    """A storage fault in words: ``disk full — PATH: No space left on device``; ``database``
    names the database in a failed database write."""
    if isinstance(error, OSError):
        kind = _OS_FAULTS.get(error.errno, "cannot write")
        words = error.strerror or str(error) or type(error).__name__
        return f"{kind} — {error.filename}: {words}" if error.filename else f"{kind}: {words}"
    words = str(getattr(error, "orig", None) or error).strip()
    lowered = words.lower()
    if "full" in lowered or "no space left" in lowered:
        kind = "disk full"
    elif "readonly" in lowered or "read-only" in lowered:
        kind = "read-only"
    else:
        kind = "database error"
    return f"{kind} — {database}: {words}"


def say_outage(text: str) -> None:
    """A ``warning:`` line, each time it is called: the caller says it once per outage, while
    Python's default filter would show the same text only once per process."""
    warnings.warn_explicit(text, UserWarning, __file__, 0, module=__name__, registry=None)


class Recording:
    """The console's recording state, shared by its writers (module doc).

    Args:
        database: how a failed database write names the database (a path, a URL).
    """

    def __init__(self, database: str) -> None:
        self.database = database
        self.writers: list[Writer] = []
        self._lock = threading.Lock()
        self._failing: set[str] = set()  # the writers (and "explanations") failing now
        self._reason: str | None = None
        self._since: float | None = None
        self._lost = 0

    def writer(self, name: str) -> Writer:
        """A new writer thread, named ``name`` in the status."""
        writer = Writer(name, self)
        self.writers.append(writer)
        return writer

    @property
    def status(self) -> RecordingStatus:
        """The state now, with the writes waiting and lost."""
        waiting = sum(len(w) for w in self.writers)
        with self._lock:
            if not self._failing:
                return RecordingStatus(waiting=waiting, lost=self._lost)
            return RecordingStatus("stopped", self._reason, self._since, waiting, self._lost)

    def failed(self, source: str, error: BaseException) -> None:
        """A write of ``source`` failed with a storage error: recording stops (said once)."""
        with self._lock:
            first = not self._failing
            self._failing.add(source)
            if first:
                self._reason, self._since = describe(error, self.database), time.time()
        if first:
            say_outage(
                f"recording stopped: {self._reason}; events wait in memory (at most "
                f"{MOST_BYTES // 2**20} MB of frames) and are stored when writing works again"
            )

    def worked(self, source: str) -> None:
        """A write of ``source`` worked: recording resumes when no other source fails (said
        once). A file written again also clears a failed explanation's fault."""
        with self._lock:
            if source not in self._failing and "explanations" not in self._failing:
                return
            self._failing.discard(source)
            if source == "clips":  # a file written again: the disk takes files again
                self._failing.discard("explanations")
            resumed = not self._failing
            since = self._since or time.time()
        if resumed:
            lost = f"; {self._lost} write(s) lost so far" if self._lost else ""
            say_outage(
                f"recording resumed after {time.time() - since:.0f} s: writing works again, "
                f"and what waited in memory is being stored in its order{lost}"
            )

    def lose(self, count: int = 1) -> None:
        """Count writes given up."""
        with self._lock:
            self._lost += count

    def flush(self, timeout: float) -> None:
        """Wait until nothing waits, or a write fails, or ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while any(len(w) for w in self.writers) and time.monotonic() < deadline:
            if self._failing:
                return
            time.sleep(0.02)

    def close(self, timeout: float = 10.0) -> None:
        """Store what waits (trying for up to ``timeout`` s), then stop the writers; what still
        waits is lost, and said."""
        deadline = time.monotonic() + timeout
        for writer in self.writers:
            writer.close(deadline)
        left = sum(len(w) for w in self.writers)
        if left:
            self.lose(left)
            why = self.status.reason or f"not done within {timeout:.0f} s"
            say_outage(
                f"{left} write(s) of events, clips or explanations were not stored before "
                f"vadx stopped ({why}): they are lost"
            )


class Writer:
    """One thread that runs writes in order, retrying the first until it works (module doc);
    made by :meth:`Recording.writer`."""

    def __init__(self, name: str, recording: Recording) -> None:
        self.name = name
        self.recording = recording
        self._jobs: deque[tuple[Callable[[], None], int]] = deque()
        self._bytes = 0
        self._ready = threading.Condition()
        self._deadline: float | None = None  # closing: give up failing writes after it
        self._thread = threading.Thread(target=self._run, name=f"vadx-{name}", daemon=True)
        self._thread.start()

    def __len__(self) -> int:
        return len(self._jobs)

    def submit(self, job: Callable[[], None], nbytes: int = 0) -> bool:
        """Queue ``job`` (holding ``nbytes`` of frames); False when memory holds no more
        (given up, counted as lost) or the writer has closed."""
        with self._ready:
            full = len(self._jobs) >= MOST_WAITING or self._bytes + nbytes > MOST_BYTES
            if full or self._deadline is not None:
                self.recording.lose()
                return False
            self._jobs.append((job, nbytes))
            self._bytes += nbytes
            self._ready.notify()
        return True

    def close(self, deadline: float) -> None:
        """Run what waits until ``deadline`` (``time.monotonic()``), then stop."""
        with self._ready:
            self._deadline = deadline
            self._ready.notify()
        self._thread.join(max(0.0, deadline - time.monotonic()) + 1.0)

    def _run(self) -> None:
        delay = RETRY_FIRST
        while True:
            with self._ready:
                while not self._jobs and self._deadline is None:
                    self._ready.wait()
                if not self._jobs:
                    return
                job, nbytes = self._jobs[0]
            try:
                job()
            except STORAGE_ERRORS as err:
                self.recording.failed(self.name, err)
                with self._ready:
                    if self._deadline is None:
                        self._ready.wait(delay)  # close() wakes it for a last try
                    elif time.monotonic() < self._deadline:
                        self._ready.wait(min(delay, self._deadline - time.monotonic()))
                    else:
                        return  # closing, and out of time: Recording.close counts what is left
                delay = min(2 * delay, RETRY_MOST)
                continue
            except Exception:  # a bug, not the disk: this write is given up, the others go on
                LOG.exception("%s: a write failed", self.name)
                self.recording.lose()
            else:
                self.recording.worked(self.name)
            delay = RETRY_FIRST
            with self._ready:
                self._jobs.popleft()
                self._bytes -= nbytes
