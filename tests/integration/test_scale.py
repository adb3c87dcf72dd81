"""--scale: the page lays out at --width x --height CSS pixels and its frames are F times larger,
as sharp as Chromium draws the page at that device scale, on both capture paths."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest
import trio

import helios_render
from helios_render._chromium.browser import find_browser, launch_browser

from ..conftest import COMPOSITIONS, Frame, decode_frames, probe
from ..factories import make_lossless_options
from . import test_corpus
from .test_corpus import CapturePath

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("clean_processes")]

PAGE = COMPOSITIONS / "scale_text.html"
W, H = 320, 180


capture = test_corpus.capture  # both capture paths, as the corpus runs them


async def _reference_png(scale: float, browser_path: str | None = None) -> bytes:
    """The page as Chromium draws it at device scale ``scale``: one screenshot taken with our
    CDP client on a plain tab (no runtime, no render pipeline). Debian's Chromium emulates the
    scale; a headless shell (``browser_path``) is started at it, as the beginFrame path is
    (its glyphs land up to a pixel from the emulated scale's, equally sharp)."""
    extra = () if browser_path is None else (f"--force-device-scale-factor={scale!r}",)
    executable = find_browser(browser_path)
    async with launch_browser(executable, width=W, height=H, extra_args=extra) as browser:
        session = await browser.open_tab(width=W, height=H, begin_frame=False)
        await session.execute("Page.enable")
        await session.execute(
            "Emulation.setDeviceMetricsOverride",
            {"width": W, "height": H, "deviceScaleFactor": 0 if extra else scale,
             "mobile": False},
        )
        with session.listen("Page.loadEventFired") as loads:
            await session.execute("Page.navigate", {"url": PAGE.as_uri()})
            await loads.receive()
        await session.execute(
            "Runtime.evaluate", {"expression": "document.fonts.ready", "awaitPromise": True}
        )
        reply = await session.execute("Page.captureScreenshot", {"format": "png"})
        return base64.b64decode(reply["data"])


def _png_to_frame(png: Path, size: tuple[int, int] | None = None) -> Frame:
    """Decode a PNG (scaled to ``size`` with bicubic filtering when given) to RGB."""
    args = ["ffmpeg", "-v", "error", "-i", str(png)]
    if size is not None:
        args += ["-vf", f"scale={size[0]}:{size[1]}:flags=bicubic"]
    args += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    raw = subprocess.run(args, capture_output=True, check=True).stdout
    width, height = size or (len(raw) // 3 // (H * 2), H * 2)
    return Frame(width, height, raw)


def _luma(frame: Frame) -> list[float]:
    rgb = frame.rgb
    return [
        0.2126 * rgb[i] + 0.7152 * rgb[i + 1] + 0.0722 * rgb[i + 2] for i in range(0, len(rgb), 3)
    ]


def _mean_difference(a: Frame, b: Frame) -> float:
    """Mean absolute difference of the luma (what makes text sharp; 4:2:0 keeps it whole)."""
    assert (a.width, a.height) == (b.width, b.height)
    ya, yb = _luma(a), _luma(b)
    return sum(abs(x - y) for x, y in zip(ya, yb, strict=True)) / len(ya)


def test_scale_2_frames_are_as_sharp_as_chromium_at_device_scale_2(
    tmp_path: Path, capture: CapturePath
) -> None:
    reference_png = tmp_path / "reference.png"
    reference_png.write_bytes(trio.run(_reference_png, 2.0, capture.browser))
    reference = _png_to_frame(reference_png, (2 * W, 2 * H))

    output = tmp_path / "scaled.mp4"
    options = make_lossless_options(
        tmp_path, PAGE, output=output, width=W, height=H, frames=3, scale=2,
        concurrency=1, capture=capture.name, browser=capture.browser,
    )
    helios_render.render_sync(options)
    info = probe(output)
    assert (int(info["width"]), int(info["height"])) == (2 * W, 2 * H)
    frames = decode_frames(output)
    assert len(frames) == 3

    # The same page drawn at scale 1 and enlarged: what --scale must beat.
    small = tmp_path / "small.png"
    still = make_lossless_options(
        tmp_path, PAGE, output=small, width=W, height=H, frames=1, capture="screenshot"
    )
    trio.run(helios_render.render_still, still, 0)
    upscaled = _png_to_frame(small, (2 * W, 2 * H))

    blurred = _mean_difference(upscaled, reference)
    for frame in frames:
        sharp = _mean_difference(frame, reference)
        assert sharp < 1.0, (sharp, blurred)
        assert sharp < blurred / 8, (sharp, blurred)


def test_still_at_fractional_scale_is_the_device_scale_screenshot(tmp_path: Path) -> None:
    output = tmp_path / "still.png"
    options = make_lossless_options(
        tmp_path, PAGE, output=output, width=W, height=H, frames=1, scale=1.5,
        capture="screenshot",
    )
    trio.run(helios_render.render_still, options, 0)
    reference = tmp_path / "reference.png"
    reference.write_bytes(trio.run(_reference_png, 1.5))
    ours = _png_to_frame(output, (480, 270))
    theirs = _png_to_frame(reference, (480, 270))
    assert _mean_difference(ours, theirs) < 0.5
    assert probe(output)["width"] == "480"
