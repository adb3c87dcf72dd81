"""The facts a plan needs about this machine, gathered once before a render: tools and their
versions, the encoder, the capture path, where the composition is and a digest of its contents,
and the ``--audio`` file.

Everything here does I/O; :func:`~helios_render._model.plan.plan_render` turns the result
into a plan without any.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import zoneinfo
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import trio

from ._chromium.browser import browser_version, find_browser, probe_begin_frame
from ._exceptions import OptionsError, SourceError, ToolNotFoundError, UsageError
from ._ffmpeg.ffmpeg import (
    ffmpeg_encoders,
    ffmpeg_version,
    ffprobe_for,
    find_ffmpeg,
)
from ._model.audio_plan import Soundtrack
from ._model.codecs import CODECS, Codec, image_sequence_target
from ._model.job import FolderSource, SourceRef, UrlSource
from ._model.options import RenderOptions
from ._model.plan import Environment, default_concurrency
from ._nursery import task_nursery
from ._source.root import choose_root
from ._source.server import check_page_file

__all__ = [
    "check_output",
    "check_sequence_output",
    "check_timezone",
    "choose_capture",
    "choose_encoder",
    "digest_folder",
    "probe_environment",
    "resolve_source",
    "soundtrack",
]

logger = logging.getLogger(__name__)

#: Files larger than this are digested by size and modification time instead of contents.
DIGEST_CONTENT_LIMIT = 64 * 1024 * 1024
#: Folders never digested (tooling, not composition).
DIGEST_SKIP = frozenset({"node_modules", "__pycache__"})


def _is_url(source: str) -> bool:
    return urlsplit(source).scheme in ("http", "https", "file", "data", "about")


def resolve_source(
    source: str | os.PathLike[str], root: str | os.PathLike[str] | None = None
) -> tuple[SourceRef, Path | None]:
    """Where the composition is: a URL as given, or a local HTML file (a folder means its
    ``index.html``) served from ``root``, or from the folder
    :func:`~helios_render._source.root.choose_root` picks. Returns the reference and the folder
    served (``None`` for a URL).

    Raises:
        SourceError: A local file that does not exist, that is not an HTML page, or that is
            not inside ``root``.
    """
    text = os.fspath(source)
    if _is_url(text):
        return UrlSource(text), None
    path = Path(text).expanduser().absolute()
    if path.is_dir():
        path = path / "index.html"
    if not path.is_file():
        raise SourceError(f"composition not found: {path} (give an HTML file or an http(s) URL)")
    check_page_file(path)
    folder, entry = choose_root(path, None if root is None else Path(root))
    if folder != path.parent:
        logger.info("serving %s (the page loads files from there; --root overrides)", folder)
    return FolderSource(root=os.fspath(folder), entry=entry), folder


def digest_folder(root: Path, *, exclude: frozenset[Path] = frozenset()) -> str:
    """SHA-256 over the names and contents of the files under ``root``: what the composition
    can load. Hidden entries (ours among them: job folders, temporary outputs), ``exclude``
    and tool folders (``node_modules``) are left out; files over
    :data:`DIGEST_CONTENT_LIMIT` count by size and modification time."""
    digest = hashlib.sha256()
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in DIGEST_SKIP)
        for name in sorted(files):
            path = Path(folder) / name
            if name.startswith(".") or path in exclude:
                continue
            try:
                stat = path.stat()
            except OSError:
                continue
            relative = path.relative_to(root).as_posix()
            digest.update(f"{relative}\0{stat.st_size}\0".encode("utf-8", "surrogateescape"))
            if stat.st_size > DIGEST_CONTENT_LIMIT:
                digest.update(f"{stat.st_mtime_ns}\0".encode())
                continue
            try:
                with path.open("rb") as handle:
                    for block in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(block)
            except OSError:
                continue
    return digest.hexdigest()


def _check_writable(folder: Path) -> None:
    if not folder.is_dir():
        raise UsageError(f"output folder {folder} does not exist: create it first")
    # Try it: permission bits say nothing for root, read-only mounts or full disks.
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".helios-probe-"):
            pass
    except OSError as exc:
        raise UsageError(
            f"output folder {folder} is not writable ({exc.strerror}): "
            "choose another output path"
        ) from exc


def _suffix_hint(output: Path, codec: Codec | None) -> str:
    """What to write instead of ``output`` for ``codec``: its usual suffix, and the codecs
    that write the suffix given."""
    suffix = output.suffix.lower()
    hints = []
    if codec is not None and codec.suffixes:
        hints.append(f"write {output.with_suffix(codec.default_suffix).name}")
    others = [name for name, other in CODECS.items() if suffix and suffix in other.suffixes]
    if others:
        hints.append(f"or give --codec {' or '.join(others)} for {suffix}")
    return ": " + ", ".join(hints) if hints else ""


def check_output(output: Path, suffixes: tuple[str, ...], codec: Codec | None = None) -> None:
    """The output's suffix fits and its folder exists and takes a new file.

    Raises:
        OptionsError: Wrong suffix (the message suggests the right one), or a folder.
        UsageError: The folder is missing or not writable.
    """
    if output.suffix.lower() not in suffixes:
        what = f"--codec {codec.name} writes" if codec is not None else "the output must end in"
        raise OptionsError(
            f"cannot write {output.name}: {what} {', '.join(suffixes)}"
            f"{_suffix_hint(output, codec)}"
        )
    if output.is_dir():
        raise OptionsError(f"output {output} is a folder: give a file name")
    _check_writable(output.parent)


def check_sequence_output(output: Path) -> Path:
    """An image sequence's folder (``output``, or the folder of a ``%05d`` pattern) must not
    exist yet, and its parent must take a new folder. Returns the folder.

    Raises:
        OptionsError: The folder exists, or the pattern is malformed.
        UsageError: The parent folder is missing or not writable.
    """
    try:
        folder, _ = image_sequence_target(output)
    except ValueError as exc:
        raise OptionsError(str(exc)) from exc
    if folder.exists() or folder.is_symlink():
        raise OptionsError(
            f"{folder} already exists: --codec png writes a new folder holding only the "
            "frames; remove it or give another name"
        )
    _check_writable(folder.parent)
    return folder


def check_timezone(name: str) -> None:
    """The time zone is one this machine's time zone database knows (Chromium's ICU knows
    the same IANA names); a machine without the database is trusted to Chromium.

    Raises:
        OptionsError: An unknown time zone.
    """
    try:
        zoneinfo.ZoneInfo(name)
    except zoneinfo.ZoneInfoNotFoundError as exc:
        if zoneinfo.available_timezones():
            raise OptionsError(
                f"unknown time zone {name!r}: give an IANA name such as UTC, Europe/Paris "
                "or Asia/Tokyo"
            ) from exc
    except ValueError as exc:
        raise OptionsError(f"unknown time zone {name!r}: give an IANA name such as UTC") from exc


def soundtrack(options: RenderOptions) -> Soundtrack | None:
    """``--audio``, checked before anything starts.

    Raises:
        OptionsError: The file does not exist.
    """
    if options.audio is None:
        return None
    path = Path(options.audio).expanduser().absolute()
    if not path.is_file():
        raise OptionsError(f"--audio file not found: {path} (give an audio file)")
    return Soundtrack(path, float(options.audio_offset), float(options.audio_volume))


def choose_encoder(codec: Codec, available: set[str], ffmpeg: Path) -> str:
    """The first of the codec's encoders that this FFmpeg has.

    Raises:
        UsageError: It has none of them (names them and points to ``doctor``).
    """
    for encoder in codec.encoders:
        if encoder in available:
            return encoder
    names = " or ".join(codec.encoders)
    raise UsageError(
        f"this FFmpeg ({ffmpeg}) has no {names} encoder for --codec {codec.name}: install a "
        "full FFmpeg build (Debian/Ubuntu: apt-get install ffmpeg) or pass --ffmpeg PATH; "
        "helios-render doctor lists what it can encode"
    )


async def choose_capture(options: RenderOptions, browser: Path, version: str) -> bool:
    """Whether to capture with beginFrame: ``auto`` uses it when the browser passes the probe
    (cached per executable and version).

    Raises:
        UsageError: ``capture="beginframe"`` with a browser that does not have it.
    """
    if options.capture == "screenshot":
        return False
    supported = await probe_begin_frame(browser, version)
    if options.capture == "beginframe" and not supported:
        raise UsageError(
            f"{browser} has no HeadlessExperimental.beginFrame: use a chrome-headless-shell "
            "build (--browser PATH, see docs/cli.md) or --capture screenshot"
        )
    logger.info("capture path: %s", "beginFrame" if supported else "screenshots")
    return supported


async def probe_environment(
    options: RenderOptions,
    *,
    video: bool = True,
    memo: dict[Any, Any] | None = None,
    exclude: frozenset[Path] = frozenset(),
) -> Environment:
    """Gather what the plan needs; check the output and the tools first, so that nothing
    starts when one is wrong.

    Args:
        options: The render.
        video: A video (else a still: no encoder, no ffprobe, no digest, and FFmpeg only
            when there is one: a still starts none).
        memo: What the tools said of themselves in earlier renders of a pool (versions,
            encoders, the capture path), filled as they are asked: each is asked once per
            pool. The composition's digest is taken for every render.
        exclude: Files left out of the composition's digest besides the output (a batch's
            other outputs and its rows file, so that they do not change every row's digest).

    Raises:
        UsageError: A bad output path, a missing tool or encoder, a missing composition.
    """
    codec = options.codec_entry
    if video and codec.finish == "png":
        check_sequence_output(options.output_path)
    elif video:
        check_output(options.output_path, codec.suffixes, codec)
    track = soundtrack(options) if video else None
    if not video:
        check_output(options.output_path, (".png",))
    check_timezone(options.timezone)
    browser = find_browser(options.browser)
    ffmpeg: Path | None
    try:
        ffmpeg = find_ffmpeg(options.ffmpeg)
    except ToolNotFoundError:
        if video:
            raise
        ffmpeg = None  # a still is a PNG from the browser: no FFmpeg is started
    ffprobe = ffprobe_for(ffmpeg) if video and ffmpeg is not None else None
    source, served = resolve_source(options.source, options.root)
    # Each question is a process or a walk of the folder: ask them all at once.
    facts: dict[str, Any] = {}

    async def ask(name: str, question: Callable[[], object], tool: Path | None = None) -> None:
        key = (name, tool)
        if tool is not None and memo is not None and key in memo:
            facts[name] = memo[key]
            return
        facts[name] = await trio.to_thread.run_sync(question)
        if tool is not None and memo is not None:
            memo[key] = facts[name]

    async with task_nursery() as nursery:
        nursery.start_soon(ask, "browser", lambda: browser_version(browser), browser)
        if ffmpeg is not None:
            nursery.start_soon(ask, "ffmpeg", lambda: ffmpeg_version(ffmpeg), ffmpeg)
        if video and ffmpeg is not None:
            # (with the encoders, whether it has the colorspace filter, which workers read)
            nursery.start_soon(ask, "encoders", lambda: ffmpeg_encoders(ffmpeg), ffmpeg)
        if served is not None and video:
            exclude = frozenset({options.output_path, options.target_path}) | exclude
            nursery.start_soon(ask, "digest", lambda: digest_folder(served, exclude=exclude))
    browser_text = facts["browser"]
    ffmpeg_text = facts.get("ffmpeg", "none (a still needs no FFmpeg)")
    encoder = choose_encoder(codec, facts["encoders"], ffmpeg) if video and ffmpeg else None
    capture_key = ("capture", options.capture, browser, browser_text)
    if memo is not None and capture_key in memo:
        begin_frame = memo[capture_key]
    else:
        begin_frame = await choose_capture(options, browser, browser_text)
        if memo is not None:
            memo[capture_key] = begin_frame
    source_digest = facts.get("digest")
    return Environment(
        browser=browser,
        browser_version=browser_text,
        ffmpeg=ffmpeg or Path("ffmpeg"),
        ffmpeg_version=ffmpeg_text,
        begin_frame=begin_frame,
        source=source,
        source_digest=source_digest,
        default_concurrency=default_concurrency(),
        video_encoder=encoder,
        ffprobe=ffprobe,
        soundtrack=track,
    )
