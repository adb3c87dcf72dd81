"""The executor interface, and the supervision state every executor shares.

An executor runs a render's pending :class:`~helios_render._model.plan.ChunkJob` s somewhere (one
Trio nursery on this machine, a Dask cluster): ``await executor.run(jobs, hooks)``, where
:class:`RunHooks` says what to do with results, progress and retries. It promises:

* every finished chunk is handed to ``hooks.on_result`` (awaited, in the caller's task context)
  before ``run`` returns; chunk ``i`` reports progress as ``hooks.report(i, p)``;
* the first chunk to fail cancels all the others, and ``run`` raises that chunk's
  :class:`~helios_render.WorkerError` (with chunk, frame and worker) once every sibling has
  stopped and released its Chromium and FFmpeg; errors of siblings that die because they were
  cancelled are logged, never raised;
* a crash-class failure (browser or page crashed, connection lost:
  :func:`~helios_render._exceptions.is_retryable`) is retried on a fresh browser up to
  ``hooks.retries`` times per chunk, unless the render is already stopping; deterministic ones
  (page errors, timeouts, FFmpeg failures) never are;
* cancelling ``run`` (a cancel scope, Ctrl+C) stops every chunk the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import trio

from .._exceptions import WorkerError, is_retryable
from .._model.job import ChunkJob, ChunkResult, Report

__all__ = ["Executor", "Placement", "ResultSink", "RunHooks", "Supervision", "is_retryable"]

logger = logging.getLogger(__name__)

#: Awaited with each finished chunk (the job folder checks and records it).
ResultSink = Callable[[ChunkResult], Awaitable[None]]
#: ``on_placement(chunk, machine)``: which machine renders a chunk (for the progress).
Placement = Callable[[int, str], None]


def _ignore_progress(chunk: int, p: float) -> None:
    """The default ``report`` and ``on_replay``: progress goes nowhere."""


def _ignore_retry() -> None:
    """The default ``on_retry``: retries are not counted."""


def _ignore_placement(chunk: int, machine: str) -> None:
    """The default ``on_placement``: placements go nowhere."""


@dataclass(frozen=True, slots=True)
class RunHooks:
    """What an :class:`Executor` run tells its caller, and what the caller allows it: every
    argument of :meth:`Executor.run` but the jobs.

    Attributes:
        on_result: Awaited with each finished chunk (the job folder checks and records it).
        report: ``report(i, p)``: chunk ``i`` is a fraction ``p`` done.
        on_retry: Called once per retry of a chunk (the progress counts them).
        retries: Retries allowed per chunk for crash-class failures.
        scratch: Where chunk files are written before ``on_result`` takes them; by default a
            private folder of the executor's, removed when the run ends.
        on_placement: ``on_placement(i, machine)``: which machine renders chunk ``i``, where
            the executor knows (a cluster).
        on_replay: ``on_replay(i, p)``: how far a worker is in the frames before chunk ``i``
            (an rAF page replays them), where the executor knows (this machine).
    """

    on_result: ResultSink
    report: Report = _ignore_progress
    on_retry: Callable[[], object] = _ignore_retry
    retries: int = 0
    scratch: Path | None = None
    on_placement: Placement = _ignore_placement
    on_replay: Report = _ignore_progress


class Executor(Protocol):
    """Where chunk jobs run."""

    async def run(self, jobs: Sequence[ChunkJob], hooks: RunHooks) -> int:
        """Run ``jobs``, telling ``hooks`` what happens; return how many workers rendered
        them. See the module docstring."""
        ...


class Stoppable(Protocol):
    """What stops every chunk of one render: a ``trio.CancelScope``, or a warm pool's run
    (which cancels its own chunks only)."""

    @property
    def cancel_called(self) -> bool: ...

    def cancel(self) -> None: ...


class Supervision:
    """Who failed first, which chunks were retried, and whether the render is stopping.

    Args:
        cancel: What stops every chunk of the render (a cancel scope, or a pool's run).
        retries: Retries allowed per chunk for crash-class failures.
        on_retry: Called once per retry (the progress counts them).
    """

    def __init__(
        self, cancel: Stoppable | trio.CancelScope, retries: int, on_retry: Callable[[], object]
    ) -> None:
        self._cancel = cancel
        self._retries = retries
        self._on_retry = on_retry
        self.first_failure: WorkerError | None = None
        self.attempts: dict[int, int] = {}

    @property
    def stopping(self) -> bool:
        """Whether a failure (or the caller) has stopped the render."""
        return self.first_failure is not None or self._cancel.cancel_called

    def failed(self, job: ChunkJob, error: WorkerError) -> bool:
        """Decide about a chunk's failure the moment it happens, before its worker's cleanup:
        ``True`` to retry it on a fresh browser; else the first failure cancels the render."""
        if self.stopping:
            logger.debug("chunk %d also failed while the render stopped: %r", job.index, error)
            return False
        used = self.attempts.get(job.index, 0)
        if is_retryable(error) and used < self._retries:
            self.attempts[job.index] = used + 1
            logger.warning(
                "chunk %d (frames %d..%d): %s; retrying it on a fresh browser (retry %d of %d)",
                job.index, job.start, job.end - 1, error.__cause__ or error, used + 1,
                self._retries,
            )
            self._on_retry()
            return True
        logger.debug("chunk %d failed first: %r", job.index, error)
        self.first_failure = error
        self._cancel.cancel()
        return False
