"""Values the tests build again and again, with the defaults most tests use.

Each factory takes keyword overrides for any field, so a test spells out only what makes it
different: ``make_options(frames=None)`` is "the page's own timing", ``make_env(begin_frame=True)``
"a machine with the beginFrame path". The defaults are a small render: 320x180 at 30 fps.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

from helios_render import RenderOptions
from helios_render._model.job import (
    Chunk,
    ChunkJob,
    EncoderSettings,
    FolderSource,
    PageConfig,
    UrlSource,
)
from helios_render._model.plan import Environment

W, H, FPS = 320, 180, Fraction(30)


def make_options(tmp_path: Path | None = None, /, **overrides: Any) -> RenderOptions:
    """Valid options for 10 frames of ``a.html`` at 320x180 into ``out.mp4`` in ``tmp_path``
    (without one, the relative ``o.mp4``: for tests that never render); every other setting
    at its default. ``frames=None`` leaves the length to the composition."""
    settings: dict[str, Any] = {
        "source": "a.html",
        "output": tmp_path / "out.mp4" if tmp_path is not None else "o.mp4",
        "width": W,
        "height": H,
        "frames": 10,
    }
    settings.update(overrides)
    return RenderOptions(**settings)


def make_lossless_options(
    tmp_path: Path, /, source: Path | str, **overrides: Any
) -> RenderOptions:
    """Options to render ``source`` into ``tmp_path / "out.mp4"`` at 320x180 and 30 fps with
    lossless frames (PNG captures, crf 0), so that two renders compare pixel for pixel.

    No frame count: give ``frames=`` or let the composition's duration decide; ``fps=None``
    takes the composition's own frame rate."""
    settings: dict[str, Any] = {
        "source": source, "fps": 30, "frames": None, "image_format": "png", "crf": 0,
    }
    settings.update(overrides)
    return make_options(tmp_path, **settings)


def make_env(**overrides: Any) -> Environment:
    """What the planner knows of a machine with Chromium 1.0 and FFmpeg 5.1, no beginFrame
    path, two CPUs' worth of workers, rendering the folder ``/srv/comp`` (digest ``abc``)."""
    settings: dict[str, Any] = {
        "browser": Path("/usr/bin/chromium"),
        "browser_version": "Chromium 1.0",
        "ffmpeg": Path("/usr/bin/ffmpeg"),
        "ffmpeg_version": "ffmpeg 5.1",
        "begin_frame": False,
        "source": FolderSource(root="/srv/comp", entry="index.html"),
        "source_digest": "abc",
        "default_concurrency": 2,
    }
    settings.update(overrides)
    return Environment(**settings)


def make_page(**overrides: Any) -> PageConfig:
    """A page of 320x180 at 30 fps; ``url`` is empty (a worker fills it in from the source)."""
    settings: dict[str, Any] = {"url": "", "width": W, "height": H, "fps": FPS}
    settings.update(overrides)
    return PageConfig(**settings)


def make_encoder(**overrides: Any) -> EncoderSettings:
    """Encoder settings for 320x180 at 30 fps, H.264 with the codec table's defaults."""
    settings: dict[str, Any] = {"fps": FPS, "width": W, "height": H}
    settings.update(overrides)
    return EncoderSettings(**settings)


def make_job(
    chunk: Chunk | None = None,
    *,
    width: int = W,
    height: int = H,
    fps: Fraction = FPS,
    **overrides: Any,
) -> ChunkJob:
    """The job for ``chunk`` (default: frames 0..9, chunk 0) of ``about:blank``: a page and
    an encoder of the same size and rate, JPEG quality 90, screenshots, digest ``test``."""
    settings: dict[str, Any] = {
        "chunk": chunk if chunk is not None else Chunk(0, 0, 10),
        "source": UrlSource("about:blank"),
        "page": make_page(width=width, height=height, fps=fps),
        "encoder": make_encoder(width=width, height=height, fps=fps),
        "quality": 90,
        "begin_frame": False,
        "digest": "test",
    }
    settings.update(overrides)
    return ChunkJob(**settings)
