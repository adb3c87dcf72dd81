"""Static frames: a render that reuses the image of frames nothing changed equals, frame for
frame (lossless), the same render that captures every frame, on both capture paths, whole and
chunked. A representative subset runs in CI; the whole corpus with
``HELIOS_FULL_SWEEP=1 pytest -m slow tests/integration/test_static_frames.py``."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import helios_render

from ..conftest import COMPOSITIONS, decode_frames
from ..factories import make_lossless_options, make_options
from . import test_corpus
from .test_corpus import CapturePath
from .test_written_by_others import animated_images

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("clean_processes")]

BENCH_PAGE = Path(__file__).resolve().parents[2] / "benchmarks" / "static" / "index.html"
W, H = 320, 180


capture = test_corpus.capture  # both capture paths, as the corpus runs them


def render_both(
    tmp_path: Path, page: Path, capture: CapturePath, *, frames: int, fps: int = 10,
    start: int = 0, concurrency: int = 1, chunk_frames: int | None = None, **kwargs: Any,
) -> tuple[int, int]:
    """Render with skipping on and off; assert every frame is equal. Returns (frames
    skipped, frames)."""
    decoded = {}
    skipped = 0
    for skip in (True, False):
        output = tmp_path / f"{page.stem}-{capture.name}-{skip}.mp4"
        options = make_lossless_options(
            tmp_path, page, output=output, width=W, height=H, fps=fps, frames=frames,
            start_frame=start, concurrency=concurrency, chunk_frames=chunk_frames,
            capture=capture.name, browser=capture.browser, skip_static=skip, resume=False,
            **kwargs,
        )
        result = helios_render.render_sync(options)
        if skip:
            skipped = result.frames_skipped
        else:
            assert result.frames_skipped == 0
        decoded[skip] = decode_frames(output)
    on, off = decoded[True], decoded[False]
    assert len(on) == len(off) == frames
    differing = [start + i for i, (a, b) in enumerate(zip(on, off, strict=True)) if a.rgb != b.rgb]
    assert not differing, f"frames differ with skipping on: {differing} (skipped {skipped})"
    return skipped, frames


def test_a_page_still_for_most_of_its_frames_skips_them_and_stays_exact(
    tmp_path: Path, capture: CapturePath
) -> None:
    # The bench page at 320x180: a title comes in (0-2 s), holds (2-5 s), a transition
    # (5-7 s), a hold (7-10 s); at 6 fps, 60 frames, chunked over two workers so that a
    # worker continues its page from one chunk to the next and another starts mid-way.
    skipped, _ = render_both(
        tmp_path, BENCH_PAGE, capture, frames=60, fps=6, concurrency=2, chunk_frames=15,
    )
    # 35 of the 60 frames equal the one before (13-30 and 43-59: each hold less its first
    # frame); the second worker's first frame (30) is captured on its fresh page: 34 at most.
    assert 22 <= skipped <= 34, skipped


def test_skipping_equals_capturing_on_a_chunk_that_starts_mid_way(
    tmp_path: Path, capture: CapturePath
) -> None:
    # Delays, fills, steps(), alternate and repeated iterations, from frame 12 on.
    render_both(tmp_path, COMPOSITIONS / "css_timing.html", capture, frames=8, start=12)


# ---- the whole corpus (slow) --------------------------------------------------------------


def _copy(names: list[str], make: Callable[[Path], None] | None = None) -> Callable[[Path], Path]:
    def site(tmp_path: Path) -> Path:
        folder = tmp_path / "site"
        folder.mkdir(exist_ok=True)
        for name in names:
            shutil.copy(COMPOSITIONS / name, folder / name)
        if make is not None:
            make(folder)
        return folder / names[0]

    return site


def _font(folder: Path) -> None:
    fonts = sorted(Path("/usr/share/fonts").rglob("*Serif*Bold*.ttf")) or sorted(
        Path("/usr/share/fonts").rglob("*.ttf")
    )
    shutil.copy(fonts[0], folder / "testfont.ttf")


SWEEP: dict[str, tuple[Callable[[Path], Path], int]] = {
    name: (_copy([name]), 20)
    for name in (
        "css_linear.html", "css_timing.html", "clocks.html", "composited_badge.html",
        "helios_core.html", "message_tasks.html", "raf_canvas.html", "smil.html",
        "timeline.html", "translate3d.html", "waapi.html", "webgl.html", "formats.html",
    )
}
SWEEP["scripted.html"] = (_copy(["scripted.html", "scripted_child.html"]), 24)
SWEEP["gsap.html"] = (_copy(["gsap.html", "gsap.min.js"]), 20)
SWEEP["animated_images.html"] = (_copy(["animated_images.html"], animated_images), 24)
SWEEP["webfont.html"] = (_copy(["webfont.html"], _font), 6)
def _big_image(folder: Path) -> None:
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=3000x1000", "-frames:v", "1",
         str(folder / "big.png")],
        check=True,
    )


SWEEP["readiness.html"] = (_copy(["readiness.html", "data.json"], _big_image), 10)


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("HELIOS_FULL_SWEEP"),
    reason="the full sweep takes minutes: HELIOS_FULL_SWEEP=1 pytest -m slow this file",
)
@pytest.mark.parametrize("name", sorted(SWEEP))
@pytest.mark.parametrize("chunked", [False, True], ids=["whole", "chunked"])
def test_skipping_equals_capturing_on_the_corpus(
    tmp_path: Path, capture: CapturePath, name: str, chunked: bool
) -> None:
    make, frames = SWEEP[name]
    page = make(tmp_path)
    if chunked:
        render_both(tmp_path, page, capture, frames=frames, concurrency=2,
                    chunk_frames=max(2, frames // 4))
    else:
        render_both(tmp_path, page, capture, frames=frames)


@pytest.mark.parametrize(("codec", "suffix"), [("h264", "mp4"), ("vp9", "webm")])
def test_jpeg_repeats_never_reach_ffmpeg_and_the_video_is_the_same(
    tmp_path: Path, capture: CapturePath, codec: str, suffix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """JPEG captures go to FFmpeg as timed Matroska blocks: a static frame's repeat is not
    sent, and FFmpeg's ``fps`` filter repeats the converted picture. The video equals,
    frame for frame, the one made with skipping off, whole and in chunks: H.264 chunks share
    one encoder (segments), VP9 chunks have one each."""
    caplog.set_level(logging.DEBUG, logger="helios_render._ffmpeg.ffmpeg")
    decoded = {}
    for skip in (True, False):
        output = tmp_path / f"{codec}-{skip}.{suffix}"
        options = make_options(
            tmp_path, source=BENCH_PAGE, output=output, width=W, height=H, fps=6, frames=60,
            concurrency=2, chunk_frames=15, codec=codec, capture=capture.name,
            browser=capture.browser, skip_static=skip, resume=False,
        )
        result = helios_render.render_sync(options)
        assert (result.frames_skipped > 20) if skip else (result.frames_skipped == 0)
        decoded[skip] = decode_frames(output)
    assert len(decoded[True]) == len(decoded[False]) == 60
    differing = [i for i, (a, b) in enumerate(zip(decoded[True], decoded[False], strict=True))
                 if a.rgb != b.rgb]
    assert not differing, f"frames differ with skipping on: {differing}"
    left = [int(m.group(1)) for r in caplog.records
            if (m := re.search(r"(\d+) of them repeats left to FFmpeg", r.getMessage()))]
    assert sum(left) > 20, left  # the skipped frames were not sent (but each chunk's last)
