"""The contracts between the planner, the executors and the workers: frozen, picklable values.

A :class:`ChunkJob` is everything a worker needs to render one chunk (on this machine or
another); a :class:`ChunkResult` is what it gives back. Pure: this module imports nothing but
the standard library and other pure leaves of ``_model``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

from .codecs import CODECS, Codec

__all__ = [
    "DEFAULT_SEED",
    "BundleSource",
    "Chunk",
    "ChunkJob",
    "ChunkResult",
    "EncoderSettings",
    "FolderSource",
    "MediaRecord",
    "PageConfig",
    "Report",
    "SourceRef",
    "UrlSource",
    "assign_runs",
    "dump_records",
    "load_records",
]


_Run = TypeVar("_Run", "Chunk", "ChunkJob")


@dataclass(frozen=True, slots=True)
class Chunk:
    """The contiguous frames ``[start, end)`` of one chunk job."""

    index: int
    start: int
    end: int

    @property
    def frames(self) -> int:
        """How many frames the chunk holds."""
        return self.end - self.start


def assign_runs(items: Sequence[_Run], workers: int) -> list[list[_Run]]:
    """Split ``items`` (in order) into at most ``workers`` runs of consecutive items with about
    the same number of frames, so that each worker renders one stretch of the timeline and
    keeps its page between chunks (an rAF page never replays frames it has already run).
    """
    if workers < 1:
        raise ValueError("workers must be at least 1")
    count = min(workers, len(items))
    prefix = [0]
    for item in items:
        prefix.append(prefix[-1] + item.frames)
    total = prefix[-1]
    cuts = [0]
    for run in range(1, count):
        lowest = cuts[-1] + 1
        highest = len(items) - (count - run)
        target = total * run / count
        cut = min(range(lowest, highest + 1), key=lambda c: (abs(prefix[c] - target), c))
        cuts.append(cut)
    cuts.append(len(items))
    return [list(items[a:b]) for a, b in itertools.pairwise(cuts) if b > a]


@dataclass(frozen=True, slots=True)
class UrlSource:
    """A composition loaded from a URL, the same on every machine."""

    url: str


@dataclass(frozen=True, slots=True)
class FolderSource:
    """A local composition: the worker serves ``root`` on its own loopback and loads
    ``entry`` (a POSIX path relative to ``root``)."""

    root: str
    entry: str


@dataclass(frozen=True, slots=True)
class BundleSource:
    """A local composition on its way to another machine: the tar of its folder (``data``),
    named by its SHA-256 (``digest``). The worker unpacks it once into a private folder,
    serves that on its own loopback and loads ``entry``. Equal bundles have equal digests
    (the bytes are left out of comparisons)."""

    digest: str
    entry: str
    data: bytes = field(default=b"", repr=False, compare=False)


SourceRef = UrlSource | FolderSource | BundleSource


@dataclass(frozen=True, slots=True)
class ChunkJob:
    """Everything a worker needs to render one chunk: frozen and picklable.

    ``page.url`` is left empty: the worker fills it in from ``source`` on its own machine.
    ``browser`` and ``ffmpeg`` are the paths found by the planner; a worker on another machine
    finds its own when they are ``None``.
    """

    chunk: Chunk
    source: SourceRef
    page: PageConfig
    encoder: EncoderSettings
    quality: int
    begin_frame: bool
    digest: str
    browser: str | None = None
    ffmpeg: str | None = None
    browser_args: tuple[str, ...] = ()

    @property
    def index(self) -> int:
        """The chunk's index in the plan (its ``chunk`` in progress reports)."""
        return self.chunk.index

    @property
    def start(self) -> int:
        """First frame."""
        return self.chunk.start

    @property
    def end(self) -> int:
        """One past the last frame."""
        return self.chunk.end

    @property
    def frames(self) -> int:
        """Frames in the chunk."""
        return self.chunk.frames

    @property
    def file_name(self) -> str:
        """The chunk file's name, with the suffix of the codec's chunk container."""
        return f"chunk-{self.chunk.index:05d}{CODECS[self.encoder.codec].chunk_suffix}"


#: ``Math.random`` seed when none is given.
DEFAULT_SEED = 0x48454C49


@dataclass(frozen=True, slots=True)
class PageConfig:
    """What a page needs to load a composition."""

    url: str
    width: int
    height: int
    fps: Fraction
    props: Any = None
    seed: int = DEFAULT_SEED
    timeout: float = 30.0
    ignore_page_errors: bool = False
    #: Draw on a transparent page background (for codecs with alpha; capture PNG).
    transparent: bool = False
    #: The local folder served at the URL's origin (``None`` for a URL source): a failed
    #: request for a file that exists outside it is reported as having left it.
    served_root: str | None = None
    #: Log subresources that fail to load, and media that fails to decode, instead of failing.
    allow_missing_assets: bool = False
    #: Device scale factor: the page lays out at ``width`` x ``height`` CSS pixels and its
    #: frames are ``scale`` times larger.
    scale: float = 1.0
    #: Whether the runtime reports frames that nothing can have changed since the frame before
    #: (the worker then reuses that frame's image instead of capturing).
    skip_static: bool = False
    #: The time zone and locale the page sees (CDP emulation), whatever the machine's.
    timezone: str = "UTC"
    locale: str = "en-US"
    #: Load the inspection hooks too (``helios-render inspect``, ``--preflight``; never a render).
    inspect: bool = False
    #: The font families the composition's text asks for (not its web fonts), as the
    #: preflight found them: a cluster checks that every worker draws them from the same files.
    font_families: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EncoderSettings:
    """How every chunk of a render is encoded; identical for all chunks of one render.

    ``encoder``, ``crf`` and ``preset`` left ``None`` take the codec's first encoder and its
    defaults from the codec table.
    """

    fps: Fraction
    width: int
    height: int
    codec: str = "h264"
    crf: int | None = None
    preset: str | None = None
    image_format: str = "jpeg"
    encoder: str | None = None
    transparent: bool = False
    prores_profile: str | None = None

    @property
    def table(self) -> Codec:
        """The codec's entry in the codec table."""
        return CODECS[self.codec]

    @property
    def chosen_encoder(self) -> str:
        """The FFmpeg encoder to use."""
        return self.encoder or self.table.encoders[0]


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


def dump_records(records: Iterable[MediaRecord]) -> str:
    """Records as JSON text (a worker's side file in the current pipeline)."""
    return json.dumps([record.as_json() for record in records])


def load_records(text: str) -> list[MediaRecord]:
    """Records from :func:`dump_records` text."""
    return [MediaRecord.from_page(int(item["frame"]), item) for item in json.loads(text)]


#: ``report(chunk, p)``: the fraction ``p`` of chunk ``chunk`` (its index) that is done. Provided by
#: the executor; must not block.
Report = Callable[[int, float], None]


@dataclass(frozen=True, slots=True)
class ChunkResult:
    """A finished chunk: its file on this machine (``path``) or its bytes (``data``, from
    another machine), the frames it holds, and the media the page played in it."""

    index: int
    frames: int
    path: Path | None = None
    data: bytes | None = None
    media: tuple[MediaRecord, ...] = ()
    #: Frames that reused the image of the frame before (static frames), not captured.
    frames_skipped: int = 0
