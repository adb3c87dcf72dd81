"""Compositions written the way others write them render exactly: Helios builds, document
timelines, SVG SMIL, media, framework task scheduling, GSAP. Each page is rendered on every
capture path, whole, as a chunk from a middle frame, and twice, and its frames are decoded and
checked against what the page shows at t = k / fps."""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

import helios_render

from ..conftest import COMPOSITIONS, Frame, decode_frames, probe
from ..factories import make_lossless_options, make_options, make_page
from . import test_corpus
from .test_corpus import CapturePath, clamp, left_edge, red

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.usefixtures("clean_processes")]

W, H = 320, 180


#: The corpus's capture-path fixture, and its render at this file's size.
capture = test_corpus.capture
render = functools.partial(test_corpus.render, width=W, height=H)


Rows = dict[str, tuple[int, Callable[[float], float]]]


def check_rows(frames: dict[int, Frame], rows: Rows, fps: float, tolerance: float = 1.5) -> None:
    errors = []
    for index, frame in frames.items():
        t = index / fps
        for name, (y, expected) in rows.items():
            x = left_edge(frame, y)
            want = expected(t)
            if x is None or abs(x - want) > tolerance:
                errors.append(f"{name} at frame {index} (t={t:.3f}): x={x}, expected {want:.1f}")
    assert not errors, "\n".join(errors)


def check_whole_chunk_and_repeat(
    tmp_path: Path,
    page: Path,
    capture: CapturePath,
    check: Callable[[dict[int, Frame], int], None],
    frames: int = 12,
    start: int = 7,
    fps: int = 10,
    **kwargs: Any,
) -> None:
    """Render whole, as a chunk from ``start``, and whole again: every frame is checked, the
    chunk equals the whole render from ``start`` on, and the two whole renders are equal."""
    whole = render(tmp_path, page, capture, frames, fps=fps, **kwargs)
    check(whole, fps)
    chunk = render(tmp_path, page, capture, frames - start, start=start, fps=fps, **kwargs)
    check(chunk, fps)
    differing = [i for i in chunk if chunk[i].rgb != whole[i].rgb]
    assert not differing, f"the chunk from {start} differs from the whole render at {differing}"
    again = render(tmp_path, page, capture, frames, fps=fps, tag="-again", **kwargs)
    differing = [i for i in whole if whole[i].rgb != again[i].rgb]
    assert not differing, f"two renders differ at frames {differing}"


# --- 1. a Helios build: assets two levels up, failing assets fail the render ---------------


def test_a_helios_build_with_shared_assets_renders_without_flags(
    tmp_path: Path, capture: CapturePath
) -> None:
    page = COMPOSITIONS / "helios_build" / "examples" / "scene" / "composition.html"
    rows: Rows = {
        "helios frames": (20, lambda t: 100 * t),
        "document.timeline": (60, lambda t: 100 * t),
    }

    def check(frames: dict[int, Frame], fps: int) -> None:
        check_rows(frames, rows, fps)
        for frame in frames.values():  # the stylesheet from ../../assets loaded
            r, g, b = frame.pixel(300, 170)
            assert r < 8 and g < 8 and abs(b - 96) <= 4, (r, g, b)

    check_whole_chunk_and_repeat(tmp_path, page, capture, check)
    # Helios counts frames at its own 30 fps: at 20 fps, frame k is at k / 20 s all the same.
    check(render(tmp_path, page, capture, frames=6, start=10, fps=20), 20)


def copy_build(tmp_path: Path) -> Path:
    """The Helios build without its package.json: no project root to move up to."""
    project = tmp_path / "project"
    shutil.copytree(COMPOSITIONS / "helios_build", project)
    (project / "package.json").unlink()
    return project


def test_a_missing_asset_fails_the_render_with_its_url_and_status(
    tmp_path: Path, capture: CapturePath
) -> None:
    with pytest.raises(helios_render.WorkerError) as caught:
        render(tmp_path, COMPOSITIONS / "missing_asset.html", capture, frames=2)
    cause = caught.value.__cause__
    assert isinstance(cause, helios_render.AssetError)
    assert caught.value.exit_code == 1  # the render started and failed (README, exit codes)
    message = str(cause)
    assert "script" in message and "/assets/nope.js" in message and "HTTP 404" in message
    assert "--allow-missing-assets" in message
    frames = render(tmp_path, COMPOSITIONS / "missing_asset.html", capture, frames=2,
                    allow_missing_assets=True)
    assert min(frames[1].pixel(300, 170)) > 245


def test_a_request_that_left_the_served_folder_names_the_root_to_serve(
    tmp_path: Path, capture: CapturePath
) -> None:
    project = copy_build(tmp_path)
    page = project / "examples" / "scene" / "composition.html"
    with pytest.raises(helios_render.WorkerError) as caught:
        render(tmp_path, page, capture, frames=2)
    message = str(caught.value.__cause__)
    assert "outside the served folder" in message, message
    assert f"--root {project}" in message, message
    frames = render(tmp_path, page, capture, frames=4, root=project)
    check_rows(frames, {"helios": (20, lambda t: 100 * t)}, 10)


def test_the_cli_serves_root_and_reports_a_missing_asset_on_one_line(tmp_path: Path) -> None:
    import os
    import sys

    project = copy_build(tmp_path)
    page = project / "examples" / "scene" / "composition.html"
    env = dict(os.environ)
    base = [sys.executable, "-m", "helios_render", "render", str(page), "--frames", "2",
            "--width", str(W), "--height", str(H), "--capture", "screenshot", "--progress", "none"]
    failed = subprocess.run([*base, str(tmp_path / "a.mp4")], capture_output=True, text=True,
                            env=env, timeout=120)
    assert failed.returncode == 1, failed.stderr  # an asset failed: the render started
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("helios-render: error:"), failed.stderr
    assert f"--root {project}" in lines[0]
    done = subprocess.run([*base, "--root", str(project), str(tmp_path / "b.mp4")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "b.mp4").stat().st_size > 0


# --- 2. document.timeline ---------------------------------------------------------------------


def test_document_timelines_follow_the_virtual_clock(
    tmp_path: Path, capture: CapturePath
) -> None:
    rows: Rows = {
        "document.timeline": (20, lambda t: 100 * t),
        "a timeline with an origin": (60, lambda t: 100 * max(0.0, t - 0.5)),
    }
    check_whole_chunk_and_repeat(
        tmp_path, COMPOSITIONS / "timeline.html", capture,
        lambda frames, fps: check_rows(frames, rows, fps),
    )


# --- 4. SVG SMIL ------------------------------------------------------------------------------


def test_svg_smil_animations_follow_the_virtual_clock(
    tmp_path: Path, capture: CapturePath
) -> None:
    rows: Rows = {
        "<animate>": (20, lambda t: 200 * clamp(t / 2)),
        "<animateTransform> from 0.5 s": (60, lambda t: 200 * clamp(t - 0.5)),
        "an <svg> created at 1 s": (140, lambda t: 200 * clamp(t - 1.0)),
        "an <svg> in a shadow root": (170, lambda t: 200 * clamp(t / 2)),
    }

    def check(frames: dict[int, Frame], fps: int) -> None:
        late = {name: row for name, row in rows.items() if name != "an <svg> created at 1 s"}
        check_rows({i: f for i, f in frames.items() if i / fps < 1}, late, fps)
        check_rows({i: f for i, f in frames.items() if i / fps >= 1}, rows, fps)
        for index, frame in frames.items():  # <set> turns the square red at 1 s
            r, g, b = frame.pixel(110, 100)
            assert (r > 200 and b < 60) == (index / fps >= 1), (index, (r, g, b))

    check_whole_chunk_and_repeat(tmp_path, COMPOSITIONS / "smil.html", capture, check,
                                 frames=22, start=11)


# --- 6, 7. <video>: the frame on screen at k / fps; a broken video fails at once --------------


def grey_clip(folder: Path, rate: int, container: str) -> Path:
    """Source frame n is a flat grey of 8 * n, at ``rate`` fps, for 1.5 s: H.264 with
    B-frames in MP4, or lossless VP9 in WebM (whose frame times are rounded to the ms)."""
    clip = folder / f"grey.{container}"
    codec = (["-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv420p", "-bf", "2"]
             if container == "mp4" else
             ["-c:v", "libvpx-vp9", "-lossless", "1", "-pix_fmt", "yuv444p"])
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"color=black:s=160x90:r={rate}:d=1.5",
         "-vf", "geq=r='8*N':g='8*N':b='8*N'", *codec, "-g", "12", str(clip)],
        check=True,
    )
    return clip


@pytest.mark.parametrize(
    ("container", "rate", "fps"), [("mp4", 30, 30), ("webm", 24, 30), ("mp4", 30, 60)]
)
def test_video_shows_the_source_frame_on_screen_at_each_frame_time(
    tmp_path: Path, capture: CapturePath, container: str, rate: int, fps: int
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    page = site / "video_frames.html"
    html = (COMPOSITIONS / "video_frames.html").read_text()
    page.write_text(html.replace("grey30.webm", f"grey.{container}"))
    grey_clip(site, rate, container)

    def check(frames: dict[int, Frame], fps: int) -> None:
        wrong = []
        for index, frame in frames.items():
            source = index * rate // fps  # on screen at index / fps
            grey = frame.pixel(80, 45)
            if not all(abs(c - 8 * source) <= 4 for c in grey):
                wrong.append((index, source, grey))
        assert not wrong, f"frames that show another source frame: {wrong}"

    check_whole_chunk_and_repeat(tmp_path, page, capture, check, frames=24, start=13, fps=fps)


PAUSED_VIDEO = """<!doctype html>
<style>html, body { margin: 0; background: #fff; }
  video { display: block; width: 160px; height: 90px; }</style>
<video src="grey.webm" muted preload="auto"></video>
<script>
  const video = document.querySelector("video");
  video.play();
  setTimeout(() => video.pause(), 300);
  setTimeout(() => video.play(), 500);
</script>
"""


async def test_a_video_paused_and_played_again_shows_its_frames_in_twenty_renders(
    tmp_path: Path, capture: CapturePath
) -> None:
    """A seek's "seeked" comes before its picture reaches the compositor: a frame captured in
    between showed the previous source frame (now and then, on a busy machine). Twenty renders
    of a video that plays, pauses and plays again, in one warm browser, each frame checked."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text(PAUSED_VIDEO)
    grey_clip(site, 24, "webm")
    frames, fps = 24, 30

    def source(k: int) -> int:  # the clip's frame on screen at k / fps
        t = Fraction(k, fps)
        media = t if t < Fraction(3, 10) else Fraction(3, 10) + max(Fraction(0), t - Fraction(1, 2))
        return int(media * 24)

    renders = []
    async with helios_render.open_pool(concurrency=1) as pool:
        for run in range(20):
            output = tmp_path / f"paused-{run}.mp4"
            await pool.render(make_lossless_options(
                tmp_path, site / "index.html", output=output, frames=frames, fps=fps,
                concurrency=1, capture=capture.name, browser=capture.browser,
            ))
            renders.append(decode_frames(output))
            output.unlink()
    first = renders[0]
    wrong = [(k, source(k), frame.pixel(80, 45)) for k, frame in enumerate(first)
             if not all(abs(c - 8 * source(k)) <= 4 for c in frame.pixel(80, 45))]
    assert not wrong, f"frames that show another source frame: {wrong}"
    assert len({source(k) for k in range(frames)}) > 10  # it moved, held, and moved again
    differing = {run: [k for k in range(frames) if render_[k].rgb != first[k].rgb]
                 for run, render_ in enumerate(renders)}
    assert not any(differing.values()), f"renders that differ from the first: {differing}"


def test_a_video_that_cannot_be_decoded_fails_at_once_with_a_short_message(
    tmp_path: Path, capture: CapturePath
) -> None:
    with pytest.raises(helios_render.WorkerError) as caught:
        render(tmp_path, COMPOSITIONS / "media_error.html", capture, frames=2, timeout=20)
    cause = caught.value.__cause__
    assert isinstance(cause, helios_render.AssetError), repr(cause)  # exit 1, as every asset
    message = str(cause)
    assert "<video#broken>" in message and "data:video/mp4;base64,..." in message, message
    assert "characters)" in message and len(message) < 400, message
    frames = render(tmp_path, COMPOSITIONS / "media_error.html", capture, frames=2,
                    allow_missing_assets=True)
    assert len(frames) == 2


# --- 8. tasks a framework queues --------------------------------------------------------------


def test_updates_scheduled_as_message_channel_tasks_are_in_their_own_frame(
    tmp_path: Path, capture: CapturePath
) -> None:
    rows: Rows = {"MessageChannel task": (20, lambda t: 100 * t)}
    check_whole_chunk_and_repeat(
        tmp_path, COMPOSITIONS / "message_tasks.html", capture,
        lambda frames, fps: check_rows(frames, rows, fps, tolerance=0.5),
        frames=20, start=9,
    )


# --- 5. animated images -----------------------------------------------------------------------


def animated_images(folder: Path, frames: int = 10, step: int = 25) -> None:
    """``frames`` image frames of 100 ms (10) or 50 ms (more), frame n a flat (step n,
    255 - step n, 128): anim.gif, anim.png (APNG), once.png (an APNG played once), anim.webp."""
    rate = 10 if frames <= 10 else 20
    source = ["-f", "lavfi", "-i",
              f"color=black:s=40x40:r={rate}:d={frames / rate:g},format=rgb24,"
              f"geq=r='{step}*N':g='255-{step}*N':b=128"]
    outputs = {
        "anim.gif": ["-vf", "split[a][b];[a]palettegen=reserve_transparent=0[p];"
                     "[b][p]paletteuse=dither=none", "-loop", "0"],
        "anim.png": ["-plays", "0", "-f", "apng"],
        "once.png": ["-plays", "1", "-f", "apng"],
        "anim.webp": ["-c:v", "libwebp_anim", "-lossless", "1", "-loop", "0"],
    }
    for name, args in outputs.items():
        subprocess.run(["ffmpeg", "-v", "error", *source, *args, str(folder / name)], check=True)


def test_animated_images_show_the_image_frame_of_the_composition_time(
    tmp_path: Path, capture: CapturePath
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(COMPOSITIONS / "animated_images.html", site)
    animated_images(site)

    def colour(n: int) -> tuple[int, int, int]:
        return 25 * n, 255 - 25 * n, 128

    def check(frames: dict[int, Frame], fps: int) -> None:
        wrong = []
        for index, frame in frames.items():
            t = index / fps
            n = int(t * 10 + 1e-9)
            expected = {"GIF": (20, n % 10), "APNG background": (80, n % 10),
                        "WebP": (140, n % 10), "APNG once": (200, min(n, 9))}
            if t >= 0.5:
                expected["GIF added at 0.5 s"] = (260, int((t - 0.5) * 10 + 1e-9) % 10)
            for name, (x, image_frame) in expected.items():
                got = frame.pixel(x, 20)
                if any(abs(a - b) > 8 for a, b in zip(got, colour(image_frame), strict=True)):
                    wrong.append(f"{name} at frame {index}: {got}, expected image frame "
                                 f"{image_frame} {colour(image_frame)}")
        assert not wrong, "\n".join(wrong)

    check_whole_chunk_and_repeat(tmp_path, site / "animated_images.html", capture, check,
                                 frames=30, start=13, fps=20)


# --- 9. translate3d on the screenshot path, and a real animation library: GSAP ---------------


def test_translate3d_layers_are_frame_exact_and_deterministic(
    tmp_path: Path, capture: CapturePath
) -> None:
    rows: Rows = {
        "translate3d, 100 px/s": (20, lambda t: 100 * t),
        "translate3d, 37.3 px/s": (60, lambda t: 37.3 * t),
        "translate3d by a CSS animation": (140, lambda t: 263 * clamp(t / 3)),
    }
    check_whole_chunk_and_repeat(
        tmp_path, COMPOSITIONS / "translate3d.html", capture,
        lambda frames, fps: check_rows(frames, rows, fps), frames=20, start=11,
    )


def power2_in_out(p: float) -> float:
    """GSAP's power2.inOut: a cubic (power1 is GSAP's quadratic)."""
    return 4 * p**3 if p < 0.5 else 1 - (-2 * p + 2) ** 3 / 2


def test_a_gsap_timeline_renders_frame_exact_and_deterministic(
    tmp_path: Path, capture: CapturePath
) -> None:
    rows: Rows = {
        "x over 2 s": (20, lambda t: 200 * clamp(t / 2)),
        "power2.inOut from 0.5 s": (60, lambda t: 200 * power2_in_out(clamp(t - 0.5))),
        "x over 1.5 s": (100, lambda t: 150 * clamp(t / 1.5)),
    }

    def check(frames: dict[int, Frame], fps: int) -> None:
        check_rows(frames, rows, fps)
        for index, frame in frames.items():
            opacity = clamp(index / fps / 2)
            r, g, b = frame.pixel(295, 155)
            assert abs(r - 255 * (1 - opacity)) <= 4 and b > 250, (index, (r, g, b))

    check_whole_chunk_and_repeat(tmp_path, COMPOSITIONS / "gsap.html", capture, check,
                                 frames=24, start=13)


async def test_a_helios_page_tells_its_own_fps_and_duration() -> None:
    from helios_render._chromium.browser import find_browser, launch_browser
    from helios_render._chromium.page import open_page
    from helios_render._environment import resolve_source
    from helios_render._model.job import FolderSource
    from helios_render._source.server import serve_directory

    @asynccontextmanager
    async def open_source(path: Path) -> AsyncIterator[str]:
        ref, _ = resolve_source(path)
        assert isinstance(ref, FolderSource)
        async with serve_directory(Path(ref.root)) as server:
            yield server.url_for(ref.entry)

    page_path = COMPOSITIONS / "helios_build" / "examples" / "scene" / "composition.html"
    async with (
        open_source(page_path) as source,
        launch_browser(find_browser(), width=W, height=H) as browser,
    ):
        config = make_page(url=source, fps=Fraction(10))
        async with open_page(browser, config) as page:
            assert await page.composition_timing() == (30.0, 3.0)
    async with (
        open_source(COMPOSITIONS / "timeline.html") as source,
        launch_browser(find_browser(), width=W, height=H) as browser,
    ):
        config = make_page(url=source, fps=Fraction(10))
        async with open_page(browser, config) as page:
            assert await page.composition_timing() == (None, None)


# --- 3. a Helios composition's own fps and duration are the defaults -------------------------

TIMING_PAGE = COMPOSITIONS / "helios_build" / "examples" / "timing" / "composition.html"


def test_a_helios_composition_renders_at_its_own_fps_and_duration(tmp_path: Path) -> None:
    output = tmp_path / "own-timing.mp4"
    result = helios_render.render_sync(
        make_lossless_options(tmp_path, TIMING_PAGE, output=output, fps=None)
    )
    assert (result.fps, result.frames) == (Fraction(12), 18)
    assert probe(output)["r_frame_rate"] == "12/1"
    frames = dict(enumerate(decode_frames(output)))
    assert len(frames) == 18
    check_rows(frames, {"helios": (20, lambda t: 100 * t)}, 12)


def test_the_timing_is_read_again_only_when_the_composition_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from helios_render._chromium import browser as _browser

    project = tmp_path / "project"
    shutil.copytree(COMPOSITIONS / "helios_build", project)
    page = project / "examples" / "timing" / "composition.html"
    launches: list[object] = []
    spawn = _browser.spawn  # type: ignore[attr-defined]

    def counting_spawn(*args: Any, **kwargs: Any) -> Any:
        launches.append(args)
        return spawn(*args, **kwargs)

    monkeypatch.setattr(_browser, "spawn", counting_spawn)

    def run() -> helios_render.RenderResult:
        launches.clear()
        return helios_render.render_sync(
            make_options(tmp_path, source=page, frames=None, concurrency=1)
        )

    assert run().frames == 18
    assert run().frames == 18 and len(launches) == 1, "the second render asked no probe page"
    page.write_text(page.read_text().replace("duration: 1.5", "duration: 1"))
    assert run().frames == 12 and len(launches) == 2, "a changed page is asked again"


def test_what_the_user_gives_wins_over_the_composition_timing(tmp_path: Path) -> None:
    output = tmp_path / "given-fps.mp4"
    # --fps 24 and no length: the composition's 1.5 s at 24 fps.
    result = helios_render.render_sync(
        make_lossless_options(tmp_path, TIMING_PAGE, output=output, fps=24)
    )
    assert (result.fps, result.frames) == (Fraction(24), 36)
    frames = dict(enumerate(decode_frames(output)))
    check_rows(frames, {"helios": (20, lambda t: 100 * t)}, 24)
    # --frames and no fps: the composition's 12 fps.
    result = helios_render.render_sync(
        make_lossless_options(tmp_path, TIMING_PAGE, output=output, fps=None, frames=5)
    )
    assert (result.fps, result.frames) == (Fraction(12), 5)


def test_a_page_without_a_duration_asks_for_frames_on_one_line(tmp_path: Path) -> None:
    output = tmp_path / "plain.mp4"
    command = [sys.executable, "-m", "helios_render", "render", str(COMPOSITIONS / "timeline.html"),
               str(output), "--width", str(W), "--height", str(H)]
    failed = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert failed.returncode == 2, failed
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1, failed.stderr
    assert "has no length of its own" in lines[0] and "--frames N" in lines[0], lines[0]
    assert not output.exists()
    assert not list(tmp_path.glob(".*helios-job*"))


# --- 9. composited layers are captured as seeked on the screenshot path ----------------------


def _ease_in_out(x: float) -> float:
    """CSS ease-in-out, cubic-bezier(0.42, 0, 0.58, 1), at progress ``x``."""
    low, high = 0.0, 1.0
    for _ in range(60):  # solve bezier_x(s) = x by bisection (x(s) is increasing)
        s = (low + high) / 2
        bx = 3 * (1 - s) ** 2 * s * 0.42 + 3 * (1 - s) * s**2 * 0.58 + s**3
        low, high = (s, high) if bx < x else (low, s)
    s = (low + high) / 2
    return 3 * (1 - s) * s**2 + s**3


def badge_colour(t: float) -> tuple[float, ...]:
    p = _ease_in_out((t % 2.0) / 2.0) * 2
    a, b = (34, 211, 238), (244, 114, 182)
    mix = p if p <= 1 else 2 - p
    return tuple(x + (y - x) * mix for x, y in zip(a, b, strict=True))


def test_a_pulsing_turning_badge_is_frame_exact_and_deterministic(
    tmp_path: Path, capture: CapturePath
) -> None:
    def check(frames: dict[int, Frame], fps: int) -> None:
        for index, frame in frames.items():
            want = badge_colour(index / fps)
            got = frame.pixel(200, 100)  # inside the badge, right of its text
            assert all(abs(g - w) <= 6 for g, w in zip(got, want, strict=True)), (index, got, want)

    check_whole_chunk_and_repeat(tmp_path, COMPOSITIONS / "composited_badge.html", capture,
                                 check, frames=40, start=21, fps=20)


def test_a_rounded_box_beside_a_moving_one_keeps_its_pixels_whole_and_from_frame_37(
    tmp_path: Path, capture: CapturePath
) -> None:
    """Seen once as a seam: a still box's anti-aliased rounded edges moved by 2-3/255 when
    another part of the page changed, and a render from frame 37 differed from a whole one.
    Losslessly captured and encoded, the still box is the same in every frame of both."""
    still = (0, 0, 150, 170)  # the rounded box and its surroundings, clear of the moving one

    def check(frames: dict[int, Frame], fps: int) -> None:
        first = min(frames)
        reference = frames[first].crop(*still)
        changed = [i for i, frame in frames.items() if frame.crop(*still) != reference]
        assert not changed, f"the still rounded box changed at frames {changed}"
        middle = frames[first].pixel(75, 85)
        assert all(abs(c - w) <= 3 for c, w in zip(middle, (37, 99, 235), strict=True)), middle
        moved = {frames[i].first_x(80, red) for i in frames}
        assert len(moved) > len(frames) // 2  # the other box moves in most frames

    check_whole_chunk_and_repeat(tmp_path, COMPOSITIONS / "rounded_beside_moving.html",
                                 capture, check, frames=48, start=37, fps=30)


# --- animated images beside SMIL and CSS animations (issue 24, point 1) -----------------------


def test_animated_images_beside_smil_and_css_animations_render_on_both_paths(
    tmp_path: Path, capture: CapturePath
) -> None:
    """Each image's forty stills are made before frame 0: on the beginFrame path that once
    took a second per still (an idle task the page never got), so frame 0 timed out."""
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(COMPOSITIONS / "animated_mix.html", site)
    animated_images(site, frames=40, step=6)  # forty stills of 50 ms each
    rows: Rows = {
        "SMIL": (70, lambda t: 100 * min(t, 2.0)),
        "@property": (110, lambda t: 100 * min(t, 2.0)),
        "class-started": (150, lambda t: 100 * max(0.0, t - 0.3)),
    }

    def check(frames: dict[int, Frame], fps: int) -> None:
        check_rows(frames, rows, fps)
        wrong = []
        for index, frame in frames.items():
            n = int(index / fps * 20 + 1e-9) % 40
            want = (6 * n, 255 - 6 * n, 128)
            for name, x in (("GIF", 20), ("APNG", 80), ("WebP", 140)):
                got = frame.pixel(x, 20)
                if any(abs(a - b) > 8 for a, b in zip(got, want, strict=True)):
                    wrong.append(f"{name} at frame {index}: {got}, expected image frame {n} {want}")
        assert not wrong, "\n".join(wrong)

    page = site / "animated_mix.html"
    whole = render(tmp_path, page, capture, 24, fps=20, timeout=20)
    check(whole, 20)
    chunk = render(tmp_path, page, capture, 11, start=13, fps=20, timeout=20)
    check(chunk, 20)
    differing = [i for i in chunk if chunk[i].rgb != whole[i].rgb]
    assert not differing, f"the chunk from 13 differs from the whole render at {differing}"
