"""Find Chromium, launch it with a fresh profile, connect over CDP, and always shut it down."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from .._exceptions import BrowserError, CdpCommandError, CdpError, ToolNotFoundError
from .._process import ManagedProcess, log_tail, spawn
from .._tempdirs import SHORT_TMP, make_private_dir
from .._toolcache import cached_facts, recall, remember
from .cdp import CdpConnection, CdpSession, open_cdp

__all__ = [
    "EXIT_GRACE",
    "LAUNCH_TIMEOUT",
    "PROBE_TIMEOUT",
    "SHUTDOWN_GRACE",
    "Browser",
    "chromium_args",
    "deny_downloads",
    "find_browser",
    "launch_browser",
    "probe_begin_frame",
]

logger = logging.getLogger(__name__)

#: Seconds Chromium gets to announce its DevTools endpoint.
LAUNCH_TIMEOUT = 30.0
#: Seconds ``Browser.close`` may take before we stop asking politely.
CLOSE_TIMEOUT = 0.5
#: Seconds Chromium gets to exit by itself after ``Browser.close`` before SIGTERM. Sent
#: SIGTERM at once, it leaves its own temporary folders behind.
EXIT_GRACE = 2.0
#: Seconds Chromium gets to exit after SIGTERM before it is killed.
SHUTDOWN_GRACE = 1.0
#: The same when the render is failing or cancelled.
ABORT_GRACE = 0.2

_PATH_CANDIDATES = (
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
    "chrome",
    "chrome-headless-shell",
    "headless_shell",
)

#: Flags every launch gets. The network ones keep Chromium from calling home (and from hanging
#: on a machine without network); the rest make rendering deterministic and unthrottled.
BASE_FLAGS = (
    "--headless",
    "--remote-debugging-port=0",
    "--remote-debugging-address=127.0.0.1",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-breakpad",
    "--disable-crash-reporter",
    "--disable-dev-shm-usage",
    "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows",
    "--disable-renderer-backgrounding",
    "--disable-hang-monitor",
    "--disable-ipc-flooding-protection",
    "--disable-features=Translate,MediaRouter,OptimizationHints,DialMediaRouteProvider,"
    "AcceptCHFrame,CalculateNativeWinOcclusion,InterestFeedContentSuggestions",
    "--metrics-recording-only",
    "--password-store=basic",
    "--use-mock-keychain",
    "--mute-audio",
    "--hide-scrollbars",
    "--force-color-profile=srgb",
    "--font-render-hinting=none",
    "--autoplay-policy=no-user-gesture-required",
    # Compositor-thread copies of transform/opacity animations can show a frame the page's
    # (paused, seeked) animation no longer has; keep every animation on the main thread.
    "--disable-threaded-animation",
)

#: Extra flags for browsers whose compositor we drive with ``HeadlessExperimental.beginFrame``.
BEGIN_FRAME_FLAGS = (
    "--deterministic-mode",
    "--enable-begin-frame-control",
    "--disable-new-content-rendering-timeout",
    "--run-all-compositor-stages-before-draw",
    "--disable-threaded-scrolling",
    "--disable-checker-imaging",
    "--disable-image-animation-resync",
)


def _playwright_candidates() -> list[Path]:
    root = Path(os.environ.get("PLAYWRIGHT_BROWSERS_PATH") or Path.home() / ".cache/ms-playwright")
    found: list[Path] = []
    for pattern in (
        "chromium_headless_shell-*/chrome-*/headless_shell",
        "chromium_headless_shell-*/chrome-*/chrome-headless-shell",
        "chromium-*/chrome-linux*/chrome",
    ):
        found.extend(sorted(root.glob(pattern), reverse=True))
    return found


def _check_executable(path: Path, origin: str) -> Path:
    if not path.is_file() or not os.access(path, os.X_OK):
        raise ToolNotFoundError(
            f"Chromium not found at {path} (from {origin}): give the path of a Chromium or "
            "Chrome executable, or install one (Debian/Ubuntu: apt-get install chromium)"
        )
    return path


def find_browser(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Locate a Chromium executable.

    Order: ``explicit`` (``--browser``), ``$HELIOS_CHROMIUM``, ``chromium``,
    ``chromium-browser``, ``google-chrome``, ``chrome-headless-shell`` on ``PATH``, then
    Playwright's browser cache.

    Raises:
        ToolNotFoundError: Nothing usable was found; the message says what to install.
    """
    if explicit:
        return _check_executable(Path(explicit), "--browser")
    env = os.environ.get("HELIOS_CHROMIUM")
    if env:
        return _check_executable(Path(env), "HELIOS_CHROMIUM")
    for name in _PATH_CANDIDATES:
        found = shutil.which(name)
        if found:
            return Path(found)
    for candidate in _playwright_candidates():
        if os.access(candidate, os.X_OK):
            return candidate
    raise ToolNotFoundError(
        "no Chromium found: install one (Debian/Ubuntu: apt-get install chromium), "
        "or pass --browser PATH or set HELIOS_CHROMIUM"
    )


def browser_version(executable: Path) -> str:
    """``chromium --version`` (remembered per executable file), or a note that it would
    not say."""
    failure = "unknown"

    def ask() -> str | None:
        nonlocal failure
        try:
            result = subprocess.run(
                [os.fspath(executable), "--version"],
                capture_output=True,
                timeout=20,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            failure = f"unknown ({exc})"
            return None
        return result.stdout.decode("utf-8", "replace").strip() or None

    version: str | None = cached_facts(executable, "version", ask)
    return version or failure


@dataclass(slots=True, eq=False)
class Browser:
    """A running Chromium and its DevTools connection."""

    executable: Path
    process: ManagedProcess
    connection: CdpConnection
    profile_dir: Path
    begin_frame_control: bool

    @property
    def cdp(self) -> CdpSession:
        """The browser-level CDP session."""
        return self.connection.session(None)

    def log_tail(self) -> str:
        """The tail of Chromium's own log."""
        return log_tail(self.profile_dir / "chromium.log")

    async def open_tab(self, *, width: int, height: int, begin_frame: bool) -> CdpSession:
        """Open a blank tab and attach to it as a flattened session.

        With ``begin_frame`` the tab draws only when asked with
        ``HeadlessExperimental.beginFrame`` (the browser must run with begin-frame control).
        """
        target: dict[str, Any] = {"url": "about:blank"}
        if begin_frame:
            target.update(enableBeginFrameControl=True, width=width, height=height)
        created = await self.cdp.execute("Target.createTarget", target)
        attached = await self.cdp.execute(
            "Target.attachToTarget", {"targetId": created["targetId"], "flatten": True}
        )
        return self.connection.session(attached["sessionId"])


#: Longest path of a Unix socket (``sun_path`` holds 108 bytes with the final NUL).
_SOCKET_PATH_MAX = 107
#: What Chromium appends to its TMPDIR for its singleton socket.
_SINGLETON_SUFFIX = "/org.chromium.Chromium.XXXXXX/SingletonSocket"


def _private_tmp(profile_dir: Path) -> Path:
    """A private TMPDIR for one Chromium: ``tmp`` in its profile folder.

    Chromium puts a Unix socket in a folder of its TMPDIR, and a socket path has at most 107
    bytes: when the temp folder's path is too long for that (Chromium would abort), the
    private TMPDIR is a short-named folder of ``/tmp`` instead, removed the same way.
    """
    private = profile_dir / "tmp"
    if len(os.fsencode(private)) + len(_SINGLETON_SUFFIX) <= _SOCKET_PATH_MAX:
        private.mkdir()
        return private
    return make_private_dir("t", parent=SHORT_TMP)


async def deny_downloads(browser: Browser, context_id: str | None = None) -> None:
    """Refuse every download in a browser context (``None``: the default one).

    A page that clicks an ``<a download>`` or navigates to a file served as an attachment
    would otherwise make Chromium save it under ``~/Downloads``. ``eventsEnabled`` keeps the
    ``Browser.downloadWillBegin`` events coming, so that a refused download can be reported.
    """
    params: dict[str, Any] = {"behavior": "deny", "eventsEnabled": True}
    if context_id is not None:
        params["browserContextId"] = context_id
    await browser.cdp.execute("Browser.setDownloadBehavior", params)


async def _read_endpoint(process: ManagedProcess, profile_dir: Path) -> str:
    port_file = profile_dir / "DevToolsActivePort"
    while True:
        if process.poll() is not None:
            raise BrowserError(
                f"Chromium exited with status {process.returncode} before it was ready:\n"
                + log_tail(profile_dir / "chromium.log")
            )
        try:
            lines = port_file.read_text().split()
        except OSError:
            lines = []
        if len(lines) >= 2:
            return f"ws://127.0.0.1:{int(lines[0])}{lines[1]}"
        await trio.sleep(0.02)


def chromium_args(
    executable: Path,
    profile_dir: Path,
    *,
    width: int,
    height: int,
    begin_frame_control: bool,
    extra_args: Sequence[str],
    as_root: bool,
) -> list[str]:
    """The command line of a Chromium we launch (pure, so that it can be checked).

    The DevTools endpoint listens on loopback only, web security stays on, and the sandbox is
    turned off only when running as root, where Chromium refuses to start with it.
    """
    args: list[str] = [os.fspath(executable), *BASE_FLAGS]
    if as_root:
        args.append("--no-sandbox")
    if begin_frame_control:
        args.extend(BEGIN_FRAME_FLAGS)
    args += [f"--user-data-dir={profile_dir}", f"--window-size={width},{height}", *extra_args]
    args.append("about:blank")
    return args


@asynccontextmanager
async def launch_browser(
    executable: Path,
    *,
    width: int,
    height: int,
    begin_frame_control: bool = False,
    extra_args: Sequence[str] = (),
) -> AsyncIterator[Browser]:
    """Launch Chromium with a fresh profile and connect to it.

    Chromium's own temporary files go to a private ``TMPDIR`` inside the profile folder, and
    its crash database and caches (``XDG_CONFIG_HOME``, ``XDG_CACHE_HOME``) into the
    profile folder too, which is removed on every exit: the temp folder and the home folder
    are left as they were found. Downloads are denied: a composition cannot write files on
    the user's disk.

    Raises:
        BrowserError: It did not start or announce its endpoint within
            :data:`LAUNCH_TIMEOUT`; the message quotes the tail of its log.

    Cancellation:
        On every exit, cancellation included: ``Browser.close``, :data:`SHUTDOWN_GRACE`,
        SIGKILL to the process group, reap, and remove the profile directory.
    """
    profile_dir = make_private_dir("chromium")
    private_tmp = _private_tmp(profile_dir)
    args = chromium_args(
        executable,
        profile_dir,
        width=width,
        height=height,
        begin_frame_control=begin_frame_control,
        extra_args=extra_args,
        as_root=os.geteuid() == 0,
    )
    process: ManagedProcess | None = None
    polite = False
    # Chromium takes its download folder from XDG's user-dirs file (else ~/Downloads, which it
    # creates even when every download is denied): point it into the profile folder too.
    config_home = profile_dir / "config"
    config_home.mkdir()
    (config_home / "user-dirs.dirs").write_text(
        f'XDG_DOWNLOAD_DIR="{profile_dir / "downloads"}"\n'
    )
    try:
        try:
            process = spawn(
                args,
                name="chromium",
                log_path=profile_dir / "chromium.log",
                env={
                    **os.environ,
                    "TMPDIR": os.fspath(private_tmp),
                    # Chromium's crash database and dconf cache go there, not to ~/.config.
                    "XDG_CONFIG_HOME": os.fspath(config_home),
                    "XDG_CACHE_HOME": os.fspath(profile_dir / "cache"),
                },
            )
        except OSError as exc:
            raise ToolNotFoundError(f"could not start Chromium at {executable}: {exc}") from exc
        try:
            with trio.fail_after(LAUNCH_TIMEOUT):
                url = await _read_endpoint(process, profile_dir)
        except trio.TooSlowError:
            raise BrowserError(
                f"Chromium did not announce its DevTools endpoint within {LAUNCH_TIMEOUT:g} s:\n"
                + log_tail(profile_dir / "chromium.log")
            ) from None
        async with open_cdp(url) as connection:
            browser = Browser(executable, process, connection, profile_dir, begin_frame_control)
            await deny_downloads(browser)
            try:
                yield browser
            except BaseException:
                # Failing or cancelled: the profile is thrown away, so there is nothing to
                # close politely; siblings are waiting for us to be gone.
                polite = False
                raise
            else:
                polite = True
            finally:
                if polite:
                    with (
                        trio.CancelScope(shield=True),
                        trio.move_on_after(CLOSE_TIMEOUT),
                        suppress(CdpError),
                    ):
                        await browser.cdp.execute("Browser.close")
        if polite:
            # Chromium removes its own temporary files on a normal exit, not on SIGTERM.
            with trio.CancelScope(shield=True), trio.move_on_after(EXIT_GRACE):
                await process.wait()
    finally:
        if process is not None:
            await process.terminate(SHUTDOWN_GRACE if polite else ABORT_GRACE)
        shutil.rmtree(profile_dir, ignore_errors=True)
        shutil.rmtree(private_tmp, ignore_errors=True)


#: Seconds the beginFrame probe may take once the browser is up.
PROBE_TIMEOUT = 10.0


def _cache_key(executable: Path, version: str) -> str:
    """The probe's answer holds for this executable file at this version (a wrapper script's
    ``--version`` names the binary it starts)."""
    try:
        real = executable.resolve()
        stat = real.stat()
    except OSError:
        return ""
    return f"beginframe|{real}|{version}|{stat.st_size}|{stat.st_mtime_ns}"


async def probe_begin_frame(executable: Path, version: str | None = None) -> bool:
    """Whether ``executable`` captures frames with ``HeadlessExperimental.beginFrame``.

    Launches the browser with begin-frame control and asks for one frame with a screenshot.
    With ``version`` (its ``--version`` line), the answer is cached per executable, version,
    size and modification time in ``~/.cache/helios-render/tools.json``, so that a
    render does not launch a browser just to ask again; without it, the browser is asked.

    Cancellation:
        The probe browser is stopped and reaped.
    """
    key = _cache_key(executable, version) if version else ""
    cached = recall(key) if key else None
    if isinstance(cached, bool):
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
    except CdpCommandError as exc:
        # The browser runs and refused a command of the path (Debian's new headless mode
        # cannot even open a begin-frame tab): a lasting answer, remembered.
        logger.debug("beginFrame probe: the browser refused %s: %s", exc.method, exc.detail)
    except BrowserError as exc:
        logger.debug("beginFrame probe failed: %r", exc)
        return False  # a browser that did not start says nothing worth remembering
    if key:
        remember(key, supported)
    return supported
