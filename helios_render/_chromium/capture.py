"""Capture paths: screenshots (any Chromium) and HeadlessExperimental.beginFrame (headless shell).

A :class:`CapturePath` turns the page's current frame into image bytes through a CDP
``execute`` function (the page's own, which maps a page that went away to the right error):
:class:`ScreenshotCapture` with ``Page.captureScreenshot``; :class:`BeginFrameCapture`, on a
browser under begin-frame control, draws exactly one compositor frame per capture.
:func:`probe_begin_frame` says whether a browser has the beginFrame path (cached per
executable and version).
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Awaitable, Callable
from fractions import Fraction
from typing import Any, Protocol

from .._exceptions import BrowserError, CaptureStalledError, FrameTimeoutError, RenderError

__all__ = [
    "BEGIN_FRAME_ATTEMPTS",
    "BeginFrameCapture",
    "CapturePath",
    "ScreenshotCapture",
]

logger = logging.getLogger(__name__)

#: Frames issued at most to get one beginFrame screenshot.
BEGIN_FRAME_ATTEMPTS = 8

#: ``execute(method, params)``: one CDP command on the page's session.
Execute = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


def _image_params(image_format: str, quality: int) -> dict[str, Any]:
    params: dict[str, Any] = {"format": image_format, "optimizeForSpeed": True}
    if image_format == "jpeg":
        params["quality"] = quality
    return params


class CapturePath(Protocol):
    """How a frame leaves the browser."""

    async def capture(
        self,
        execute: Execute,
        image_format: str,
        quality: int,
    ) -> bytes:
        """The current frame as JPEG or PNG bytes. The caller bounds it in time.

        Raises:
            BrowserError: No image came back.
        """
        ...

    async def draw(self, execute: Execute) -> None:
        """Have the browser draw one frame without capturing it (where the path controls the
        frames; a browser that draws on its own needs nothing)."""
        ...

    def timed_out(self, timeout: float, frame: int | None) -> RenderError:
        """The error for a capture that did not come back within ``timeout``."""
        ...


class ScreenshotCapture:
    """``Page.captureScreenshot``: works with any Chromium."""

    async def capture(
        self,
        execute: Execute,
        image_format: str,
        quality: int,
    ) -> bytes:
        reply = await execute("Page.captureScreenshot", _image_params(image_format, quality))
        return base64.b64decode(reply["data"])

    async def draw(self, execute: Execute) -> None:
        pass  # the browser draws on its own (the runtime waits for its frames)

    def timed_out(self, timeout: float, frame: int | None) -> FrameTimeoutError:
        return FrameTimeoutError(
            f"the screenshot of frame {frame} did not come back within {timeout:g} s "
            "(raise --timeout)"
        )


class BeginFrameCapture:
    """``HeadlessExperimental.beginFrame`` with a screenshot: one compositor frame per capture,
    on a tab under begin-frame control. The first frames after a navigation may come without a
    screenshot (no damage yet): up to :data:`BEGIN_FRAME_ATTEMPTS` frames are issued.

    Frame times tell the runtime's armed seeks (which run inside the main frame, see
    ``runtime.js``) a new frame from a retry: each new frame's time is at least one interval
    after the one before, a retry's 1/64 of one. They are also never behind the clock:
    Chromium gives an animation-frame callback requested at real time *r* a timestamp of at
    least *r*, which a frame time in the past would not be.
    """

    def __init__(self, fps: Fraction, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = 1000.0 / float(fps)
        self._clock = clock  # Chromium's TimeTicks are CLOCK_MONOTONIC, here in seconds
        self._last: float | None = None

    def _ticks(self, attempt: int) -> float:
        now = self._clock() * 1000.0 + self._interval
        if self._last is None:
            ticks = now
        elif attempt == 0:
            ticks = max(now, self._last + self._interval)
        else:
            ticks = self._last + self._interval / 64
        self._last = ticks
        return ticks

    async def capture(
        self,
        execute: Execute,
        image_format: str,
        quality: int,
    ) -> bytes:
        shot = _image_params(image_format, quality)
        for attempt in range(BEGIN_FRAME_ATTEMPTS):
            reply = await execute(
                "HeadlessExperimental.beginFrame",
                {
                    "frameTimeTicks": self._ticks(attempt),
                    "interval": self._interval,
                    "screenshot": shot,
                },
            )
            data = reply.get("screenshotData")
            if data:
                return base64.b64decode(data)
        raise BrowserError(
            f"HeadlessExperimental.beginFrame returned no screenshot in {BEGIN_FRAME_ATTEMPTS} "
            "frames; use --capture screenshot"
        )

    async def draw(self, execute: Execute) -> None:
        """Draw one frame without a screenshot (timed as a retry, so the runtime does not take
        it for a new frame)."""
        await execute(
            "HeadlessExperimental.beginFrame",
            {"frameTimeTicks": self._ticks(1), "interval": self._interval},
        )

    def timed_out(self, timeout: float, frame: int | None) -> RenderError:
        # The seek had finished: what did not answer is the compositor (a starved machine, or
        # a hung browser). A frame that never comes back leaves the target stuck ("Another
        # frame is pending"), so only a fresh browser can go on: a crash-class error.
        return CaptureStalledError(
            f"HeadlessExperimental.beginFrame did not answer within {timeout:g} s "
            f"(frame {frame}; the browser is starved or hung: retried on a fresh browser)"
        )


