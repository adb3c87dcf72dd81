"""LocalExecutor: the chunk jobs of a render on this machine, one Trio nursery, a task per worker.

Each worker takes one run of consecutive chunks (see :func:`~helios_render._plan.assign_runs`)
and renders them on one browser and page, a new encoder per chunk. Supervision follows
:mod:`helios_render._executors._base`.
"""

from __future__ import annotations

import logging
import shutil
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Protocol

import trio

from .._exceptions import HeliosError, WorkerError
from .._plan import ChunkJob, assign_runs
from .._tempdirs import make_private_dir
from .._util import collapse_group
from .._worker import ChunkResult, Report, open_chunk_worker
from ._base import ResultSink, Supervision

__all__ = ["LocalExecutor"]

logger = logging.getLogger(__name__)


class ChunkRunner(Protocol):
    """What a worker slot renders chunks with (a :class:`~helios_render._worker.ChunkWorker`,
    or a fake in tests)."""

    async def render(self, job: ChunkJob, report: Report, out_dir: Path) -> ChunkResult: ...


#: Opens a :class:`ChunkRunner` whose resources are released when the block exits.
WorkerFactory = Callable[[], AbstractAsyncContextManager[ChunkRunner]]


class LocalExecutor:
    """Run chunk jobs on this machine with ``concurrency`` workers.

    Args:
        concurrency: Workers (each its own Chromium; a new FFmpeg per chunk).
        open_worker: How a worker is opened; tests pass fakes.
    """

    def __init__(
        self, concurrency: int, *, open_worker: WorkerFactory = open_chunk_worker
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.concurrency = concurrency
        self._open_worker = open_worker

    async def run(
        self,
        jobs: Sequence[ChunkJob],
        *,
        report: Report,
        on_result: ResultSink,
        on_retry: Callable[[], object],
        retries: int,
        scratch: Path | None = None,
    ) -> int:
        """Render ``jobs``; return how many workers ran.

        Raises:
            WorkerError: The first chunk to fail, once every sibling has stopped.

        Cancellation:
            Every worker is cancelled and has reaped its processes before this returns.
        """
        runs = assign_runs(jobs, self.concurrency)
        if not runs:
            return 0
        own_scratch = scratch is None
        out_dir = scratch or make_private_dir("work")
        supervision: Supervision | None = None
        try:
            async with trio.open_nursery() as nursery:
                supervision = Supervision(nursery.cancel_scope, retries, on_retry)
                for run in runs:
                    nursery.start_soon(
                        self._run_worker, run, supervision, report, on_result, out_dir
                    )
        except BaseExceptionGroup as group:
            first = supervision.first_failure if supervision else None
            chosen = collapse_group(group, first)
            if chosen is group:
                raise
            raise chosen from chosen.__cause__
        finally:
            if own_scratch:
                shutil.rmtree(out_dir, ignore_errors=True)
        if supervision.first_failure is not None:
            # The failing worker's cleanup ran cancelled, so its error may have been replaced by
            # Cancelled on the way out; the recorded failure is the story.
            first = supervision.first_failure
            raise first from first.__cause__
        return len(runs)

    async def _run_worker(
        self,
        run: list[ChunkJob],
        supervision: Supervision,
        report: Report,
        on_result: ResultSink,
        out_dir: Path,
    ) -> None:
        pending = deque(run)
        while pending:
            decided: bool | None = None  # the supervision's answer, once asked: retry?
            worker: ChunkRunner | None = None
            try:
                async with self._open_worker() as worker:
                    while pending:
                        job = pending[0]
                        try:
                            result = await worker.render(job, report, out_dir)
                            await on_result(result)
                        except Exception as exc:
                            error = _as_worker_error(job, exc, _frame_of(worker))
                            # Decided now, before this worker's cleanup: a first failure
                            # cancels the siblings at once.
                            decided = supervision.failed(job, error)
                            raise error from error.__cause__
                        pending.popleft()
            except Exception as exc:
                if decided is None:
                    # Raised by the worker's own resources (a page that crashed surfaces
                    # when its watcher is closed), or while opening them.
                    if not pending:
                        logger.debug("worker failed after its last chunk: %r", exc)
                        return
                    error = _as_worker_error(pending[0], exc, _frame_of(worker))
                    if supervision.failed(pending[0], error):
                        continue
                    raise error from error.__cause__
                if decided:
                    continue
                raise


def _frame_of(worker: object) -> int | None:
    frame = getattr(worker, "frame", None)
    return frame if isinstance(frame, int) else None


def _as_worker_error(job: ChunkJob, exc: Exception, frame: int | None) -> WorkerError:
    if isinstance(exc, WorkerError):
        return exc
    if not isinstance(exc, HeliosError):
        logger.debug("unexpected error in chunk %d", job.index, exc_info=exc)
    return WorkerError(job.index, (job.start, job.end), frame, exc, trio.current_time())
