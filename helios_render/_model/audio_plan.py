"""Audio, planned: what a render's sound will be, and what the page played turned into one
FFmpeg mix. Pure: no I/O, no Trio, no processes (the mix is run by
:mod:`helios_render._ffmpeg.mix`).

The page reports, at every frame, a :class:`MediaRecord` for each ``<audio>``/``<video>`` it
is playing audibly (see ``js/runtime.js``). From those records, gathered by every worker:

1. :class:`AudioPlan`, decided before the render starts (by
   :func:`~helios_render._model.plan.plan_render`): the audio codec of the output (``None``
   for a format without sound), its bit rate, ``--muted``, the ``--audio`` soundtrack (whose
   file :mod:`helios_render._environment` checked once) and the folder a local composition's
   media is read from. :meth:`AudioPlan.segments` is everything the output will play.
2. :func:`plan_audio` turns the records into :class:`AudioSegment` values: one per stretch of
   frames over which an element plays its source continuously. A segment is cut where the
   media time jumps (a seek by script, a pause, an end without ``loop``), where the source,
   rate or loop flag changes, or where the element stops being audible. The records are
   flattened before planning, so a segment that spans a chunk seam is one segment, and any
   chunking of the same frames gives the same segments. :func:`soundtrack_segment` adds the
   soundtrack.
3. :func:`build_mix` writes one FFmpeg filter graph for all segments: each source resampled to
   48 kHz stereo (mono heard at full level on both channels, as Chromium plays it), trimmed to
   the segment's media offset, ``atempo`` for its rate (pitch kept, as ``preservesPitch``
   does), padded or cut to its exact length in samples, its volume (constant, or piecewise per
   frame), delayed by an exact number of samples, and all mixed by ``amix`` with
   ``normalize=0`` (no attenuation), then padded or cut to exactly frames / fps. The graph goes
   to a file passed with ``-filter_complex_script``: no argv limit. :func:`mux_args` is the
   FFmpeg command that encodes the mix once (AAC for MP4/MOV/MKV, Opus for WebM, never through
   an ADTS intermediate) and muxes it with the video stream-copied.

Where the sources are read from: media URLs of the loopback server that served a local
composition are rewritten to ``bundle:/PATH`` by the worker (:func:`localize_sources`) and
mapped back to files in the composition's folder by
:class:`~helios_render._ffmpeg.mix.LocalMedia`, so the mix needs no server and reads local
files at full speed. Any other URL (``http(s)``, ``data:``) is handed to FFmpeg as it is;
``file://`` URLs become paths.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from urllib.parse import urlsplit

from .codecs import AUDIO_CODECS, DEFAULT_BITRATES
from .job import MediaRecord

__all__ = [
    "AUDIO_RATE",
    "AudioPlan",
    "AudioSegment",
    "MixGraph",
    "Soundtrack",
    "build_mix",
    "localize_sources",
    "mux_args",
    "network_options",
    "plan_audio",
    "soundtrack_segment",
    "total_samples",
]

#: Sample rate of the mix (and of Opus, which knows no other).
AUDIO_RATE = 48000
#: Two media times closer than this (seconds) are the same: a page's float arithmetic on
#: frame times is far more precise, and a seek by less than this is not a seek anyone hears.
TIME_TOLERANCE = 1e-4


# ---- what the page reports ------------------------------------------------------------------


#: Scheme of sources inside a composition's own folder, whichever server served them.
BUNDLE_SCHEME = "bundle:"


def localize_sources(records: Iterable[MediaRecord], base_url: str) -> list[MediaRecord]:
    """Records with URLs of the loopback server at ``base_url`` rewritten to ``bundle:/PATH``.

    Workers that each serve the composition on their own port see different ``currentSrc``
    origins for the same file; rewritten, the records of every chunk agree (so a segment that
    spans a seam stays one segment), and
    :meth:`~helios_render._ffmpeg.mix.LocalMedia.resolve` maps them to files.
    """
    prefix = base_url.rstrip("/") + "/"
    return [
        replace(record, src=BUNDLE_SCHEME + "/" + record.src[len(prefix) :])
        if record.src.startswith(prefix)
        else record
        for record in records
    ]


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


@dataclass(frozen=True, slots=True)
class AudioPlan:
    """What a render's sound will be, decided before it starts.

    Not part of the job digest: the sound is mixed from the chunks' media records when they
    are stitched, so a change here (``--audio``, ``--muted``, the codec) reuses every chunk.

    Attributes:
        codec: ``aac``, ``opus`` or ``pcm`` (see
            :func:`~helios_render._model.codecs.audio_codec_for`); ``None`` for an output
            that holds no sound (GIF, image sequences).
        bitrate: Audio bit rate (``192k``); ``None`` for the codec's default.
        soundtrack: ``--audio``, its file checked before the render started.
        muted: ``--muted``: no sound at all.
        media_root: The folder a local composition is served from, where ``bundle:/`` media
            URLs are read; ``None`` for a URL source.
    """

    codec: str | None
    bitrate: str | None = None
    soundtrack: Soundtrack | None = None
    muted: bool = False
    media_root: str | None = None

    @property
    def audible(self) -> bool:
        """Whether the output can have sound (a codec, not muted)."""
        return self.codec is not None and not self.muted

    def segments(
        self,
        records: Iterable[Iterable[MediaRecord]],
        frames: int,
        fps: Fraction,
        first_frame: int = 0,
    ) -> tuple[AudioSegment, ...]:
        """Everything the output plays: the page's segments (:func:`plan_audio` over each
        chunk's ``records``), then the soundtrack's; empty when the output has no sound.

        Raises:
            ValueError: Two different records for the same element at the same frame.
        """
        if not self.audible:
            return ()
        segments = list(plan_audio(records, fps, first_frame))
        if self.soundtrack is not None:
            segment = soundtrack_segment(self.soundtrack, frames, fps)
            if segment is not None:
                segments.append(segment)
        return tuple(segments)


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


#: Microseconds FFmpeg waits on a stalled network read of a remote source before failing.
NETWORK_TIMEOUT_US = 30_000_000


def network_options(source: str) -> list[str]:
    """FFmpeg input options for ``source``: a read timeout for a remote one."""
    if urlsplit(source).scheme in ("http", "https"):
        return ["-rw_timeout", str(NETWORK_TIMEOUT_US)]
    return []


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
        args += [*network_options(source), "-i", source]
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
