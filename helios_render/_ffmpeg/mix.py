"""The audio mix, run: locate each segment's source, probe its channels with ffprobe, and run the
one FFmpeg that mixes every segment and muxes the result with the video stream-copied.

This is the I/O half of the audio; the segments, the filter graph and the FFmpeg arguments
are planned purely in :mod:`helios_render._model.audio_plan`. Where a source is read from:

* ``bundle:/PATH`` (a local composition's media, as the worker rewrote it) and URLs of the
  loopback server: the file in the composition's folder (:class:`LocalMedia`), never outside
  it;
* ``file://`` URLs: their path; ``data:`` URLs: written to a file in the work folder;
* ``http(s)`` URLs: read by FFmpeg itself, with a read timeout;
* ``blob:``, ``mediastream:``, ``mediasource:``: refused (they exist only inside the page).

A missing or undecodable source is a :class:`MediaError` naming the element and its URL (a
warning for ``data-helios-optional`` elements); a source without an audio stream is skipped.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from urllib.parse import unquote, unquote_to_bytes, urlsplit

import trio

from .._exceptions import EncoderError, MediaError
from .._model.audio_plan import (
    BUNDLE_SCHEME,
    AudioSegment,
    build_mix,
    mux_args,
    network_options,
    total_samples,
)
from .._process import log_tail, spawn

__all__ = [
    "PROBE_TIMEOUT",
    "LocalMedia",
    "mix_audio",
    "probe_channels",
    "resolve_media_url",
]

logger = logging.getLogger(__name__)


#: Seconds ffprobe gets per source.
PROBE_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class LocalMedia:
    """Maps URLs of the loopback server that served a local composition (and ``bundle:/``
    sources, see :func:`~helios_render._model.audio_plan.localize_sources`) back to its files.

    Attributes:
        base_url: The server's origin, e.g. ``http://127.0.0.1:8123``.
        root: The folder it served.
    """

    base_url: str
    root: Path

    def resolve(self, url: str) -> str:
        """A path for a URL of the server; other URLs as they are (``file://`` as paths).

        Raises:
            MediaError: A server URL that points outside the served folder.
        """
        if url.startswith(BUNDLE_SCHEME) or url.startswith(self.base_url + "/"):
            path = unquote(urlsplit(url).path).lstrip("/")
            resolved = (self.root / path).resolve()
            if not resolved.is_relative_to(self.root.resolve()):
                raise MediaError(f"media {url} is outside the composition's folder")
            return os.fspath(resolved)
        return resolve_media_url(url)


def resolve_media_url(url: str) -> str:
    """What FFmpeg reads for a media URL: ``file://`` URLs as paths, others as they are."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        return unquote(parts.path)
    return url


def _data_url_file(url: str, folder: Path, name: str) -> str:
    """A ``data:`` URL written to a file (a long URL would not fit on FFmpeg's command line).

    Raises:
        MediaError: It is not a valid data URL.
    """
    header, comma, payload = url.partition(",")
    if not comma:
        raise MediaError("not a valid data: URL")
    try:
        if header.endswith(";base64"):
            data = base64.b64decode(payload, validate=False)
        else:
            data = unquote_to_bytes(payload)
    except (ValueError, binascii.Error) as exc:
        raise MediaError(f"not a valid data: URL ({exc})") from exc
    path = folder / f"data-{name}"
    path.write_bytes(data)
    return os.fspath(path)


def _locate(source: str, where: str, workdir: Path, name: str) -> str:
    """What ffprobe and FFmpeg read for a source (``where``: as ``resolve`` mapped it).

    Raises:
        MediaError: It cannot be read from outside the page, or a local file is missing.
    """
    scheme = urlsplit(where).scheme
    if not source:
        raise MediaError("it has no source")
    if scheme == "data":
        return _data_url_file(where, workdir, name)
    if scheme in ("blob", "mediastream", "mediasource"):
        raise MediaError(
            f"{scheme}: URLs exist only inside the page; give the element a file or an "
            "http(s) URL"
        )
    if not scheme and not Path(where).exists():
        raise MediaError(f"{where} not found")
    return where


async def _run(args: list[str], log: Path) -> int:
    process = spawn(args, name=Path(args[0]).name, log_path=log)
    try:
        return await process.wait()
    finally:
        if process.returncode is None:
            await process.terminate(0.3)


async def probe_channels(ffprobe: Path, source: str, workdir: Path, name: str) -> int | None:
    """Channels of the first audio stream of ``source``; ``None`` when it has none.

    Raises:
        MediaError: ffprobe cannot open or decode it (the message quotes ffprobe), or did not
            answer within :data:`PROBE_TIMEOUT` (it is stopped and reaped then).

    Cancellation:
        ffprobe is terminated and reaped.
    """
    out = workdir / f"probe-{name}.json"
    log = workdir / f"probe-{name}.log"
    args = [
        os.fspath(ffprobe), "-v", "error", "-select_streams", "a",
        "-show_entries", "stream=channels", "-of", "json", "-o", os.fspath(out),
        *network_options(source), source,
    ]  # fmt: skip
    status = -1
    with trio.move_on_after(PROBE_TIMEOUT) as waited:
        status = await _run(args, log)
    if waited.cancelled_caught:
        raise MediaError(f"ffprobe did not answer within {PROBE_TIMEOUT:g} s")
    if status != 0:
        tail = log_tail(log).strip().splitlines()
        raise MediaError(tail[-1] if tail else f"ffprobe exited with status {status}")
    streams = json.loads(out.read_text() or "{}").get("streams") or []
    if not streams:
        return None
    return int(streams[0].get("channels") or 2)


async def mix_audio(
    ffmpeg: Path,
    ffprobe: Path,
    video: Path,
    output: Path,
    segments: Sequence[AudioSegment],
    *,
    frames: int,
    fps: Fraction,
    codec: str,
    bitrate: str | None,
    workdir: Path,
    media_root: str | None = None,
) -> bool:
    """Mix ``segments`` and mux them with ``video`` (stream-copied) into ``output``.

    Args:
        ffmpeg: The FFmpeg that mixes.
        ffprobe: The ffprobe that reads each source's channels.
        video: The joined video, without audio.
        output: Where to write (a temporary name: the caller renames it).
        segments: From :meth:`~helios_render._model.audio_plan.AudioPlan.segments`.
        frames: Frames in the output; the audio is exactly ``frames / fps`` long.
        fps: Frames per second.
        codec: ``aac``, ``opus`` or ``pcm`` (see
            :func:`~helios_render._model.codecs.audio_codec_for`).
        bitrate: Audio bit rate (``192k``); ``None`` for the codec's default.
        workdir: A folder for the probe results, the graph and the logs.
        media_root: The folder of a local composition: ``bundle:/`` URLs are read from
            there (:class:`LocalMedia`); ``None`` for a URL source.

    Returns:
        Whether ``output`` was written; ``False`` when nothing audible remained (every source
        silent), and then ``video`` is the output as it is.

    Raises:
        MediaError: A source is missing or cannot be decoded (not for optional elements,
            which are skipped with a warning).
        EncoderError: FFmpeg failed to mix.

    Cancellation:
        ffprobe and FFmpeg are terminated and reaped.
    """
    resolve: Callable[[str], str] = resolve_media_url
    if media_root is not None:
        resolve = LocalMedia(BUNDLE_SCHEME, Path(media_root).resolve()).resolve
    located: dict[str, str] = {}
    channels: dict[str, int] = {}
    failed: set[str] = set()
    for segment in segments:
        if segment.source in located or segment.source in failed:
            continue
        name = str(len(located) + len(failed))
        try:
            where = located[segment.source] = _locate(
                segment.source, resolve(segment.source), workdir, name
            )
            count = await probe_channels(ffprobe, where, workdir, name)
        except MediaError as exc:
            source = segment.source if len(segment.source) <= 120 else segment.source[:100] + "..."
            if segment.key == "--audio":
                raise MediaError(
                    f"--audio: cannot read {source} ({exc}): give an audio file FFmpeg can decode"
                ) from exc
            message = f"media element {segment.key}: cannot read {source} ({exc})"
            if segment.optional:
                logger.warning("%s; skipped (it is marked data-helios-optional)", message)
                failed.add(segment.source)
                continue
            raise MediaError(
                f"{message}: check that the file exists and plays in a browser, or mark the "
                "element data-helios-optional"
            ) from exc
        if count is None:
            logger.info("%s has no audio stream; skipped", segment.source)
            failed.add(segment.source)
            continue
        channels[where] = count
    audible = [
        _located(segment, located[segment.source]) for segment in segments
        if segment.source not in failed
    ]
    if not audible:
        return False
    graph = build_mix(audible, channels, total_samples(frames, fps))
    script = workdir / "audio-mix.txt"
    script.write_text(graph.script)
    log = workdir / "audio-mix.log"
    args = mux_args(ffmpeg, video, graph, script, output, codec=codec, bitrate=bitrate)
    logger.info("mixing %d audio segments from %d sources", len(audible), len(graph.inputs))
    status = await _run(args, log)
    if status != 0:
        raise EncoderError(f"FFmpeg failed to mix the audio (exit status {status}):\n"
                           f"{log_tail(log)}")
    return True


def _located(segment: AudioSegment, where: str) -> AudioSegment:
    return replace(segment, source=where)
