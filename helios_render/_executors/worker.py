"""Render chunk jobs: a browser, a page and one encoder per chunk, on whatever machine runs it.

:func:`render_chunk` is a function of a :class:`~helios_render._model.plan.ChunkJob` alone (plus the
``report`` function its executor provides): it finds Chromium and FFmpeg on this machine,
serves a local composition on its own loopback, and returns a :class:`ChunkResult`.

A :class:`ChunkWorker` renders several jobs in a row and keeps its browser and page between
them, so a worker that takes consecutive chunks of an rAF page never replays frames it has
already run. Consecutive MPEG-TS chunks of a run share one encoder (one segment file each,
see :class:`~helios_render._ffmpeg.segments.SegmentEncoder`); other chunks get an encoder
each. Every error it raises is a :class:`~helios_render.WorkerError` naming the chunk and the
frame, with the original error as ``__cause__``.

The frame loop is written once: what a benchmark measures, it measures through a
:class:`WorkerInstrument` (no-op hooks by default; :class:`WorkerTimings` records them).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import trio

from .._chromium.browser import ABORT_GRACE, Browser, find_browser, launch_browser
from .._chromium.inspection import PageReport, read_page_report
from .._chromium.page import Page, open_page
from .._exceptions import AssetError, FrameTimeoutError, PageError, WorkerError
from .._ffmpeg.ffmpeg import (
    Encoder,
    encoder_args,
    find_ffmpeg,
    has_colorspace_filter,
    open_encoder,
    pad_transport_stream,
)
from .._ffmpeg.segments import SegmentEncoder, segment_run
from .._model.audio_plan import localize_sources
from .._model.job import (
    BundleSource,
    ChunkJob,
    ChunkResult,
    FolderSource,
    MediaRecord,
    Report,
    UrlSource,
)
from .._model.length import PageFacts
from .._nursery import task_nursery
from .._source.bundle import unpack_bundle
from .._source.server import serve_directory
from .._tempdirs import make_private_dir

__all__ = [
    "FRAME_QUEUE",
    "NO_INSTRUMENT",
    "ChunkWorker",
    "FinishingChunk",
    "WorkerInstrument",
    "WorkerTimings",
    "open_chunk_worker",
    "render_chunk",
]

logger = logging.getLogger(__name__)

#: Captured frames waiting for the encoder. Two lets capture of frame k+1 overlap the encoding
#: of frame k while keeping memory bounded (a 1080p PNG is a few MB).
FRAME_QUEUE = 2

#: Replay progress reports per chunk, at most (see :attr:`ChunkWorker.on_replay`).
REPLAY_REPORTS = 200
#: Seconds of the page's work after which a replay call returns (replayed frames go to the page
#: many in one call; see ``replay`` in runtime.js).
REPLAY_CALL_SECONDS = 0.05


class WorkerInstrument:
    """The hooks a :class:`ChunkWorker` calls as it works, each doing nothing here (as
    ``trio.abc.Instrument``): the worker's loops are written once, and measured by passing an
    instrument that overrides the hooks it needs (:class:`WorkerTimings`).

    Hooks are called in the task doing the work and must not raise. The frame loop calls
    :meth:`before_seek`, :meth:`after_seek`, :meth:`after_capture` and :meth:`after_send` once
    per frame, so they are plain methods; the async hooks are called once per page or chunk,
    never per frame. Durations are seconds of ``time.perf_counter``.
    """

    __slots__ = ()

    def browser_launched(self, browser: Browser, seconds: float) -> None:
        """A browser was launched in ``seconds``."""

    async def page_loaded(self, page: Page, seconds: float) -> None:
        """A page was opened and loaded in ``seconds``."""

    def frame_replayed(self, seconds: float) -> None:
        """A frame before a chunk was run without capture (an rAF page's replay)."""

    async def after_uncounted_seeks(self, page: Page) -> None:
        """The page ran seeks that are not a chunk's frames (a replay, or the frame drawn
        before a chunk's first)."""

    def encoder_started(self, seconds: float) -> None:
        """A chunk's encoder was ready (opened, or shared with the chunk before) in
        ``seconds``."""

    def before_seek(self) -> None:
        """A chunk's frame is about to be seeked to."""

    def after_seek(self) -> None:
        """The page shows the frame."""

    def after_capture(self) -> None:
        """The frame was captured."""

    def after_send(self) -> None:
        """The frame went into the queue to its encoder (after waiting for room)."""

    async def after_chunk_frames(self, page: Page) -> None:
        """Every frame of a chunk went to its encoder."""

    def encoder_finished(self, seconds: float) -> None:
        """A chunk's file was complete ``seconds`` after its last frame went to the encoder."""


#: The instrument of a worker that measures nothing.
NO_INSTRUMENT = WorkerInstrument()


@dataclass(slots=True)
class WorkerTimings(WorkerInstrument):
    """Where one worker's time went, for the benchmark: an instrument that records every hook
    of :class:`WorkerInstrument`. Durations are seconds of ``time.perf_counter``, one entry per
    frame (or per chunk, or per launch).

    ``seek`` is the whole ``Runtime.evaluate`` of a seek, ``settle`` and ``seek_work`` its parts
    measured inside the page (waiting for fonts, images, media, hooks; the runtime's own work);
    ``encoder_wait`` is the time a captured frame waited for room in the frame queue.
    """

    seek: list[float] = field(default_factory=list)
    seek_work: list[float] = field(default_factory=list)
    settle: list[float] = field(default_factory=list)
    capture: list[float] = field(default_factory=list)
    encoder_wait: list[float] = field(default_factory=list)
    replay: list[float] = field(default_factory=list)
    encoder_start: list[float] = field(default_factory=list)
    encoder_finish: list[float] = field(default_factory=list)
    launch: list[float] = field(default_factory=list)
    load: list[float] = field(default_factory=list)
    #: ``time.perf_counter()`` when this worker's first frame went to its encoder.
    first_frame_at: float | None = None
    #: ``time.perf_counter()`` when the seek of this worker's first captured frame began, and
    #: when its last frame went to its encoder: its capture loop, chunk changes included
    #: (the span a bare capture loop is measured over).
    loop_start: float | None = None
    loop_end: float | None = None
    #: Process ids of this worker's browser (for memory sampling).
    browser_pids: list[int] = field(default_factory=list)
    #: When the current frame's seek began, and when it was seeked and captured.
    _seek_began: float = field(default=0.0, init=False, repr=False)
    _seeked: float = field(default=0.0, init=False, repr=False)
    _captured: float = field(default=0.0, init=False, repr=False)

    def browser_launched(self, browser: Browser, seconds: float) -> None:
        self.launch.append(seconds)
        self.browser_pids.append(browser.process.pid)

    async def page_loaded(self, page: Page, seconds: float) -> None:
        self.load.append(seconds)
        await self.collect_page(page)

    def frame_replayed(self, seconds: float) -> None:
        self.replay.append(seconds)

    async def after_uncounted_seeks(self, page: Page) -> None:
        await self.collect_page(page, keep=False)

    def encoder_started(self, seconds: float) -> None:
        self.encoder_start.append(seconds)

    def before_seek(self) -> None:
        self._seek_began = time.perf_counter()

    def after_seek(self) -> None:
        self._seeked = time.perf_counter()

    def after_capture(self) -> None:
        self._captured = time.perf_counter()

    def after_send(self) -> None:
        sent = time.perf_counter()
        self.seek.append(self._seeked - self._seek_began)
        self.capture.append(self._captured - self._seeked)
        self.encoder_wait.append(sent - self._captured)
        if self.first_frame_at is None:
            self.first_frame_at = sent
        if self.loop_start is None:
            self.loop_start = self._seek_began
        self.loop_end = sent

    async def after_chunk_frames(self, page: Page) -> None:
        await self.collect_page(page)

    def encoder_finished(self, seconds: float) -> None:
        self.encoder_finish.append(seconds)

    async def collect_page(self, page: Page, *, keep: bool = True) -> None:
        """Move the page's own seek profile (milliseconds) into :attr:`seek_work` and
        :attr:`settle` (or drop it, without ``keep``), and keep profiling."""
        values = await page.evaluate(
            "window.__helios.profile ? window.__helios.profile(true) : null", await_promise=False
        )
        if not keep:
            return
        for work, settle in zip(values[0::2], values[1::2], strict=True) if values else ():
            self.seek_work.append(work / 1000)
            self.settle.append(settle / 1000)


@dataclass(slots=True)
class HeldFrame:
    """The image of the last frame a worker captured (or reused) on its page: the image a
    static frame reuses. A frame may reuse it when it is the next frame on the same page, in
    the same image format, and the page's runtime finds nothing changed since (see
    :meth:`~helios_render._chromium.page.Page.seek`, ``reuse``)."""

    page: object = None
    frame: int = -1
    settings: tuple[str, int] = ("", 0)
    image: bytes = b""

    def offers(self, page: Page, frame: int, settings: tuple[str, int]) -> bool:
        """Whether ``frame`` of ``page`` could reuse the held image (if it is unchanged)."""
        return (
            self.page is page and self.frame == frame - 1 and page.position == frame - 1
            and self.settings == settings and bool(self.image)
        )

    def keep(self, page: Page, frame: int, settings: tuple[str, int], image: bytes) -> None:
        """Hold ``image`` as ``frame`` of ``page``."""
        self.page, self.frame, self.settings, self.image = page, frame, settings, image


def _session_key(job: ChunkJob) -> tuple[object, ...]:
    """Jobs with the same key can share a browser and a page."""
    return (job.source, job.page, job.begin_frame, job.browser, job.browser_args)


def _scale_args(job: ChunkJob) -> tuple[str, ...]:
    """Chromium flags for the page's device scale factor. The screenshot path follows
    ``Emulation.setDeviceMetricsOverride`` alone; a beginFrame screenshot is taken at the
    browser's own scale, so the browser is started at it."""
    if job.page.scale == 1 or not job.begin_frame:
        return ()
    return (f"--force-device-scale-factor={job.page.scale!r}",)


def _browser_key(job: ChunkJob) -> tuple[object, ...]:
    """Jobs with the same key can share a browser (each with a page of its own): other props,
    another composition, other page settings only need a new page."""
    return (
        job.browser, job.begin_frame, job.browser_args, _scale_args(job), job.page.width,
        job.page.height,
    )


class FinishingChunk:
    """A chunk whose frames are all with its encoder, still encoding. Made by
    :meth:`ChunkWorker.render_frames`."""

    def __init__(
        self,
        job: ChunkJob,
        report: Report,
        output: Path,
        out_dir: Path,
        stack: AsyncExitStack,
        instrument: WorkerInstrument = NO_INSTRUMENT,
    ) -> None:
        self.job = job
        self.output = output
        self.log = out_dir / f"ffmpeg-{job.index:05d}.log"
        self.encoder: Encoder | None = None
        self._report = report
        self._stack = stack
        self._instrument = instrument
        self._done = False
        #: Whether the chunk is MPEG-TS, padded with null packets when short.
        self.pad = True
        #: What the page played at this chunk's frames.
        self.media: tuple[MediaRecord, ...] = ()
        #: Frames whose image was the frame before's, reused without a capture.
        self.skipped = 0
        #: The encoder this chunk is a segment of, shared with its neighbours; ``None`` when
        #: the chunk has an encoder of its own (in :attr:`encoder`).
        self.segments: SegmentEncoder | None = None

    async def finish(self) -> ChunkResult:
        """Wait for the encoder to write the chunk file and return the chunk.

        Raises:
            WorkerError: The encoder failed (naming the chunk and its last frame).

        Cancellation:
            FFmpeg is stopped and reaped by :meth:`aclose`; the file is removed.
        """
        job = self.job
        assert self.encoder is not None or self.segments is not None
        try:
            started = time.perf_counter()
            if self.segments is not None:
                await self.segments.wait_for(job)
            else:
                assert self.encoder is not None
                await self.encoder.finish()
            self._instrument.encoder_finished(time.perf_counter() - started)
            if self.pad:
                pad_transport_stream(self.output)
        except Exception as exc:
            error = WorkerError.for_job(job, exc, job.end - 1, failed_at=trio.current_time())
            raise error from error.__cause__
        self._done = True
        self._report(job.index, 1.0)
        return ChunkResult(
            index=job.index, frames=job.frames, path=self.output, media=self.media,
            frames_skipped=self.skipped,
        )

    @property
    def waits_for_later_frames(self) -> bool:
        """Whether this chunk is complete only once its shared encoder has frames of the
        chunks after it (or ends): a segment that is not its encoder's last."""
        return self.segments is not None and self.segments.jobs[-1] != self.job

    async def aclose(self) -> None:
        """Stop the encoder if it has not finished (removing its file) and drop its log.
        Idempotent.

        Cancellation:
            Shielded by the encoder's own abort: FFmpeg is always reaped.
        """
        segments = self.segments
        try:
            await self._stack.aclose()
            if segments is not None and (
                not self._done or segments.jobs[-1] is self.job
            ):
                # The last segment, or a failed one: nothing more comes from this encoder.
                await segments.aclose()
        finally:
            if not self._done:
                with contextlib.suppress(OSError):
                    self.output.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                self.log.unlink(missing_ok=True)


class ChunkWorker:
    """Renders chunk jobs one after another on one browser and page. Create it with
    :func:`open_chunk_worker`."""

    def __init__(
        self, instrument: WorkerInstrument | None = None, encoder_threads: int | None = None
    ) -> None:
        #: Hears where the time goes (benchmarks: :class:`WorkerTimings`); by default, nothing.
        self.instrument = instrument or NO_INSTRUMENT
        #: Threads for each encoder (see :func:`~helios_render._model.plan.encoder_threads`);
        #: ``None`` leaves the choice to the encoder.
        self.encoder_threads = encoder_threads
        #: ``on_replay(chunk index, p)``: the fraction of the frames before a chunk run so far
        #: (an rAF page replays them first); set by the executor, ``None`` reports nothing.
        self.on_replay: Report | None = None
        #: Browsers this worker launched (a pool counts them).
        self.browsers_launched = 0
        self._stack: AsyncExitStack | None = None
        #: What the browser was launched for (:func:`_browser_key`), and the page opened for
        #: (:func:`_session_key`).
        self._browser_key: tuple[object, ...] | None = None
        self._key: tuple[object, ...] | None = None
        self._browser: Browser | None = None
        #: The source being served (its own server), and its stack.
        self._source: object | None = None
        self._source_stack: AsyncExitStack | None = None
        self._url: str | None = None
        #: The origin of our own loopback server (local compositions), for media records.
        self._server_origin: str | None = None
        self._page: Page | None = None
        self._page_stack: AsyncExitStack | None = None
        #: The frame being worked on, for error messages.
        self.frame: int | None = None
        #: The encoder writing the current run of chunks as segments, until its last chunk.
        self._segments: SegmentEncoder | None = None
        #: The last image sent to an encoder, for static frames to reuse.
        self._held = HeldFrame()

    def holds_session_for(self, job: ChunkJob) -> bool:
        """Whether this worker's browser and page can render ``job`` without a new launch."""
        return self._key == _session_key(job) and self._browser is not None

    def holds_browser_for(self, job: ChunkJob) -> bool:
        """Whether this worker's browser can render ``job`` (with a page of its own)."""
        return self._browser_key == _browser_key(job) and self._browser is not None

    async def _close_page(self) -> None:
        stack, self._page_stack, self._page = self._page_stack, None, None
        if stack is not None:
            await stack.aclose()

    async def close_page(self) -> None:
        """Close the page and any encoder still open, keeping the browser and the server
        (a pool's worker between renders; idempotent).

        Must be called in the cancel scope the page was opened in (no scope of its own: the
        page's tasks nest in it).

        Cancellation:
            The encoder's abort is shielded (FFmpeg is reaped); the page's tasks are
            cancelled.
        """
        try:
            await self._close_segments()
        finally:
            await self._close_page()

    async def _close_source(self) -> None:
        stack, self._source_stack = self._source_stack, None
        self._source = self._url = self._server_origin = None
        if stack is not None:
            await stack.aclose()

    async def aclose(self, *, abort: bool = False) -> None:
        """Close the page, the browser and the server (idempotent).

        Args:
            abort: The worker is failing or being cancelled: the browser is stopped at once
                (no polite ``Browser.close``, the short grace), as when an error leaves it.
        """
        stack, self._stack = self._stack, None
        browser = self._browser
        try:
            if abort and browser is not None:
                # Stopped first: the polite close that follows finds it gone at once.
                with trio.CancelScope(shield=True):
                    await browser.process.terminate(ABORT_GRACE)
            await self._close_segments()
            await self._close_page()
        finally:
            self._key = self._browser_key = self._browser = None
            try:
                await self._close_source()
            finally:
                if stack is not None:
                    await stack.aclose()

    async def ensure_session(self, job: ChunkJob) -> bool:
        """Make the browser and the server ``job`` needs ready, keeping what fits: a browser
        is launched only when there is none for ``job``'s browser settings (a page that does
        not fit ``job`` is closed, and opened when ``job`` renders). Returns whether a browser
        was launched.

        A pool calls this outside the cancel scope of one render: the browser and the server
        outlive it (their tasks nest in the caller's scope).
        """
        launched = False
        if not self.holds_browser_for(job):
            await self.aclose()
            await self._launch_browser(job)
            launched = True
        if self._source != job.source or self._url is None:
            await self._close_segments()
            await self._close_page()
            await self._close_source()
            await self._serve_source(job)
        key = _session_key(job)
        if self._key != key:
            await self._close_segments()
            await self._close_page()
            self._key = key
        return launched

    async def _ensure_browser(self, job: ChunkJob) -> None:
        await self.ensure_session(job)

    async def _serve_source(self, job: ChunkJob) -> None:
        stack = AsyncExitStack()
        self._source_stack = stack
        self._source = job.source
        if isinstance(job.source, FolderSource):
            server = await stack.enter_async_context(serve_directory(Path(job.source.root)))
            self._url = server.url_for(job.source.entry)
            self._server_origin = server.url_for("").rstrip("/")
        elif isinstance(job.source, BundleSource):
            # A composition from another machine: unpacked once per process, served here.
            root = await trio.to_thread.run_sync(unpack_bundle, job.source)
            server = await stack.enter_async_context(serve_directory(root))
            self._url = server.url_for(job.source.entry)
            self._server_origin = server.url_for("").rstrip("/")
        else:
            assert isinstance(job.source, UrlSource)
            self._url = job.source.url

    async def _launch_browser(self, job: ChunkJob) -> None:
        stack = AsyncExitStack()
        self._stack = stack
        executable = find_browser(job.browser)
        started = time.perf_counter()
        self._browser = await stack.enter_async_context(
            launch_browser(
                executable,
                width=job.page.width,
                height=job.page.height,
                begin_frame_control=job.begin_frame,
                extra_args=(*job.browser_args, *_scale_args(job)),
            )
        )
        self._browser_key = _browser_key(job)
        self.browsers_launched += 1
        self.instrument.browser_launched(self._browser, time.perf_counter() - started)

    async def _open_page(self, job: ChunkJob) -> Page:
        assert self._browser is not None and self._url is not None
        await self._close_page()
        page_stack = AsyncExitStack()
        self._page_stack = page_stack
        served = job.source.root if isinstance(job.source, FolderSource) else None
        config = replace(job.page, url=self._url, served_root=served)
        started = time.perf_counter()
        self._page = await page_stack.enter_async_context(
            open_page(self._browser, config, begin_frame=job.begin_frame)
        )
        await self.instrument.page_loaded(self._page, time.perf_counter() - started)
        return self._page

    async def _page_at(self, job: ChunkJob, first: int) -> Page:
        """The page, ready to show ``first``: state built frame by frame (rAF loops) is run
        up to ``first - 2`` without capture, reusing what an earlier chunk already ran, and
        frame ``first - 1`` is drawn (not kept), as in a whole render."""
        await self._ensure_browser(job)
        page = self._page or await self._open_page(job)
        if page.position is not None and page.position >= first:
            page = await self._open_page(job)  # virtual time only runs forward: load it again
        if first == 0 or page.position == first - 1:
            return page  # frame 0, or the frame after the last one this page drew
        if await page.needs_replay():
            await self._replay(job, page, first)
        # Chromium keeps a composited layer's raster (its scale) from one drawn frame to the
        # next: a page drawn first at S can differ from a whole render's frame S, which had
        # frame S-1 drawn before it. Draw S-1 once (not kept), as the whole render did.
        self.frame = first - 1
        await page.seek(first - 1)
        await page.capture(job.encoder.image_format, job.quality)
        await self.instrument.after_uncounted_seeks(page)  # not one of the chunk's seeks
        return page

    async def _replay(self, job: ChunkJob, page: Page, first: int) -> None:
        """Run frames up to ``first - 2`` of an rAF page without capture."""
        begin = 0 if page.position is None else page.position + 1
        instrument = self.instrument
        total = first - 1 - begin
        if total <= 0:
            return
        # A late start can mean a million frames to replay: say how far it is, every
        # 1/REPLAY_REPORTS of the way (the aggregator limits how often it is shown).
        every = max(1, total // REPLAY_REPORTS)
        # The frames go to the page many in one call, each call about REPLAY_CALL_SECONDS of
        # the page's work: a light page's replay cost a round trip per frame.
        frame = begin
        while frame < first - 1:
            self.frame = frame
            started = time.perf_counter()
            try:
                after = await page.replay(frame, first - 1, REPLAY_CALL_SECONDS)
            except (PageError, AssetError, FrameTimeoutError):
                if page.position is not None and frame <= page.position < first - 1:
                    self.frame = page.position  # the frame that threw or hung
                raise
            seconds = time.perf_counter() - started
            for _ in range(after - frame):
                instrument.frame_replayed(seconds / (after - frame))
            before, frame = frame - begin, after
            done = frame - begin
            if self.on_replay is not None and (done // every > before // every or done == total):
                self.on_replay(job.index, done / total)
        await instrument.after_uncounted_seeks(page)  # replays are not the chunk's seeks

    def _error(self, job: ChunkJob, exc: Exception) -> WorkerError:
        return WorkerError.for_job(job, exc, self.frame, failed_at=trio.current_time())

    async def render(self, job: ChunkJob, report: Report, out_dir: Path) -> ChunkResult:
        """Render ``job`` into ``out_dir/job.file_name``: :meth:`render_frames`, then
        :meth:`FinishingChunk.finish`.

        ``report(job.index, p)`` gets the fraction of frames handed to the encoder; 1.0 only
        after the encoder has closed the chunk file.

        Raises:
            WorkerError: Naming the chunk and frame; ``__cause__`` is the original error.
                The browser is closed by the caller (or at the worker's exit).

        Cancellation:
            FFmpeg is stopped and reaped; the browser stays up until the worker is closed.
        """
        finishing = await self.render_frames(job, report, out_dir)
        try:
            return await finishing.finish()
        finally:
            await finishing.aclose()

    async def end_segments(self) -> None:
        """End the input of the encoder writing the current run of chunks (if any), so that
        the chunks it has all the frames of are completed: for a run cut short."""
        segments, self._segments = self._segments, None
        if segments is not None:
            with contextlib.suppress(Exception):
                await segments.end_input()

    async def _close_segments(self) -> None:
        segments, self._segments = self._segments, None
        if segments is not None:
            await segments.aclose()

    async def render_frames(
        self,
        job: ChunkJob,
        report: Report,
        out_dir: Path,
        following: Sequence[ChunkJob] = (),
    ) -> FinishingChunk:
        """Hand every frame of ``job`` to its encoder and return it still encoding, so that
        the next chunk's frames can be captured while it finishes. The caller must call
        :meth:`FinishingChunk.finish` (to get the result) and always
        :meth:`FinishingChunk.aclose`.

        ``following`` are the jobs the caller will render next, in order: consecutive
        MPEG-TS chunks among them share one encoder with ``job`` (one segment each), as long
        as the caller renders them in that order.

        Raises:
            WorkerError: Naming the chunk and frame; the encoder is already stopped.

        Cancellation:
            FFmpeg is stopped and reaped.
        """
        self.frame = None
        output = out_dir / job.file_name
        media: list[MediaRecord] = []  # what the page played at this chunk's frames
        stack = AsyncExitStack()
        finishing = FinishingChunk(job, report, output, out_dir, stack, self.instrument)
        try:
            ffmpeg = find_ffmpeg(job.ffmpeg)
            colour = await trio.to_thread.run_sync(has_colorspace_filter, ffmpeg)
            page = await self._page_at(job, job.start)
            settings = job.encoder
            instrument = self.instrument
            started = time.perf_counter()
            segments = self._segments
            if segments is None or not segments.takes(job):
                await self._close_segments()  # a stale one (a run cut short): stop it
                key = _session_key(job)
                run = segment_run(
                    job, itertools.takewhile(lambda after: _session_key(after) == key, following)
                )
                if len(run) > 1:
                    segments = self._segments = SegmentEncoder(
                        run, out_dir, self.encoder_threads, colour
                    )
                    await segments.open(ffmpeg)
                else:
                    segments = None
            if segments is not None:
                assert segments.encoder is not None
                encoder = segments.encoder
                finishing.segments = segments
                if segments.jobs[-1] is job:
                    self._segments = None  # its last chunk owns it from here
            else:
                encoder = await stack.enter_async_context(
                    open_encoder(
                        encoder_args(
                            ffmpeg, settings, output, threads=self.encoder_threads,
                            colorspace_filter=colour,
                        ),
                        finishing.log,
                        settings,
                    )
                )
                finishing.encoder = encoder
            finishing.pad = settings.table.chunk_format == "mpegts"
            instrument.encoder_started(time.perf_counter() - started)
            # (image, repeat): a repeat is the frame before's image, which a timed encoder
            # does not send again (never at a chunk's last frame: each chunk ends on a block).
            send, receive = trio.open_memory_channel[tuple[bytes, bool]](FRAME_QUEUE)

            async def feed() -> None:
                async with receive:
                    async for image, repeat in receive:
                        await encoder.write(image, repeat=repeat)

            last = job.end - 1  # the frames of the chunk go in order: arm their seeks
            held, shot = self._held, (settings.image_format, job.quality)
            skip = job.page.skip_static
            async with task_nursery() as nursery:
                nursery.start_soon(feed)
                async with send:
                    for done, frame in enumerate(range(job.start, job.end), start=1):
                        self.frame = frame
                        instrument.before_seek()
                        reuse = skip and held.offers(page, frame, shot)
                        media += await page.seek(frame, last=last, reuse=reuse)
                        instrument.after_seek()
                        repeat = reuse and page.unchanged
                        if repeat:
                            image = held.image  # a static frame: the frame before's image
                            finishing.skipped += 1
                        else:
                            image = await page.capture(settings.image_format, job.quality)
                        held.keep(page, frame, shot, image)
                        instrument.after_capture()
                        await send.send((image, repeat and frame != last))
                        instrument.after_send()
                        if done < job.frames:
                            report(job.index, done / job.frames)
            await instrument.after_chunk_frames(page)
        except BaseException as exc:
            if isinstance(exc, Exception) and finishing.segments is not None:
                # Let the encoder close the chunks before this one (still finishing) cleanly.
                self._segments = None
                with contextlib.suppress(Exception):
                    await finishing.segments.end_input()
            await finishing.aclose()
            if isinstance(exc, Exception):
                error = self._error(job, exc)
                raise error from error.__cause__
            raise
        if finishing.segments is not None:
            finishing.segments.fed += 1
        if self._server_origin is not None:
            # Every worker serves on its own port: name local media by path, so that the
            # records of all chunks agree.
            media = localize_sources(media, self._server_origin)
        finishing.media = tuple(media)
        return finishing

    async def page_facts(self, job: ChunkJob) -> PageFacts:
        """What the loaded page says of its own timing: a Helios composition's fps and
        duration, its ``helios:*`` declarations, and where its animations end."""
        try:
            page = await self._page_at(job, 0)
            fps, duration = await page.composition_timing()
            return PageFacts.from_page(await page.composition_length(), fps, duration)
        except Exception as exc:
            error = self._error(job, exc)
            raise error from error.__cause__

    async def inspect(self, job: ChunkJob) -> tuple[PageFacts, PageReport]:
        """Load the page with the inspection hooks (``job.page.inspect`` must be set) and
        return what it says of its timing and what the hooks and CDP saw."""
        try:
            page = await self._page_at(job, 0)
            fps, duration = await page.composition_timing()
            facts = PageFacts.from_page(await page.composition_length(), fps, duration)
            return facts, await read_page_report(page)
        except Exception as exc:
            error = self._error(job, exc)
            raise error from error.__cause__

    async def evaluate_loaded(self, job: ChunkJob, expression: str) -> Any:
        """``expression``'s value (JSON) in ``job``'s page once loaded and ready at frame 0,
        nothing rendered: what a composition declares of itself (its props schema)."""
        try:
            page = await self._page_at(job, 0)
            return await page.evaluate(expression, await_promise=False)
        except Exception as exc:
            error = self._error(job, exc)
            raise error from error.__cause__

    async def still(self, job: ChunkJob, frame: int) -> bytes:
        """The PNG of ``frame`` (a still image)."""
        try:
            page = await self._page_at(job, frame)
            self.frame = frame
            await page.seek(frame)
            return await page.capture("png", 100)
        except Exception as exc:
            error = self._error(job, exc)
            raise error from error.__cause__


@asynccontextmanager
async def open_chunk_worker(
    instrument: WorkerInstrument | None = None, encoder_threads: int | None = None
) -> AsyncIterator[ChunkWorker]:
    """A :class:`ChunkWorker`; its browser, page and server are closed when the block exits.

    Args:
        instrument: Hears where the time goes (benchmarks pass a :class:`WorkerTimings`);
            by default nothing is measured.
        encoder_threads: Threads for each encoder; ``None`` leaves it to the encoder.

    Cancellation:
        Chromium and FFmpeg are stopped and reaped before this returns.
    """
    worker = ChunkWorker(instrument, encoder_threads)
    try:
        yield worker
    finally:
        await worker.aclose()


async def render_chunk(
    job: ChunkJob, report: Report, *, out_dir: Path | None = None
) -> ChunkResult:
    """Render one chunk job on a browser of its own and return its result.

    With ``out_dir`` the chunk file is written there and returned by path; without it, it is
    written in a private temporary folder and returned as bytes (for a remote caller).

    Raises:
        WorkerError: Naming the chunk and frame; ``__cause__`` is the original error.

    Cancellation:
        Chromium and FFmpeg are stopped and reaped before this returns.
    """
    scratch: Path | None = None
    if out_dir is None:
        scratch = out_dir = make_private_dir("chunk")
    try:
        async with open_chunk_worker() as worker:
            result = await worker.render(job, report, out_dir)
        if scratch is not None:
            assert result.path is not None
            data = result.path.read_bytes()
            result = replace(result, path=None, data=data)
        return result
    finally:
        if scratch is not None:
            for entry in scratch.iterdir():
                entry.unlink(missing_ok=True)
            os.rmdir(scratch)
