"""RenderOptions: every setting of a render, validated once, with sensible defaults."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal, NoReturn

from ._exceptions import OptionsError
from ._executors.dask import parse_cluster
from ._ffmpeg import CODECS
from ._page import DEFAULT_SEED
from ._plan import frames_for_duration, parse_fps

__all__ = ["X264_PRESETS", "RenderOptions"]

X264_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
)
#: Largest frame side accepted (8K); larger would not fit an encoder level anyway.
MAX_SIDE = 7680


@dataclass(frozen=True, slots=True, kw_only=True)
class RenderOptions:
    """What to render and how. Invalid values raise :class:`~helios_render.OptionsError`.

    Attributes:
        source: The composition: an ``http(s)://`` URL or a local HTML file (served over
            loopback HTTP from its folder).
        output: The video file to write (``.mp4``, ``.mov``, ``.mkv``), or the PNG of a still.
        width: Frame width in pixels (even, for yuv420p).
        height: Frame height in pixels (even, for yuv420p).
        fps: Frames per second, exact: ``30``, ``"30000/1001"`` or a ``Fraction``.
        frames: How many frames to render; or give ``duration``.
        duration: Seconds to render; becomes ``round(duration * fps)`` frames (halves up).
        start_frame: First frame of the composition to render.
        concurrency: Workers (browser + encoder pairs); ``None`` picks a default from the
            CPU count and memory.
        codec: ``h264`` or ``h265``.
        crf: Constant rate factor, 0 (lossless) to 51.
        preset: x264/x265 speed preset.
        image_format: How frames leave the browser: ``jpeg`` (fast) or ``png`` (exact).
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
        cluster: Render on a Dask cluster: ``local:N`` (N worker processes on this machine)
            or a scheduler address ``tcp://HOST:PORT``; needs ``helios-render[dask]``.
        allow_mixed_versions: On a cluster, render even when workers have different Chromium
            or FFmpeg versions (their pixels may differ).
    """

    source: str | os.PathLike[str]
    output: str | os.PathLike[str]
    width: int = 1920
    height: int = 1080
    fps: Fraction | int | float | str = 30
    frames: int | None = None
    duration: float | str | Fraction | None = None
    start_frame: int = 0
    concurrency: int | None = None
    codec: str = "h264"
    crf: int = 18
    preset: str = "veryfast"
    image_format: Literal["jpeg", "png"] = "jpeg"
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
    cluster: str | None = None
    allow_mixed_versions: bool = False
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
            if not isinstance(value, int) or isinstance(value, bool) or value < 2:
                fail(f"{name} must be a whole number of pixels of at least 2, got {value!r}")
            if value > MAX_SIDE:
                fail(f"{name} must be at most {MAX_SIDE}, got {value}")
            if value % 2:
                fail(
                    f"{name} must be even for {self.codec} in yuv420p, got {value} "
                    f"(use {value - 1} or {value + 1})"
                )
        try:
            fps = parse_fps(self.fps)
        except ValueError as exc:
            fail(str(exc))
        if fps > 240:
            fail(f"fps must be at most 240, got {self.fps}")
        object.__setattr__(self, "_fps", fps)
        if self.frames is not None and self.duration is not None:
            fail("give either frames or duration, not both")
        if self.frames is None and self.duration is None:
            fail("give the number of frames (--frames N) or a duration (--duration SECONDS)")
        if self.frames is not None:
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
        object.__setattr__(self, "_frames", frames)
        if not isinstance(self.start_frame, int) or self.start_frame < 0:
            fail(f"start_frame must be 0 or more, got {self.start_frame!r}")
        if self.concurrency is not None and (
            not isinstance(self.concurrency, int) or self.concurrency < 1
        ):
            fail(f"concurrency must be at least 1, got {self.concurrency!r}")
        if self.codec not in CODECS:
            fail(f"unknown codec {self.codec!r}: choose one of {', '.join(sorted(CODECS))}")
        if not isinstance(self.crf, int) or not 0 <= self.crf <= 51:
            fail(f"crf must be a whole number from 0 (lossless) to 51, got {self.crf!r}")
        if self.preset not in X264_PRESETS:
            fail(f"unknown preset {self.preset!r}: choose one of {', '.join(X264_PRESETS)}")
        if self.image_format not in ("jpeg", "png"):
            fail(f"image_format must be jpeg or png, got {self.image_format!r}")
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
        if self.capture not in ("auto", "screenshot", "beginframe"):
            fail(f"capture must be auto, screenshot or beginframe, got {self.capture!r}")
        try:
            json.dumps(self.props, allow_nan=False)
        except (TypeError, ValueError) as exc:
            fail(f"props must be JSON-serializable: {exc}")

    @property
    def exact_fps(self) -> Fraction:
        """``fps`` as an exact Fraction."""
        return self._fps

    @property
    def frame_count(self) -> int:
        """Frames to render: ``frames``, or the frames in ``duration``."""
        return self._frames

    @property
    def output_path(self) -> Path:
        """``output`` as an absolute path."""
        return Path(self.output).expanduser().absolute()


def _fail(message: str) -> NoReturn:
    raise OptionsError(message)
