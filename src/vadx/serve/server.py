"""The state behind the app: the served models, the uploaded videos, the jobs and what runs
them, and the limits on requests."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import HTTPException

from vadx.errors import VadxError
from vadx.serve.guard import Limits
from vadx.serve.job_mirror import JobMirror
from vadx.serve.job_store import JobStore
from vadx.serve.runners import Runners
from vadx.serve.served import ServedModel
from vadx.serve.storage import VideoStore

if TYPE_CHECKING:
    from vadx.console.service import Console


class Server:
    """Models by name, videos, jobs (run by :class:`~vadx.serve.runners.Runners`), the token,
    the request limits (:class:`~vadx.serve.guard.Limits`) and, when given, the console of
    live cameras (:class:`~vadx.console.service.Console`)."""

    def __init__(
        self,
        models: dict[str, ServedModel],
        data: Path,
        token: str | None = None,
        max_upload_bytes: int = 200_000_000,
        workers: int = 1,
        limits: Limits | None = None,
        console: Console | None = None,
    ) -> None:
        if not models:
            raise VadxError("give at least one model to serve")
        if token is not None and not token.strip():
            raise VadxError(
                "the token is empty: every request would pass as authorised; give a token "
                "of at least one character, or none for a server on this machine only"
            )
        self.models, self.token, self.limits = models, token, limits or Limits()
        self.data = Path(data)
        self.videos = VideoStore(self.data, max_upload_bytes)
        self.runners = Runners(models, self.videos)
        run = {"detect": self.runners.detect, "explain": self.runners.explain}
        self.jobs = JobStore(self.data, run, workers)
        #: the upload jobs in the console's database, when the server runs a console
        self.mirror: JobMirror | None = None
        self.console = console

    @property
    def console(self) -> Console | None:
        """The operators' console (live cameras), when the server runs one; setting it
        mirrors the upload jobs into its database (:class:`~vadx.serve.job_mirror.JobMirror`)."""
        return self._console

    @console.setter
    def console(self, console: Console | None) -> None:
        if self.mirror is not None:
            self.jobs.watchers.remove(self.mirror)
        self._console = console
        self.mirror = None
        if console is not None:
            self.mirror = JobMirror(self.jobs, console, self.videos, self.models)

    def model_name(self, name: str | None) -> str:
        """A served model's name (``None``: the first); 404 for any other."""
        if name is None:
            return next(iter(self.models))
        if name not in self.models:
            raise HTTPException(404, f"no model {name!r}; served: {', '.join(self.models)}")
        return name
