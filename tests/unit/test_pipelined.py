"""The local executor with a fake pipelined worker: chunk k+1 is captured while chunk k
finishes, and a chunk that fails to finish is the one reported and retried."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trio

from helios_render import BrowserError, EncoderError, WorkerError
from helios_render._executors import LocalExecutor, RunHooks
from helios_render._executors.local import ChunkRunner
from helios_render._model.job import ChunkResult, Report
from helios_render._model.plan import plan_chunks

from .test_workers import _jobs


@dataclass
class FakeFinishing:
    job: Any
    log: list[str]
    fail_with: Exception | None = None
    closed: bool = False
    waits_for_later_frames: bool = False

    async def finish(self) -> ChunkResult:
        self.log.append(f"finish {self.job.index} begins")
        await trio.sleep(1.0)
        if self.fail_with is not None:
            raise self.fail_with
        self.log.append(f"finish {self.job.index} ends")
        return ChunkResult(index=self.job.index, frames=self.job.frames, path=Path("x"))

    async def aclose(self) -> None:
        self.closed = True


@dataclass
class FakePipelined:
    log: list[str]
    failures: dict[int, list[Exception]] = field(default_factory=dict)
    made: list[FakeFinishing] = field(default_factory=list)

    async def render_frames(
        self, job: Any, report: Report, out_dir: Path, following: Any = ()
    ) -> Any:
        self.log.append(f"frames {job.index} begin")
        await trio.sleep(0.5)
        self.log.append(f"frames {job.index} end")
        pending = self.failures.get(job.index) or []
        chunk = FakeFinishing(job, self.log, pending.pop(0) if pending else None)
        self.made.append(chunk)
        return chunk

    async def end_segments(self) -> None:
        pass  # its chunks share no encoder


async def run(runner: FakePipelined, chunks: int, retries: int = 1) -> list[int]:
    recorded: list[int] = []

    @asynccontextmanager
    async def open_worker() -> AsyncIterator[FakePipelined]:
        yield runner

    async def on_result(result: ChunkResult) -> None:
        recorded.append(result.index)

    assert isinstance(runner, ChunkRunner)
    await LocalExecutor(1, open_worker=open_worker).run(
        _jobs(plan_chunks(0, chunks * 10, 10)),
        RunHooks(on_result=on_result, retries=retries, scratch=Path("/nonexistent")),
    )
    return recorded


async def test_the_next_chunk_is_captured_while_the_previous_one_finishes(
    autojump_clock: trio.abc.Clock,
) -> None:
    log: list[str] = []
    runner = FakePipelined(log)
    started = trio.current_time()
    assert await run(runner, 3) == [0, 1, 2]
    assert log.index("frames 1 begin") < log.index("finish 0 ends")
    assert log.index("frames 2 begin") < log.index("finish 1 ends")
    # 3 captures of 0.5 s, finishes of 1 s overlapping them (each starts when its frames are
    # all captured; chunk k is waited for before chunk k+2 is captured): 3 s instead of 4.5 s.
    assert trio.current_time() - started == pytest.approx(3.0, abs=0.01)
    assert all(chunk.closed for chunk in runner.made)


async def test_a_chunk_that_fails_to_finish_is_retried_from_that_chunk(
    autojump_clock: trio.abc.Clock,
) -> None:
    log: list[str] = []
    runner = FakePipelined(log, failures={1: [BrowserError("crashed")]})
    assert await run(runner, 3) == [0, 2, 1]
    # chunk 1 was captured again after its finish failed; chunk 2, captured beside that
    # finish, was kept.
    assert log.count("frames 1 begin") == 2 and log.count("frames 2 begin") == 1
    assert all(chunk.closed for chunk in runner.made)


async def test_a_deterministic_finish_failure_names_its_chunk(
    autojump_clock: trio.abc.Clock,
) -> None:
    log: list[str] = []
    runner = FakePipelined(log, failures={1: [EncoderError("disk full")]})
    with pytest.raises(WorkerError) as caught:
        await run(runner, 3, retries=0)
    assert caught.value.chunk_index == 1
    assert isinstance(caught.value.__cause__, EncoderError)
    # The chunk captured beside the failing finish is finished and kept for a resume.
    assert "finish 2 ends" in log
    assert all(chunk.closed for chunk in runner.made)




@dataclass
class FakeSegment(FakeFinishing):
    """A chunk whose shared encoder completes it only once the next chunk's frames come (or
    the encoder's input ends): a segment that is not its encoder's last."""

    next_frames: trio.Event = field(default_factory=trio.Event)
    waits_for_later_frames: bool = True

    async def finish(self) -> ChunkResult:
        self.log.append(f"finish {self.job.index} begins")
        await self.next_frames.wait()
        if self.fail_with is not None:
            raise self.fail_with
        self.log.append(f"finish {self.job.index} ends")
        return ChunkResult(index=self.job.index, frames=self.job.frames, path=Path("x"))


@dataclass
class FakeSegmented(FakePipelined):
    """Every chunk but the last of the run is a segment of one shared encoder."""

    capture_fails: int | None = None
    open_segments: list[FakeSegment] = field(default_factory=list)

    async def render_frames(
        self, job: Any, report: Report, out_dir: Path, following: Any = ()
    ) -> Any:
        self.log.append(f"frames {job.index} begin")
        for segment in self.open_segments:
            segment.next_frames.set()  # the encoder has moved on to this chunk
        self.open_segments.clear()
        await trio.sleep(0.5)
        if job.index == self.capture_fails:
            self.capture_fails = None
            raise BrowserError("the page crashed")
        self.log.append(f"frames {job.index} end")
        if not following:
            chunk: FakeFinishing = FakeFinishing(job, self.log)
        else:
            chunk = FakeSegment(job, self.log)
            self.open_segments.append(chunk)
        self.made.append(chunk)
        return chunk

    async def end_segments(self) -> None:
        self.log.append("end segments")
        for segment in self.open_segments:
            segment.next_frames.set()
        self.open_segments.clear()


async def test_segments_are_not_waited_for_before_their_encoder_moves_on(
    autojump_clock: trio.abc.Clock,
) -> None:
    log: list[str] = []
    runner = FakeSegmented(log)
    with trio.fail_after(30):  # waiting for a segment before the next capture would hang
        assert sorted(await run(runner, 4)) == [0, 1, 2, 3]
    assert log.index("frames 1 begin") < log.index("finish 0 ends")
    assert "end segments" in log  # at the end of the run: nothing is left open
    assert all(chunk.closed for chunk in runner.made)


async def test_a_capture_failure_in_a_segment_run_keeps_the_segments_before_it(
    autojump_clock: trio.abc.Clock,
) -> None:
    log: list[str] = []
    runner = FakeSegmented(log, capture_fails=2)
    with trio.fail_after(30):
        recorded = await run(runner, 4)
    # Chunks 0 and 1 were completed when the run was cut short, and kept; chunk 2 was
    # captured again on a fresh worker, then chunk 3.
    assert recorded[:2] == [0, 1] and sorted(recorded) == [0, 1, 2, 3]
    assert log.count("frames 0 begin") == 1 and log.count("frames 2 begin") == 2
    assert all(chunk.closed for chunk in runner.made)
