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
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import trio

from .._exceptions import MediaError, PageError, UsageError, WorkerError
from .._model.job import ChunkJob, ChunkResult, Report, assign_runs
from .._model.plan import encoder_threads
from .._nursery import task_nursery
from .._tempdirs import make_private_dir
from ._base import RunHooks, Supervision
from .worker import ChunkWorker, open_chunk_worker

__all__ = [
    "ChunkRunner",
    "EncodingChunk",
    "LocalExecutor",
    "WarmWorkers",
    "WorkerStatistics",
    "open_warm_workers",
]

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

    def warm_workers(self, nursery: trio.Nursery) -> WarmWorkers:
        """:class:`WarmWorkers` of this executor in ``nursery`` (the caller closes them)."""
        return WarmWorkers(nursery, self.concurrency, self._open_worker)

    def open_workers(self) -> AbstractAsyncContextManager[WarmWorkers]:
        """Workers kept warm across runs: ``await workers.run(jobs, hooks)`` may be called
        from many tasks at once, and the chunks of every run in flight share the workers
        (see :class:`WarmWorkers`). Leaving the block stops and reaps every worker."""
        return open_warm_workers(self.concurrency, self._open_worker)

    async def run(self, jobs: Sequence[ChunkJob], hooks: RunHooks) -> int:
        """Render ``jobs``; return how many workers ran. Every chunk is on this machine, so
        ``hooks.on_placement`` is not called. (Warm workers for this run only: the same code
        as a pool's.)

        Raises:
            WorkerError: The first chunk to fail, once every sibling has stopped.

        Cancellation:
            Every worker is cancelled and has reaped its processes before this returns.
        """
        async with self.open_workers() as workers:
            return await workers.run(jobs, hooks)


@asynccontextmanager
async def open_warm_workers(
    concurrency: int, open_worker: WorkerFactory
) -> AsyncIterator[WarmWorkers]:
    """:class:`WarmWorkers` owning their nursery: when the block exits, idle workers are
    closed (browsers stopped and reaped); when it exits with an error or is cancelled, every
    worker is cancelled first.

    Cancellation:
        Every worker is cancelled and has reaped its processes before this returns.
    """
    async with task_nursery() as nursery:
        workers = WarmWorkers(nursery, concurrency, open_worker)
        try:
            yield workers
        except BaseException:
            nursery.cancel_scope.cancel()
            raise
        finally:
            workers.close()


@dataclass(frozen=True, slots=True)
class WorkerStatistics:
    """What :class:`WarmWorkers` did so far."""

    #: Worker slots started (at most the concurrency).
    workers: int
    #: Browsers launched by every worker (the first of each worker, and one per crash or
    #: change of browser settings).
    browsers_launched: int
    #: Runs submitted (each a render's pending chunks) and runs still in flight.
    runs: int
    runs_in_flight: int


class _RunState:
    """One :meth:`WarmWorkers.run`: its hooks, supervision, the cancel scopes of its items in
    flight, and how many of its items are not done. Cancelling it (a first failure, or the
    caller) cancels its items only: the workers go on with other runs.

    It is the ``cancel`` of its :class:`~._base.Supervision` (``cancel()``,
    ``cancel_called``).
    """

    def __init__(self, hooks: RunHooks, out_dir: Path, items: int) -> None:
        self.hooks = hooks
        self.out_dir = out_dir
        self.supervision = Supervision(self, hooks.retries, hooks.on_retry)
        self.cancel_called = False
        self.scopes: set[trio.CancelScope] = set()
        self.left = items
        self.done = trio.Event()
        #: Errors that are not a chunk's failure (a bug): raised by :meth:`WarmWorkers.run`.
        self.unexpected: list[BaseException] = []
        #: Drops this run's items still queued (set by :class:`WarmWorkers`).
        self.drop_queued: Callable[[_RunState], None] = lambda state: None

    def cancel(self) -> None:
        if self.cancel_called:
            return
        self.cancel_called = True
        for scope in self.scopes:
            scope.cancel()
        self.drop_queued(self)

    @property
    def stopping(self) -> bool:
        return self.supervision.stopping

    def item_done(self) -> None:
        self.left -= 1
        if self.left <= 0:
            self.done.set()


@dataclass(slots=True)
class _Item:
    """One run of consecutive chunks of one :meth:`WarmWorkers.run`, for one worker."""

    state: _RunState
    jobs: list[ChunkJob]


class WarmWorkers:
    """Up to ``concurrency`` workers kept across runs, in the caller's nursery (see
    :func:`open_warm_workers`).

    :meth:`run` splits its jobs into runs of consecutive chunks (at most ``concurrency``,
    :func:`~helios_render._model.job.assign_runs`) and queues them; each worker takes the next
    queued run of any render, in order. A worker keeps its browser from one run to the next
    (a browser for other browser settings, or after a crash, is a fresh one), opens a page
    per run and keeps it across the run's consecutive chunks. Workers are started as work
    arrives, never more than ``concurrency``.

    Each run is supervised on its own (:class:`~._base.Supervision`): its first failure
    cancels its other chunks only; cancelling one :meth:`run` cancels its chunks only.
    """

    def __init__(
        self, nursery: trio.Nursery, concurrency: int, open_worker: WorkerFactory
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.concurrency = concurrency
        self._nursery = nursery
        self._open_worker = open_worker
        self._queue: deque[_Item] = deque()
        self._wakeup = trio.lowlevel.ParkingLot()
        self._slots: list[_Slot] = []
        self._idle = 0
        self._closed = False
        self._runs = 0
        self._in_flight = 0

    def statistics(self) -> WorkerStatistics:
        """What the workers did so far."""
        return WorkerStatistics(
            workers=len(self._slots),
            browsers_launched=sum(slot.launched for slot in self._slots),
            runs=self._runs,
            runs_in_flight=self._in_flight,
        )

    def close(self) -> None:
        """No more runs: idle workers close their browsers and end (idempotent)."""
        self._closed = True
        self._wakeup.unpark_all()

    async def run(self, jobs: Sequence[ChunkJob], hooks: RunHooks) -> int:
        """Render ``jobs`` on the warm workers; return how many workers rendered them (runs
        of consecutive chunks). Same promises as :meth:`LocalExecutor.run`.

        Raises:
            WorkerError: The first chunk of this run to fail, once its siblings stopped.
            RuntimeError: The workers are closed.

        Cancellation:
            This run's chunks are cancelled (queued ones dropped, those being rendered
            stopped, their encoders reaped and their pages closed) before this returns; the
            workers and their browsers stay for other runs.
        """
        if self._closed:
            raise RuntimeError("these workers are closed")
        runs = assign_runs(jobs, self.concurrency)
        if not runs:
            return 0
        own_scratch = hooks.scratch is None
        out_dir = hooks.scratch or make_private_dir("work")
        state = _RunState(hooks, out_dir, len(runs))
        state.drop_queued = self._drop_queued
        self._runs += 1
        self._in_flight += 1
        try:
            for jobs_of_run in runs:
                self._queue.append(_Item(state, jobs_of_run))
            self._wakeup.unpark(count=min(self._idle, len(runs)))
            self._start_slots()
            try:
                await state.done.wait()
            except BaseException:
                state.cancel()
                with trio.CancelScope(shield=True):
                    await state.done.wait()
                raise
        finally:
            self._in_flight -= 1
            if own_scratch:
                shutil.rmtree(out_dir, ignore_errors=True)
        first = state.supervision.first_failure
        if first is not None:
            raise first from first.__cause__
        if state.unexpected:
            error = state.unexpected[0]
            raise error
        return len(runs)

    def _drop_queued(self, state: _RunState) -> None:
        kept: deque[_Item] = deque()
        while self._queue:
            item = self._queue.popleft()
            if item.state is state:
                state.item_done()
            else:
                kept.append(item)
        self._queue = kept

    def _start_slots(self) -> None:
        """Start a worker for each queued item that no idle worker will take (up to the
        concurrency), handing it that item: the k-th new worker renders the k-th run."""
        while len(self._queue) > self._idle and len(self._slots) < self.concurrency:
            slot = _Slot(len(self._slots), self._open_worker)
            self._slots.append(slot)
            self._nursery.start_soon(self._serve, slot, self._queue.popleft())

    async def _next_item(self) -> _Item | None:
        while not self._queue:
            if self._closed:
                return None
            await self._wakeup.park()
        return self._queue.popleft()

    async def _serve(self, slot: _Slot, first: _Item) -> None:
        """A worker's life: its first item, then queued items until the workers are closed
        (its browser closed politely), or until it is cancelled (its browser stopped at
        once)."""
        item: _Item | None = first
        try:
            while item is not None:
                await slot.render(item)
                self._idle += 1
                try:
                    item = await self._next_item()
                finally:
                    self._idle -= 1
        except BaseException:
            await slot.aclose(abort=True)
            raise
        await slot.aclose(abort=False)


class _Slot:
    """One worker kept across runs: its :class:`ChunkRunner`, opened when first needed and
    again after a failure (a fresh browser)."""

    def __init__(self, index: int, open_worker: WorkerFactory) -> None:
        self.index = index
        self._open_worker = open_worker
        self._held: AsyncExitStack | None = None
        self.worker: ChunkRunner | None = None
        #: Browsers launched by this slot's workers.
        self.launched = 0

    async def _ensure_worker(self) -> ChunkRunner:
        if self.worker is None:
            held = AsyncExitStack()
            self.worker = await held.enter_async_context(self._open_worker())
            self._held = held
            if not hasattr(self.worker, "ensure_session"):
                self.launched += 1  # a worker that launches its browser as it opens
        return self.worker

    async def discard(self, *, abort: bool = True) -> None:
        """Close the worker (its browser stopped and reaped); the next item opens a new one.
        ``abort`` (after a failure, or when cancelled) stops the browser at once; otherwise
        it is closed politely. Errors of its resources (a page that crashed surfaces when its
        watcher is closed) are logged: every chunk it rendered is already recorded or
        failed."""
        held, worker = self._held, self.worker
        self._held = self.worker = None
        if held is None:
            return
        try:
            try:
                if abort and isinstance(worker, ChunkWorker):
                    await worker.aclose(abort=True)
            finally:
                await held.aclose()
        except Exception as exc:
            logger.debug("worker %d failed as it closed: %r", self.index, exc, exc_info=True)

    async def aclose(self, *, abort: bool) -> None:
        # No scope of its own around the close (a shield was one): the worker's resources
        # were entered in this task and hold a nursery, whose scope must be the innermost as
        # it exits (Trio's scopes nest strictly; exiting it inside a newer scope corrupts
        # Trio's state). Under cancellation the close still stops and reaps every process:
        # that part is shielded where the processes are (``_process``, the browser).
        await self.discard(abort=abort)

    async def render(self, item: _Item) -> None:
        """Render one item (a run of consecutive chunks of one render), retrying as its
        supervision decides; a failure is the render's, never the slot's."""
        state = item.state
        try:
            await _WorkerSlot(self, item).run()
        except Exception as exc:
            if state.supervision.first_failure is None:
                logger.debug("worker %d: unexpected %r", self.index, exc)
                state.unexpected.append(exc)
                state.cancel()
        finally:
            state.item_done()


class _WorkerSlot:
    """One run of consecutive chunks of one render on one worker slot: renders them in order
    on the slot's worker, capturing chunk k+1 while chunk k finishes and is recorded; after a
    retried failure, goes on with the chunks not recorded on a freshly opened worker.

    The browser and the composition's server are made ready outside the render's cancel scope
    (they outlive it, for the next render); the page, the encoders and the frames are inside
    it, and the page is closed before it ends.

    A pass (:meth:`_render_pending`) does not stop at a failure at once: the chunks already
    finishing beside it are finished and recorded (kept for a resume), then the failure of
    the earliest chunk is put to the :class:`~._base.Supervision`, before the worker is
    closed: retry, or stop the render.

    Attributes:
        slot: The worker's number (from 0), named in its errors.
        pending: The run's chunks not recorded yet, in order.
    """

    def __init__(self, slot: _Slot, item: _Item) -> None:
        self._slot = slot
        self.slot = slot.index
        self.pending = deque(item.jobs)
        self._state = item.state
        self._supervision = item.state.supervision
        self._hooks = item.state.hooks
        self._out_dir = item.state.out_dir
        #: This pass's failure of the earliest chunk (capture or finish), with its job.
        self._failure: tuple[ChunkJob, WorkerError] | None = None

    async def run(self) -> None:
        """Render every chunk of the run, retrying as the supervision decides.

        A failure that is not retried is recorded by the supervision (which stops the render)
        and this returns.

        Cancellation:
            The render's cancellation stops this run's chunks (every encoder reaped, the
            page closed); the worker's cancellation also closes its browser.
        """
        slot = self._slot
        while self.pending and not self._state.stopping:
            decided: bool | None = None  # the supervision's answer, once asked: retry?
            worker: ChunkRunner | None = None
            self._failure = None
            try:
                worker = await slot._ensure_worker()
                ensure = getattr(worker, "ensure_session", None)
                if ensure is not None and await ensure(self.pending[0]):
                    slot.launched += 1
                if self._state.stopping:
                    return
                if hasattr(worker, "on_replay"):
                    worker.on_replay = self._hooks.on_replay
                with trio.CancelScope() as scope:
                    self._state.scopes.add(scope)
                    try:
                        async with task_nursery() as finishers:
                            try:
                                await self._render_pending(worker, finishers)
                                if self._failure is not None:
                                    job, error = self._failure
                                    # Decided now, before this worker's cleanup: a first
                                    # failure cancels the siblings at once.
                                    decided = self._supervision.failed(job, error)
                                    raise error from error.__cause__
                            finally:
                                # The page (its tasks) was opened in this block: it closes
                                # in it (Trio's scopes nest strictly).
                                close_page = getattr(worker, "close_page", None)
                                if close_page is not None:
                                    await close_page()
                    finally:
                        self._state.scopes.discard(scope)
                if scope.cancelled_caught:
                    return  # the render stopped: its other chunks are not ours to render
            except Exception as exc:
                frame = _frame_of(worker)
                if decided is None or _needs_fresh_browser(exc):
                    # A fresh browser for what comes next (a retry, or another render).
                    await slot.discard()
                if decided is None:
                    # Raised by the worker's own resources (a page that crashed surfaces
                    # when its watcher is closed), or while opening them.
                    if not self.pending:
                        logger.debug("worker failed after its last chunk: %r", exc)
                        return
                    error = self._error(self.pending[0], exc, frame)
                    if self._supervision.failed(self.pending[0], error):
                        continue
                    return
                if decided:
                    continue
                return

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


def _needs_fresh_browser(exc: BaseException) -> bool:
    """Whether a worker's browser is suspect after ``exc`` (its page is closed either way):
    kept after the page's own error (it threw, a media file or the source is bad), replaced
    after a crash, a hung frame (a renderer may still be busy) or anything else."""
    if isinstance(exc, BaseExceptionGroup):
        return any(_needs_fresh_browser(inner) for inner in exc.exceptions)
    cause = exc.__cause__ if isinstance(exc, WorkerError) else exc
    return not isinstance(cause, PageError | MediaError | UsageError)


def _frame_of(worker: object) -> int | None:
    frame = getattr(worker, "frame", None)
    return frame if isinstance(frame, int) else None
