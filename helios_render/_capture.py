"""Capture paths: screenshots (any Chromium) and HeadlessExperimental.beginFrame (headless shell).

The screenshot path lives on :class:`~helios_render._page.Page`; this module probes whether a
browser has the beginFrame path.
"""

from __future__ import annotations

import logging
from pathlib import Path

import trio

from ._browser import launch_browser
from ._exceptions import BrowserError

__all__ = ["PROBE_TIMEOUT", "probe_begin_frame"]

logger = logging.getLogger(__name__)

#: Seconds the beginFrame probe may take once the browser is up.
PROBE_TIMEOUT = 10.0
_probe_cache: dict[Path, bool] = {}


async def probe_begin_frame(executable: Path) -> bool:
    """Whether ``executable`` captures frames with ``HeadlessExperimental.beginFrame``.

    Launches the browser with begin-frame control and asks for one frame with a screenshot;
    the answer is cached per executable for the life of the process.

    Cancellation:
        The probe browser is stopped and reaped.
    """
    if executable in _probe_cache:
        return _probe_cache[executable]
    supported = False
    try:
        async with launch_browser(
            executable, width=64, height=64, begin_frame_control=True
        ) as browser:
            with trio.move_on_after(PROBE_TIMEOUT):
                session = await browser.open_tab(width=64, height=64, begin_frame=True)
                reply = await session.execute(
                    "HeadlessExperimental.beginFrame", {"screenshot": {"format": "png"}}
                )
                supported = "screenshotData" in reply or "hasDamage" in reply
    except BrowserError as exc:
        logger.debug("beginFrame probe failed: %r", exc)
    _probe_cache[executable] = supported
    return supported
