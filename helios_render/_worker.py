"""One worker: its own Chromium and FFmpeg, rendering one chunk of frames to a file."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import trio

from ._audio import MediaRecord, dump_records
from ._browser import launch_browser
from ._ffmpeg import EncoderSettings, encoder_args, open_encoder, pad_transport_stream
from ._page import PageConfig, open_page
from ._plan import Chunk
from ._progress import WorkerProgress
from ._util import task_nursery

__all__ = ["FRAME_QUEUE", "FrameCursor", "WorkerSpec", "media_file_for", "render_chunk"]

logger = logging.getLogger(__name__)

#: Captured frames waiting for the encoder. Two lets capture of frame k+1 overlap the encoding
#: of frame k while keeping memory bounded (a 1080p PNG is a few MB).
FRAME_QUEUE = 2


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """Everything a worker needs, the same for every worker of a render."""

    browser: Path
    ffmpeg: Path
    page: PageConfig
    encoder: EncoderSettings
    quality: int
    workdir: Path
    begin_frame: bool = False
    browser_args: tuple[str, ...] = ()
    #: Times a chunk is restarted on a fresh browser after a crash-class failure.
    retries: int = 1


@dataclass(slots=True)
class FrameCursor:
    """Where a worker is, so that its errors can name the frame."""

    frame: int | None = None
    #: ``trio.current_time()`` when the worker's error was raised, before its cleanup.
    failed_at: float | None = None
    #: Called with the error as soon as it is raised, before the worker's own cleanup, so
    #: that the siblings can be cancelled without waiting for it.
    on_failure: Callable[[BaseException], None] | None = None


def media_file_for(chunk_file: Path) -> Path:
    """Where a worker leaves the media records of its chunk, beside the chunk file.

    AUDIO HOOK (current pipeline): the new pipeline carries these records in
    ``ChunkResult.media`` instead of a side file.
    """
    return chunk_file.with_suffix(".media.json")


async def render_chunk(
    spec: WorkerSpec,
    worker_id: int,
    chunk: Chunk,
    progress: trio.MemorySendChannel[WorkerProgress],
    cursor: FrameCursor,
) -> Path:
    """Render ``chunk`` into ``spec.workdir`` and return the chunk file.

    Progress ``p`` is the fraction of the chunk's frames handed to the encoder; 1.0 is sent
    only after the encoder has closed the chunk file.

    Cancellation:
        Chromium and FFmpeg are stopped and reaped before this returns.
    """
    output = spec.workdir / f"chunk-{chunk.index:04d}.ts"
    settings = spec.encoder
    media: list[MediaRecord] = []  # AUDIO HOOK: what the page played at this chunk's frames
    async with (
        launch_browser(
            spec.browser,
            width=settings.width,
            height=settings.height,
            begin_frame_control=spec.begin_frame,
            extra_args=spec.browser_args,
        ) as browser,
        open_page(browser, spec.page, begin_frame=spec.begin_frame) as page,
    ):
        try:
            if chunk.start > 0 and await page.needs_replay():
                # rAF-driven state is built one frame at a time: run frames 0..S-1 without capture
                # so that this chunk's first frame shows what a single worker shows there.
                for frame in range(chunk.start):
                    cursor.frame = frame
                    await page.seek(frame)
            log = spec.workdir / f"ffmpeg-{chunk.index:04d}.log"
            async with open_encoder(encoder_args(spec.ffmpeg, settings, output), log) as encoder:
                send, receive = trio.open_memory_channel[bytes](FRAME_QUEUE)

                async def feed() -> None:
                    async with receive:
                        async for image in receive:
                            await encoder.write(image)

                async with task_nursery() as nursery:
                    nursery.start_soon(feed)
                    async with send:
                        for done, frame in enumerate(range(chunk.start, chunk.end), start=1):
                            cursor.frame = frame
                            media += await page.seek(frame)
                            image = await page.capture(settings.image_format, spec.quality)
                            await send.send(image)
                            if done < chunk.frames:
                                await progress.send(WorkerProgress(worker_id, done / chunk.frames))
                await encoder.finish()
                pad_transport_stream(output)
            media_file_for(output).write_text(dump_records(media))  # AUDIO HOOK
        except Exception as exc:
            cursor.failed_at = trio.current_time()
            if cursor.on_failure is not None:
                cursor.on_failure(exc)
            raise
    await progress.send(WorkerProgress(worker_id, 1.0))
    return output
