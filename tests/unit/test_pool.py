"""Warm workers shared by many renders (the pool's scheduling core) with fake in-process
workers: every render's chunks, failures and cancellation kept to their own render, browsers
kept across renders, nothing left running."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
import trio
import trio.lowlevel
from hypothesis import given, settings
from hypothesis import strategies as st

from helios_render import BrowserError, ProgressAggregator, RenderProgress, WorkerError
from helios_render._executors import RunHooks
from helios_render._executors.local import open_warm_workers
from helios_render._model.job import Chunk, ChunkJob, ChunkResult, Report
from helios_render._model.plan import plan_chunks
from helios_render._model.progress import WorkerProgress
from helios_render._nursery import task_nursery

from .test_workers import Boom, CompleteChunk, _jobs, fail


def row_jobs(row: int, chunks: int, frames_per_chunk: int = 5) -> list[ChunkJob]:
    """A render's jobs: its own digest (the row), ``chunks`` chunks."""
    planned: list[Chunk] = plan_chunks(0, chunks * frames_per_chunk, frames_per_chunk)
    return [replace(job, digest=f"row-{row}") for job in _jobs(planned)]


@dataclass
class Machine:
    """Everything the fake workers did: browsers launched and alive, chunk work in flight."""

    frame_time: float = 0.002
    #: (row, chunk) -> frame at which it raises Boom; crash_once: raises BrowserError once.
    fail_at: dict[tuple[int, int], int] = field(default_factory=dict)
    crash_once: set[tuple[int, int]] = field(default_factory=set)
    launched: int = 0
    alive: int = 0
    pages_open: int = 0
    running: set[tuple[int, int]] = field(default_factory=set)
    crashed: set[tuple[int, int]] = field(default_factory=set)
    #: Set when a chunk of the row starts rendering.
    row_started: dict[int, trio.Event] = field(default_factory=dict)

    def started(self, row: int) -> trio.Event:
        return self.row_started.setdefault(row, trio.Event())


@dataclass
class FakeBrowserWorker:
    """A worker with a browser kept across renders, and a page per render."""

    machine: Machine
    browser: bool = False
    page_for: str | None = None
    on_replay: object = None

    async def ensure_session(self, job: ChunkJob) -> bool:
        if self.browser:
            return False
        await trio.sleep(0.001)
        self.browser = True
        self.machine.launched += 1
        self.machine.alive += 1
        return True

    async def close_page(self) -> None:
        if self.page_for is not None:
            self.page_for = None
            self.machine.pages_open -= 1

    async def aclose(self) -> None:
        await self.close_page()
        if self.browser:
            self.browser = False
            self.machine.alive -= 1

    async def render_frames(
        self, job: ChunkJob, report: Report, out_dir: Path, following: Sequence[ChunkJob] = ()
    ) -> CompleteChunk:
        assert self.browser, "a chunk rendered without ensure_session"
        if self.page_for != job.digest:
            await self.close_page()
            self.page_for = job.digest
            self.machine.pages_open += 1
        key = (int(job.digest.removeprefix("row-")), job.index)
        self.machine.running.add(key)
        self.machine.started(key[0]).set()
        try:
            for done, frame in enumerate(range(job.start, job.end), start=1):
                await trio.sleep(self.machine.frame_time)
                if key in self.machine.crash_once and key not in self.machine.crashed:
                    self.machine.crashed.add(key)
                    crash = BrowserError("the browser crashed")
                    raise fail(job, frame, crash) from crash
                if self.machine.fail_at.get(key) == done - 1:
                    boom = Boom(f"row {key[0]} chunk {key[1]} frame {frame}")
                    raise fail(job, frame, boom) from boom
                if done < job.frames:
                    report(job.index, done / job.frames)
            report(job.index, 1.0)
        finally:
            self.machine.running.discard(key)
        return CompleteChunk(job)

    async def end_segments(self) -> None:
        pass


def factory(machine: Machine):  # type: ignore[no-untyped-def]
    @asynccontextmanager
    async def open_worker() -> AsyncIterator[FakeBrowserWorker]:
        worker = FakeBrowserWorker(machine)
        try:
            yield worker
        finally:
            await worker.aclose()

    return open_worker


@dataclass
class RowOutcome:
    files: dict[int, Path] = field(default_factory=dict)
    published: list[RenderProgress] = field(default_factory=list)
    error: WorkerError | None = None
    workers: int = 0


async def render_row(
    workers_pool: object, row: int, jobs: list[ChunkJob], outcome: RowOutcome
) -> None:
    """One render on the warm workers, as ``RenderPool.render`` runs it."""
    aggregator = ProgressAggregator(
        [job.frames for job in jobs], outcome.published.append, min_interval=0
    )

    async def on_result(result: ChunkResult) -> None:
        assert result.path is not None
        outcome.files[result.index] = result.path

    send, receive = trio.open_memory_channel[WorkerProgress](math.inf)
    hooks = RunHooks(
        on_result=on_result,
        report=lambda chunk, p: send.send_nowait(WorkerProgress(chunk, p)),
        on_retry=aggregator.count_retry,
        retries=1,
        scratch=Path("/nonexistent"),
    )
    try:
        async with task_nursery() as nursery:
            nursery.start_soon(aggregator.run, receive)
            async with send:
                outcome.workers = await workers_pool.run(jobs, hooks)  # type: ignore[attr-defined]
    except WorkerError as exc:
        outcome.error = exc


rows_strategy = st.lists(
    st.tuples(
        st.integers(1, 4),  # chunks
        st.one_of(st.none(), st.tuples(st.integers(0, 3), st.integers(0, 4))),  # fails at
        st.booleans(),  # a crash-class failure of its first chunk, retried once
    ),
    min_size=1,
    max_size=6,
)


@settings(deadline=None, max_examples=40)
@given(concurrency=st.integers(1, 4), rows=rows_strategy)
async def test_any_failure_schedule_keeps_to_its_own_render(
    concurrency: int, rows: list[tuple[int, tuple[int, int] | None, bool]]
) -> None:
    machine = Machine()
    for row, (chunks, failing, crash) in enumerate(rows):
        if failing is not None and failing[0] < chunks:
            machine.fail_at[(row, failing[0])] = failing[1]
        if crash:
            machine.crash_once.add((row, 0))
    outcomes = [RowOutcome() for _ in rows]
    with trio.fail_after(30):
        async with open_warm_workers(concurrency, factory(machine)) as workers:
            async with trio.open_nursery() as nursery:
                for row, (chunks, _, _) in enumerate(rows):
                    nursery.start_soon(
                        render_row, workers, row, row_jobs(row, chunks), outcomes[row]
                    )
            statistics = workers.statistics()
    # Nothing is left running: no chunk, no page, no browser.
    assert machine.running == set() and machine.pages_open == 0 and machine.alive == 0
    assert statistics.workers <= concurrency and statistics.runs_in_flight == 0
    # A browser per worker, and one more per crash or failure (that browser is replaced).
    assert machine.launched == statistics.browsers_launched
    assert machine.launched <= statistics.workers + len(machine.crashed) + len(machine.fail_at)
    for row, (chunks, _, _) in enumerate(rows):
        outcome = outcomes[row]
        failed = [key for key in machine.fail_at if key[0] == row]
        values = [p.progress for p in outcome.published]
        assert values == sorted(values)
        if failed:
            assert outcome.error is not None
            assert outcome.error.chunk_index == failed[0][1]
            assert isinstance(outcome.error.__cause__, Boom)
            assert not values or values[-1] < 1.0
        else:
            assert outcome.error is None, outcome.error
            assert sorted(outcome.files) == list(range(chunks))
            assert values[-1] == 1.0
            assert 1 <= outcome.workers <= min(concurrency, chunks)


async def test_a_browser_is_kept_across_renders() -> None:
    machine = Machine()
    async with open_warm_workers(2, factory(machine)) as workers:
        for row in range(5):
            outcome = RowOutcome()
            await render_row(workers, row, row_jobs(row, 4), outcome)
            assert outcome.error is None and len(outcome.files) == 4
        assert workers.statistics().browsers_launched == 2
        assert machine.alive == 2  # warm between renders
    assert machine.alive == 0


async def test_cancelling_one_render_cancels_only_its_chunks() -> None:
    machine = Machine(frame_time=0.01)
    slow, quick = RowOutcome(), RowOutcome()
    async with open_warm_workers(2, factory(machine)) as workers:
        cancelled = trio.CancelScope()

        async def slow_row() -> None:
            with cancelled:
                await render_row(workers, 0, row_jobs(0, 2, 200), slow)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(slow_row)
            with trio.fail_after(10):
                await machine.started(0).wait()  # both workers on the slow render
            nursery.start_soon(render_row, workers, 1, row_jobs(1, 2, 10), quick)
            await trio.sleep(0.05)
            assert any(key[0] == 0 for key in machine.running)
            assert not machine.started(1).is_set()  # queued behind it
            cancelled.cancel()
            # The cancelled render's chunks stop at once; the other render goes on.
        assert not any(key[0] == 0 for key in machine.running)
        assert quick.error is None and sorted(quick.files) == [0, 1]
        assert slow.files == {}
        # Its pages were closed, the browsers kept for what comes next.
        assert machine.pages_open == 0 and machine.alive == 2
        again = RowOutcome()
        await render_row(workers, 2, row_jobs(2, 2), again)
        assert sorted(again.files) == [0, 1]
        assert workers.statistics().browsers_launched == 2
    assert machine.alive == 0


async def ignore_result(result: ChunkResult) -> None:
    pass


async def test_a_closed_pool_refuses_runs() -> None:
    machine = Machine()
    async with open_warm_workers(1, factory(machine)) as workers:
        pass
    with pytest.raises(RuntimeError, match="closed"):
        await workers.run(row_jobs(0, 1), RunHooks(on_result=ignore_result))
