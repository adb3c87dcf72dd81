"""The ``helios-render`` command line.

Exit codes: 0 done, 1 render failed, 2 bad usage or environment, 130 interrupted (SIGINT),
143 terminated (SIGTERM).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import trio

from ._exceptions import HeliosError, OptionsError
from ._options import X264_PRESETS, RenderOptions
from ._progress import RenderProgress
from ._render import RenderResult, render, render_still
from ._util import task_nursery

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


def _add_page_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="composition: an HTML file or an http(s) URL")
    parser.add_argument("output", help="file to write")
    parser.add_argument("--width", type=int, default=1920, help="frame width (default 1920)")
    parser.add_argument("--height", type=int, default=1080, help="frame height (default 1080)")
    parser.add_argument(
        "--fps", default="30", help="frames per second, e.g. 30 or 30000/1001 (default 30)"
    )
    parser.add_argument(
        "--props", default=None, help="JSON the page reads as window.__HELIOS_PROPS__"
    )
    parser.add_argument("--browser", default=None, help="path of Chromium (default: find one)")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds for the page to load and for each frame to become ready")
    parser.add_argument("--seed", type=int, default=0x48454C49, help="seed of Math.random")
    parser.add_argument(
        "--capture",
        default="auto",
        choices=("auto", "screenshot", "beginframe"),
        help="capture path (default auto: beginFrame when the browser has it, else screenshots)",
    )
    parser.add_argument("--ignore-page-errors", action="store_true",
                        help="log uncaught errors of the page instead of failing")
    parser.add_argument("--root", default=None, metavar="DIR",
                        help="folder to serve a local SOURCE from (default: the nearest folder "
                        "holding what the page loads, within its project)")
    parser.add_argument("--allow-missing-assets", action="store_true",
                        help="render even when a script, stylesheet, font, image or media "
                        "fails to load (each failure is logged)")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log more (-vv: DevTools traffic)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``helios-render``."""
    parser = argparse.ArgumentParser(
        prog="helios-render",
        description="Render an HTML/CSS/JS composition to a frame-exact video.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("render", help="render a composition to a video")
    _add_page_options(run)
    length = run.add_mutually_exclusive_group(required=True)
    length.add_argument("--frames", type=int, help="number of frames to render")
    length.add_argument("--duration", help="seconds to render (rounded to whole frames)")
    run.add_argument("--start-frame", type=int, default=0, help="first frame (default 0)")
    run.add_argument("--concurrency", type=int, default=None,
                     help="parallel workers (default: half the CPUs, capped by memory)")
    run.add_argument("--codec", default="h264", help="h264 or h265 (default h264)")
    run.add_argument("--crf", type=int, default=18, help="quality, 0 lossless to 51 (default 18)")
    run.add_argument("--preset", default="veryfast", choices=X264_PRESETS,
                     help="encoder speed preset (default veryfast)")
    run.add_argument("--image-format", default="jpeg", choices=("jpeg", "png"),
                     help="frame format out of the browser (default jpeg; png is exact)")
    run.add_argument("--quality", type=int, default=90, help="JPEG quality (default 90)")
    run.add_argument("--ffmpeg", default=None, help="path of FFmpeg (default: find one)")
    run.add_argument("--retries", type=int, default=1,
                     help="restarts of a chunk after a browser crash (default 1)")
    run.add_argument("--progress", default="auto", choices=("auto", "bar", "lines", "json", "none"),
                     help="progress display (default auto: a bar on a terminal)")

    still = commands.add_parser("still", help="render one frame to a PNG")
    _add_page_options(still)
    still.add_argument("--frame", type=int, required=True, help="the frame to render")

    commands.add_parser("doctor", help="check Chromium and FFmpeg and say what is missing")
    return parser


def _parse_props(text: str | None) -> Any:
    if text is None:
        return None
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text("utf-8")
        except OSError as exc:
            raise OptionsError(f"cannot read --props file {text[1:]}: {exc.strerror}") from exc
    try:
        return json.loads(text)
    except ValueError as exc:
        raise OptionsError(f"--props is not valid JSON: {exc}") from exc


def _options_from(args: argparse.Namespace) -> RenderOptions:
    common: dict[str, Any] = {
        "source": args.source,
        "output": args.output,
        "width": args.width,
        "height": args.height,
        "fps": args.fps,
        "props": _parse_props(args.props),
        "browser": args.browser,
        "timeout": args.timeout,
        "seed": args.seed,
        "ignore_page_errors": args.ignore_page_errors,
        "capture": args.capture,
        "root": args.root,
        "allow_missing_assets": args.allow_missing_assets,
    }
    if args.command == "still":
        return RenderOptions(frames=1, image_format="png", **common)
    return RenderOptions(
        frames=args.frames,
        duration=args.duration,
        start_frame=args.start_frame,
        concurrency=args.concurrency,
        codec=args.codec,
        crf=args.crf,
        preset=args.preset,
        image_format=args.image_format,
        quality=args.quality,
        ffmpeg=args.ffmpeg,
        retries=args.retries,
        **common,
    )


def _format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = max(0, round(seconds))
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ProgressPrinter:
    """Shows :class:`RenderProgress` states as a bar, plain lines, JSON lines, or not at all."""

    def __init__(self, mode: str, stream: TextIO, json_stream: TextIO) -> None:
        if mode == "auto":
            mode = "bar" if stream.isatty() else "lines"
        self.mode = mode
        self._stream = stream
        self._json = json_stream
        self._last_line_at = -1.0
        self._last_stage = ""
        self._bar_shown = False

    def __call__(self, state: RenderProgress) -> None:
        if self.mode == "json":
            print(json.dumps(state.as_json()), file=self._json, flush=True)
        elif self.mode == "bar":
            self._bar(state)
        elif self.mode == "lines":
            if state.stage == "launching":
                return  # a log line per state change is enough; this one says nothing yet
            now = time.monotonic()
            if state.stage != self._last_stage or now - self._last_line_at >= 5 or (
                state.progress == 1.0
            ):
                self._last_line_at = now
                self._last_stage = state.stage
                print(self._summary(state), file=self._stream, flush=True)

    @staticmethod
    def _summary(state: RenderProgress) -> str:
        fps = f"{state.fps:5.1f} fps" if state.fps else "  --- fps"
        retries = f" retries {state.retries}" if state.retries else ""
        return (
            f"{state.stage:<9} {state.progress * 100:5.1f}%  "
            f"{state.frames_done}/{state.frames_total} frames  {fps}  "
            f"ETA {_format_seconds(state.eta)}{retries}"
        )

    def _bar(self, state: RenderProgress) -> None:
        width = 30
        filled = int(state.progress * width)
        bar = "#" * filled + "-" * (width - filled)
        self._stream.write(f"\r[{bar}] {self._summary(state)}\x1b[K")
        self._stream.flush()
        self._bar_shown = True

    def finish(self) -> None:
        """End the bar's line."""
        if self._bar_shown:
            self._stream.write("\n")
            self._stream.flush()
            self._bar_shown = False

    def done(self, result: RenderResult) -> None:
        """Report success."""
        self.finish()
        if self.mode == "json":
            event = {
                "event": "done",
                "output": str(result.output),
                "frames": result.frames,
                "fps": f"{result.fps.numerator}/{result.fps.denominator}",
                "elapsed": round(result.elapsed, 3),
                "render_fps": round(result.frames_per_second, 2),
                "workers": result.workers,
            }
            print(json.dumps(event), file=self._json, flush=True)
        elif self.mode != "none":
            print(
                f"wrote {result.output} ({result.frames} frames in {result.elapsed:.1f} s, "
                f"{result.frames_per_second:.1f} fps, {result.workers} workers)",
                file=self._stream,
            )

    def error(self, message: str, exit_code: int) -> None:
        """Report failure: one JSON event in json mode, one line on stderr always."""
        self.finish()
        if self.mode == "json":
            event = {"event": "error", "message": message, "exit_code": exit_code}
            print(json.dumps(event), file=self._json, flush=True)
        print(f"helios-render: error: {message}", file=self._stream, flush=True)


async def _run_cancellable(job: Callable[[], Any]) -> tuple[Any, bool]:
    """Run ``job``; SIGTERM cancels it (after cleanup) and is reported as ``True``."""
    terminated = False
    result: Any = None
    async with task_nursery() as nursery:

        async def watch_sigterm() -> None:
            nonlocal terminated
            with trio.open_signal_receiver(signal.SIGTERM) as signals:
                async for _ in signals:
                    terminated = True
                    nursery.cancel_scope.cancel()
                    return

        nursery.start_soon(watch_sigterm)
        try:
            result = await job()
        finally:
            nursery.cancel_scope.cancel()
    return result, terminated


def _report_failure(exc: BaseException, printer: ProgressPrinter) -> int:
    """Map what ``trio.run`` raised to one message and an exit code; re-raise the unexpected.

    Ctrl+C can come out of nested nurseries as a group holding KeyboardInterrupt.
    """
    interrupted = isinstance(exc, KeyboardInterrupt) or (
        isinstance(exc, BaseExceptionGroup) and exc.subgroup(KeyboardInterrupt) is not None
    )
    if interrupted:
        printer.error("interrupted; every browser and encoder was stopped", EXIT_INTERRUPTED)
        return EXIT_INTERRUPTED
    if isinstance(exc, BaseExceptionGroup):
        ours = exc.subgroup(HeliosError)
        if ours is not None and len(ours.exceptions) == 1:
            exc = ours.exceptions[0]
    if isinstance(exc, HeliosError):
        printer.error(str(exc), exc.exit_code)
        return exc.exit_code
    raise exc


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "doctor":
        from ._doctor import run_doctor

        return run_doctor(sys.stdout)
    _configure_logging(args.verbose)
    printer = ProgressPrinter(getattr(args, "progress", "none"), sys.stderr, sys.stdout)
    try:
        options = _options_from(args)
    except OptionsError as exc:
        printer.error(str(exc), EXIT_USAGE)
        return EXIT_USAGE

    async def job() -> Any:
        if args.command == "still":
            return await render_still(options, args.frame)
        return await render(options, on_progress=printer)

    try:
        result, terminated = trio.run(_run_cancellable, job)
    except BaseException as exc:
        return _report_failure(exc, printer)
    if terminated:
        printer.error("terminated; every browser and encoder was stopped", EXIT_TERMINATED)
        return EXIT_TERMINATED
    if isinstance(result, RenderResult):
        printer.done(result)
    elif args.command == "still":
        printer.finish()
        if printer.mode != "none":
            print(f"wrote {result}", file=sys.stderr)
    return EXIT_OK
