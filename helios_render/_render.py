"""render(): prepare (the machine's facts, the props, the composition's timing) -> plan (pure)
-> run (the chunk jobs on an executor, into the job folder) -> stitch; and the render pool
(:func:`open_pool`) that runs many renders on shared warm workers, of which ``render()`` is a
pool of one."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import trio

from ._environment import probe_environment
from ._exceptions import OptionsError, WorkerError
from ._executors import Executor, LocalExecutor, RunHooks
from ._executors.dask import DaskExecutor
from ._executors.local import WarmWorkers
from ._executors.worker import open_chunk_worker
from ._inspect import preflight
from ._model.job import ChunkResult
from ._model.options import RenderOptions
from ._model.plan import RenderPlan, plan_render
from ._model.progress import ProgressAggregator, RenderProgress, WorkerProgress
from ._nursery import task_nursery
from ._output.jobs import JobFolder, open_job_folder
from ._output.stitch import stitch
from ._props_source import check_render_props
from ._tempdirs import sweep_stale_dirs
from ._timing import resolve_page_timing

__all__ = [
    "PoolStatistics",
    "RenderPool",
    "RenderResult",
    "open_pool",
    "render",
    "render_still",
    "render_sync",
    "resolve_page_timing",
]

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[RenderProgress], object]


@dataclass(frozen=True, slots=True)
class RenderResult:
    """What a finished render produced."""

    output: Path
    frames: int
    fps: Fraction
    width: int
    height: int
    workers: int
    elapsed: float
    #: Frames taken from the job folder of an interrupted render instead of rendered again.
    frames_reused: int = 0
    #: Frames whose image was the frame before's (static frames), reused without a capture.
    frames_skipped: int = 0

    @property
    def frames_per_second(self) -> float:
        """Render throughput: frames rendered in this run over wall-clock seconds."""
        rendered = self.frames - self.frames_reused
        return rendered / self.elapsed if self.elapsed > 0 else 0.0


async def render(
    options: RenderOptions,
    *,
    on_progress: ProgressCallback | None = None,
    executor: Executor | None = None,
    cluster: str | None = None,
) -> RenderResult:
    """Render ``options.source`` to ``options.output``: a pool of one render
    (:func:`open_pool`), so one render and many go through the same code.

    The frames are cut into chunks (fixed by the plan); an executor renders the chunks that
    are not finished yet (concurrent workers under one nursery by default), each finished
    chunk is kept in a job folder beside the output, and the chunks are joined by stream copy
    into a file that is renamed over the output only when everything succeeded. A rerun of an
    interrupted render with the same settings resumes from the job folder.

    Args:
        options: What to render.
        on_progress: Called with a :class:`RenderProgress` as the render advances: stage,
            monotonic progress that ends at exactly 1.0, frames done (reused included), fps
            and ETA.
        executor: Where the chunks run; default a :class:`LocalExecutor` with
            ``options.concurrency`` workers.
        cluster: Render on a Dask cluster instead (``local:N`` or ``tcp://HOST:PORT``;
            default ``options.cluster``): a :class:`DaskExecutor`. Needs
            ``helios-render[dask]``.

    Raises:
        UsageError: Bad options or environment (nothing was started).
        WorkerError: A chunk failed; ``__cause__`` is the original error and the message
            names the chunk and the frame.
        RenderError: Stitching failed.

    Cancellation:
        Every worker is cancelled; each Chromium and FFmpeg is stopped and reaped, the output
        path is left as it was, and the finished chunks stay in the job folder for a resume.
    """
    async with open_pool(executor=executor, cluster=cluster) as pool:
        # One render: its workers close as soon as its chunks are done, while it stitches.
        pool._close_after_run = True
        return await pool.render(options, on_progress=on_progress)


@dataclass(frozen=True, slots=True)
class PoolStatistics:
    """What a :class:`RenderPool` did so far."""

    #: Renders started, and those not finished yet.
    renders: int
    renders_in_flight: int
    #: Local workers started (at most the pool's concurrency; 0 on a cluster).
    workers: int
    #: Browsers the local workers launched: one per worker, plus one per crash (retries) or
    #: change of browser settings (another size, browser or capture path).
    browsers_launched: int


class RenderPool:
    """Renders sharing warm workers. Make it with :func:`open_pool`.

    On this machine (a :class:`LocalExecutor`, the default), up to ``concurrency`` workers
    live in the pool's nursery and take the chunks of every render in flight, in the order
    the renders asked; each keeps its browser across renders (a new page for other props or
    another composition) and its page across the consecutive chunks of one render. The tools'
    versions and the capture path are asked once per pool. With another executor (a
    :class:`DaskExecutor`), each render's chunks go to ``executor.run``, concurrently.
    """

    def __init__(
        self,
        nursery: trio.Nursery,
        *,
        concurrency: int | None = None,
        executor: Executor | None = None,
        cluster: str | None = None,
    ) -> None:
        if concurrency is not None and concurrency < 1:
            raise OptionsError(f"concurrency must be at least 1, got {concurrency}")
        self._nursery = nursery
        self._concurrency = concurrency
        self._executor = executor
        self._cluster = cluster
        self._workers: WarmWorkers | None = None
        self._closed = False
        #: What the tools said of themselves (see :func:`probe_environment`).
        self._facts: dict[Any, Any] = {}
        self._renders = 0
        self._in_flight = 0
        #: A pool of one render (``render()``): close the workers once its chunks are done.
        self._close_after_run = False

    @property
    def concurrency(self) -> int | None:
        """The workers on this machine: as given, or the first render's; ``None`` before
        it when not given (or on a cluster)."""
        if self._workers is not None:
            return self._workers.concurrency
        if self._concurrency is not None:
            return self._concurrency
        if isinstance(self._executor, LocalExecutor):
            return self._executor.concurrency
        return None

    def statistics(self) -> PoolStatistics:
        """What the pool did so far."""
        workers = self._workers.statistics() if self._workers is not None else None
        return PoolStatistics(
            renders=self._renders,
            renders_in_flight=self._in_flight,
            workers=workers.workers if workers else 0,
            browsers_launched=workers.browsers_launched if workers else 0,
        )

    def _close(self) -> None:
        self._closed = True
        if self._workers is not None:
            self._workers.close()

    def _warm_workers(self, plan: RenderPlan, executor: LocalExecutor | None) -> WarmWorkers:
        if self._workers is None:
            if executor is None:
                executor = LocalExecutor(self._concurrency or plan.concurrency)
            self._workers = executor.warm_workers(self._nursery)
        return self._workers

    async def prepare(
        self,
        options: RenderOptions,
        *,
        check_props: bool = True,
        exclude: frozenset[Path] = frozenset(),
    ) -> RenderPlan:
        """The plan of ``options`` (as :func:`prepare`, with the tools' answers the pool
        already has): what :meth:`render` will do, and its digest, before anything renders.

        Args:
            options: The render.
            check_props: Check the props against the composition's schema (``False`` when
                the caller did, as a batch does for every row at once).
            exclude: Files left out of the composition's digest besides the output (see
                :func:`probe_environment`).

        Raises:
            UsageError: Bad options or environment.
            WorkerError: The page failed to load while its timing or schema was read.
        """
        return await prepare(
            options, memo=self._facts, check_props=check_props, exclude=exclude
        )

    async def render(
        self,
        options: RenderOptions,
        *,
        on_progress: ProgressCallback | None = None,
        plan: RenderPlan | None = None,
    ) -> RenderResult:
        """Render ``options`` with the pool's workers; may be called from many tasks at once.
        As :func:`render` (``options.concurrency`` is the pool's, not the render's);
        ``plan`` is :meth:`prepare`'s for these options, when the caller has it.

        Raises:
            UsageError: Bad options or environment (nothing was started).
            WorkerError: A chunk of this render failed (the other renders go on).
            RenderError: Stitching failed.
            RuntimeError: The pool is closed.

        Cancellation:
            This render's chunks are stopped (their FFmpeg reaped, their pages closed), the
            output path is left as it was and the finished chunks stay for a resume; the
            workers go on with the other renders.
        """
        if self._closed:
            raise RuntimeError("the render pool is closed")
        started = time.monotonic()
        self._renders += 1
        self._in_flight += 1
        try:
            executor = self._executor
            spec = self._cluster or options.cluster
            if executor is None and spec is not None:
                executor = DaskExecutor.from_options(spec, options)
            if plan is None:
                plan = await prepare(options, memo=self._facts)
            job = open_job_folder(plan, options.resume)
            with job.in_use():
                progress = ProgressAggregator(
                    [chunk.frames for chunk in plan.chunks], on_progress, done=set(job.records)
                )
                if executor is None or isinstance(executor, LocalExecutor):
                    runner: Executor = self._warm_workers(plan, executor)
                else:
                    runner = executor
                workers = await run(plan, job, runner, progress)
                if self._close_after_run:
                    self._close()
                await stitch(plan, job.chunk_files(), job.media_records(), job.partial_dir,
                             progress.set_stage)
                progress.set_stage("done")
        finally:
            self._in_flight -= 1
        return RenderResult(
            output=plan.output,
            frames=plan.frames,
            fps=plan.fps,
            width=plan.width,
            height=plan.height,
            workers=workers,
            elapsed=time.monotonic() - started,
            frames_reused=progress.frames_reused,
            frames_skipped=progress.frames_skipped,
        )


@asynccontextmanager
async def open_pool(
    concurrency: int | None = None,
    *,
    executor: Executor | None = None,
    cluster: str | None = None,
) -> AsyncIterator[RenderPool]:
    """A :class:`RenderPool` owning its nursery: ``await pool.render(options)`` from as many
    tasks as you like; the chunks of every render in flight share the pool's workers.

    Args:
        concurrency: Workers on this machine; ``None`` takes the first render's
            (``options.concurrency``, else one per CPU as memory allows).
        executor: Where chunks run: a :class:`LocalExecutor` (its concurrency and workers),
            or another executor such as a :class:`DaskExecutor` (each render's chunks go to
            its ``run``).
        cluster: A Dask cluster for every render (as ``render(cluster=...)``).

    Leaving the block waits for nothing: the renders are the caller's tasks and have ended.
    The workers then close their browsers; every Chromium and FFmpeg is stopped and reaped.

    Cancellation:
        Every render and worker is cancelled; every Chromium and FFmpeg is stopped and reaped
        before this returns.
    """
    async with task_nursery() as nursery:
        pool = RenderPool(
            nursery, concurrency=concurrency, executor=executor, cluster=cluster
        )
        try:
            yield pool
        except BaseException:
            nursery.cancel_scope.cancel()
            raise
        finally:
            pool._close()


async def prepare(
    options: RenderOptions,
    *,
    memo: dict[Any, Any] | None = None,
    check_props: bool = True,
    exclude: frozenset[Path] = frozenset(),
) -> RenderPlan:
    """Everything decided before a chunk renders: stale temp folders of killed renders swept,
    the machine's facts gathered (:func:`probe_environment`), the props checked against the
    composition's props schema (its defaults filled in), the composition's own size, fps and
    length read where the user gave none (with the preflight's inspection when it runs), and
    the pure plan.

    Raises:
        UsageError: Bad options or environment (nothing was started).
        WorkerError: The page failed to load while its timing was read.
        PreflightError: ``options.strict`` and the preflight warned.
    """
    sweep_stale_dirs()
    env = await probe_environment(options, memo=memo, exclude=exclude)
    if check_props:
        options = await check_render_props(options, env)
    if options.runs_preflight:
        options, env = await preflight(options, env)
        return plan_render(options, env)
    return plan_render(await resolve_page_timing(options, env), env)


async def run(
    plan: RenderPlan, job: JobFolder, executor: Executor, progress: ProgressAggregator
) -> int:
    """Render the job folder's pending chunks on ``executor``: each finished chunk is recorded
    in the folder, and every report goes through ``progress``. Returns how many workers ran.

    Raises:
        WorkerError: A chunk failed (its siblings were stopped first).

    Cancellation:
        Every worker is cancelled, and its Chromium and FFmpeg stopped and reaped.
    """
    progress.announce()
    send, receive = trio.open_memory_channel[WorkerProgress](math.inf)
    hooks = RunHooks(
        on_result=_counting_skipped(job.record, progress),
        report=lambda chunk, p: send.send_nowait(WorkerProgress(chunk, p)),
        on_retry=progress.count_retry,
        retries=plan.retries,
        scratch=job.partial_dir,
        on_placement=progress.set_machine,
        on_replay=lambda chunk, p: send.send_nowait(WorkerProgress(chunk, p, replaying=True)),
    )
    async with task_nursery() as nursery:
        nursery.start_soon(progress.run, receive)
        async with send:
            workers = await executor.run(job.pending_jobs(), hooks)
    return workers


def _counting_skipped(
    record: Callable[[ChunkResult], Awaitable[object]], progress: ProgressAggregator
) -> Callable[[ChunkResult], Awaitable[None]]:
    """``record``, counting each finished chunk's static frames in ``progress`` first."""

    async def on_result(result: ChunkResult) -> None:
        progress.count_skipped(result.frames_skipped)
        await record(result)

    return on_result


async def render_still(options: RenderOptions, frame: int) -> Path:
    """Render one frame of the composition to a PNG file at ``options.output``.

    Raises:
        UsageError: Bad options (the output must end in ``.png``).
        RenderError: The page failed.

    Cancellation:
        Chromium is stopped and reaped; the output path is left as it was.
    """
    if frame < 0:
        raise OptionsError(f"frame must be 0 or more, got {frame}")
    sweep_stale_dirs()
    env = await probe_environment(options, video=False)
    options = await check_render_props(options, env)
    job = plan_render(await resolve_page_timing(options, env), env).jobs[0]
    output = options.output_path
    temporary = output.with_name(f".{output.name}.helios-still")
    try:
        async with open_chunk_worker() as worker:
            image = await worker.still(job, frame)
        await trio.Path(temporary).write_bytes(image)
        temporary.replace(output)
    except WorkerError as exc:
        # A still is one frame: its cause is what the user needs, not the chunk around it.
        cause = exc.__cause__
        if isinstance(cause, Exception):
            raise cause from cause.__cause__
        raise
    finally:
        temporary.unlink(missing_ok=True)
    return output


def render_sync(
    options: RenderOptions,
    *,
    on_progress: ProgressCallback | None = None,
    executor: Executor | None = None,
    cluster: str | None = None,
) -> RenderResult:
    """Blocking :func:`render` for scripts: runs its own Trio loop."""
    return trio.run(
        lambda: render(options, on_progress=on_progress, executor=executor, cluster=cluster)
    )
