"""Capture paths: screenshots (any Chromium) and HeadlessExperimental.beginFrame (headless shell).

The screenshot path lives on :class:`~helios_render._page.Page`; this module probes whether a
browser has the beginFrame path.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import trio

from ._browser import launch_browser
from ._exceptions import BrowserError

__all__ = ["PROBE_TIMEOUT", "probe_begin_frame"]

logger = logging.getLogger(__name__)

#: Seconds the beginFrame probe may take once the browser is up.
PROBE_TIMEOUT = 10.0
_probe_cache: dict[str, bool] = {}


def _cache_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "helios-render" / "capabilities.json"


def _cache_key(executable: Path, version: str) -> str:
    try:
        stat = executable.resolve().stat()
    except OSError:
        return ""
    return f"{executable.resolve()}|{version}|{stat.st_size}|{stat.st_mtime_ns}"


def _read_cache() -> dict[str, bool]:
    try:
        data = json.loads(_cache_file().read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): bool(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _write_cache(key: str, supported: bool) -> None:
    path = _cache_file()
    try:
        entries = _read_cache()
        entries[key] = supported
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        temporary.write_text(json.dumps(entries, indent=1))
        os.replace(temporary, path)
    except OSError as exc:
        logger.debug("could not cache the beginFrame probe: %r", exc)


async def probe_begin_frame(executable: Path, version: str | None = None) -> bool:
    """Whether ``executable`` captures frames with ``HeadlessExperimental.beginFrame``.

    Launches the browser with begin-frame control and asks for one frame with a screenshot.
    With ``version`` (its ``--version`` line), the answer is cached per executable, version,
    size and modification time in ``~/.cache/helios-render/capabilities.json``, so that a
    render does not launch a browser just to ask again; without it, the browser is asked.

    Cancellation:
        The probe browser is stopped and reaped.
    """
    key = _cache_key(executable, version) if version else ""
    if key and key in _probe_cache:
        return _probe_cache[key]
    if key:
        cached = _read_cache().get(key)
        if cached is not None:
            _probe_cache[key] = cached
            return cached
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
        return False  # a browser that did not start says nothing worth remembering
    if key:
        _probe_cache[key] = supported
        _write_cache(key, supported)
    return supported
