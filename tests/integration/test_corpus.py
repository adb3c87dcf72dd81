"""The composition corpus: every kind of content shows exactly what it shows at t = k / fps,
rendered whole and as a chunk that starts in the middle, on every capture path."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import helios_render

from ..conftest import COMPOSITIONS, Frame, decode_frames
from ..factories import make_lossless_options

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("clean_processes")]

W, H, FPS = 480, 270, 10
#: Where scripts/install-headless-shell.sh puts the headless shell, unless told otherwise.
DEFAULT_SHELL = "/opt/helios-headless-shell/unpacked/chromium"
SHELL = os.environ.get("HELIOS_HEADLESS_SHELL") or (
    DEFAULT_SHELL if os.access(DEFAULT_SHELL, os.X_OK) else None
)


@dataclass(frozen=True)
class CapturePath:
    name: str
    browser: str | None


PATHS = [CapturePath("screenshot", None)]
if SHELL:
    PATHS.append(CapturePath("beginframe", SHELL))
elif os.environ.get("CI"):
    raise RuntimeError(
        "CI=true but no headless shell: .ci/run installs it (scripts/install-headless-shell.sh)"
    )


@pytest.fixture(params=PATHS, ids=[p.name for p in PATHS])
def capture(request: pytest.FixtureRequest) -> CapturePath:
    path: CapturePath = request.param
    if path.name == "beginframe":
        request.applymarker(pytest.mark.beginframe)
    return path


def render(
    tmp_path: Path,
    source: Path,
    capture: CapturePath,
    frames: int,
    start: int = 0,
    fps: int = FPS,
    tag: str = "",
    width: int = W,
    height: int = H,
    **kwargs: Any,
) -> dict[int, Frame]:
    """Render ``frames`` frames from ``start`` (lossless, one worker) and return them by
    composition frame number."""
    output = tmp_path / f"{source.stem}-{capture.name}-{start}-{fps}{tag}.mp4"
    options = make_lossless_options(
        tmp_path,
        source,
        output=output,
        width=width,
        height=height,
        fps=fps,
        frames=frames,
        start_frame=start,
        concurrency=1,
        capture=capture.name,
        browser=capture.browser,
        **kwargs,
    )
    helios_render.render_sync(options)
    return {start + i: frame for i, frame in enumerate(decode_frames(output))}


def red(p: tuple[int, int, int]) -> bool:
    return p[0] > 160 and p[1] < 100 and p[2] < 100


def left_edge(frame: Frame, y: int) -> int | None:
    return frame.first_x(y, red)


def right_edge(frame: Frame, y: int) -> int:
    last = -1
    for x in range(frame.width):
        if red(frame.pixel(x, y)):
            last = x
    return last + 1


def clamp(value: float) -> float:
    return min(max(value, 0.0), 1.0)


def cubic_bezier(x1: float, y1: float, x2: float, y2: float) -> Callable[[float], float]:
    """CSS cubic-bezier timing: progress for input progress ``x`` (bisection on x(t))."""

    def at(t: float, a: float, b: float) -> float:
        return 3 * a * t * (1 - t) ** 2 + 3 * b * t**2 * (1 - t) + t**3

    def solve(x: float) -> float:
        lo, hi = 0.0, 1.0
        for _ in range(60):
            mid = (lo + hi) / 2
            if at(mid, x1, x2) < x:
                lo = mid
            else:
                hi = mid
        return at((lo + hi) / 2, y1, y2)

    return solve


EASE_IN_OUT = cubic_bezier(0.42, 0, 0.58, 1)

# Row y -> expected left edge at t seconds, for css_timing.html.
CSS_TIMING: dict[str, tuple[int, Callable[[float], float]]] = {
    "delay": (20, lambda t: 400 * clamp(t - 0.5)),
    "alternate": (50, lambda t: 400 * (t % 2 if t % 2 <= 1 else 2 - t % 2)),
    "steps": (80, lambda t: 400 * math.floor(4 * t) / 4 if t < 1 else 400),
    "twice": (110, lambda t: 400 * ((t % 0.5) / 0.5) if t < 1 else 400),
    "ease": (140, lambda t: 400 * EASE_IN_OUT(clamp(t / 2))),
    "backwards": (170, lambda t: 400 * (t - 0.5) if 0.5 <= t < 1.5 else 0),
}


def check_rows(
    frames: dict[int, Frame],
    rows: dict[str, tuple[int, Callable[[float], float]]],
    indices: list[int],
    tolerance: float = 2,
) -> None:
    errors = []
    for index in indices:
        t = index / FPS
        for name, (y, expected) in rows.items():
            x = left_edge(frames[index], y)
            want = expected(t)
            if x is None or abs(x - want) > tolerance:
                errors.append(f"{name} at frame {index} (t={t:.2f}): x={x}, expected {want:.1f}")
    assert not errors, "\n".join(errors)


def test_css_keyframe_timing(tmp_path: Path, capture: CapturePath) -> None:
    page = COMPOSITIONS / "css_timing.html"
    whole = render(tmp_path, page, capture, frames=20)
    check_rows(whole, CSS_TIMING, [0, 3, 7, 12, 13, 16, 19])
    chunk = render(tmp_path, page, capture, frames=8, start=12)
    check_rows(chunk, CSS_TIMING, [12, 13, 16, 19])


SCRIPTED: dict[str, tuple[int, Callable[[float], float]]] = {
    "transition started at 0.5 s": (20, lambda t: 400 * clamp(t - 0.5)),
    "web animation created at 1.0 s": (50, lambda t: 400 * clamp(t - 1.0)),
    "shadow DOM": (80, lambda t: 400 * clamp(t / 2)),
    "same-origin iframe": (150, lambda t: 400 * clamp(t / 2)),
}


def test_scripted_shadow_and_iframe_animations(tmp_path: Path, capture: CapturePath) -> None:
    page = COMPOSITIONS / "scripted.html"
    whole = render(tmp_path, page, capture, frames=24)
    check_rows(whole, SCRIPTED, [0, 4, 6, 9, 12, 15, 23])
    chunk = render(tmp_path, page, capture, frames=9, start=15)
    check_rows(chunk, SCRIPTED, [15, 18, 23])


def test_script_clocks_timers_and_seeded_random(tmp_path: Path, capture: CapturePath) -> None:
    page = COMPOSITIONS / "clocks.html"
    whole = render(tmp_path, page, capture, frames=16)
    chunk = render(tmp_path, page, capture, frames=6, start=10)
    for frames, indices in ((whole, [0, 3, 9, 15]), (chunk, [10, 12, 15])):
        for index in indices:
            t = index / FPS
            frame = frames[index]
            for y in (20, 50, 80):  # rAF timestamp, performance.now(), Date.now()
                x = left_edge(frame, y)
                assert x is not None and abs(x - round(200 * t)) <= 1, (index, y, x)
            assert abs(right_edge(frame, 110) - 10 * index) <= 1, (index, "setInterval")
            x = left_edge(frame, 140)
            assert x is not None and abs(x - 40 * math.floor(t / 0.25 + 1e-9)) <= 1, (index, x)
    # Math.random is seeded: the same colour whichever frame a worker starts at.
    assert whole[10].pixel(240, 175) == chunk[10].pixel(240, 175)
    assert whole[0].pixel(240, 175) == whole[15].pixel(240, 175)


def test_helios_core_pages_render_unchanged(tmp_path: Path, capture: CapturePath) -> None:
    page = COMPOSITIONS / "helios_core.html"
    rows = {"helios.seek(frame)": (20, lambda t: 10 * round(t * FPS))}
    check_rows(render(tmp_path, page, capture, frames=10), rows, [0, 4, 9])
    check_rows(render(tmp_path, page, capture, frames=4, start=6), rows, [6, 9])


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Path]:
    """A folder with the media, font and readiness pages and the files they load."""
    folder = tmp_path / "site"
    folder.mkdir()
    for name in ("media.html", "webfont.html", "readiness.html", "data.json"):
        shutil.copy(COMPOSITIONS / name, folder / name)
    # Source frame n of the clip is a flat grey of 8 * n, at 30 fps, for 2 s.
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=black:s=160x90:r=30:d=2",
         "-vf", "geq=r='8*N':g='8*N':b='8*N'", "-c:v", "libvpx-vp9", "-lossless", "1",
         "-pix_fmt", "yuv444p", "-g", "1", str(folder / "clip.webm")],
        check=True,
    )
    # A large image (several MB) that must be fully present when it is first shown.
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=3000x1000", "-frames:v", "1",
         str(folder / "big.png")],
        check=True,
    )
    fonts = sorted(Path("/usr/share/fonts").rglob("*Serif*Bold*.ttf")) or sorted(
        Path("/usr/share/fonts").rglob("*.ttf")
    )
    shutil.copy(fonts[0], folder / "testfont.ttf")
    yield folder


def test_video_shows_the_source_frame_of_the_composition_time(
    tmp_path: Path, site: Path, capture: CapturePath
) -> None:
    page = site / "media.html"
    for start, frames, indices in ((0, 10, [0, 3, 6, 9]), (5, 5, [5, 7, 9])):
        rendered = render(tmp_path, page, capture, frames=frames, start=start)
        for index in indices:
            source_frame = round(index / FPS * 30)
            grey = rendered[index].pixel(80, 45)
            assert all(abs(c - 8 * source_frame) <= 10 for c in grey), (index, grey)


def test_web_font_is_used_from_frame_zero(
    tmp_path: Path, site: Path, capture: CapturePath
) -> None:
    def text_extent(frame: Frame) -> int:
        dark = [x for x in range(frame.width) if sum(frame.pixel(x, 25)) < 200]
        return max(dark) if dark else -1

    frames = render(tmp_path, site / "webfont.html", capture, frames=3)
    assert text_extent(frames[0]) == text_extent(frames[2])
    (site / "testfont.ttf").unlink()  # the fallback font gives other widths
    fallback = render(
        tmp_path, site / "webfont.html", capture, frames=1, allow_missing_assets=True
    )
    assert text_extent(fallback[0]) != text_extent(frames[0])


def test_readiness_handles_and_late_large_images(
    tmp_path: Path, site: Path, capture: CapturePath
) -> None:
    frames = render(tmp_path, site / "readiness.html", capture, frames=8)
    for index in range(8):
        panel = frames[index].pixel(240, 50)
        assert panel[1] > 150 and panel[0] < 60 and panel[2] < 60, (index, panel)
    white = (255, 255, 255)
    image_row = [frames[4].pixel(x, 170) for x in range(0, W, 40)]
    assert all(p == white for p in image_row), "the image appeared before t = 0.5 s"
    for index in (5, 7):
        image_row = [frames[index].pixel(x, 170) for x in range(0, W, 40)]
        assert sum(p != white for p in image_row) >= 8, (index, image_row)


def test_a_frame_that_never_becomes_ready_names_the_frame_and_the_label(
    tmp_path: Path, capture: CapturePath
) -> None:
    with pytest.raises(helios_render.WorkerError) as caught:
        render(tmp_path, COMPOSITIONS / "never_ready.html", capture, frames=3, timeout=1.5)
    cause = caught.value.__cause__
    assert isinstance(cause, helios_render.FrameTimeoutError)
    assert "frame 0" in str(cause)
    assert "waiting for godot" in str(cause)
    assert list(tmp_path.iterdir()) == []


def test_webgl_draws_from_the_virtual_timestamp(tmp_path: Path, capture: CapturePath) -> None:
    page = COMPOSITIONS / "webgl.html"
    for frames in (render(tmp_path, page, capture, frames=12),
                   render(tmp_path, page, capture, frames=4, start=8)):
        for index in frames:
            x = frames[index].first_x(150, lambda p: p[1] > 200 and p[0] < 60 and p[2] < 60)
            assert x is not None and abs(x - 400 * clamp(index / FPS / 2)) <= 2, (index, x)
        for index in frames:
            t = min(index / FPS, 1.0)
            r, g, b = frames[index].pixel(400, 20)
            assert abs(r - 255 * t) <= 3 and g <= 3 and abs(b - 255 * (1 - t)) <= 3, (
                index, (r, g, b))


@pytest.mark.skipif(not SHELL, reason="needs a chrome-headless-shell build")
@pytest.mark.parametrize("page", ["css_timing.html", "scripted.html", "clocks.html"])
def test_both_capture_paths_give_the_same_frames(tmp_path: Path, page: str) -> None:
    screenshots = render(tmp_path, COMPOSITIONS / page, PATHS[0], frames=12)
    begin_frame = render(tmp_path, COMPOSITIONS / page, PATHS[1], frames=12)
    differing = [i for i in screenshots if screenshots[i].rgb != begin_frame[i].rgb]
    assert not differing, f"frames differ between the capture paths: {differing}"
