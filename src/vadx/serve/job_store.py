"""Background jobs that survive a restart: a bounded worker pool, progress, cancellation.

Each job lives in ``DATA/jobs/<id>/``: ``job.json`` (kind, parameters, state, progress, error,
result summary — rewritten atomically at every change of state) and whatever the job writes.
Jobs run on ``workers`` threads; one model runs one job at a time (explanations hook into the
model). Cancelling a queued job drops it; a running one stops at its next progress report. A
server restarted on the same folder finds every finished job, and queues again the jobs that
were queued or running when it stopped.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from vadx.files import write_json
from vadx.serve import schema
from vadx.serve.schema import DetectResult, ExplainResult

STATES = ("queued", "running", "done", "failed", "cancelled")
FINISHED = ("done", "failed", "cancelled")


class JobFailed(Exception):
    """A job failed for a reason worded for the API's client (shown as it is)."""


class JobCancelled(Exception):
    """Raised inside a job's progress report once the job was cancelled."""


class TooLate(Exception):
    """A job cannot be cancelled: it has finished."""


@dataclass
class Job:
    """A unit of background work (``kind``: ``detect`` or ``explain``)."""

    id: str
    kind: str
    params: dict[str, Any]
    state: str = "queued"
    progress: float = 0.0
    stage: str = ""
    error: str | None = None
    result: Result | None = None
    #: what the job wrote (paths under its folder), once done
    files: list[str] = field(default_factory=list)
    #: a detection's events marked reviewed: the event's index → when (seconds since the epoch)
    reviews: dict[str, float] = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The job as ``job.json`` keeps it."""
        document = asdict(self)
        document["result"] = None if self.result is None else self.result.model_dump()
        return document

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> Job:
        """A job as :meth:`to_json` wrote it."""
        job = cls(**{**document, "result": None})
        if document.get("result") is not None:
            job.result = RESULTS[job.kind].model_validate(document["result"])
        return job

    def public(self) -> schema.Job:
        """The job as the API answers with it."""
        return schema.Job.model_validate(self.to_json())


#: what a job of each kind finds
Result = DetectResult | ExplainResult
RESULTS: dict[str, type[DetectResult] | type[ExplainResult]] = {
    "detect": DetectResult,
    "explain": ExplainResult,
}
Runner = Callable[[Job, Path, Callable[[str, int, int], None]], Result]
LOG = logging.getLogger("vadx.serve")


class JobWatcher(Protocol):
    """Told of every job written (``saved``) and every job deleted (``deleted``), e.g. to
    mirror the jobs elsewhere (:class:`~vadx.serve.job_mirror.JobMirror`)."""

    def saved(self, job: Job) -> None: ...

    def deleted(self, job_id: str) -> None: ...


def written(folder: Path) -> list[str]:
    """The files a job wrote into ``folder`` (``/``-separated, sorted), ``job.json`` aside."""
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and p.name != "job.json"
    )


def _remove_contents(folder: Path) -> None:
    """Remove what a cancelled job wrote (its ``job.json`` stays)."""
    for path in folder.iterdir() if folder.is_dir() else ():
        if path.name != "job.json":
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)


class JobStore:
    """Jobs of one data folder, run by ``runners[kind](job, folder, progress)``."""

    def __init__(self, root: Path, runners: dict[str, Runner], workers: int = 1) -> None:
        self.root = root / "jobs"
        self.root.mkdir(parents=True, exist_ok=True)
        self.runners = runners
        self.jobs: dict[str, Job] = {}
        #: told of each job saved or deleted (their failures are logged, never the job's)
        self.watchers: list[JobWatcher] = []
        self._cancel: set[str] = set()
        self._lock = threading.RLock()  # _end takes it inside _run's decision
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vadx-job")
        for path in sorted(self.root.glob("*/job.json")):
            job = Job.from_json(json.loads(path.read_text(encoding="utf-8")))
            self.jobs[job.id] = job
        for job in sorted(self.jobs.values(), key=lambda j: j.created):
            if job.state not in FINISHED:  # interrupted by a stop: run it again
                job.state, job.progress, job.stage = "queued", 0.0, ""
                self._save(job)
                self._pool.submit(self._run, job)

    def folder(self, job_id: str) -> Path:
        return self.root / job_id

    def submit(self, kind: str, params: dict[str, Any]) -> Job:
        job = Job(uuid.uuid4().hex[:16], kind, params)
        with self._lock:
            self.jobs[job.id] = job
        self._save(job)
        self._pool.submit(self._run, job)
        return job

    def cancel(self, job_id: str) -> Job:
        """Cancel a job: a queued one at once, a running one at its next progress report or
        when its work returns, whichever comes first; either way it ends ``cancelled``.
        :class:`TooLate` once it has finished."""
        job = self.jobs[job_id]
        with self._lock:
            if job.state in FINISHED:
                raise TooLate(f"job {job_id} has already finished ({job.state})")
            if job.state == "queued":
                job.state, job.finished = "cancelled", time.time()
                self._save(job)
            else:
                self._cancel.add(job_id)
        return job

    def review(self, job_id: str, event: int, reviewed: bool) -> Job:
        """Mark event ``event`` of a finished detection reviewed (or not), durably."""
        with self._lock:
            job = self.jobs[job_id]
            if reviewed:
                job.reviews[str(event)] = time.time()
            else:
                job.reviews.pop(str(event), None)
            self._save(job)
        return job

    def delete(self, job_id: str) -> None:
        """Forget a finished job and remove its folder."""
        with self._lock:
            job = self.jobs[job_id]
            if job.state not in FINISHED:
                raise ValueError(f"job {job_id} is {job.state}")
            del self.jobs[job_id]
        shutil.rmtree(self.folder(job_id), ignore_errors=True)
        self._tell("deleted", job_id)

    def close(self) -> None:
        """Stop taking jobs; running ones finish (queued ones run again after a restart)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _save(self, job: Job) -> None:
        write_json(self.folder(job.id) / "job.json", job.to_json())
        self._tell("saved", job)

    def _tell(self, what: str, subject: Any) -> None:
        for watcher in list(self.watchers):
            try:
                getattr(watcher, what)(subject)
            except Exception:  # a mirror's failure never fails the job
                LOG.exception("a job watcher failed on %s", what)

    def _run(self, job: Job) -> None:
        with self._lock:
            if job.state != "queued":
                return  # cancelled while waiting
            job.state, job.started = "running", time.time()
        self._save(job)
        last_save = [time.monotonic()]

        def progress(stage: str, done: int, total: int) -> None:
            if job.id in self._cancel:
                raise JobCancelled
            job.stage, job.progress = stage, round(done / max(total, 1), 4)
            if time.monotonic() - last_save[0] > 1.0:
                self._save(job)
                last_save[0] = time.monotonic()

        try:
            result = self.runners[job.kind](job, self.folder(job.id), progress)
            with self._lock:  # a cancel that answered before this point wins
                if job.id in self._cancel:
                    raise JobCancelled
                files = written(self.folder(job.id))
                self._end(job, result=result, files=files, state="done", progress=1.0)
        except JobCancelled:
            _remove_contents(self.folder(job.id))
            self._end(job, state="cancelled")
        except JobFailed as err:  # already worded for the client
            self._end(job, state="failed", error=str(err))
        except Exception as err:  # a job's failure is reported, never kills the server
            self._end(job, state="failed", error=f"{type(err).__name__}: {err}")
        finally:
            self._cancel.discard(job.id)
        self._tell("saved", job)

    def _end(self, job: Job, **ending: Any) -> None:
        """End ``job`` with the fields ``ending``: written to ``job.json`` first, then shown,
        so that a client who sees the job finished finds its folder final."""
        with self._lock:
            ended = replace(job, finished=time.time(), **ending)
            write_json(self.folder(job.id) / "job.json", ended.to_json())
            for name in ("finished", *ending):
                setattr(job, name, getattr(ended, name))
