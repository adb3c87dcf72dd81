"""A composition loaded in a page, with the virtual-time runtime, seekable frame by frame."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from fractions import Fraction
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

import trio

from .._exceptions import (
    AssetError,
    BrowserError,
    CdpCommandError,
    FrameTimeoutError,
    OptionsError,
    PageError,
    SourceError,
)
from .._model.job import MediaRecord, PageConfig
from .._nursery import background_nursery, collapse_group
from .._source.server import PAGE_TYPES
from .browser import Browser
from .capture import BeginFrameCapture, CapturePath, ScreenshotCapture
from .cdp import CdpEvent, CdpSession

__all__ = [
    "CLOCK_ORIGIN_MS",
    "EPOCH_MS",
    "URL_LIMIT",
    "Page",
    "inspect_source",
    "open_page",
    "runtime_source",
    "shorten_url",
    "shorten_urls",
]

logger = logging.getLogger(__name__)

#: What ``Date.now()`` returns at frame 0: 2024-01-01T00:00:00Z, the same in every worker.
EPOCH_MS = 1_704_067_200_000
#: What ``performance.now()`` and the rAF timestamp read at frame 0 (milliseconds): as in a
#: browser, whose clock counts from navigation start, never 0; the same in every worker.
CLOCK_ORIGIN_MS = 100
NAVIGATED_AWAY = (
    "the composition navigated away to {url}: a composition must stay on its page "
    "(remove the navigation, or render that URL instead)"
)
#: Seconds the page gets to say what it is still waiting for (or which frame it is on) after a
#: frame timed out or threw.
PENDING_LABELS_TIMEOUT = 2.0
#: The binding through which the runtime reports each frame it seeked inside a capture (the
#: armed seeks of the beginFrame path); the name is also in ``runtime.js``.
FRAME_BINDING = "__heliosFrameShown"
#: Seconds an armed capture waits, after its image came back, for the runtime's report of the
#: frame it drew. Without one the image is dropped and the frame seeked and captured again.
FRAME_REPORT_GRACE = 2.0
#: Frames drawn at most (beginFrame path) for a moved ``<video>`` to present its new picture;
#: the same bound as ``VIDEO_PRESENT_FRAMES`` in ``runtime.js``.
VIDEO_PRESENT_FRAMES = 8
#: Seconds a command that failed because the page went away waits for the page's watcher to
#: say why (navigation, crash, close), before it says "navigated away" itself.
WATCHER_GRACE = 0.5
NOT_A_PAGE = (
    "SOURCE is not an HTML page: {url} {what} (give an HTML file, a folder with an "
    "index.html, or the URL of a page)"
)
#: Console calls a composition may make per frame; the rest are dropped. Each call that
#: reaches the console costs Chromium a DevTools event (``Runtime.consoleAPICalled``, which
#: we do not use): a page that logs 100,000 lines per frame took 13 s per frame.
CONSOLE_BUDGET = 200
_CONSOLE_BUDGET_SCRIPT = """(() => {
  const budget = %d;
  const now = Date.now;
  let frame = NaN, used = 0;
  for (const name of ["log", "info", "warn", "error", "debug", "trace", "dir", "dirxml",
                      "table", "count", "timeLog", "group", "groupCollapsed", "assert"]) {
    const original = console[name];
    if (typeof original !== "function") continue;
    console[name] = function (...args) {
      const time = Reflect.apply(now, Date, []);
      if (time !== frame) { frame = time; used = 0; }
      if (++used > budget) return undefined;
      return Reflect.apply(original, this, args);
    };
  }
})();"""
#: Words of CDP errors that mean the page we drive is gone (navigated, reloaded, closed).
_DETACHED = (
    "navigated or closed",
    "Not attached to an active page",
    "Target closed",
    "No target with given id",
    "Cannot find context",
    "Execution context was destroyed",
    "No frame with given id",
)


#: Request types whose failure fails the render: what a frame shows. Fetch and XHR are the
#: page's own business (it sees their errors); the main document is checked on its own.
ASSET_TYPES = frozenset(
    {"Document", "Script", "Stylesheet", "Font", "Image", "Media", "TextTrack"}
)
ALLOW_HINT = "render anyway with --allow-missing-assets"


def _outside_root(url: str, config: PageConfig) -> Path | None:
    """Where the file a failed same-origin request asked for exists above the served folder."""
    if config.served_root is None:
        return None
    served, asked = urlsplit(config.url), urlsplit(url)
    if (served.scheme, served.netloc) != (asked.scheme, asked.netloc):
        return None
    if not asked.path.startswith("/") or asked.path == "/":
        return None
    relative = PurePosixPath(unquote(asked.path)).relative_to("/")
    root = Path(config.served_root)
    for ancestor in root.parents:
        if (ancestor / relative).is_file():
            return ancestor
    return None


def asset_failure(config: PageConfig, kind: str, url: str, reason: str) -> str:
    """The message for a subresource of the composition that failed to load."""
    what = kind.lower() if kind != "TextTrack" else "text track"
    message = f"the composition could not load the {what} {shorten_url(url)}: {reason}"
    ancestor = _outside_root(url, config)
    if ancestor is not None:
        message += (
            f"; the page asks for a file outside the served folder {config.served_root} "
            f"(it exists under {ancestor}): serve that folder with --root {ancestor}, or "
            f"{ALLOW_HINT}"
        )
    else:
        message += f" (fix the path, or {ALLOW_HINT})"
    return message


def runtime_source(config: PageConfig) -> str:
    """The runtime script with this render's settings filled in."""
    template = resources.files("helios_render").joinpath("js/runtime.js").read_text("utf-8")
    settings = {
        "fps": float(config.fps),
        # Frame k is at k * 1000 * den / num ms: the same double as the renderer's time.
        "fpsNumerator": config.fps.numerator,
        "fpsDenominator": config.fps.denominator,
        "seed": config.seed,
        "props": config.props,
        "epoch": EPOCH_MS,
        "clockOrigin": CLOCK_ORIGIN_MS,
        "ignorePageErrors": config.ignore_page_errors,
        "allowMissingAssets": config.allow_missing_assets,
        "skipStatic": config.skip_static,
    }
    return template.replace("__HELIOS_CONFIG__", json.dumps(settings))


def _device_scale(config: PageConfig, begin_frame: bool) -> float:
    """The ``deviceScaleFactor`` to emulate. A beginFrame screenshot is drawn at the scale the
    browser was started with (``--force-device-scale-factor``, see the worker): emulating it
    too would draw the page at the square of it and shrink it back; 0 leaves the browser's."""
    if begin_frame and config.scale != 1:
        return 0
    return config.scale


def inspect_source() -> str:
    """The inspection hooks (``js/inspect.js``), loaded only into a page being inspected."""
    return resources.files("helios_render").joinpath("js/inspect.js").read_text("utf-8")


def _exception_text(details: dict[str, Any]) -> str:
    exception = details.get("exception") or {}
    text = exception.get("description") or details.get("text") or "unknown error"
    text = shorten_urls(str(text))
    if "stack" not in str(text) and details.get("stackTrace"):
        frames = details["stackTrace"].get("callFrames", [])[:8]
        text += "".join(
            f"\n    at {f.get('functionName') or '<anonymous>'} "
            f"({f.get('url')}:{f.get('lineNumber', 0) + 1}:{f.get('columnNumber', 0) + 1})"
            for f in frames
        )
    return str(text)


class Page:
    """A loaded composition. Create it with :func:`open_page`."""

    def __init__(
        self, browser: Browser, session: CdpSession, config: PageConfig, begin_frame: bool
    ) -> None:
        self.browser = browser
        self.session = session
        self.config = config
        self.begin_frame = begin_frame
        self.position: int | None = None
        #: How frames are captured: screenshots, or beginFrame on a browser under begin-frame
        #: control (see :mod:`helios_render._chromium.capture`).
        self.capture_path: CapturePath = (
            BeginFrameCapture(config.fps) if begin_frame else ScreenshotCapture()
        )
        #: Set when we close the tab ourselves, so that its detach is not reported as an error.
        self.closing = False
        #: Set once the composition has loaded: a main-frame navigation after that is an error.
        self.loaded = False
        #: The tab's target id, so that windows it opens can be told from it.
        self.target_id: str | None = None
        #: The error the page's watcher raised (navigated away, crashed, closed), if any.
        self.failure: BaseException | None = None
        self._failed = trio.Event()
        #: The runtime's reports of frames seeked inside their capture (beginFrame path), and
        #: whether the runtime can arm such seeks (it found the binding at load).
        self.frame_reports: trio.MemoryReceiveChannel[CdpEvent] | None = None
        self.can_arm = False
        #: The frame whose seek is armed (it runs inside the next capture), the last frame
        #: armed, and the last frame of a run whose armed seek fell back (no arming up to it).
        self._armed: int | None = None
        self._armed_last: int | None = None
        self._no_arming_until: int | None = None
        #: The armed frame that the caller "seeked" and that the next capture must seek.
        self._seeked_by_capture: int | None = None
        #: The last seek moved a ``<video>`` whose picture the capture must wait for.
        self._pictures_pending = False
        #: Captures that seeked their frame themselves, and armed seeks that fell back.
        self.armed_captures = 0
        self.armed_fallbacks = 0
        #: Whether the last :meth:`seek` (with ``reuse``) found nothing changed since the
        #: frame before: the caller reuses that frame's image instead of capturing.
        self.unchanged = False
        self._armed_frame_same = False
        #: ``(type, url)`` of every request the page made (only when ``config.inspect``).
        self.requests: list[tuple[str, str]] = []

    def fail(self, error: BaseException) -> BaseException:
        """Record why the page failed (from its watcher) and return the error to raise."""
        if self.failure is None:
            self.failure = error
            self._failed.set()
        return self.failure

    async def _explain(self, exc: CdpCommandError) -> BaseException:
        """The error to raise for a command that failed.

        A command fails with "Not attached to an active page" and the like when the page
        navigated, reloaded, crashed or was closed under it. The watcher of the page's events
        says which; it gets :data:`WATCHER_GRACE` seconds to do so, and the error is then
        the watcher's, or "navigated away". Other command errors are returned as they are.
        """
        if not self.loaded or self.closing or not any(m in exc.detail for m in _DETACHED):
            return exc
        with trio.move_on_after(WATCHER_GRACE):
            await self._failed.wait()
        if self.failure is not None:
            return self.failure
        return PageError(NAVIGATED_AWAY.format(url="another page"))

    async def _execute(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """A command of the frame loop, its errors explained (see :meth:`_explain`)."""
        try:
            return await self.session.execute(method, params)
        except CdpCommandError as exc:
            raise await self._explain(exc) from exc

    async def evaluate(self, expression: str, *, await_promise: bool = True) -> Any:
        """Evaluate ``expression`` in the page and return its value.

        Raises:
            PageError: The expression threw or its promise rejected.
        """
        reply = await self._execute(
            "Runtime.evaluate",
            {
                "expression": expression,
                "awaitPromise": await_promise,
                "returnByValue": True,
                "userGesture": True,
            },
        )
        details = reply.get("exceptionDetails")
        if details:
            exception = details.get("exception") or {}
            if exception.get("className") in ("HeliosRuntimeError", "HeliosAssetError"):
                # The runtime's own verdict (a broken video, say): its message says it all.
                name = str(exception.get("className"))
                text = str(exception.get("description") or "").split("\n    at ", 1)[0]
                text = shorten_urls(text.removeprefix(f"{name}: "))
                raise AssetError(text) if name == "HeliosAssetError" else PageError(text)
            raise PageError(f"the composition threw: {_exception_text(details)}")
        return reply.get("result", {}).get("value")

    async def _ask_briefly(self, expression: str) -> Any:
        """The value of a quick ``expression``, asked after a frame failed: ``None`` when the
        page cannot say within :data:`PENDING_LABELS_TIMEOUT`."""
        with trio.move_on_after(PENDING_LABELS_TIMEOUT):
            try:
                return await self.evaluate(expression, await_promise=False)
            except (PageError, BrowserError):
                return None
        return None

    async def pending_labels(self) -> list[str]:
        """What the page is still waiting for (delay labels, images, media, fonts)."""
        labels = await self._ask_briefly("window.__helios.pending()")
        return [shorten_urls(str(label)) for label in labels or []]

    async def seek(
        self, frame: int, *, capture: bool = True, last: int | None = None, reuse: bool = False
    ) -> list[MediaRecord]:
        """Show ``frame``: move the virtual clock to ``frame / fps`` and wait until ready.

        With ``capture`` (a frame about to be captured, not a replayed one) on the screenshot
        path, it also waits for one frame of the browser's own, so that the screenshot shows
        every layer as seeked.

        ``last``, on the beginFrame path, says that the caller will seek and capture every
        frame after ``frame`` up to ``last``, in order: the runtime then arms those seeks to run
        inside their captures, and the seek of an armed frame sends nothing (its
        :meth:`capture` checks the runtime's report and falls back when it must).

        ``reuse`` says that the caller holds the image of ``frame - 1`` and will reuse it when
        the runtime finds nothing changed since that seek (a static frame, with
        ``config.skip_static``): :attr:`unchanged` then says so, and such a frame is neither
        painted nor armed (it needs no capture).

        Returns:
            What media the page plays audibly at this frame (empty when none), for the mix.

        Raises:
            FrameTimeoutError: Not ready within ``config.timeout``; names what is still open.
            PageError: A callback of the composition threw.
        """
        self.unchanged = False
        if self._armed is not None:
            if capture and frame == self._armed:
                self._seeked_by_capture = frame
                return []  # seeked by its capture (an armed frame plays no media)
            await self._disarm()
        time_ms = float(Fraction(frame) * 1000 / self.config.fps)
        arm = (
            capture and self.can_arm and last is not None and last > frame
            and (self._no_arming_until is None or last > self._no_arming_until)
        )
        media: Any = None
        with trio.move_on_after(self.config.timeout) as scope:
            paint = "true" if capture and not self.begin_frame else "false"
            until = f", {last}" if arm else ""
            if reuse and capture and self.config.skip_static:
                until = f", {last if arm else 'null'}, true"
            media = await self.evaluate(
                f"window.__helios.seek({frame}, {time_ms!r}, {paint}{until})"
            )
        if scope.cancelled_caught:
            raise await self._not_ready(frame)
        self.position = frame
        self._pictures_pending = False
        if isinstance(media, dict) and media.get("present") is True:
            # A moved <video>'s picture, which capture() awaits; the runtime armed nothing.
            self._pictures_pending = capture
            media = media.get("media")
        elif isinstance(media, dict) and media.get("same") is True:
            self.unchanged = True  # not armed either: the next frame is seeked on its own
            media = media.get("media")
        elif arm:
            self._armed, self._armed_last = frame + 1, last
        if not isinstance(media, list):
            return []
        return [MediaRecord.from_page(frame, item) for item in media]

    async def replay(self, begin: int, end: int, budget: float) -> int:
        """Run frames from ``begin`` on, up to ``end - 1``, without capture, in one call to
        the page (an rAF page's state before a chunk that starts late): each as :meth:`seek`
        with ``capture`` off would, without a round trip per frame. The page stops after the
        frame that reaches ``budget`` seconds, so a call lasts about that plus one frame.

        Returns:
            The frame after the last one run (``end`` when every frame ran).

        Raises:
            FrameTimeoutError: A frame was not done within ``config.timeout`` (plus
                ``budget``); names the frame it was on and what that frame still waits for.
            PageError: A callback of the composition threw (:class:`AssetError`: the runtime
                found a broken asset); after any of these :attr:`position` is the frame
                the page was on.
        """
        if end <= begin:
            return end
        if self._armed is not None:
            await self._disarm()
        self.unchanged = False
        last: Any = None
        try:
            with trio.move_on_after(self.config.timeout + budget) as scope:
                last = await self.evaluate(
                    f"window.__helios.replay({begin}, {end - 1}, {budget * 1000!r})"
                )
        except (PageError, AssetError):
            self.position = await self._frame_on(begin)
            raise
        if scope.cancelled_caught:
            self.position = await self._frame_on(begin)
            raise await self._not_ready(self.position)
        if not isinstance(last, int) or not begin <= last < end:
            raise PageError(f"the runtime replayed frames {begin}..{end - 1} up to {last!r}")
        self.position = last
        self._pictures_pending = False
        return last + 1

    async def _frame_on(self, fallback: int) -> int:
        """The frame the runtime is on (``fallback`` when the page cannot say)."""
        frame = await self._ask_briefly("window.heliosRender.frame")
        return frame if isinstance(frame, int) else fallback

    async def _not_ready(self, frame: int | None) -> FrameTimeoutError:
        """The error for a frame whose seek did not finish in time, naming what it waits for."""
        labels = await self.pending_labels()
        waiting = f"; still waiting for: {', '.join(labels)}" if labels else ""
        return FrameTimeoutError(
            f"frame {frame} was not ready within {self.config.timeout:g} s{waiting} "
            "(raise --timeout, or resume every heliosRender.delay() handle)"
        )

    async def _disarm(self, frame: int | None = None) -> int:
        """Stop arming, wait for an armed seek (of ``frame``) still under way, and return
        the frame shown.

        Raises:
            PageError: The armed seek failed (a callback of the composition threw).
        """
        self._armed = self._armed_last = self._seeked_by_capture = None
        with trio.move_on_after(self.config.timeout) as scope:
            shown = await self.evaluate("window.__helios.settled()")
        if scope.cancelled_caught:
            raise await self._not_ready(self.position if frame is None else frame)
        if isinstance(shown, int):
            self.position = shown
        return self.position if self.position is not None else -1

    def _drop_reports(self) -> None:
        """Forget the reports of earlier captures (retries of a frame already taken)."""
        if self.frame_reports is not None:
            with suppress(trio.WouldBlock, trio.EndOfChannel):
                while True:
                    self.frame_reports.receive_nowait()

    async def _frame_report(self, frame: int) -> bool:
        """Whether the runtime reports that the capture just taken drew ``frame`` (and, in
        :attr:`_armed_frame_same`, whether it found it unchanged: it then stops arming)."""
        self._armed_frame_same = False
        reports = self.frame_reports
        if reports is None:
            return False
        with trio.move_on_after(FRAME_REPORT_GRACE):
            async for event in reports:
                try:
                    report = json.loads(event.params.get("payload") or "")
                    shown = int(report["frame"])
                except (ValueError, TypeError, KeyError):
                    continue
                if shown < frame and report.get("again") is True:
                    return False  # the capture drew the frame before again: no seek ran
                if shown == frame:
                    self._armed_frame_same = report.get("same") is True
                    return report.get("ok") is True
        logger.debug("no report of armed frame %d within %g s", frame, FRAME_REPORT_GRACE)
        return False

    async def composition_timing(self) -> tuple[float | None, float | None]:
        """A Helios-core page's own ``(fps, duration in seconds)``, each ``None`` when the page
        does not say (or is no Helios page): what a render could take as its defaults."""
        info = await self.evaluate("window.__helios.info()", await_promise=False)
        timing = (info or {}).get("composition") or {}
        fps, duration = timing.get("fps"), timing.get("duration")
        return (
            float(fps) if isinstance(fps, int | float) else None,
            float(duration) if isinstance(duration, int | float) else None,
        )

    async def composition_length(self) -> Any:
        """What the runtime finds of the page's length (``__helios.length()``: declarations,
        the ends of its animations, those that never end), as JSON values."""
        with trio.move_on_after(self.config.timeout) as scope:
            return await self.evaluate("window.__helios.length()")
        if scope.cancelled_caught:
            raise FrameTimeoutError(
                f"the page's animations could not be measured within {self.config.timeout:g} s"
            )
        return None

    async def needs_replay(self) -> bool:
        """Whether state built frame by frame (rAF loops) needs frames 0..S-1 run before S."""
        info = await self.evaluate("window.__helios.info()", await_promise=False)
        return bool(info and info.get("rafPending"))

    async def capture(self, image_format: str, quality: int) -> bytes:
        """Capture the current frame as JPEG or PNG bytes, by the page's capture path.

        Raises:
            FrameTimeoutError: The capture did not come back within ``config.timeout``.
            PageError: The page navigated away (or reloaded) under the capture.
            BrowserError: The page crashed or was closed.
        """
        armed = self._seeked_by_capture
        self._seeked_by_capture = None
        if armed is None:
            return await self._capture(image_format, quality, self.position)
        self._drop_reports()
        image = await self._capture(image_format, quality, armed)
        if await self._frame_report(armed):
            self.armed_captures += 1
            self.position = armed
            last = self._armed_last
            self._armed = armed + 1 if last is not None and armed < last else None
            if self._armed_frame_same:
                self._armed = None  # the runtime stopped arming at an unchanged frame
            return image
        # The seek did not finish inside the capture (the frame had to wait, a callback threw,
        # no report came): drop the image, let the seek finish, and capture the frame again.
        # Arming stops for the rest of this run of frames.
        self.armed_fallbacks += 1
        self._no_arming_until = self._armed_last
        logger.debug("armed seek of frame %d fell back to a seek and a capture", armed)
        if await self._disarm(armed) != armed:
            await self.seek(armed)
        return await self._capture(image_format, quality, armed)

    async def _await_pictures(self) -> None:
        """On the beginFrame path, draw frames without a screenshot until every ``<video>`` the
        last seek moved has presented its new picture (``runtime.js``, "the seeked picture
        reaches the compositor"), for at most :data:`VIDEO_PRESENT_FRAMES` frames."""
        with trio.move_on_after(self.config.timeout) as scope:
            for _ in range(VIDEO_PRESENT_FRAMES):
                await self.capture_path.draw(self._execute)
                if await self.evaluate("window.__helios.presented()", await_promise=False):
                    return
            logger.debug("frame %s: a <video> presented no new picture in %d frames",
                         self.position, VIDEO_PRESENT_FRAMES)
        if scope.cancelled_caught:
            raise self.capture_path.timed_out(self.config.timeout, self.position)

    async def _capture(self, image_format: str, quality: int, frame: int | None) -> bytes:
        if self._pictures_pending:
            self._pictures_pending = False
            await self._await_pictures()
        with trio.move_on_after(self.config.timeout):
            return await self.capture_path.capture(self._execute, image_format, quality)
        raise self.capture_path.timed_out(self.config.timeout, frame)


async def _watch_page(events: trio.MemoryReceiveChannel[CdpEvent], page: Page) -> None:
    config = page.config
    requests: dict[str, tuple[str, str]] = {}  # requestId -> (type, url), for loadingFailed
    async for event in events:
        if page.closing:
            return
        if event.method.startswith("Network."):
            if config.inspect and event.method == "Network.requestWillBeSent":
                page.requests.append(
                    (str(event.params.get("type", "Other")), event.params["request"]["url"])
                )
            failure = _network_failure(event, requests, config)
            if failure is not None:
                if config.allow_missing_assets:
                    logger.warning("%s", failure)
                    continue
                raise AssetError(failure)
            continue
        if event.method == "Runtime.exceptionThrown":
            if config.ignore_page_errors:
                logger.warning("page error ignored: %s", event.params)
                continue
            details = event.params.get("exceptionDetails", {})
            raise page.fail(
                PageError(f"the composition threw an uncaught error: {_exception_text(details)}")
            )
        if event.method == "Page.frameNavigated" and page.loaded:
            frame = event.params.get("frame", {})
            if not frame.get("parentId"):
                raise page.fail(PageError(NAVIGATED_AWAY.format(url=frame.get("url"))))
            continue
        if event.method == "Runtime.consoleAPICalled":
            args = event.params.get("args") or [{}]
            text = str(args[0].get("value", ""))
            if event.params.get("type") == "warning" and text.startswith("helios:"):
                logger.warning("%s", shorten_urls(text))
            continue
        if event.method == "Inspector.targetCrashed":
            raise page.fail(BrowserError("the page's renderer process crashed (out of memory?)"))
        if event.method == "Inspector.detached":
            reason = event.params.get("reason", "unknown")
            raise page.fail(BrowserError(f"the page was closed ({reason})"))
        if event.method == "Page.javascriptDialogOpening":
            # alert()/confirm() would block the page forever: accept them and say so.
            logger.warning(
                "accepting a %s dialog: %s", event.params.get("type"), event.params.get("message")
            )
            await page.session.execute("Page.handleJavaScriptDialog", {"accept": True})


async def _refuse_windows(
    events: trio.MemoryReceiveChannel[CdpEvent], page: Page, known: set[str]
) -> None:
    """Close every window the composition opens, and report refused downloads.

    A window opened with ``window.open()`` can take the foreground, and the composition's
    page would never be drawn again: it is closed at once, and the page stays the one that
    is captured. ``known`` holds the targets that existed before the page was opened.
    """
    browser = page.browser
    async for event in events:
        if page.closing:
            return
        if event.method == "Browser.downloadWillBegin":
            if page.loaded:
                logger.warning(
                    "refused a download the composition started: %s (downloads are denied)",
                    event.params.get("url"),
                )
            continue
        info = event.params.get("targetInfo", {})
        target = info.get("targetId")
        opener = info.get("openerId")
        if (
            info.get("type") != "page"
            or target in known
            or target == page.target_id
            or (opener is not None and opener != page.target_id)
        ):
            continue
        known.add(target)
        logger.warning(
            "closed a window the composition opened (%s): a composition is rendered from its "
            "own page only",
            info.get("url") or "about:blank",
        )
        with suppress(CdpCommandError):
            await browser.cdp.execute("Target.closeTarget", {"targetId": target})


async def _discover_windows(
    browser: Browser, events: trio.MemoryReceiveChannel[CdpEvent]
) -> set[str]:
    """Start reporting targets; return the ids of those that exist already.

    Chromium announces the existing targets before it answers ``Target.setDiscoverTargets``.
    """
    await browser.cdp.execute("Target.setDiscoverTargets", {"discover": True})
    known: set[str] = set()
    while True:
        try:
            event = events.receive_nowait()
        except trio.WouldBlock:
            return known
        target = event.params.get("targetInfo", {}).get("targetId")
        if isinstance(target, str):
            known.add(target)


def _network_failure(
    event: CdpEvent, requests: dict[str, tuple[str, str]], config: PageConfig
) -> str | None:
    """The message for a failed subresource, if ``event`` reports one."""
    params = event.params
    request_id = str(params.get("requestId", ""))
    if event.method == "Network.requestWillBeSent":
        requests[request_id] = (str(params.get("type", "Other")), params["request"]["url"])
        return None
    if event.method == "Network.loadingFinished":
        requests.pop(request_id, None)
        return None
    if event.method == "Network.responseReceived":
        kind = str(params.get("type", "Other"))
        response = params.get("response", {})
        url, status = str(response.get("url", "")), int(response.get("status", 0))
        if status < 400 or kind not in ASSET_TYPES or url == config.url:
            return None
        requests.pop(request_id, None)
        reason = f"HTTP {status} {response.get('statusText') or ''}".rstrip()
        return asset_failure(config, kind, url, reason)
    if event.method == "Network.loadingFailed":
        kind, url = requests.pop(request_id, (str(params.get("type", "Other")), ""))
        if params.get("canceled") or kind not in ASSET_TYPES or url == config.url:
            return None
        if url.startswith(("data:", "blob:")) and kind == "Media":
            return None  # a media element's own error reports it, with the decode error
        reason = str(params.get("blockedReason") or params.get("errorText") or "network error")
        return asset_failure(config, kind, url or "(unknown URL)", reason)
    return None


async def _navigate(session: CdpSession, config: PageConfig, answered: list[bool]) -> None:
    """Load ``config.url``; ``answered`` gets ``True`` once the server has answered."""
    with session.listen("Page.loadEventFired") as loads:
        reply = await session.execute("Page.navigate", {"url": config.url})
        answered.append(True)
        if reply.get("isDownload"):
            raise SourceError(NOT_A_PAGE.format(url=config.url, what="is served as a download"))
        error = reply.get("errorText")
        if error:
            raise SourceError(
                f"could not load {config.url}: {error} (check the URL, or that the server is up)"
            )
        await loads.receive()


@asynccontextmanager
async def open_page(
    browser: Browser, config: PageConfig, *, begin_frame: bool = False
) -> AsyncIterator[Page]:
    """Open a new tab, install the runtime, load the composition and wait until it is ready.

    With ``begin_frame`` (the browser must run with begin-frame control) the tab draws only
    when :meth:`Page.capture` issues ``HeadlessExperimental.beginFrame``.

    Windows the composition opens are closed (and logged); downloads are refused (the
    browser denies them, see :func:`~helios_render._chromium.browser.deny_downloads`).

    Raises:
        SourceError: The URL could not be loaded, did not answer within ``config.timeout``,
            answered an HTTP error, or is not an HTML page (a download, an image, text).
        FrameTimeoutError: The page did not finish loading within ``config.timeout``.
        PageError: The page threw while loading.
        BrowserError: The renderer crashed.

    Cancellation:
        The tab is left to die with its browser (the caller owns the browser).
    """
    session = await browser.open_tab(
        width=config.width, height=config.height, begin_frame=begin_frame
    )
    page = Page(browser, session, config, begin_frame)
    try:
        async with _run_page(browser, session, page) as loaded:
            yield loaded
    except BaseExceptionGroup as group:
        # The watcher's error (navigated away, crashed, closed) explains the body's: a
        # command that failed at the same moment because the page was gone (rule 4).
        chosen = collapse_group(group, explained_by=page.failure)
        if chosen is group:
            raise
        raise chosen from None


#: What ``navigator.hardwareConcurrency`` says on every machine (it sizes worker pools and
#: chunked work in some libraries, so it can change what a frame shows).
PINNED_HARDWARE_CONCURRENCY = 4
#: What ``navigator.platform`` and the user agent's platform say on every machine.
PINNED_PLATFORM = "Linux x86_64"


async def pin_machine(browser: Browser, session: CdpSession, config: PageConfig) -> None:
    """Pin what the machine would leak into the page's frames, the same on every machine:
    the time zone and locale (``config.timezone``, ``config.locale``: ``Date``, ``Intl``,
    ``toLocaleString``, ``navigator.language``), the accept-language header, the platform,
    and ``navigator.hardwareConcurrency``. (The device pixel ratio is pinned by the device
    metrics.)

    Raises:
        OptionsError: Chromium does not know the time zone or the locale.
    """
    try:
        await session.execute("Emulation.setTimezoneOverride", {"timezoneId": config.timezone})
    except CdpCommandError as exc:
        raise OptionsError(
            f"unknown time zone {config.timezone!r} ({exc.detail}): give an IANA name such as "
            "UTC, Europe/Paris or Asia/Tokyo"
        ) from exc
    try:
        await session.execute("Emulation.setLocaleOverride", {"locale": config.locale})
    except CdpCommandError as exc:
        raise OptionsError(
            f"unknown locale {config.locale!r} ({exc.detail}): give a language tag such as "
            "en-US or fr-FR"
        ) from exc
    version = await browser.cdp.execute("Browser.getVersion")
    agent = str(version.get("userAgent") or "")
    await session.execute(
        "Emulation.setUserAgentOverride",
        {"userAgent": agent, "acceptLanguage": config.locale, "platform": PINNED_PLATFORM},
    )
    with suppress(CdpCommandError):  # experimental: older builds lack it
        await session.execute(
            "Emulation.setHardwareConcurrencyOverride",
            {"hardwareConcurrency": PINNED_HARDWARE_CONCURRENCY},
        )


async def _check_document(page: Page) -> None:
    """Refuse an HTTP error page, and a document that is not a page (an image, text).

    Raises:
        SourceError: The URL answered an HTTP error, or its document is not HTML or SVG.
    """
    url = page.config.url
    status, content_type = await page.evaluate(
        "[(performance.getEntriesByType('navigation')[0] || {}).responseStatus || 0,"
        " document.contentType]",
        await_promise=False,
    )
    if isinstance(status, int) and status >= 400:
        raise SourceError(f"{url} answered HTTP {status}: check the path or URL")
    if content_type not in PAGE_TYPES:
        raise SourceError(NOT_A_PAGE.format(url=url, what=f"is {content_type}, not a page"))


@asynccontextmanager
async def _run_page(browser: Browser, session: CdpSession, page: Page) -> AsyncIterator[Page]:
    config = page.config
    async with background_nursery() as nursery:
        with (
            session.listen(
                "Runtime.exceptionThrown",
                "Runtime.consoleAPICalled",
                "Inspector.targetCrashed",
                "Inspector.detached",
                "Page.javascriptDialogOpening",
                "Page.frameNavigated",
                "Network.requestWillBeSent",
                "Network.responseReceived",
                "Network.loadingFinished",
                "Network.loadingFailed",
            ) as events,
            browser.cdp.listen("Target.targetCreated", "Browser.downloadWillBegin") as windows,
            session.listen("Runtime.bindingCalled") as frame_reports,
        ):
            if page.begin_frame:
                page.frame_reports = frame_reports
            nursery.start_soon(_watch_page, events, page)
            info = await session.execute("Target.getTargetInfo")
            page.target_id = info.get("targetInfo", {}).get("targetId")
            known = await _discover_windows(browser, windows)
            nursery.start_soon(_refuse_windows, windows, page, known)
            await session.execute("Page.enable")
            await session.execute("Runtime.enable")
            await session.execute("Inspector.enable")
            # Bodies are not needed, only statuses: keep DevTools from buffering them.
            await session.execute(
                "Network.enable", {"maxTotalBufferSize": 0, "maxResourceBufferSize": 0}
            )
            await session.execute(
                "Emulation.setDeviceMetricsOverride",
                {
                    "width": config.width,
                    "height": config.height,
                    "deviceScaleFactor": _device_scale(config, page.begin_frame),
                    "mobile": False,
                },
            )
            await pin_machine(browser, session, config)
            if config.transparent:
                await session.execute(
                    "Emulation.setDefaultBackgroundColorOverride",
                    {"color": {"r": 0, "g": 0, "b": 0, "a": 0}},
                )
            if config.inspect:
                # Before the runtime: the hooks keep the real timer, and see the page's calls.
                await session.execute(
                    "Page.addScriptToEvaluateOnNewDocument", {"source": inspect_source()}
                )
            if page.begin_frame:
                # Before the runtime, which takes it for its reports of armed seeks.
                await session.execute("Runtime.addBinding", {"name": FRAME_BINDING})
            await session.execute(
                "Page.addScriptToEvaluateOnNewDocument", {"source": runtime_source(config)}
            )
            # After the runtime: Date.now() is the frame's time, so the budget is per frame.
            await session.execute(
                "Page.addScriptToEvaluateOnNewDocument",
                {"source": _CONSOLE_BUDGET_SCRIPT % CONSOLE_BUDGET},
            )
            answered: list[bool] = []
            with trio.move_on_after(config.timeout) as scope:
                await _navigate(session, config, answered)
                await _check_document(page)
                armable = await page.evaluate("window.__helios.ready()")
                page.can_arm = page.begin_frame and armable is True
            if scope.cancelled_caught and not answered:
                raise SourceError(
                    f"could not load {config.url}: no answer within {config.timeout:g} s "
                    "(the server accepted the connection and sent nothing; check the URL, "
                    "or that the server is up)"
                )
            if scope.cancelled_caught:
                labels = await page.pending_labels()
                waiting = f"; still waiting for: {', '.join(labels)}" if labels else ""
                raise FrameTimeoutError(
                    f"{config.url} did not finish loading within {config.timeout:g} s{waiting}"
                )
            page.loaded = True
            try:
                yield page
            finally:
                # The tab dies with its browser (one per worker); only stop reporting on it.
                page.closing = True


#: Longest URL shown whole in a message; longer ones keep their start and end.
URL_LIMIT = 120


_URL = re.compile(r"\b(?:data|blob|https?|file):[^\s\"'<>()]+")


def shorten_url(url: str, limit: int = URL_LIMIT) -> str:
    """``url`` short enough for a message: a ``data:`` URL keeps its media type and says how
    long it was; another long URL keeps its start and its end around an ellipsis."""
    if url.startswith("data:"):
        head, _, _ = url.partition(",")
        if len(url) <= 64:
            return url
        return f"{head[:48]},... ({len(url)} characters)"
    if len(url) <= limit:
        return url
    tail = limit // 3
    return f"{url[: limit - tail - 3]}...{url[-tail:]}"


def shorten_urls(text: str, limit: int = URL_LIMIT) -> str:
    """``text`` with every URL in it shortened by :func:`shorten_url`."""
    return _URL.sub(lambda match: shorten_url(match.group(), limit), text)
