"""Audio: what the page played, frame by frame, mixed once into the finished video.

The page reports, at every frame, a :class:`MediaRecord` for each ``<audio>``/``<video>`` it
is playing audibly (see ``js/runtime.js``). From those records, gathered by every worker:

1. :func:`plan_audio` (pure) turns the records into :class:`AudioSegment` values: one per
   stretch of frames over which an element plays its source continuously. A segment is cut
   where the media time jumps (a seek by script, a pause, an end without ``loop``), where the
   source, rate or loop flag changes, or where the element stops being audible. The records
   are flattened before planning, so a segment that spans a chunk seam is one segment, and
   any chunking of the same frames gives the same segments.
2. :func:`build_mix` (pure) writes one FFmpeg filter graph for all segments: each source
   resampled to 48 kHz stereo (mono heard at full level on both channels, as Chromium plays
   it), trimmed to the segment's media offset, ``atempo`` for its rate (pitch kept, as
   ``preservesPitch`` does), padded or cut to its exact length in samples, its volume
   (constant, or piecewise per frame), delayed by an exact number of samples, and all mixed by
   ``amix`` with ``normalize=0`` (no attenuation), then padded or cut to exactly frames / fps.
   The graph goes to a file passed with ``-filter_complex_script``: no argv limit.
3. :func:`mix_audio` (async glue) probes each source with ffprobe (sources without an audio
   stream are skipped; a missing or undecodable one is a :class:`MediaError` naming the
   element and its URL), runs the mix, and muxes it with the video stream-copied. The audio
   is encoded once (AAC for MP4/MOV/MKV, Opus for WebM), never through an ADTS intermediate.

Where the sources are read from: media URLs of the loopback server that served a local
composition are mapped back to files in the composition's folder (:class:`LocalMedia`), so
the mix needs no server and reads local files at full speed. Any other URL (``http(s)``,
``data:``) is handed to FFmpeg as it is; ``file://`` URLs become paths.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any
from urllib.parse import unquote, unquote_to_bytes, urlsplit

import trio

from ._exceptions import EncoderError, MediaError
from ._ffmpeg import ffprobe_for
from ._process import log_tail, spawn

__all__ = [
    "AUDIO_CODECS",
    "AUDIO_RATE",
    "AudioSegment",
    "LocalMedia",
    "MediaRecord",
    "MixGraph",
    "Soundtrack",
    "audio_codec_for",
    "build_mix",
    "dump_records",
    "load_records",
    "localize_sources",
    "mix_audio",
    "plan_audio",
    "resolve_media_url",
    "soundtrack_segment",
    "total_samples",
]

logger = logging.getLogger(__name__)

#: Sample rate of the mix (and of Opus, which knows no other).
AUDIO_RATE = 48000
#: Two media times closer than this (seconds) are the same: a page's float arithmetic on
#: frame times is far more precise, and a seek by less than this is not a seek anyone hears.
TIME_TOLERANCE = 1e-4
#: Audio codecs users give, mapped to FFmpeg encoders, and their default bit rates.
#: ``pcm`` (16-bit, lossless) is for editing and for exact tests.
AUDIO_CODECS: dict[str, str] = {"aac": "aac", "opus": "libopus", "pcm": "pcm_s16le"}
DEFAULT_BITRATES: dict[str, str] = {"aac": "192k", "opus": "128k"}
#: Which audio codecs each output container takes; the first is its default.
CONTAINER_AUDIO: dict[str, tuple[str, ...]] = {
    ".mp4": ("aac", "opus"),
    ".m4v": ("aac",),
    ".mov": ("aac", "pcm"),
    ".mkv": ("aac", "opus", "pcm"),
    ".webm": ("opus",),
}
#: Seconds ffprobe gets per source.
PROBE_TIMEOUT = 60.0


def audio_codec_for(suffix: str, requested: str | None = None) -> str | None:
    """The audio codec for an output of this suffix: ``requested`` if the container takes it,
    else its default; ``None`` for outputs without sound (GIF, image sequences).

    Raises:
        ValueError: ``requested`` is unknown, or the container cannot hold it.
    """
    allowed = CONTAINER_AUDIO.get(suffix.lower())
    if requested is not None and requested not in AUDIO_CODECS:
        raise ValueError(
            f"unknown audio codec {requested!r}: choose one of {', '.join(AUDIO_CODECS)}"
        )
    if allowed is None:
        return None
    if requested is None:
        return allowed[0]
    if requested not in allowed:
        raise ValueError(
            f"a {suffix} file cannot hold {requested} audio: use {' or '.join(allowed)}"
        )
    return requested


# ---- what the page reports ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MediaRecord:
    """What the page reported for one audible media element at one frame.

    Attributes:
        frame: The composition frame.
        key: The element's stable key: the same element has the same key in every worker
            (its tag, id, the virtual time it appeared and its rank among those that appeared
            then), e.g. ``audio#music@0ms:0``.
        src: The element's ``currentSrc``.
        time: Its media time at that frame, in seconds.
        volume: Its volume (0 when muted; a muted element is not reported at all).
        rate: Its ``playbackRate``.
        loop: Whether it loops.
        duration: The media's duration in seconds, if known (needed to follow a loop).
        optional: The element has ``data-helios-optional``: a source that cannot be
            decoded is a warning, not an error.
        since: Composition time (seconds) at which the element's clock last started; when
            that falls between the previous frame and this one, the sound starts then.
        stopped: Set on a record of an element that is *not* heard at this frame because it
            stopped (paused, removed) at this composition time, since the previous frame.
    """

    frame: int
    key: str
    src: str
    time: float
    volume: float
    rate: float = 1.0
    loop: bool = False
    duration: float | None = None
    optional: bool = False
    since: float | None = None
    stopped: float | None = None

    @classmethod
    def from_page(cls, frame: int, value: Mapping[str, Any]) -> MediaRecord:
        """A record from the JSON object ``__helios.seek`` resolves with."""
        duration = value.get("duration")
        since, stopped = value.get("since"), value.get("stopped")
        return cls(
            frame=frame,
            key=str(value["key"]),
            src=str(value["src"]),
            time=float(value["time"]),
            volume=float(value["volume"]),
            rate=float(value.get("rate", 1.0)),
            loop=bool(value.get("loop", False)),
            duration=float(duration) if isinstance(duration, (int, float)) else None,
            optional=bool(value.get("optional", False)),
            since=float(since) if isinstance(since, (int, float)) else None,
            stopped=float(stopped) if isinstance(stopped, (int, float)) else None,
        )

    def as_json(self) -> dict[str, Any]:
        """A JSON-serializable dict (for :func:`dump_records`)."""
        return {
            "frame": self.frame,
            "key": self.key,
            "src": self.src,
            "time": self.time,
            "volume": self.volume,
            "rate": self.rate,
            "loop": self.loop,
            "duration": self.duration,
            "optional": self.optional,
            "since": self.since,
            "stopped": self.stopped,
        }


#: Scheme of sources inside a composition's own folder, whichever server served them.
BUNDLE_SCHEME = "bundle:"


def localize_sources(records: Iterable[MediaRecord], base_url: str) -> list[MediaRecord]:
    """Records with URLs of the loopback server at ``base_url`` rewritten to ``bundle:/PATH``.

    Workers that each serve the composition on their own port see different ``currentSrc``
    origins for the same file; rewritten, the records of every chunk agree (so a segment that
    spans a seam stays one segment), and :meth:`LocalMedia.resolve` maps them to files.
    """
    prefix = base_url.rstrip("/") + "/"
    return [
        replace(record, src=BUNDLE_SCHEME + "/" + record.src[len(prefix) :])
        if record.src.startswith(prefix)
        else record
        for record in records
    ]


def dump_records(records: Iterable[MediaRecord]) -> str:
    """Records as JSON text (a worker's side file in the current pipeline)."""
    return json.dumps([record.as_json() for record in records])


def load_records(text: str) -> list[MediaRecord]:
    """Records from :func:`dump_records` text."""
    return [MediaRecord.from_page(int(item["frame"]), item) for item in json.loads(text)]


# ---- the planner (pure) -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AudioSegment:
    """One stretch of one source, placed on the output timeline.

    Attributes:
        key: The element (or ``--audio``) it comes from.
        source: The media URL (or path).
        start: Where it starts on the output timeline, in seconds (0 = the first output frame).
        length: How long it lasts on the output timeline, in seconds.
        offset: The media time at its start, in seconds.
        rate: Playback rate (media seconds per output second).
        loop: The source repeats (media times wrap around ``duration``).
        duration: The media's duration, if known.
        volumes: Piecewise-constant volume: ``(time from start, volume)`` pairs, the first at 0.
        optional: A source that cannot be decoded is a warning, not an error.
    """

    key: str
    source: str
    start: Fraction
    length: Fraction
    offset: float
    rate: float = 1.0
    loop: bool = False
    duration: float | None = None
    volumes: tuple[tuple[Fraction, float], ...] = ((Fraction(0), 1.0),)
    optional: bool = False


def _exact(seconds: float) -> Fraction:
    """A time reported by the page, as a whole number of samples."""
    return Fraction(math.floor(seconds * AUDIO_RATE + 0.5), AUDIO_RATE)


@dataclass(slots=True)
class _Open:
    first: MediaRecord
    last: MediaRecord
    #: Composition time where the sound starts, and the media time there.
    start: Fraction
    offset: float
    volumes: list[tuple[Fraction, float]]
    end: Fraction | None = None


def _opening(record: MediaRecord, fps: Fraction) -> _Open:
    at = Fraction(record.frame) / fps
    start, offset = at, record.time
    if record.since is not None:
        # The clock (re)started between the previous frame and this one (a timer called
        # play(), an element appeared): the sound starts then, not at this frame.
        since = _exact(record.since)
        if Fraction(record.frame - 1) / fps < since < at:
            start = since
            offset = record.time - float(at - since) * record.rate
            if record.loop and record.duration:
                offset %= record.duration
            offset = max(0.0, offset)
    return _Open(record, record, start, offset, [(start, record.volume)])


def _continues(segment: _Open, record: MediaRecord, fps: Fraction) -> bool:
    last = segment.last
    if (
        record.frame != last.frame + 1
        or record.src != last.src
        or record.rate != last.rate
        or record.loop != last.loop
    ):
        return False
    expected = last.time + record.rate / float(fps)
    duration = segment.first.duration
    if record.loop and duration:
        gap = (record.time - expected) % duration
        return min(gap, duration - gap) <= TIME_TOLERANCE
    return abs(record.time - expected) <= TIME_TOLERANCE


def _cut(segment: _Open, at: Fraction, fps: Fraction) -> None:
    """End ``segment`` at ``at`` if that falls in the frame after its last."""
    last = Fraction(segment.last.frame) / fps
    if last < at <= Fraction(segment.last.frame + 1) / fps:
        segment.end = at


def _close(segment: _Open, fps: Fraction, origin: Fraction) -> AudioSegment | None:
    first = segment.first
    end = segment.end if segment.end is not None else Fraction(segment.last.frame + 1) / fps
    start, offset = segment.start, segment.offset
    if start < origin:  # started just before the first output frame
        offset += float(origin - start) * first.rate
        start = origin
    if end <= start:
        return None
    volumes = tuple((max(Fraction(0), at - start), volume) for at, volume in segment.volumes)
    return AudioSegment(
        key=first.key,
        source=first.src,
        start=start - origin,
        length=end - start,
        offset=offset,
        rate=first.rate,
        loop=first.loop,
        duration=first.duration,
        volumes=volumes,
        optional=first.optional,
    )


def plan_audio(
    chunks: Iterable[Iterable[MediaRecord]], fps: Fraction, first_frame: int = 0
) -> tuple[AudioSegment, ...]:
    """Segments from the records of every chunk (in any order, split in any way).

    Args:
        chunks: Each worker's records.
        fps: Frames per second of the render.
        first_frame: The composition frame shown first in the output (``start_frame``).

    Returns:
        The segments, ordered by start, then key.

    Raises:
        ValueError: Two different records for the same element at the same frame.
    """
    by_frame: dict[tuple[str, int], MediaRecord] = {}
    for records in chunks:
        for record in records:
            if record.frame < first_frame:
                continue
            seen = by_frame.setdefault((record.key, record.frame), record)
            if seen != record:
                raise ValueError(f"two records for {record.key} at frame {record.frame}")
    origin = Fraction(first_frame) / fps
    closed: list[AudioSegment | None] = []
    current: dict[str, _Open] = {}
    for key, frame in sorted(by_frame):
        record = by_frame[key, frame]
        open_segment = current.get(key)
        if record.stopped is not None:
            # Paused or taken out of the document between the previous frame and this one.
            if open_segment is not None:
                _cut(open_segment, _exact(record.stopped), fps)
                closed.append(_close(current.pop(key), fps, origin))
            continue
        if open_segment is not None and _continues(open_segment, record, fps):
            open_segment.last = record
            if open_segment.volumes[-1][1] != record.volume:
                open_segment.volumes.append((Fraction(frame) / fps, record.volume))
            continue
        opening = _opening(record, fps)
        if open_segment is not None:
            _cut(open_segment, opening.start, fps)
            closed.append(_close(open_segment, fps, origin))
        current[key] = opening
    closed.extend(_close(segment, fps, origin) for segment in current.values())
    segments = [segment for segment in closed if segment is not None]
    segments.sort(key=lambda segment: (segment.start, segment.key))
    return tuple(segments)


@dataclass(frozen=True, slots=True)
class Soundtrack:
    """An extra audio file mixed under the page's sound (``--audio``)."""

    path: Path
    offset: float = 0.0
    volume: float = 1.0


def soundtrack_segment(track: Soundtrack, frames: int, fps: Fraction) -> AudioSegment | None:
    """The segment of a soundtrack: from ``offset`` seconds (negative: its first seconds are
    cut) to the end of the output; ``None`` when it starts after the end."""
    total = Fraction(frames) / fps
    offset = Fraction(track.offset).limit_denominator(AUDIO_RATE)
    start = max(Fraction(0), offset)
    if start >= total or track.volume == 0:
        return None
    return AudioSegment(
        key="--audio",
        source=os.fspath(track.path),
        start=start,
        length=total - start,
        offset=float(max(Fraction(0), -offset)),
        volumes=((Fraction(0), track.volume),),
    )


# ---- the FFmpeg graph (pure) ------------------------------------------------------------------


def _samples(seconds: Fraction) -> int:
    """Seconds to a whole number of samples, halves up."""
    return math.floor(seconds * AUDIO_RATE + Fraction(1, 2))


def total_samples(frames: int, fps: Fraction) -> int:
    """Samples in ``frames`` frames: the exact length of the mixed audio."""
    return _samples(Fraction(frames) / fps)


def _atempo(rate: float) -> list[str]:
    """``atempo`` filters whose product is ``rate`` (each within FFmpeg's 0.5 to 100)."""
    if rate == 1.0:
        return []
    filters = []
    while rate > 100.0:
        filters.append("atempo=100")
        rate /= 100.0
    while rate < 0.5:
        filters.append("atempo=0.5")
        rate /= 0.5
    filters.append(f"atempo={rate!r}")
    return filters


def _volume_tree(points: Sequence[tuple[int, float]]) -> str:
    """A balanced ``if`` expression over the sample index ``n`` for piecewise volume."""
    if len(points) == 1:
        return repr(points[0][1])
    middle = len(points) // 2
    left = _volume_tree(points[:middle])
    right = _volume_tree(points[middle:])
    return f"if(lt(n,{points[middle][0]}),{left},{right})"


def _volume(segment: AudioSegment, length: int) -> list[str]:
    points: list[tuple[int, float]] = []
    for at, volume in segment.volumes:
        sample = _samples(at)
        if sample >= length:
            break
        if points and points[-1][0] == sample:
            points[-1] = (sample, volume)
        elif not points or points[-1][1] != volume:
            points.append((sample, volume))
    if len(points) <= 1:
        volume = points[0][1] if points else 1.0
        return [] if volume == 1.0 else [f"volume={volume!r}"]
    tree = _volume_tree(points)
    return [f"aeval=exprs='val(0)*{tree}|val(1)*{tree}':channel_layout=stereo"]


def _layout(channels: int) -> str:
    # Chromium plays a mono source at full level on both speakers; FFmpeg's stereo upmix
    # would put it 3 dB lower on each.
    if channels == 1:
        return "pan=stereo|c0=c0|c1=c0"
    return "aformat=channel_layouts=stereo"


@dataclass(frozen=True, slots=True)
class MixGraph:
    """One FFmpeg mix: its audio inputs (in order, after the video) and its filter script.

    Attributes:
        inputs: ``(source, loop)`` per audio input: looped inputs are read with
            ``-stream_loop -1``.
        script: The ``-filter_complex_script`` text; its output pad is ``[aout]``.
    """

    inputs: tuple[tuple[str, bool], ...]
    script: str


def build_mix(
    segments: Sequence[AudioSegment],
    channels: Mapping[str, int],
    samples: int,
    *,
    first_input: int = 1,
) -> MixGraph:
    """The FFmpeg graph that mixes ``segments`` into exactly ``samples`` samples of 48 kHz
    stereo at ``[aout]``.

    Args:
        segments: What to mix; each source must be in ``channels``.
        channels: Audio channels of each source (from ffprobe).
        samples: The exact length of the output.
        first_input: FFmpeg input index of the first audio input (0 is the video).

    Raises:
        ValueError: No segments.
    """
    if not segments:
        raise ValueError("nothing to mix")
    inputs: list[tuple[str, bool]] = []
    users: dict[tuple[str, bool], list[int]] = {}
    for index, segment in enumerate(segments):
        source = (segment.source, segment.loop and bool(segment.duration))
        if source not in users:
            inputs.append(source)
            users[source] = []
        users[source].append(index)
    lines: list[str] = []
    pads: dict[int, str] = {}
    for number, source in enumerate(inputs):
        ffmpeg_index = first_input + number
        who = users[source]
        if len(who) == 1:
            pads[who[0]] = f"[{ffmpeg_index}:a]"
            continue
        outs = "".join(f"[i{number}_{k}]" for k in range(len(who)))
        lines.append(f"[{ffmpeg_index}:a]asplit={len(who)}{outs}")
        for k, index in enumerate(who):
            pads[index] = f"[i{number}_{k}]"
    for index, segment in enumerate(segments):
        length = _samples(segment.length)
        offset = math.floor(segment.offset * AUDIO_RATE + 0.5)
        chain = [
            _layout(channels[segment.source]),
            f"aresample={AUDIO_RATE}",
            f"atrim=start_sample={offset}" if offset > 0 else "",
            "asetpts=N/SR/TB",
            *_atempo(segment.rate),
            f"apad=whole_len={length}",
            f"atrim=end_sample={length}",
            *_volume(segment, length),
        ]
        delay = _samples(segment.start)
        if delay > 0:
            chain.append(f"adelay=delays={delay}S:all=1")
        lines.append(pads[index] + ",".join(step for step in chain if step) + f"[s{index}]")
    mixed = "".join(f"[s{index}]" for index in range(len(segments)))
    if len(segments) > 1:
        mix = f"amix=inputs={len(segments)}:normalize=0:duration=longest:dropout_transition=0,"
    else:
        mix = ""
    lines.append(f"{mixed}{mix}apad=whole_len={samples},atrim=end_sample={samples}[aout]")
    return MixGraph(inputs=tuple(inputs), script=";\n".join(lines) + "\n")


def mux_args(
    ffmpeg: Path,
    video: Path,
    graph: MixGraph,
    script: Path,
    output: Path,
    *,
    codec: str,
    bitrate: str | None,
) -> list[str]:
    """FFmpeg arguments: ``video`` stream-copied, the mix encoded once with ``codec``."""
    args = [os.fspath(ffmpeg), "-hide_banner", "-loglevel", "error", "-y", "-i", os.fspath(video)]
    for source, loop in graph.inputs:
        if loop:
            args += ["-stream_loop", "-1"]
        args += [*_network_options(source), "-i", source]
    args += [
        "-filter_complex_script", os.fspath(script),
        "-map", "0:v", "-map", "[aout]",
        "-c:v", "copy",
        "-c:a", AUDIO_CODECS[codec],
        "-ar", str(AUDIO_RATE),
        "-ac", "2",
    ]  # fmt: skip
    if codec in DEFAULT_BITRATES:
        args += ["-b:a", bitrate or DEFAULT_BITRATES[codec]]
    if output.suffix.lower() in (".mp4", ".m4v", ".mov"):
        args += ["-movflags", "+faststart"]
    args.append(os.fspath(output))
    return args


# ---- where sources are read from ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LocalMedia:
    """Maps URLs of the loopback server that served a local composition (and ``bundle:/``
    sources, see :func:`localize_sources`) back to its files.

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


#: Microseconds FFmpeg waits on a stalled network read of a remote source before failing.
NETWORK_TIMEOUT_US = 30_000_000


def _network_options(source: str) -> list[str]:
    if urlsplit(source).scheme in ("http", "https"):
        return ["-rw_timeout", str(NETWORK_TIMEOUT_US)]
    return []


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


# ---- the mix (async glue) -------------------------------------------------------------------


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
        MediaError: ffprobe cannot open or decode it (the message quotes ffprobe).
    """
    out = workdir / f"probe-{name}.json"
    log = workdir / f"probe-{name}.log"
    args = [
        os.fspath(ffprobe), "-v", "error", "-select_streams", "a",
        "-show_entries", "stream=channels", "-of", "json", "-o", os.fspath(out),
        *_network_options(source), source,
    ]  # fmt: skip
    status = -1
    with trio.move_on_after(PROBE_TIMEOUT):
        status = await _run(args, log)
    if status != 0:
        tail = log_tail(log).strip().splitlines()
        raise MediaError(tail[-1] if tail else f"ffprobe exited with status {status}")
    streams = json.loads(out.read_text() or "{}").get("streams") or []
    if not streams:
        return None
    return int(streams[0].get("channels") or 2)


async def mix_audio(
    ffmpeg: Path,
    video: Path,
    output: Path,
    segments: Sequence[AudioSegment],
    *,
    frames: int,
    fps: Fraction,
    codec: str,
    bitrate: str | None,
    workdir: Path,
    resolve: Callable[[str], str] = resolve_media_url,
) -> bool:
    """Mix ``segments`` and mux them with ``video`` (stream-copied) into ``output``.

    Args:
        ffmpeg: The FFmpeg to run (ffprobe is found beside it).
        video: The joined video, without audio.
        output: Where to write (a temporary name: the caller renames it).
        segments: From :func:`plan_audio`, plus a :func:`soundtrack_segment`.
        frames: Frames in the output; the audio is exactly ``frames / fps`` long.
        fps: Frames per second.
        codec: ``aac``, ``opus`` or ``pcm`` (see :func:`audio_codec_for`).
        bitrate: Audio bit rate (``192k``); ``None`` for the codec's default.
        workdir: A folder for the probe results, the graph and the logs.
        resolve: Maps a media URL to what FFmpeg reads (:meth:`LocalMedia.resolve`).

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
    ffprobe = ffprobe_for(ffmpeg)
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
