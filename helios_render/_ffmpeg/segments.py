"""SegmentEncoder: one FFmpeg writing consecutive MPEG-TS chunks of a run, one segment each.

Each FFmpeg start costs CPU (see :data:`SEGMENTS_PER_ENCODER`), so a worker that renders
consecutive H.264/H.265 chunks hands all their frames to one encoder, which splits its output
at each chunk's first frame (an IDR frame) into the chunk's own file
(see :func:`~helios_render._ffmpeg.ffmpeg.encoder_args`). :func:`segment_run` says which jobs
can share one; a :class:`SegmentEncoder` says when each chunk's file is complete: once the
encoder has opened the next one, or has exited.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from contextlib import AsyncExitStack
from pathlib import Path

import trio

from .._model.job import ChunkJob
from .ffmpeg import Encoder, encoder_args, open_encoder

__all__ = ["SEGMENTS_PER_ENCODER", "SegmentEncoder", "segment_run"]

#: Most consecutive chunks one FFmpeg writes (as segments, MPEG-TS chunks only). Each FFmpeg
#: start costs about 0.15 s of CPU (linking libav*, the encoder's set-up): on a 2-core machine
#: rendering 90 frames in 8 chunks that was a tenth of all the CPU. More chunks per encoder
#: would save little more, and a long expression of split points costs FFmpeg per frame.
SEGMENTS_PER_ENCODER = 16

#: How often a finishing chunk looks whether its encoder has moved on to the next file.
_SEGMENT_POLL = 0.01


def segment_run(job: ChunkJob, following: Iterable[ChunkJob]) -> list[ChunkJob]:
    """``job`` and the jobs after it that one encoder can write as segments: consecutive
    frames and chunk numbers, the same encoding, MPEG-TS chunks. (The caller passes only the
    ``following`` jobs that it will render on the same page.)"""
    run = [job]
    if job.encoder.table.chunk_format != "mpegts":
        return run
    for after in following:
        last = run[-1]
        if (
            len(run) >= SEGMENTS_PER_ENCODER
            or after.index != last.index + 1
            or after.start != last.end
            or after.encoder != job.encoder
        ):
            break
        run.append(after)
    return run


class SegmentEncoder:
    """One FFmpeg writing the chunk files of consecutive jobs of a run, one segment each
    (see :func:`~helios_render._ffmpeg.ffmpeg.encoder_args`). A segment's file is complete once the
    encoder has opened the next one, or has exited."""

    def __init__(
        self,
        jobs: list[ChunkJob],
        out_dir: Path,
        threads: int | None = None,
        colorspace_filter: bool = False,
    ) -> None:
        self.jobs = jobs
        self.threads = threads
        self.colorspace_filter = colorspace_filter
        self.out_dir = out_dir
        self.log = out_dir / f"ffmpeg-{jobs[0].index:05d}-{jobs[-1].index:05d}.log"
        self.encoder: Encoder | None = None
        self.stack = AsyncExitStack()
        #: How many of :attr:`jobs` have had all their frames written.
        self.fed = 0
        self._ended: trio.Event | None = None
        self._end_error: Exception | None = None
        self._closed = False

    async def open(self, ffmpeg: Path) -> Encoder:
        first = self.jobs[0]
        pattern = self.out_dir / f"chunk-%05d{first.encoder.table.chunk_suffix}"
        args = encoder_args(
            ffmpeg, first.encoder, pattern, [job.frames for job in self.jobs], first.index,
            threads=self.threads, colorspace_filter=self.colorspace_filter,
        )
        self.encoder = await self.stack.enter_async_context(
            open_encoder(args, self.log, first.encoder)
        )
        return self.encoder

    def takes(self, job: ChunkJob) -> bool:
        """Whether ``job`` is the next job this encoder expects."""
        return (
            not self._closed
            and self._ended is None
            and self.fed < len(self.jobs)
            and self.jobs[self.fed] == job
        )

    async def end_input(self) -> None:
        """EOF: FFmpeg writes what it has and exits. Waited once; later callers wait for the
        same end and see the same error.

        Raises:
            EncoderError: FFmpeg failed.
        """
        assert self.encoder is not None
        if self._ended is None:
            self._ended = trio.Event()
            try:
                await self.encoder.finish()
            except Exception as exc:
                self._end_error = exc
            finally:
                self._ended.set()
        else:
            await self._ended.wait()
        if self._end_error is not None:
            raise self._end_error

    async def wait_for(self, job: ChunkJob) -> None:
        """Wait until ``job``'s file is complete: the encoder has started the next job's
        file, or it has exited (after the last job, or after :meth:`end_input`).

        Raises:
            EncoderError: FFmpeg failed.
        """
        assert self.encoder is not None
        position = self.jobs.index(job)
        if position == len(self.jobs) - 1:
            await self.end_input()
            return
        following = self.out_dir / self.jobs[position + 1].file_name
        process = self.encoder.process
        while not following.exists():
            if self._ended is not None:
                await self.end_input()
                return
            # Polled, not waited: :meth:`end_input` may be waiting on the process already.
            status = process.poll()
            if status is not None:
                if status != 0:
                    raise self.encoder.error(f"failed with exit status {status}")
                return
            await trio.sleep(_SEGMENT_POLL)

    async def aclose(self) -> None:
        """Stop FFmpeg if it is still running (idempotent); drop its log."""
        self._closed = True
        try:
            await self.stack.aclose()
        finally:
            with contextlib.suppress(OSError):
                self.log.unlink(missing_ok=True)
