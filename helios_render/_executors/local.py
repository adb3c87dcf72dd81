"""LocalExecutor: the chunk jobs of a render on this machine, one Trio nursery, a task per worker.

Each worker slot takes one run of consecutive chunks (see
:func:`~helios_render._model.job.assign_runs`) and renders them on one browser and page
(a :class:`ChunkRunner`, such as :class:`~helios_render._executors.worker.ChunkWorker`),
capturing the next chunk's frames while the previous chunk's encoder finishes and the job
folder checks it: a chunk counts as done only once recorded. One loop does this for every
runner, real or fake (:class:`_WorkerSlot`), so the tests of failure schedules run the code
that renders.
Supervision follows :mod:`helios_render._executors._base`.
"""

from __future__ import annotations

import functools
import logging
import shutil
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from pathlib import Path
from typing import Protocol, runtime_checkable

import trio

from .._exceptions import WorkerError
from .._model.job import ChunkJob, ChunkResult, Report, assign_runs
from .._model.plan import encoder_threads
from .._nursery import collapse_group, task_nursery
from .._tempdirs import make_private_dir
from ._base import RunHooks, Supervision
from .worker import open_chunk_worker

__all__ = ["ChunkRunner", "EncodingChunk", "LocalExecutor"]

logger = logging.getLogger(__name__)


class EncodingChunk(Protocol):
    """A chunk whose frames are all with its encoder, still encoding (a
    :class:`~helios_render._executors.worker.FinishingChunk`, or a fake in tests)."""

    job: ChunkJob

    @property
    def waits_for_later_frames(self) -> bool:
        """Whether the chunk is complete only once its encoder has frames of the chunks after
        it (a segment that is not its encoder's last): it is not waited for before they are
        captured."""
        ...

    async def finish(self) -> ChunkResult:
        """Wait for the chunk file and return the chunk (reporting 1.0); raise a failure."""
        ...

    async def aclose(self) -> None:
        """Stop the encoder if it has not finished (idempotent)."""
        ...


@runtime_checkable
class ChunkRunner(Protocol):
    """What a worker slot renders chunks with (a
    :class:`~helios_render._executors.worker.ChunkWorker`, or a fake in tests)."""

    async def render_frames(
        self, job: ChunkJob, report: Report, out_dir: Path, following: Sequence[ChunkJob] = ()
    ) -> EncodingChunk:
        """Hand every frame of ``job`` to its encoder; return the chunk still encoding.
        ``following`` are the jobs that will be rendered next, in order."""
        ...

    async def end_segments(self) -> None:
        """End the input of an encoder shared with chunks that will not come (a run cut
        short), so that the chunks it has complete."""
        ...


#: Opens a :class:`ChunkRunner` whose resources are released when the block exits.
WorkerFactory = Callable[[], AbstractAsyncContextManager[ChunkRunner]]


class LocalExecutor:
    """Run chunk jobs on this machine with ``concurrency`` workers.

    Args:
        concurrency: Workers (each its own Chromium and FFmpeg).
        open_worker: How a worker (a :class:`ChunkRunner`) is opened; tests pass fakes. By
            default a :class:`~helios_render._executors.worker.ChunkWorker` whose encoders get
            their share of this machine's CPUs (:func:`~helios_render._model.plan.encoder_threads`).
    """

    def __init__(self, concurrency: int, *, open_worker: WorkerFactory | None = None) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.concurrency = concurrency
        self._open_worker = open_worker or functools.partial(
            open_chunk_worker, encoder_threads=encoder_threads(concurrency)
        )

    async def run(self, jobs: Sequence[ChunkJob], hooks: RunHooks) -> int:
        """Render ``jobs``; return how many workers ran. Every chunk is on this machine, so
        ``hooks.on_placement`` is not called.

        Raises:
            WorkerError: The first chunk to fail, once every sibling has stopped.

        Cancellation:
            Every worker is cancelled and has reaped its processes before this returns.
        """
        runs = assign_runs(jobs, self.concurrency)
        if not runs:
            return 0
        own_scratch = hooks.scratch is None
        out_dir = hooks.scratch or make_private_dir("work")
        supervision: Supervision | None = None
        try:
            async with trio.open_nursery() as nursery:
                supervision = Supervision(nursery.cancel_scope, hooks.retries, hooks.on_retry)
                for index, run in enumerate(runs):
                    slot = _WorkerSlot(index, run, self._open_worker, supervision, hooks, out_dir)
                    nursery.start_soon(slot.run)
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


class _WorkerSlot:
    """One worker slot: renders its run of chunks in order on one worker, capturing chunk k+1
    while chunk k finishes and is recorded; after a retried failure, goes on with the chunks
    not recorded on a freshly opened worker.

    A pass (:meth:`_render_pending`) does not stop at a failure at once: the chunks already
    finishing beside it are finished and recorded (kept for a resume), then the failure of
    the earliest chunk is put to the :class:`~._base.Supervision`, before the worker is
    closed: retry, or stop the render.

    Attributes:
        slot: The worker's number (from 0), named in its errors.
        pending: The run's chunks not recorded yet, in order.
    """

    def __init__(
        self,
        slot: int,
        run: list[ChunkJob],
        open_worker: WorkerFactory,
        supervision: Supervision,
        hooks: RunHooks,
        out_dir: Path,
    ) -> None:
        self.slot = slot
        self.pending = deque(run)
        self._open_worker = open_worker
        self._supervision = supervision
        self._hooks = hooks
        self._out_dir = out_dir
        #: This pass's failure of the earliest chunk (capture or finish), with its job.
        self._failure: tuple[ChunkJob, WorkerError] | None = None

    async def run(self) -> None:
        """Render every chunk of the run, retrying as the supervision decides.

        Raises:
            WorkerError: A chunk failed and is not retried.

        Cancellation:
            Every encoder and the worker are stopped and reaped.
        """
        while self.pending:
            decided: bool | None = None  # the supervision's answer, once asked: retry?
            worker: ChunkRunner | None = None
            self._failure = None
            try:
                async with task_nursery() as finishers, self._open_worker() as worker:
                    if hasattr(worker, "on_replay"):
                        worker.on_replay = self._hooks.on_replay
                    await self._render_pending(worker, finishers)
                    if self._failure is not None:
                        job, error = self._failure
                        # Decided now, before this worker's cleanup: a first failure cancels
                        # the siblings at once.
                        decided = self._supervision.failed(job, error)
                        raise error from error.__cause__
            except Exception as exc:
                if decided is None:
                    # Raised by the worker's own resources (a page that crashed surfaces
                    # when its watcher is closed), or while opening them.
                    if not self.pending:
                        logger.debug("worker failed after its last chunk: %r", exc)
                        return
                    error = self._error(self.pending[0], exc, _frame_of(worker))
                    if self._supervision.failed(self.pending[0], error):
                        continue
                    raise error from error.__cause__
                if decided:
                    continue
                raise

    async def _render_pending(self, worker: ChunkRunner, finishers: trio.Nursery) -> None:
        """Render :attr:`pending` in order, each chunk finished and recorded in a task of
        ``finishers`` while the next one is captured; a recorded chunk leaves :attr:`pending`.
        The first failure (capture or finish) ends the pass, noted in :attr:`_failure` once
        every chunk still finishing is done; a chunk that fails to finish is noticed once the
        capture beside it is over (a chunk is short).

        A chunk that shares its encoder with the chunks after it (a segment) is complete only
        once the encoder has some of their frames: it is not waited for until its encoder's
        last chunk is.

        The capture runs in this task, outside any scope of ours, because the page it may
        open must outlive this call (Trio's scopes nest strictly).

        Cancellation:
            Every encoder still running is stopped and reaped.
        """
        async with AsyncExitStack() as held:
            outstanding: list[tuple[EncodingChunk, trio.Event]] = []
            queue = list(self.pending)
            for position, job in enumerate(queue):
                try:
                    current = await worker.render_frames(
                        job, self._hooks.report, self._out_dir, queue[position + 1 :]
                    )
                except Exception as exc:
                    self._fail(job, self._error(job, exc))
                    break
                held.push_async_callback(current.aclose)
                finished = trio.Event()
                finishers.start_soon(self._finish, current, finished)
                outstanding.append((current, finished))
                # The next chunk is captured while this one finishes; the ones before it must
                # be done by then, except segments waiting for the frames still to come.
                for chunk, done in outstanding[:-1]:
                    if not chunk.waits_for_later_frames:
                        await done.wait()
                outstanding = [(chunk, done) for chunk, done in outstanding if not done.is_set()]
                if self._failure is not None:
                    break
            await worker.end_segments()  # a run cut short: let its encoder complete what it has
            for _, done in outstanding:
                await done.wait()

    async def _finish(self, chunk: EncodingChunk, finished: trio.Event) -> None:
        """Finish and record ``chunk`` (it leaves :attr:`pending`), or note its failure."""
        try:
            result = await chunk.finish()
            await self._hooks.on_result(result)
            self.pending.remove(chunk.job)
        except Exception as exc:
            self._fail(chunk.job, self._error(chunk.job, exc))
        finally:
            finished.set()
            await chunk.aclose()

    def _error(self, job: ChunkJob, exc: Exception, frame: int | None = None) -> WorkerError:
        """``exc`` as the :class:`WorkerError` of ``job`` on this slot's worker."""
        return WorkerError.for_job(
            job, exc, frame, failed_at=trio.current_time(), worker=self.slot
        )

    def _fail(self, job: ChunkJob, error: WorkerError) -> None:
        """Note a failure of this pass; the earliest chunk's is the one decided."""
        if self._failure is None or job.index < self._failure[0].index:
            self._failure = (job, error)


def _frame_of(worker: object) -> int | None:
    frame = getattr(worker, "frame", None)
    return frame if isinstance(frame, int) else None
