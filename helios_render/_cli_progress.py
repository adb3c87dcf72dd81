"""How the command line shows a render's progress: a bar on a terminal, a line per step in a
log, or one JSON object per line (``--progress json``).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TextIO

from ._model.progress import RenderProgress
from ._render import RenderResult

__all__ = [
    "ProgressPrinter",
]


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
        #: Streams that could not be written to (a closed pipe, a full disk): left alone.
        self._dead: list[TextIO] = []
        self._last_line_at = -1.0
        self._last_stage = ""
        self._bar_shown = False

    def _write(self, stream: TextIO, text: str) -> None:
        """Write and flush ``text``; a stream that fails is silenced, never an error.

        ``helios-render ... | head -n 1`` closes our stdout after one line: the render goes
        on, as ``git log | head`` does, and its progress goes nowhere.
        """
        if stream in self._dead:
            return
        try:
            stream.write(text)
            stream.flush()
        except (OSError, ValueError) as exc:  # ValueError: the stream was closed
            self._dead.append(stream)
            _silence(stream)
            if not isinstance(exc, BrokenPipeError) and stream is not self._stream:
                reason = getattr(exc, "strerror", None) or exc
                self._write(
                    self._stream, f"helios-render: warning: progress output stopped: {reason}\n"
                )

    def __call__(self, state: RenderProgress) -> None:
        if self.mode == "json":
            self._write(self._json, json.dumps(state.as_json()) + "\n")
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
                self._write(self._stream, self._summary(state) + "\n")

    @staticmethod
    def _summary(state: RenderProgress) -> str:
        fps = f"{state.fps:5.1f} fps" if state.fps else "  --- fps"
        retries = f" retries {state.retries}" if state.retries else ""
        if state.replaying is not None:
            retries += f"  (replaying the frames before the chunks: {state.replaying:.0%})"
        return (
            f"{state.stage:<12} {state.progress * 100:5.1f}%  "
            f"{state.frames_done}/{state.frames_total} frames  {fps}  "
            f"ETA {_format_seconds(state.eta)}{retries}"
        )

    def _bar(self, state: RenderProgress) -> None:
        width = 30
        filled = int(state.progress * width)
        bar = "#" * filled + "-" * (width - filled)
        self._write(self._stream, f"\r[{bar}] {self._summary(state)}\x1b[K")
        self._bar_shown = True

    def finish(self) -> None:
        """End the bar's line."""
        if self._bar_shown:
            self._write(self._stream, "\n")
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
                "frames_skipped": result.frames_skipped,
            }
            self._write(self._json, json.dumps(event) + "\n")
        elif self.mode != "none":
            self._write(
                self._stream,
                f"wrote {result.output} ({result.frames} frames in {result.elapsed:.1f} s, "
                f"{result.frames_per_second:.1f} fps, {result.workers} workers)\n",
            )

    def wrote(self, path: Path) -> None:
        """Report a still written to ``path``."""
        self.finish()
        if self.mode != "none":
            self._write(self._stream, f"wrote {path}\n")

    def error(self, message: str, exit_code: int) -> None:
        """Report failure: one JSON event in json mode, one line on stderr always."""
        self.finish()
        if self.mode == "json":
            event = {"event": "error", "message": message, "exit_code": exit_code}
            self._write(self._json, json.dumps(event) + "\n")
        self._write(self._stream, f"helios-render: error: {message}\n")


def _silence(stream: TextIO) -> None:
    """Point ``stream``'s file descriptor at /dev/null, so that nothing (not even the
    interpreter's last flush at exit) fails on it again."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError):
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, fd)
    finally:
        os.close(null)
