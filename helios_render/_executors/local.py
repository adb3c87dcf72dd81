"""LocalExecutor: the chunk jobs of a render on this machine, one Trio nursery, a task per worker.

Each worker takes one run of consecutive chunks (see :func:`~helios_render._model.plan.assign_runs`)
and renders them on one browser and page, a new encoder per chunk. A worker that can
(:class:`PipelinedRunner`, such as :class:`~helios_render._executors.worker.ChunkWorker`)
captures the next chunk's frames while the previous chunk's encoder finishes and the job
folder checks it: at most one chunk is finishing per worker, and a chunk counts as done only
once recorded.
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
from ._base import Placement, ResultSink, Supervision
from .worker import FinishingChunk, open_chunk_worker

__all__ = ["ChunkRunner", "LocalExecutor", "PipelinedRunner"]

logger = logging.getLogger(__name__)


class ChunkRunner(Protocol):
    """What a worker slot renders chunks with (a
    :class:`~helios_render._executors.worker.ChunkWorker`, or a fake in tests)."""

    async def render(self, job: ChunkJob, report: Report, out_dir: Path) -> ChunkResult: ...


@runtime_checkable
class PipelinedRunner(ChunkRunner, Protocol):
    """A :class:`ChunkRunner` that can hand back a chunk still encoding."""

    async def render_frames(
        self, job: ChunkJob, report: Report, out_dir: Path, following: Sequence[ChunkJob] = ()
    ) -> FinishingChunk: ...

    async def end_segments(self) -> None:
        """End the input of an encoder shared with chunks that will not come (a run cut
        short), so that the chunks it has complete."""


#: Opens a :class:`ChunkRunner` whose resources are released when the block exits.
WorkerFactory = Callable[[], AbstractAsyncContextManager[ChunkRunner]]


class LocalExecutor:
    """Run chunk jobs on this machine with ``concurrency`` workers.

    Args:
        concurrency: Workers (each its own Chromium and FFmpeg).
        open_worker: How a worker is opened; tests pass fakes. By default a
            :class:`~helios_render._executors.worker.ChunkWorker` whose encoders get their share of
            this machine's CPUs (:func:`~helios_render._model.plan.encoder_threads`).
    """

    def __init__(self, concurrency: int, *, open_worker: WorkerFactory | None = None) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.concurrency = concurrency
        self._open_worker = open_worker or functools.partial(
            open_chunk_worker, encoder_threads=encoder_threads(concurrency)
        )

    async def run(
        self,
        jobs: Sequence[ChunkJob],
        *,
        report: Report,
        on_result: ResultSink,
        on_retry: Callable[[], object],
        retries: int,
        scratch: Path | None = None,
        on_placement: Placement | None = None,
        on_replay: Report | None = None,
    ) -> int:
        """Render ``jobs``; return how many workers ran. Every chunk is on this machine, so
        ``on_placement`` is not called.

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
                for slot, run in enumerate(runs):
                    nursery.start_soon(
                        self._run_worker, slot, run, supervision, report, on_result, out_dir,
                        on_replay,
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
        slot: int,
        run: list[ChunkJob],
        supervision: Supervision,
        report: Report,
        on_result: ResultSink,
        out_dir: Path,
        on_replay: Report | None,
    ) -> None:
        pending = deque(run)
        while pending:
            decided: bool | None = None  # the supervision's answer, once asked: retry?
            worker: ChunkRunner | None = None
            try:
                async with task_nursery() as finishers, self._open_worker() as worker:
                    if on_replay is not None and hasattr(worker, "on_replay"):
                        worker.on_replay = on_replay
                    if isinstance(worker, PipelinedRunner):
                        failed = await _run_pipelined(
                            worker, finishers, pending, report, on_result, out_dir
                        )
                        if failed is not None:
                            job, error = failed
                            error = WorkerError.for_job(job, error, worker=slot)
                            decided = supervision.failed(job, error)
                            raise error from error.__cause__
                    while pending:
                        job = pending[0]
                        try:
                            result = await worker.render(job, report, out_dir)
                            await on_result(result)
                        except Exception as exc:
                            error = WorkerError.for_job(
                                job, exc, _frame_of(worker), failed_at=trio.current_time(),
                                worker=slot,
                            )
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
                    error = WorkerError.for_job(
                        pending[0], exc, _frame_of(worker), failed_at=trio.current_time(),
                        worker=slot,
                    )
                    if supervision.failed(pending[0], error):
                        continue
                    raise error from error.__cause__
                if decided:
                    continue
                raise


async def _run_pipelined(
    worker: PipelinedRunner,
    finishers: trio.Nursery,
    pending: deque[ChunkJob],
    report: Report,
    on_result: ResultSink,
    out_dir: Path,
) -> tuple[ChunkJob, WorkerError] | None:
    """Render ``pending`` in order, capturing chunk k+1 while chunk k finishes and is recorded
    (in a task of ``finishers``); remove each chunk from ``pending`` once recorded. Return the
    first failure (its job and error) instead of raising it, with ``pending[0]`` the first
    chunk not recorded; ``None`` when all are done. A chunk that fails to finish is noticed
    once the capture beside it is over (a chunk is short).

    A chunk that shares its encoder with the chunks after it (a segment) is complete only
    once the encoder has some of their frames: it is not waited for until its encoder's last
    chunk is.

    The capture runs in this task, outside any scope of ours, because the page it may open
    must outlive this call (Trio's scopes nest strictly).

    Cancellation:
        Every encoder still running is stopped and reaped.
    """
    failures: list[tuple[ChunkJob, WorkerError]] = []
    recorded: list[ChunkJob] = []
    async with AsyncExitStack() as held:
        outstanding: list[tuple[FinishingChunk, trio.Event]] = []
        queue = list(pending)
        for position, job in enumerate(queue):
            try:
                current = await worker.render_frames(job, report, out_dir, queue[position + 1 :])
            except Exception as exc:
                failures.append(
                    (job, WorkerError.for_job(job, exc, failed_at=trio.current_time()))
                )
                break
            held.push_async_callback(current.aclose)
            finished = trio.Event()
            finishers.start_soon(
                _finish_chunk, current, on_result, failures, recorded, finished
            )
            outstanding.append((current, finished))
            # The next chunk is captured while this one finishes; the ones before it must be
            # done by then, except segments waiting for the frames still to come.
            for chunk, done in outstanding[:-1]:
                if not chunk.waits_for_later_frames:
                    await done.wait()
            outstanding = [(chunk, done) for chunk, done in outstanding if not done.is_set()]
            if failures:
                break
        await worker.end_segments()  # a run cut short: let its encoder complete what it has
        for _, done in outstanding:
            await done.wait()
    for job in recorded:
        pending.remove(job)
    if failures:
        return min(failures, key=lambda failure: failure[0].index)
    return None


async def _finish_chunk(
    chunk: FinishingChunk,
    on_result: ResultSink,
    failures: list[tuple[ChunkJob, WorkerError]],
    recorded: list[ChunkJob],
    finished: trio.Event,
) -> None:
    """Finish and record ``chunk`` (into ``recorded``), or add its failure to ``failures``."""
    try:
        result = await chunk.finish()
        await on_result(result)
        recorded.append(chunk.job)
    except Exception as exc:
        failures.append(
            (chunk.job, WorkerError.for_job(chunk.job, exc, failed_at=trio.current_time()))
        )
    finally:
        finished.set()
        await chunk.aclose()


def _frame_of(worker: object) -> int | None:
    frame = getattr(worker, "frame", None)
    return frame if isinstance(frame, int) else None
