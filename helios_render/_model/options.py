"""RenderOptions: every setting of a render, validated once, with sensible defaults."""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal, NoReturn

from .._exceptions import OptionsError
from .codecs import (
    AUDIO_CODECS,
    CODECS,
    DEFAULT_PRORES_PROFILE,
    PRORES_ALPHA_PROFILES,
    PRORES_PROFILES,
    X26X_PRESETS,
    Codec,
    alpha_codecs,
    audio_codec_for,
    codec_named,
    image_sequence_target,
)
from .job import DEFAULT_SEED
from .time import frames_for_duration, parse_fps

__all__ = [
    "DEFAULT_HEIGHT",
    "DEFAULT_LOCALE",
    "DEFAULT_TIMEZONE",
    "DEFAULT_WIDTH",
    "MAX_CONCURRENCY",
    "MAX_FPS",
    "MAX_FRAMES",
    "MAX_LOCAL_WORKERS",
    "MIN_FPS",
    "X264_PRESETS",
    "RenderOptions",
    "parse_cluster",
]

#: x264/x265 presets (kept for callers of the earlier name; every codec's are in the table).
X264_PRESETS = X26X_PRESETS
#: Largest frame side accepted (8K); larger would not fit an encoder level anyway.
MAX_SIDE = 7680
#: Frame rates accepted, after ``fps`` is made exact: a frame every 100 s to 240 per second.
MIN_FPS = Fraction(1, 100)
MAX_FPS = Fraction(240)
#: Frames per second when neither the user nor the composition gives any.
DEFAULT_FPS = Fraction(30)
#: Most frames in one render (and the last frame a render may reach): 10 million frames is
#: over 92 hours at 30 fps.
MAX_FRAMES = 10_000_000
#: Most workers: each one is a Chromium and an FFmpeg.
MAX_CONCURRENCY = 64
#: Frame size when neither the user nor the page (``helios:size``) gives one.
DEFAULT_WIDTH = 1920
DEFAULT_HEIGHT = 1080
#: What every page sees, on every machine, unless told otherwise.
DEFAULT_TIMEZONE = "UTC"
DEFAULT_LOCALE = "en-US"
_TIMEZONE = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+){0,2}")
_LOCALE = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8}){0,4}")


@dataclass(frozen=True, slots=True, kw_only=True)
class RenderOptions:
    """What to render and how. Invalid values raise :class:`~helios_render.OptionsError`.

    Attributes:
        source: The composition: an ``http(s)://`` URL or a local HTML file (served over
            loopback HTTP from its folder).
        output: The file to write, with a suffix that fits the codec (``.mp4``, ``.mov``,
            ``.mkv``, ``.m4v`` for H.264; ``.webm`` for VP9; ``.gif``; ...; see
            ``docs/formats.md``); for ``codec="png"`` a folder that does not exist yet, or a
            pattern like ``frames/f-%05d.png``; for a still, a ``.png``.
        width: Frame width in pixels (even, except for GIF and PNG); ``None`` takes the
            page's ``<meta name="helios:size">``, else 1920 (see :attr:`frame_width`).
        height: Frame height in pixels (even, except for GIF and PNG); ``None`` as for
            ``width``, else 1080.
        fps: Frames per second, exact: ``30``, ``"30000/1001"`` or a ``Fraction``; ``None``
            takes a Helios composition's own fps, else 30.
        frames: How many frames to render; or give ``duration``. With neither, the length
            comes from the page: a Helios composition's own duration, a
            ``<meta name="helios:duration">``, or the end of its last finite animation
            (see ``docs/inspect.md``).
        duration: Seconds to render; becomes ``round(duration * fps)`` frames (halves up).
        start_frame: First frame of the composition to render.
        concurrency: Workers (browser + encoder pairs); ``None`` picks a default from the
            CPU count and memory.
        codec: ``h264``, ``h265`` (``hevc``), ``vp9``, ``vp8``, ``prores``, ``av1``, ``gif``
            or ``png`` (an image sequence).
        crf: Constant quality (lower is better); ``None`` takes the codec's default (H.264
            18, H.265 23, VP9 30, VP8 10, AV1 35), within the codec's range (0-51 for
            H.264/H.265, 0-63 for VP9/AV1, 4-63 for VP8). ProRes, GIF and PNG have none.
        preset: Encoder speed; ``None`` takes the codec's default: x264/x265 presets
            (``ultrafast`` ... ``veryslow``, default ``veryfast`` / ``fast``), VP8/VP9
            ``realtime``, ``good`` (default), ``best``; AV1 ``fast``, ``medium`` (default),
            ``slow``. ProRes, GIF and PNG have none.
        prores_profile: ``proxy``, ``lt``, ``standard``, ``hq`` (default), ``4444`` or
            ``4444xq``; only with ``codec="prores"``. ``transparent`` picks ``4444``.
        transparent: Render with a transparent page background and keep the alpha channel
            (PNG capture); only for codecs that carry alpha (VP9, VP8, ProRes 4444, PNG).
        image_format: How frames leave the browser: ``jpeg`` (fast) or ``png`` (exact);
            ``None`` is ``png`` for GIF, PNG sequences and transparent renders (which need
            it), else ``jpeg``.
        quality: JPEG quality, 0 to 100.
        props: JSON-serializable value the page reads as ``window.__HELIOS_PROPS__``.
        browser: Path of Chromium; ``None`` finds one.
        ffmpeg: Path of FFmpeg; ``None`` finds one.
        timeout: Seconds the page gets to load, and each frame to become ready.
        seed: Seed of the page's ``Math.random``.
        ignore_page_errors: Log uncaught page errors instead of failing.
        capture: ``auto`` (beginFrame where the browser has it, else screenshots),
            ``screenshot`` or ``beginframe``.
        retries: Times a chunk is restarted on a fresh browser after a crash (browser or page
            crashed, connection lost); page errors and timeouts are never retried.
        chunk_frames: Most frames in one chunk; ``None`` picks at most 60 (and at least 8
            chunks of 10 or more frames for short renders). Chunk boundaries never depend on
            ``concurrency``, so a resumed render reuses finished chunks.
        resume: Reuse the finished chunks of an interrupted render with the same settings:
            ``None`` (default) does for a local composition (its contents are in the digest)
            and not for a URL; ``True`` does for a URL too; ``False`` always starts over.
        audio: An audio file mixed under the page's own sound (a soundtrack).
        audio_offset: Where ``audio`` starts on the output timeline, in seconds; negative cuts
            its first seconds.
        audio_volume: Gain of ``audio`` (1.0: as it is).
        muted: Write no audio at all.
        audio_codec: ``aac`` or ``opus``; ``None`` picks the container's default (AAC for
            MP4/MOV/MKV, Opus for WebM).
        audio_bitrate: Audio bit rate such as ``192k``; ``None`` for the codec's default.
        root: The folder to serve a local ``source`` from (it must contain the source);
            ``None`` picks the nearest folder that holds what the page loads, never above
            the project root (see docs/compositions.md).
        allow_missing_assets: Render even when a script, stylesheet, font, image or media
            file fails to load, or a video fails to decode; each failure is logged.
        cluster: Render on a Dask cluster: ``local:N`` (N worker processes on this machine)
            or a scheduler address ``tcp://HOST:PORT``; needs ``helios-render[dask]``.
        allow_mixed_versions: On a cluster, render even when workers have different Chromium
            or FFmpeg versions (their pixels may differ).
        scale: Device scale factor, 1 to 4 (fractional allowed): the page lays out at
            ``width`` x ``height`` CSS pixels and the frames are ``scale`` times larger
            (supersampling: sharper text and vector art). ``width * scale`` and
            ``height * scale`` must be whole numbers (even, except for GIF and PNG).
        skip_static: Reuse the previous frame's image when nothing on the page can have
            changed since it was captured (exact; ``False`` captures every frame).
        timezone: The IANA time zone the page sees (``Date``, ``Intl``), the same on every
            machine: ``UTC`` by default.
        locale: The locale the page sees (``toLocaleString``, ``Intl``, ``navigator.language``):
            ``en-US`` by default.
        preflight: Inspect the page before rendering and log what may make frames differ
            between runs or machines; ``None`` does for a cluster render only.
        strict: Fail before rendering when the preflight finds anything to warn about
            (implies ``preflight``).
        strict_props: Refuse props that the composition's props schema does not declare
            (props are always checked against the schema, and its defaults filled in).
        tls_ca_file: For a ``tls://`` cluster: the CA certificate (PEM) that signed the
            scheduler's and the workers' certificates.
        tls_cert: For a ``tls://`` cluster: this client's certificate (PEM).
        tls_key: For a ``tls://`` cluster: this client's private key (PEM), unless
            ``tls_cert`` holds it.
        stall_timeout: On a cluster, seconds a worker holding a chunk may go without
            reporting progress before its chunks go to the other workers; ``None``: 4 times
            ``timeout``.
    """

    source: str | os.PathLike[str]
    output: str | os.PathLike[str]
    width: int | None = None
    height: int | None = None
    fps: Fraction | int | float | str | None = None
    frames: int | None = None
    duration: float | str | Fraction | None = None
    start_frame: int = 0
    concurrency: int | None = None
    codec: str = "h264"
    crf: int | None = None
    preset: str | None = None
    prores_profile: str | None = None
    transparent: bool = False
    image_format: Literal["jpeg", "png"] | None = None
    quality: int = 90
    props: Any = None
    browser: str | os.PathLike[str] | None = None
    ffmpeg: str | os.PathLike[str] | None = None
    timeout: float = 30.0
    seed: int = DEFAULT_SEED
    ignore_page_errors: bool = False
    capture: Literal["auto", "screenshot", "beginframe"] = "auto"
    retries: int = 1
    chunk_frames: int | None = None
    resume: bool | None = None
    audio: str | os.PathLike[str] | None = None
    audio_offset: float = 0.0
    audio_volume: float = 1.0
    muted: bool = False
    audio_codec: str | None = None
    audio_bitrate: str | None = None
    root: str | os.PathLike[str] | None = None
    allow_missing_assets: bool = False
    cluster: str | None = None
    allow_mixed_versions: bool = False
    scale: float | int | str | Fraction = 1
    skip_static: bool = True
    timezone: str = DEFAULT_TIMEZONE
    locale: str = DEFAULT_LOCALE
    preflight: bool | None = None
    strict: bool = False
    strict_props: bool = False
    tls_ca_file: str | os.PathLike[str] | None = None
    tls_cert: str | os.PathLike[str] | None = None
    tls_key: str | os.PathLike[str] | None = None
    stall_timeout: float | None = None
    _fps: Fraction = field(init=False, repr=False, compare=False)
    _frames: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        fail = _fail
        if not str(self.source).strip():
            fail("source is empty: give an HTML file or an http(s) URL")
        if not str(self.output).strip():
            fail("output is empty: give the path of the video to write")
        for name in ("width", "height"):
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < 2:
                fail(f"{name} must be a whole number of pixels of at least 2, got {value!r}")
            if value > MAX_SIDE:
                fail(f"{name} must be at most {MAX_SIDE}, got {value}")
            codec = codec_named(self.codec) if isinstance(self.codec, str) else None
            if value % 2 and (codec is None or not codec.copies_png):
                fail(
                    f"{name} must be even for {self.codec} (chroma subsampling), got {value} "
                    f"(use {value - 1} or {value + 1})"
                )
        try:
            fps = DEFAULT_FPS if self.fps is None else parse_fps(self.fps)
        except ValueError as exc:
            fail(str(exc))
        # Checked after parse_fps has made it exact: 1e-9 becomes 0 there.
        if not MIN_FPS <= fps <= MAX_FPS:
            fail(f"fps must be from {float(MIN_FPS):g} to {MAX_FPS}, got {self.fps}")
        object.__setattr__(self, "_fps", fps)
        if self.frames is not None and self.duration is not None:
            fail("give either frames or duration, not both")
        if self.frames is None and self.duration is None:
            frames = 1  # a placeholder until the composition's duration is read
        elif self.frames is not None:
            if not isinstance(self.frames, int) or isinstance(self.frames, bool):
                fail(f"frames must be a whole number, got {self.frames!r}")
            frames = self.frames
        else:
            try:
                duration = Fraction(str(self.duration))
            except (ValueError, ZeroDivisionError):
                fail(f"duration must be a number of seconds, got {self.duration!r}")
            if duration <= 0:
                fail(f"duration must be positive, got {self.duration}")
            frames = frames_for_duration(duration, fps)
        if frames < 1:
            fail(f"frames must be at least 1, got {frames}")
        if frames > MAX_FRAMES:
            fail(
                f"frames must be at most {MAX_FRAMES:,}, got {frames:,}: render a long video "
                "in parts (--start-frame) and join them"
            )
        object.__setattr__(self, "_frames", frames)
        if (
            not isinstance(self.start_frame, int)
            or isinstance(self.start_frame, bool)
            or self.start_frame < 0
        ):
            fail(f"start_frame must be 0 or more, got {self.start_frame!r}")
        if self.start_frame + frames > MAX_FRAMES:
            fail(
                f"start_frame + frames must be at most {MAX_FRAMES:,}, got "
                f"{self.start_frame + frames:,}"
            )
        if self.concurrency is not None and (
            not isinstance(self.concurrency, int)
            or isinstance(self.concurrency, bool)
            or not 1 <= self.concurrency <= MAX_CONCURRENCY
        ):
            fail(
                f"concurrency must be from 1 to {MAX_CONCURRENCY} workers (each one is a "
                f"Chromium and an FFmpeg), got {self.concurrency!r}"
            )
        self._check_codec()
        if not isinstance(self.quality, int) or not 0 <= self.quality <= 100:
            fail(f"quality must be from 0 to 100, got {self.quality!r}")
        if not self.timeout > 0:
            fail(f"timeout must be positive, got {self.timeout!r}")
        if not isinstance(self.retries, int) or not 0 <= self.retries <= 10:
            fail(f"retries must be from 0 to 10, got {self.retries!r}")
        if self.chunk_frames is not None and (
            not isinstance(self.chunk_frames, int)
            or isinstance(self.chunk_frames, bool)
            or self.chunk_frames < 1
        ):
            fail(f"chunk_frames must be a whole number of at least 1, got {self.chunk_frames!r}")
        if self.resume not in (None, True, False):
            fail(f"resume must be True, False or None, got {self.resume!r}")
        if self.cluster is not None:
            try:
                parse_cluster(str(self.cluster))
            except ValueError as exc:
                fail(str(exc))
        self._check_cluster_settings()
        if self.capture not in ("auto", "screenshot", "beginframe"):
            fail(f"capture must be auto, screenshot or beginframe, got {self.capture!r}")
        self._check_audio()
        self._check_scale()
        if self.root is not None and not str(self.root).strip():
            fail("root is empty: give the folder to serve, or leave it out")
        if not isinstance(self.strict_props, bool):
            fail(f"strict_props must be True or False, got {self.strict_props!r}")
        try:
            json.dumps(self.props, allow_nan=False)
        except (TypeError, ValueError) as exc:
            fail(f"props must be JSON-serializable: {exc}")
        self._check_pinning()

    def _check_pinning(self) -> None:
        """The time zone and locale the page is pinned to (their shape; Chromium says whether
        it knows them when the page is opened)."""
        if not isinstance(self.timezone, str) or not _TIMEZONE.fullmatch(self.timezone):
            _fail(
                f"timezone must be an IANA time zone such as UTC or Europe/Paris, got "
                f"{self.timezone!r}"
            )
        if not isinstance(self.locale, str) or not _LOCALE.fullmatch(self.locale):
            _fail(f"locale must be a language tag such as en-US or fr-FR, got {self.locale!r}")
        for name in ("strict",):
            if not isinstance(getattr(self, name), bool):
                _fail(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.preflight not in (None, True, False):
            _fail(f"preflight must be True, False or None, got {self.preflight!r}")

    @property
    def frame_width(self) -> int:
        """The frame width: ``width``, else :data:`DEFAULT_WIDTH` (a page's declared size is
        filled in by :func:`~helios_render._model.length.with_timing`)."""
        return DEFAULT_WIDTH if self.width is None else self.width

    @property
    def frame_height(self) -> int:
        """The frame height: ``height``, else :data:`DEFAULT_HEIGHT`."""
        return DEFAULT_HEIGHT if self.height is None else self.height

    @property
    def runs_preflight(self) -> bool:
        """Whether the page is inspected before the render: asked for, strict, or a cluster
        render that did not say."""
        if self.strict:
            return True
        return self.cluster is not None if self.preflight is None else self.preflight

    def _check_cluster_settings(self) -> None:
        _check_cluster_settings(self)

    def _check_scale(self) -> None:
        """``scale`` within 1..4, and frames of whole (even where the codec needs it) pixels."""
        exact = _exact_scale(self.scale)
        if exact is None or not MIN_SCALE <= exact <= MAX_SCALE:
            _fail(f"scale must be a number from {MIN_SCALE} to {MAX_SCALE}, got {self.scale!r}")
        codec = codec_named(self.codec)
        for name in ("width", "height"):
            side = getattr(self, f"frame_{name}") * exact
            if side.denominator != 1:
                _fail(
                    f"--scale {self.scale} makes the frame {float(side):g} pixels on its {name}: "
                    f"choose a --{name} that it scales to whole pixels"
                )
            if side > MAX_SIDE:
                _fail(f"--scale {self.scale} makes the frame {side} pixels on its {name}: "
                      f"at most {MAX_SIDE}")
            if side % 2 and codec is not None and not codec.copies_png:
                _fail(
                    f"--scale {self.scale} makes the frame {side} pixels on its {name}, odd: "
                    f"{codec.name} needs even sides (chroma subsampling)"
                )
        if not isinstance(self.skip_static, bool):
            _fail(f"skip_static must be True or False, got {self.skip_static!r}")

    @property
    def exact_scale(self) -> Fraction:
        """``scale`` as an exact Fraction (``1.1`` is 11/10)."""
        exact = _exact_scale(self.scale)
        assert exact is not None
        return exact

    @property
    def output_width(self) -> int:
        """Width of the captured frames (and the output) in pixels: :attr:`frame_width`
        (CSS pixels) times ``scale``."""
        return int(self.frame_width * self.exact_scale)

    @property
    def output_height(self) -> int:
        """Height of the captured frames (and the output) in pixels: :attr:`frame_height`
        (CSS pixels) times ``scale``."""
        return int(self.frame_height * self.exact_scale)

    def _check_audio(self) -> None:
        if self.audio is not None and not str(self.audio).strip():
            _fail("audio is empty: give the path of an audio file, or leave it out")
        if self.muted and self.audio is not None:
            _fail("give either --muted or --audio FILE, not both")
        for name in ("audio_offset", "audio_volume"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(
                value
            ):
                _fail(f"{name} must be a number, got {value!r}")
        if self.audio_volume < 0:
            _fail(f"audio_volume must be 0 or more, got {self.audio_volume!r}")
        if self.audio_codec is not None and self.audio_codec not in AUDIO_CODECS:
            _fail(
                f"unknown audio codec {self.audio_codec!r}: "
                f"choose one of {', '.join(AUDIO_CODECS)}"
            )
        try:
            audio_codec_for(Path(self.output).suffix, self.audio_codec)
        except ValueError as exc:
            _fail(str(exc))
        if self.audio_bitrate is not None and not re.fullmatch(
            r"[1-9][0-9]{0,6}[kK]?", str(self.audio_bitrate)
        ):
            _fail(f"audio_bitrate must be like 128k or 192000, got {self.audio_bitrate!r}")

    def _check_codec(self) -> None:
        """The codec and the settings that depend on it (pure: no tool is asked)."""
        fail = _fail
        codec = codec_named(self.codec) if isinstance(self.codec, str) else None
        if codec is None:
            fail(f"unknown codec {self.codec!r}: choose one of {', '.join(CODECS)}")
        name = codec.name
        if self.crf is not None:
            if codec.quality is None:
                fail(f"--codec {name} has no --crf" + (
                    ": choose its quality with --prores-profile" if name == "prores" else ""
                ))
            low, high = codec.quality.low, codec.quality.high
            if not isinstance(self.crf, int) or isinstance(self.crf, bool) or not (
                low <= self.crf <= high
            ):
                fail(
                    f"crf must be a whole number from {low} to {high} for --codec {name} "
                    f"(lower is better; default {codec.quality.default}), got {self.crf!r}"
                )
        if self.preset is not None:
            if codec.speed is None:
                fail(f"--codec {name} has no --preset (it has no speed setting)")
            if self.preset not in codec.speed.names:
                fail(
                    f"unknown preset {self.preset!r} for --codec {name}: choose one of "
                    f"{', '.join(codec.speed.names)}"
                )
        if self.prores_profile is not None:
            if name != "prores":
                fail("--prores-profile is only for --codec prores")
            if self.prores_profile not in PRORES_PROFILES:
                fail(
                    f"unknown ProRes profile {self.prores_profile!r}: choose one of "
                    f"{', '.join(PRORES_PROFILES)}"
                )
        if not isinstance(self.transparent, bool):
            fail(f"transparent must be True or False, got {self.transparent!r}")
        if self.transparent:
            if not codec.alpha:
                fail(
                    f"--codec {name} cannot carry transparency: use one of "
                    f"{', '.join(alpha_codecs())} (prores as 4444)"
                )
            if name == "prores" and self.prores_profile not in (None, *PRORES_ALPHA_PROFILES):
                fail(
                    f"ProRes {self.prores_profile} has no alpha channel: use --prores-profile "
                    f"{' or '.join(PRORES_ALPHA_PROFILES)} with --transparent"
                )
        if codec.finish == "png":
            try:
                image_sequence_target(self.output_path)
            except ValueError as exc:
                fail(str(exc))
        if self.image_format not in (None, "jpeg", "png"):
            fail(f"image_format must be jpeg or png, got {self.image_format!r}")
        if self.image_format == "jpeg" and (codec.copies_png or self.transparent):
            why = "--transparent" if self.transparent else f"--codec {name}"
            fail(f"{why} needs PNG frames from the browser: drop --image-format jpeg")

    @property
    def codec_entry(self) -> Codec:
        """The codec's entry in the codec table (aliases resolved)."""
        codec = codec_named(self.codec)
        assert codec is not None
        return codec

    @property
    def effective_crf(self) -> int | None:
        """``crf``, or the codec's default; ``None`` for a codec without one."""
        quality = self.codec_entry.quality
        if quality is None:
            return None
        return quality.default if self.crf is None else self.crf

    @property
    def effective_preset(self) -> str | None:
        """``preset``, or the codec's default; ``None`` for a codec without one."""
        speed = self.codec_entry.speed
        if speed is None:
            return None
        return speed.default if self.preset is None else self.preset

    @property
    def effective_prores_profile(self) -> str | None:
        """The ProRes profile (``4444`` for a transparent render); ``None`` for other codecs."""
        if self.codec_entry.name != "prores":
            return None
        if self.prores_profile is not None:
            return self.prores_profile
        return PRORES_ALPHA_PROFILES[0] if self.transparent else DEFAULT_PRORES_PROFILE

    @property
    def effective_image_format(self) -> Literal["jpeg", "png"]:
        """How frames leave the browser: ``image_format``, else PNG where it is needed."""
        if self.image_format is not None:
            return self.image_format
        return "png" if self.codec_entry.copies_png or self.transparent else "jpeg"

    @property
    def target_path(self) -> Path:
        """What the render creates: the output file, or the folder of a PNG sequence."""
        if self.codec_entry.finish == "png":
            try:
                return image_sequence_target(self.output_path)[0]
            except ValueError:
                return self.output_path
        return self.output_path

    @property
    def exact_fps(self) -> Fraction:
        """``fps`` as an exact Fraction."""
        return self._fps

    @property
    def frame_count(self) -> int:
        """Frames to render: ``frames``, or the frames in ``duration``.

        Raises:
            OptionsError: Neither is given and the composition's duration was not read yet
                (see :attr:`timing_from_page`).
        """
        if self.frames is None and self.duration is None:
            _fail(
                "give the number of frames (--frames N) or a duration (--duration SECONDS); "
                "only a Helios composition declares its own duration"
            )
        return self._frames

    @property
    def timing_from_page(self) -> bool:
        """Whether the fps or the length is left to the composition (read from the page)."""
        return self.fps is None or (self.frames is None and self.duration is None)

    def with_page_timing(self, fps: float | None, duration: float | None) -> RenderOptions:
        """These options with what the user left out taken from a composition's own
        ``fps`` and ``duration`` (seconds; each ``None`` when the page does not say).

        Raises:
            OptionsError: The length was left out and the page declares no duration.
        """
        changes: dict[str, Any] = {}
        if self.fps is None:
            changes["fps"] = DEFAULT_FPS if fps is None else parse_fps(fps)
        if self.frames is None and self.duration is None:
            if duration is None:
                _fail(
                    "the page declares no duration (only a Helios composition does): give the "
                    "number of frames (--frames N) or a duration (--duration SECONDS)"
                )
            changes["duration"] = parse_duration_from_page(duration)
        return replace(self, **changes)

    @property
    def output_path(self) -> Path:
        """``output`` as an absolute path."""
        return Path(self.output).expanduser().absolute()


def parse_duration_from_page(seconds: float) -> Fraction:
    """A page's duration (a float of seconds) as exact seconds, to the microsecond: 2.1 s
    is 21/10, not the binary float nearest to it."""
    return Fraction(seconds).limit_denominator(1_000_000)


def _check_cluster_settings(options: RenderOptions) -> None:
    """The TLS certificates come together; the stall timeout is a positive number."""
    stall = options.stall_timeout
    if stall is not None and (
        isinstance(stall, bool) or not isinstance(stall, int | float) or not stall > 0
    ):
        _fail(f"stall_timeout must be more than 0 seconds, got {stall!r}")
    given = [name for name in ("tls_ca_file", "tls_cert", "tls_key")
             if getattr(options, name) is not None]
    if given and not {"tls_ca_file", "tls_cert"} <= set(given):
        _fail("TLS needs --tls-ca-file and --tls-cert together (and --tls-key unless the "
              "certificate file holds the key)")


#: Device scale factors accepted by ``scale``.
MIN_SCALE = 1
MAX_SCALE = 4


def _exact_scale(value: object) -> Fraction | None:
    """``value`` as an exact Fraction (through its decimal text, so ``1.1`` is 11/10), or
    ``None`` when it is not a finite number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, Fraction):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if not isinstance(value, int | float | str):
        return None
    try:
        return Fraction(str(value).strip())
    except (ValueError, ZeroDivisionError):
        return None


def _fail(message: str) -> NoReturn:
    raise OptionsError(message)


#: Most worker processes ``local:N`` starts.
MAX_LOCAL_WORKERS = 64


def parse_cluster(spec: str) -> tuple[str, int | str]:
    """``("local", N)`` for ``local:N``, ``("remote", address)`` for ``tcp://HOST:PORT`` (or
    ``tls://``, ``ws://``, ``wss://``, ``ucx://``).

    Raises:
        ValueError: Neither form.
    """
    text = spec.strip()
    if text.startswith("local:"):
        count = text.removeprefix("local:")
        if not count.isdigit() or not 1 <= int(count) <= MAX_LOCAL_WORKERS:
            raise ValueError(
                f"--cluster {spec!r}: local:N needs N from 1 to {MAX_LOCAL_WORKERS} workers"
            )
        return "local", int(count)
    scheme, sep, rest = text.partition("://")
    if sep and scheme in ("tcp", "tls", "ws", "wss", "ucx") and rest:
        return "remote", text
    raise ValueError(
        f"--cluster {spec!r}: give local:N (N worker processes here) or the scheduler's "
        "address, tcp://HOST:PORT"
    )
