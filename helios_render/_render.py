"""render(): prepare (the machine's facts, the composition's timing) -> plan (pure) -> run (the
chunk jobs on an executor, into the job folder) -> stitch."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import trio

from ._environment import probe_environment
from ._exceptions import OptionsError, WorkerError
from ._executors import Executor, LocalExecutor, RunHooks
from ._executors.dask import DaskExecutor
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

__all__ = ["RenderResult", "render", "render_still", "render_sync", "resolve_page_timing"]

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
    """Render ``options.source`` to ``options.output``.

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
    started = time.monotonic()
    spec = cluster or options.cluster
    if executor is None and spec is not None:
        executor = DaskExecutor.from_options(spec, options)
    plan = await prepare(options)
    job = open_job_folder(plan, options.resume)
    with job.in_use():
        progress = ProgressAggregator(
            [chunk.frames for chunk in plan.chunks], on_progress, done=set(job.records)
        )
        workers = await run(plan, job, executor or LocalExecutor(plan.concurrency), progress)
        await stitch(plan, job.chunk_files(), job.media_records(), job.partial_dir,
                     progress.set_stage)
        progress.set_stage("done")
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


async def prepare(options: RenderOptions) -> RenderPlan:
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
    env = await probe_environment(options)
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
