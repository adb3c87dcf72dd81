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
from helios_render._executors import LocalExecutor
from helios_render._executors.local import PipelinedRunner
from helios_render._plan import plan_chunks
from helios_render._worker import ChunkResult, Report

from .test_workers import _jobs


@dataclass
class FakeFinishing:
    job: Any
    log: list[str]
    fail_with: Exception | None = None
    closed: bool = False

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

    async def render(self, job: Any, report: Report, out_dir: Path) -> ChunkResult:
        raise AssertionError("a pipelined runner is driven by render_frames")

    async def render_frames(self, job: Any, report: Report, out_dir: Path) -> Any:
        self.log.append(f"frames {job.index} begin")
        await trio.sleep(0.5)
        self.log.append(f"frames {job.index} end")
        pending = self.failures.get(job.index) or []
        chunk = FakeFinishing(job, self.log, pending.pop(0) if pending else None)
        self.made.append(chunk)
        return chunk


async def run(runner: FakePipelined, chunks: int, retries: int = 1) -> list[int]:
    recorded: list[int] = []

    @asynccontextmanager
    async def open_worker() -> AsyncIterator[FakePipelined]:
        yield runner

    async def on_result(result: ChunkResult) -> None:
        recorded.append(result.index)

    assert isinstance(runner, PipelinedRunner)
    await LocalExecutor(1, open_worker=open_worker).run(
        _jobs(plan_chunks(0, chunks * 10, 10)), report=lambda i, p: None, on_result=on_result,
        on_retry=lambda: None, retries=retries, scratch=Path("/nonexistent"),
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
    # 3 captures of 0.5 s, finishes of 1 s overlapping them: 0.5 + 1 + 1 + 1 instead of 4.5 s.
    assert trio.current_time() - started == pytest.approx(3.5, abs=0.01)
    assert all(chunk.closed for chunk in runner.made)


async def test_a_chunk_that_fails_to_finish_is_retried_from_that_chunk(
    autojump_clock: trio.abc.Clock,
) -> None:
    log: list[str] = []
    runner = FakePipelined(log, failures={1: [BrowserError("crashed")]})
    assert await run(runner, 3) == [0, 1, 2]
    # chunk 1 was captured again after its finish failed; chunk 2's first capture was dropped.
    assert log.count("frames 1 begin") == 2
    assert all(chunk.closed for chunk in runner.made)


async def test_a_deterministic_finish_failure_names_its_chunk(
    autojump_clock: trio.abc.Clock,
) -> None:
    log: list[str] = []
    runner = FakePipelined(log, failures={1: [EncoderError("disk full")]})
    with pytest.raises(WorkerError) as caught:
        await run(runner, 3, retries=0)
    assert caught.value.worker_id == 1
    assert isinstance(caught.value.__cause__, EncoderError)
    assert "frames 2 begin" in log and "finish 2 begins" not in log
    assert all(chunk.closed for chunk in runner.made)


