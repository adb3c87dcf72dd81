"""The local executor with fake in-process workers: failure, cancellation, progress, reaping.

The fakes go through the executor's one supervision loop, the one real workers go through:
a fake renders a chunk's frames in ``render_frames`` and hands back a chunk already complete."""

from __future__ import annotations

import math
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import pytest
import trio
import trio.lowlevel
from hypothesis import given, settings
from hypothesis import strategies as st

from helios_render import (
    BrowserError,
    CdpCommandError,
    CdpConnectionClosed,
    FrameTimeoutError,
    PageError,
    ProgressAggregator,
    RenderProgress,
    WorkerError,
    WorkerProgress,
)
from helios_render._executors import LocalExecutor, RunHooks
from helios_render._model.job import (
    Chunk,
    ChunkJob,
    ChunkResult,
    EncoderSettings,
    PageConfig,
    Report,
    UrlSource,
)
from helios_render._model.plan import plan_chunks
from helios_render._nursery import task_nursery
from helios_render._process import spawn

from ..conftest import wait_no_processes

#: A fake worker: renders one job, reporting progress; raises to fail.
Work = Callable[[ChunkJob, Report], Awaitable[None]]


def _jobs(chunks: list[Chunk]) -> list[ChunkJob]:
    return [
        ChunkJob(
            chunk=chunk,
            source=UrlSource("about:blank"),
            page=PageConfig(url="", width=64, height=64, fps=Fraction(30)),
            encoder=EncoderSettings(fps=Fraction(30), width=64, height=64),
            quality=90,
            begin_frame=False,
            digest="test",
        )
        for chunk in chunks
    ]


def one_chunk_each(frames: int, workers: int) -> list[Chunk]:
    """``workers`` chunks of about the same size: each worker gets one."""
    return plan_chunks(0, frames, -(-frames // workers))


def fail(job: ChunkJob, frame: int | None, exc: Exception) -> WorkerError:
    """What a real worker raises: the chunk, the frame, the cause."""
    return WorkerError.for_job(job, exc, frame, failed_at=trio.current_time())


@dataclass
class CompleteChunk:
    """A chunk whose file is written as soon as its frames are: finishing it takes no time."""

    job: ChunkJob
    waits_for_later_frames: bool = False

    async def finish(self) -> ChunkResult:
        job = self.job
        return ChunkResult(index=job.index, frames=job.frames, path=Path(f"chunk-{job.index}"))

    async def aclose(self) -> None:
        pass


@dataclass
class FakeRunner:
    """A worker whose chunks are all ``work``: it reports progress itself, raises to fail."""

    work: Work

    async def render_frames(
        self, job: ChunkJob, report: Report, out_dir: Path, following: Sequence[ChunkJob] = ()
    ) -> CompleteChunk:
        await self.work(job, report)
        return CompleteChunk(job)

    async def end_segments(self) -> None:
        pass  # its chunks share no encoder


async def run_fake(
    chunks: list[Chunk],
    aggregator: ProgressAggregator,
    work: Work,
    *,
    workers: int | None = None,
    retries: int = 1,
) -> list[Path]:
    """Run fake chunk jobs on a LocalExecutor, progress into ``aggregator``; the chunk files."""
    results: dict[int, Path] = {}

    @asynccontextmanager
    async def open_worker() -> AsyncIterator[FakeRunner]:
        yield FakeRunner(work)

    async def on_result(result: ChunkResult) -> None:
        assert result.path is not None
        results[result.index] = result.path

    send, receive = trio.open_memory_channel[WorkerProgress](math.inf)

    def report(worker_id: int, p: float) -> None:
        send.send_nowait(WorkerProgress(worker_id, p))

    executor = LocalExecutor(workers or len(chunks), open_worker=open_worker)
    async with task_nursery() as nursery:
        nursery.start_soon(aggregator.run, receive)
        async with send:
            await executor.run(
                _jobs(chunks),
                RunHooks(
                    on_result=on_result,
                    report=report,
                    on_retry=aggregator.count_retry,
                    retries=retries,
                    scratch=Path("/nonexistent"),
                ),
            )
    return [results[chunk.index] for chunk in chunks]


class Boom(Exception):
    pass


@dataclass
class Schedule:
    """Per worker: seconds per frame, and the frame at which it raises (None: never)."""

    frame_time: list[float]
    fail_at: list[int | None]
    started: set[int] = field(default_factory=set)
    finished: set[int] = field(default_factory=set)
    failed_at: dict[int, float] = field(default_factory=dict)
    cancelled: set[int] = field(default_factory=set)

    async def work(self, job: ChunkJob, report: Report) -> None:
        worker_id = job.index
        self.started.add(worker_id)
        try:
            for done, frame in enumerate(range(job.start, job.end), start=1):
                await trio.sleep(self.frame_time[worker_id])
                if self.fail_at[worker_id] == done - 1:
                    self.failed_at[worker_id] = trio.current_time()
                    cause = Boom(f"worker {worker_id} frame {frame}")
                    raise fail(job, frame, cause) from cause
                if done < job.frames:
                    report(worker_id, done / job.frames)
            report(worker_id, 1.0)
        except trio.Cancelled:
            self.cancelled.add(worker_id)
            raise
        finally:
            self.finished.add(worker_id)


schedules = st.integers(1, 6).flatmap(
    lambda n: st.tuples(
        st.just(n),
        st.lists(st.floats(0.001, 0.05), min_size=n, max_size=n),
        st.lists(st.one_of(st.none(), st.integers(0, 12)), min_size=n, max_size=n),
        st.integers(n * 5, n * 12),
    )
)


@settings(deadline=None, max_examples=60)
@given(schedules)
async def test_any_failure_schedule_cancels_siblings_and_surfaces_the_first_error(
    case: tuple[int, list[float], list[int | None], int],
) -> None:
    workers, frame_time, fail_at, frames = case
    chunks = one_chunk_each(frames, workers)
    schedule = Schedule(frame_time, fail_at)
    published: list[RenderProgress] = []
    aggregator = ProgressAggregator([c.frames for c in chunks], published.append, min_interval=0)
    failing = [
        c.index for c in chunks if fail_at[c.index] is not None and fail_at[c.index] < c.frames  # type: ignore[operator]
    ]
    if failing:
        with pytest.raises(WorkerError) as caught:
            await run_fake(chunks, aggregator, schedule.work)
        error = caught.value
        assert isinstance(error.__cause__, Boom)
        first = min(schedule.failed_at, key=lambda w: schedule.failed_at[w])
        assert error.chunk_index in schedule.failed_at
        assert schedule.failed_at[error.chunk_index] == schedule.failed_at[first]
        assert error.frame is not None
        assert chunks[error.chunk_index].start <= error.frame < chunks[error.chunk_index].end
        assert aggregator.progress < 1.0
    else:
        files = await run_fake(chunks, aggregator, schedule.work)
        assert files == [Path(f"chunk-{c.index}") for c in chunks]
        assert published[-1].progress == 1.0
    # No task survives, and every worker that started has ended.
    assert schedule.finished == schedule.started
    values = [s.progress for s in published]
    assert values == sorted(values)


@settings(deadline=None, max_examples=30)
@given(workers=st.integers(1, 5), cancel_after=st.floats(0.0, 0.2))
async def test_a_caller_cancel_stops_every_worker(workers: int, cancel_after: float) -> None:
    chunks = one_chunk_each(workers * 10, workers)
    schedule = Schedule([0.05] * workers, [None] * workers)
    aggregator = ProgressAggregator([c.frames for c in chunks])
    with trio.move_on_after(cancel_after) as scope:
        await run_fake(chunks, aggregator, schedule.work)
    assert scope.cancelled_caught
    assert schedule.finished == schedule.started
    assert schedule.cancelled == schedule.started
    assert aggregator.progress < 1.0


async def test_fake_workers_owning_real_processes_have_them_reaped() -> None:
    chunks = one_chunk_each(30, 3)
    pids: list[int] = []

    async def work(job: ChunkJob, report: Report) -> None:
        worker_id = job.index
        process = spawn(["sleep", "60"], name="sleep", stdin=subprocess.DEVNULL)
        pids.append(process.pid)
        try:
            await trio.sleep(0.05 * (worker_id + 1))
            if worker_id == 1:
                raise Boom("worker 1 fails while the others hold processes")
            await trio.sleep(60)
        finally:
            await process.terminate(1.0)

    aggregator = ProgressAggregator([c.frames for c in chunks])
    with trio.fail_after(5), pytest.raises(WorkerError) as caught:
        await run_fake(chunks, aggregator, work)
    assert (caught.value.chunk_index, caught.value.worker) == (1, 1)
    assert len(pids) == 3
    assert not wait_no_processes(timeout=1.0)
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "State:\tZ" in Path(
            f"/proc/{pid}/status"
        ).read_text()


async def test_an_error_names_its_chunk_and_the_worker_that_ran_it() -> None:
    # 2 workers, 4 chunks: worker 0 renders chunks 0 and 1, worker 1 chunks 2 and 3.
    chunks = one_chunk_each(40, 4)

    async def work(job: ChunkJob, report: Report) -> None:
        if job.index == 3:
            raise Boom("the page went away")

    aggregator = ProgressAggregator([c.frames for c in chunks])
    with pytest.raises(WorkerError) as caught:
        await run_fake(chunks, aggregator, work, workers=2)
    error = caught.value
    assert (error.chunk_index, error.chunk, error.worker) == (3, (30, 40), 1)
    assert str(error).startswith("chunk 3 (frames 30..39) failed")
    assert str(error).endswith(" on worker 1: the page went away")


async def test_errors_of_dying_siblings_are_not_the_cause() -> None:
    chunks = one_chunk_each(20, 2)

    async def work(job: ChunkJob, report: Report) -> None:
        if job.index == 0:
            await trio.sleep(0.01)
            raise Boom("the real failure")
        try:
            await trio.sleep(60)
        finally:
            # A sibling that raises something else while being cancelled.
            raise RuntimeError("target closed")

    aggregator = ProgressAggregator([c.frames for c in chunks])
    with pytest.raises(WorkerError) as caught:
        await run_fake(chunks, aggregator, work)
    assert str(caught.value.__cause__) == "the real failure"


def _flaky(errors: dict[int, list[Exception]]) -> tuple[list[int], Work]:
    """A fake worker that raises the queued errors of its chunk, then succeeds."""
    calls: list[int] = []

    async def work(job: ChunkJob, report: Report) -> None:
        calls.append(job.index)
        await trio.sleep(0.01)
        queue = errors.get(job.index, [])
        if queue:
            cause = queue.pop(0)
            raise fail(job, job.start, cause) from cause
        report(job.index, 1.0)

    return calls, work


async def test_a_crashed_chunk_is_retried_on_a_fresh_browser() -> None:
    chunks = one_chunk_each(20, 2)
    calls, work = _flaky({1: [BrowserError("the page's renderer process crashed")]})
    published: list[RenderProgress] = []
    aggregator = ProgressAggregator([c.frames for c in chunks], published.append)
    files = await run_fake(chunks, aggregator, work, retries=1)
    assert files == [Path("chunk-0"), Path("chunk-1")]
    assert sorted(calls) == [0, 1, 1]
    assert aggregator.retries == 1
    assert any(state.retries == 1 for state in published)
    assert published[-1].progress == 1.0


async def test_retries_run_out() -> None:
    chunks = one_chunk_each(10, 1)
    crash: list[Exception] = [CdpConnectionClosed("lost") for _ in range(3)]
    calls, work = _flaky({0: crash})
    aggregator = ProgressAggregator([c.frames for c in chunks])
    with pytest.raises(WorkerError) as caught:
        await run_fake(chunks, aggregator, work, retries=2)
    assert calls == [0, 0, 0]
    assert isinstance(caught.value.__cause__, CdpConnectionClosed)


@pytest.mark.parametrize(
    "error",
    [PageError("the composition threw"), FrameTimeoutError("frame 3 was not ready"),
     CdpCommandError("Page.navigate", -32000, "bad")],
)
async def test_deterministic_failures_are_never_retried(error: Exception) -> None:
    chunks = one_chunk_each(10, 1)
    calls, work = _flaky({0: [error]})
    aggregator = ProgressAggregator([c.frames for c in chunks])
    with pytest.raises(WorkerError) as caught:
        await run_fake(chunks, aggregator, work, retries=3)
    assert calls == [0]
    assert caught.value.__cause__ is error


def recording_workers(
    opened: list[list[int]], before_report: Callable[[ChunkJob], None] = lambda job: None
) -> Callable[[], AbstractAsyncContextManager[FakeRunner]]:
    """A worker factory whose every worker records, in ``opened``, the chunks it rendered."""

    @asynccontextmanager
    async def open_worker() -> AsyncIterator[FakeRunner]:
        mine: list[int] = []
        opened.append(mine)

        async def work(job: ChunkJob, report: Report) -> None:
            mine.append(job.index)
            await trio.sleep(0.001)
            before_report(job)
            report(job.index, 1.0)

        yield FakeRunner(work)

    return open_worker


async def test_each_worker_renders_one_run_of_consecutive_chunks_on_one_browser() -> None:
    chunks = plan_chunks(0, 80, 10)
    opened: list[list[int]] = []
    aggregator = ProgressAggregator([c.frames for c in chunks])
    results: list[int] = []

    async def on_result(result: ChunkResult) -> None:
        results.append(result.index)

    await LocalExecutor(2, open_worker=recording_workers(opened)).run(
        _jobs(chunks),
        RunHooks(
            on_result=on_result, on_retry=aggregator.count_retry, retries=1,
            scratch=Path("/nonexistent"),
        ),
    )
    assert sorted(opened) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert sorted(results) == list(range(8))


async def test_a_retry_goes_on_with_the_rest_of_the_run_on_a_fresh_browser() -> None:
    chunks = plan_chunks(0, 40, 10)
    opened: list[list[int]] = []
    crashes = [BrowserError("the page's renderer process crashed")]

    def crash_once_at_chunk_1(job: ChunkJob) -> None:
        if job.index == 1 and crashes:
            cause = crashes.pop()
            raise fail(job, job.start, cause) from cause

    retried: list[int] = []

    async def on_result(result: ChunkResult) -> None:
        pass

    await LocalExecutor(1, open_worker=recording_workers(opened, crash_once_at_chunk_1)).run(
        _jobs(chunks),
        RunHooks(
            on_result=on_result, on_retry=lambda: retried.append(1), retries=1,
            scratch=Path("/nonexistent"),
        ),
    )
    assert opened == [[0, 1], [1, 2, 3]]
    assert retried == [1]
