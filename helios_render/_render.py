"""render(): plan the chunks, run one worker per chunk in one nursery, stitch, finalize."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from urllib.parse import urlsplit

import trio

from ._browser import find_browser, launch_browser
from ._capture import probe_begin_frame
from ._exceptions import BrowserError, OptionsError, SourceError, UsageError, WorkerError
from ._ffmpeg import (
    CODECS,
    CONTAINERS,
    EncoderSettings,
    concat_args,
    concat_list,
    ffmpeg_encoders,
    find_ffmpeg,
    run_ffmpeg,
)
from ._options import RenderOptions
from ._page import PageConfig, open_page
from ._plan import Chunk, default_concurrency, plan_chunks
from ._progress import ProgressAggregator, RenderProgress, WorkerProgress
from ._server import serve_directory
from ._source import ServedSource, choose_root
from ._worker import FrameCursor, WorkerSpec, render_chunk

__all__ = ["RenderResult", "render", "render_still", "render_sync"]

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[RenderProgress], object]
#: The signature of a worker: render one chunk, report progress, return the chunk's file.
ChunkRenderer = Callable[
    [WorkerSpec, int, Chunk, trio.MemorySendChannel[WorkerProgress], FrameCursor],
    Awaitable[Path],
]


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

    @property
    def frames_per_second(self) -> float:
        """Render throughput: frames over wall-clock seconds."""
        return self.frames / self.elapsed if self.elapsed > 0 else 0.0


def _is_url(source: str) -> bool:
    return urlsplit(source).scheme in ("http", "https", "file", "data", "about")


@asynccontextmanager
async def open_source(
    source: str | os.PathLike[str], root: str | os.PathLike[str] | None = None
) -> AsyncIterator[ServedSource]:
    """The URL Chromium should load: a URL as given, or a local file served over loopback
    from ``root``, or from the folder :func:`~helios_render._source.choose_root` picks.

    Raises:
        SourceError: A local file that does not exist, or that is not inside ``root``.
    """
    text = os.fspath(source)
    if _is_url(text):
        yield ServedSource(text)
        return
    path = Path(text).expanduser().absolute()
    if path.is_dir():
        path = path / "index.html"
    if not path.is_file():
        raise SourceError(f"composition not found: {path} (give an HTML file or an http(s) URL)")
    folder, entry = choose_root(path, None if root is None else Path(root))
    if folder != path.parent:
        logger.info("serving %s (the page loads files from there; --root overrides)", folder)
    async with serve_directory(folder) as server:
        yield ServedSource(server.url_for(entry), server.root)


def _temporary_output(output: Path) -> Path:
    return output.with_name(f".{output.stem}.helios-{uuid.uuid4().hex[:8]}{output.suffix}")


def _check_output(output: Path, suffixes: tuple[str, ...]) -> None:
    if output.suffix.lower() not in suffixes:
        raise OptionsError(
            f"cannot write {output.name}: the output must end in {', '.join(suffixes)}"
        )
    if output.is_dir():
        raise OptionsError(f"output {output} is a folder: give a file name")
    if not output.parent.is_dir():
        raise UsageError(f"output folder {output.parent} does not exist: create it first")
    # Try it: permission bits say nothing for root, read-only mounts or full disks.
    try:
        with tempfile.NamedTemporaryFile(dir=output.parent, prefix=".helios-probe-"):
            pass
    except OSError as exc:
        raise UsageError(
            f"output folder {output.parent} is not writable ({exc.strerror}): "
            "choose another output path"
        ) from exc


def _page_config(options: RenderOptions, source: ServedSource) -> PageConfig:
    return PageConfig(
        url=source.url,
        served_root=None if source.root is None else str(source.root),
        allow_missing_assets=options.allow_missing_assets,
        width=options.width,
        height=options.height,
        fps=options.exact_fps,
        props=options.props,
        seed=options.seed,
        timeout=options.timeout,
        ignore_page_errors=options.ignore_page_errors,
    )


async def choose_capture(options: RenderOptions, browser: Path) -> bool:
    """Whether to capture with beginFrame: ``auto`` uses it when the browser passes the probe.

    Raises:
        UsageError: ``capture="beginframe"`` with a browser that does not have it.
    """
    if options.capture == "screenshot":
        return False
    supported = await probe_begin_frame(browser)
    if options.capture == "beginframe" and not supported:
        raise UsageError(
            f"{browser} has no HeadlessExperimental.beginFrame: use a chrome-headless-shell "
            "build (--browser PATH, see docs/cli.md) or --capture screenshot"
        )
    logger.info("capture path: %s", "beginFrame" if supported else "screenshots")
    return supported


async def _check_codec(ffmpeg: Path, codec: str) -> None:
    encoders = await trio.to_thread.run_sync(ffmpeg_encoders, ffmpeg)
    if CODECS[codec] not in encoders:
        raise UsageError(
            f"this FFmpeg ({ffmpeg}) has no {CODECS[codec]} encoder for --codec {codec}: "
            "install a full FFmpeg build (Debian/Ubuntu: apt-get install ffmpeg)"
        )


def is_retryable(exc: BaseException) -> bool:
    """Crash-class failures (browser or page crashed, target closed, connection lost) may pass
    on a fresh browser; deterministic ones (page errors, timeouts, bad options) never do."""
    return isinstance(exc, BrowserError) and exc.retryable


async def _run_worker(
    work: ChunkRenderer,
    spec: WorkerSpec,
    chunk: Chunk,
    progress: trio.MemorySendChannel[WorkerProgress],
    failures: list[WorkerError],
    results: dict[int, Path],
    cancel_siblings: trio.CancelScope,
    on_retry: Callable[[], object],
) -> None:
    reported: list[WorkerError] = []

    def fail(exc: BaseException, cursor: FrameCursor) -> None:
        # Runs at the moment the worker raises (from the worker itself when it can, else when
        # the error reaches us): the first failure wins and cancels every sibling at once.
        if reported:
            return
        error = WorkerError(
            chunk.index, (chunk.start, chunk.end), cursor.frame, exc, cursor.failed_at
        )
        error.__cause__ = exc
        reported.append(error)
        if failures:
            logger.debug("worker %d also failed: %r", chunk.index, exc)
            return
        logger.debug("worker %d failed first: %r", chunk.index, exc)
        failures.append(error)
        cancel_siblings.cancel()

    attempts = spec.retries + 1
    async with progress:
        for attempt in range(1, attempts + 1):
            cursor = FrameCursor()
            final = attempt == attempts

            def on_failure(
                exc: BaseException, cursor: FrameCursor = cursor, final: bool = final
            ) -> None:
                if final or not is_retryable(exc):
                    fail(exc, cursor)

            cursor.on_failure = on_failure
            try:
                results[chunk.index] = await work(spec, chunk.index, chunk, progress, cursor)
                return
            except Exception as exc:
                if cursor.failed_at is None:
                    cursor.failed_at = trio.current_time()
                # A sibling's failure cancels us: dying then is not a crash worth a retry.
                stopping = cancel_siblings.cancel_called
                if not final and is_retryable(exc) and not reported and not stopping:
                    logger.warning(
                        "worker %d (frames %d..%d): %s; retrying the chunk on a fresh browser "
                        "(retry %d of %d)",
                        chunk.index, chunk.start, chunk.end - 1, exc, attempt, spec.retries,
                    )
                    on_retry()
                    continue
                fail(exc, cursor)
                raise reported[0] from exc


async def run_workers(
    spec: WorkerSpec,
    chunks: list[Chunk],
    aggregator: ProgressAggregator,
    work: ChunkRenderer = render_chunk,
) -> list[Path]:
    """Run one worker per chunk in one nursery and return the chunk files in order.

    ``work`` renders one chunk (the real :func:`render_chunk`, or a fake in tests).

    Raises:
        WorkerError: The first worker to fail, with its original error as ``__cause__``.
            Siblings are cancelled; their errors while dying are logged, never raised.

    Cancellation:
        Every worker is cancelled and has released its processes before this returns; the
        progress channel is closed.
    """
    failures: list[WorkerError] = []
    results: dict[int, Path] = {}
    send, receive = trio.open_memory_channel[WorkerProgress](max(16, 4 * len(chunks)))
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(aggregator.run, receive)
            async with send:
                for chunk in chunks:
                    nursery.start_soon(
                        _run_worker,
                        work,
                        spec,
                        chunk,
                        send.clone(),
                        failures,
                        results,
                        nursery.cancel_scope,
                        aggregator.count_retry,
                    )
    except BaseExceptionGroup as group:
        # Ctrl+C, or a cancellation of the caller's (Cancelled escaping our own nursery
        # belongs to an outer scope), goes on as it is; otherwise the first worker to fail is
        # the story, and errors of siblings that were being cancelled are consequences
        # (logged above at DEBUG).
        if failures and group.subgroup((KeyboardInterrupt, trio.Cancelled)) is None:
            first = failures[0]
            raise first from first.__cause__
        raise
    if failures:
        # The failing worker's own cleanup ran cancelled, so its error may have been
        # replaced by Cancelled on the way out; the recorded failure is the story.
        first = failures[0]
        raise first from first.__cause__
    return [results[chunk.index] for chunk in chunks]


async def render(
    options: RenderOptions, *, on_progress: ProgressCallback | None = None
) -> RenderResult:
    """Render ``options.source`` to ``options.output``.

    The frames are split into contiguous chunks rendered by concurrent workers (each its own
    Chromium and FFmpeg) under one nursery, then joined by stream copy into a temporary file
    beside the output, which is renamed over the output only when everything succeeded.

    Args:
        options: What to render.
        on_progress: Called with a :class:`RenderProgress` as the render advances: stage,
            monotonic progress that ends at exactly 1.0, frames done, fps and ETA.

    Raises:
        UsageError: Bad options or environment (nothing was started).
        WorkerError: A worker failed; ``__cause__`` is the original error and the message
            names the worker, its chunk and the frame.
        RenderError: Stitching failed.

    Cancellation:
        Every worker is cancelled; each Chromium and FFmpeg is stopped and reaped, the
        temporary files are removed, and the output path is left as it was.
    """
    started = time.monotonic()
    output = options.output_path
    _check_output(output, tuple(CONTAINERS))
    browser = find_browser(options.browser)
    ffmpeg = find_ffmpeg(options.ffmpeg)
    await _check_codec(ffmpeg, options.codec)
    begin_frame = await choose_capture(options, browser)
    concurrency = options.concurrency or default_concurrency()
    chunks = plan_chunks(options.start_frame, options.frame_count, concurrency)
    aggregator = ProgressAggregator([chunk.frames for chunk in chunks], on_progress)
    aggregator.announce()
    workdir = Path(tempfile.mkdtemp(prefix="helios-render-"))
    temporary = _temporary_output(output)
    try:
        async with open_source(options.source, options.root) as source:
            spec = WorkerSpec(
                browser=browser,
                ffmpeg=ffmpeg,
                page=_page_config(options, source),
                encoder=EncoderSettings(
                    fps=options.exact_fps,
                    width=options.width,
                    height=options.height,
                    codec=options.codec,
                    crf=options.crf,
                    preset=options.preset,
                    image_format=options.image_format,
                ),
                quality=options.quality,
                workdir=workdir,
                begin_frame=begin_frame,
                retries=options.retries,
            )
            chunk_files = await run_workers(spec, chunks, aggregator)
        aggregator.set_stage("stitching")
        list_file = workdir / "chunks.txt"
        list_file.write_text(concat_list(chunk_files))
        await run_ffmpeg(
            concat_args(ffmpeg, list_file, temporary), workdir / "concat.log", what="join chunks"
        )
        os.replace(temporary, output)
        aggregator.set_stage("done")
    finally:
        temporary.unlink(missing_ok=True)
        shutil.rmtree(workdir, ignore_errors=True)
    return RenderResult(
        output=output,
        frames=options.frame_count,
        fps=options.exact_fps,
        width=options.width,
        height=options.height,
        workers=len(chunks),
        elapsed=time.monotonic() - started,
    )


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
    output = options.output_path
    _check_output(output, (".png",))
    browser = find_browser(options.browser)
    begin_frame = await choose_capture(options, browser)
    temporary = _temporary_output(output)
    try:
        async with (
            open_source(options.source, options.root) as source,
            launch_browser(
                browser,
                width=options.width,
                height=options.height,
                begin_frame_control=begin_frame,
            ) as chromium,
            open_page(chromium, _page_config(options, source), begin_frame=begin_frame) as page,
        ):
            if frame > 0 and await page.needs_replay():
                for earlier in range(frame):
                    await page.seek(earlier)
            await page.seek(frame)
            temporary.write_bytes(await page.capture("png", 100))
        os.replace(temporary, output)
    finally:
        temporary.unlink(missing_ok=True)
    return output


def render_sync(
    options: RenderOptions, *, on_progress: ProgressCallback | None = None
) -> RenderResult:
    """Blocking :func:`render` for scripts: runs its own Trio loop."""
    return trio.run(lambda: render(options, on_progress=on_progress))

