"""Render throughput against the ceiling, measured in one run so that machine noise cancels.

For each capture path the browser has (screenshots always; beginFrame where the browser is a
headless shell that supports it):

* bare loop: the capture command alone, in a loop, on the loaded example (no time control,
  no encoding), over our own CDP client;
* pipeline: ``helios_render.render`` of the same example, one worker;
* ratio: pipeline fps / bare fps.

Then a sweep over concurrency 1, 2 and 4 with the speedup over one worker.

Usage: python benchmarks/bench_render.py [--frames 90] [--width 1920] [--height 1080]
       [--sweep 1,2,4] [--shell PATH] [--json bench-results/latest.json]
       python benchmarks/bench_render.py --codecs [--frames 90] [--width 1920] [--height 1080]

``--codecs`` measures the cost of each output format instead: the example is captured once to
PNG frames (its render fps is the capture fps), then every codec of the table this FFmpeg has
encodes those frames with its default settings, fed on stdin as a chunk encoder is, and
reports its encode fps (GIF: both palette passes over the joined PNGs).

``--shell`` (default ``$HELIOS_HEADLESS_SHELL``) adds a chrome-headless-shell build, so the
beginFrame path is measured beside Debian's Chromium and its screenshot path.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import trio

import helios_render
from helios_render._browser import find_browser, launch_browser
from helios_render._capture import probe_begin_frame
from helios_render._codecs import CODECS
from helios_render._ffmpeg import (
    EncoderSettings,
    encoder_args,
    ffmpeg_encoders,
    find_ffmpeg,
    gif_args,
    palette_args,
)
from helios_render._page import Page, PageConfig
from helios_render._server import serve_directory

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "hello" / "index.html"


async def bare_loop(
    browser: Path, width: int, height: int, frames: int, image_format: str, capture: str
) -> float:
    """Frames per second of the bare capture command on the example, over our CDP client.

    No time control (the page animates by itself: in real time on the screenshot path, by
    frame ticks on the beginFrame path) and no encoding: the ceiling for this browser.
    """
    begin_frame = capture == "beginframe"
    async with (
        serve_directory(EXAMPLE.parent) as server,
        launch_browser(browser, width=width, height=height, begin_frame_control=begin_frame)
        as chromium,
    ):
        session = await chromium.open_tab(width=width, height=height, begin_frame=begin_frame)
        await session.execute("Page.enable")
        await session.execute(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        with session.listen("Page.loadEventFired") as loads:
            await session.execute("Page.navigate", {"url": server.url_for(EXAMPLE.name)})
            await loads.receive()
        # The page as it is (no runtime installed): Page.capture is the same capture code
        # the renderer uses, on either path.
        page = Page(chromium, session, PageConfig(url="", width=width, height=height,
                                                  fps=Fraction(30)), begin_frame)
        for _ in range(3):  # warm up
            await page.capture(image_format, 90)
        started = time.perf_counter()
        for _ in range(frames):
            await page.capture(image_format, 90)
        return frames / (time.perf_counter() - started)


async def pipeline(
    width: int,
    height: int,
    frames: int,
    concurrency: int,
    image_format: str,
    capture: str,
    browser: Path,
    preset: str = "veryfast",
) -> tuple[float, float]:
    """Frames per second of a full render: (steady rendering rate, end to end).

    The steady rate counts frames between the first and the last progress report of the
    rendering stage, which is what the bare loop is comparable with; end to end includes
    browser launch, page load and stitching.
    """
    marks: list[tuple[float, int]] = []

    def on_progress(state: helios_render.RenderProgress) -> None:
        if state.stage in ("rendering", "stitching") and state.frames_done > 0:
            marks.append((time.perf_counter(), state.frames_done))

    with tempfile.TemporaryDirectory() as folder:
        options = helios_render.RenderOptions(
            source=EXAMPLE,
            output=Path(folder) / "bench.mp4",
            width=width,
            height=height,
            fps=30,
            frames=frames,
            concurrency=concurrency,
            image_format=image_format,  # type: ignore[arg-type]
            capture=capture,  # type: ignore[arg-type]
            browser=browser,
            preset=preset,
        )
        result = await helios_render.render(options, on_progress=on_progress)
    (t0, f0), (t1, f1) = marks[0], marks[-1]
    steady = (f1 - f0) / (t1 - t0) if t1 > t0 else result.frames_per_second
    return steady, result.frames_per_second


async def main(args: argparse.Namespace) -> dict[str, Any]:
    browsers = [find_browser()]
    if args.shell:
        browsers.append(Path(args.shell))
    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                    "platform": platform.platform()},
        "size": f"{args.width}x{args.height}",
        "frames": args.frames,
        "paths": {},
        "sweep": {},
    }
    print(f"{args.width}x{args.height}, {args.frames} frames of examples/hello, jpeg q90, "
          f"{os.cpu_count()} CPUs")
    print(f"{'path':<11} {'browser':<24} {'bare fps':>8} {'render fps':>10} {'ratio':>6} "
          f"{'end-to-end':>10}  preset")
    chosen: tuple[str, Path] = ("screenshot", browsers[0])
    for browser in browsers:
        capture = "beginframe" if await probe_begin_frame(browser) else "screenshot"
        chosen = (capture, browser)
        bare = await bare_loop(browser, args.width, args.height, args.frames, "jpeg", capture)
        for preset in ("veryfast", "ultrafast"):
            steady, total = await pipeline(
                args.width, args.height, args.frames, 1, "jpeg", capture, browser, preset
            )
            report["paths"][f"{capture}/{preset}"] = {
                "browser": str(browser), "bare_fps": bare, "render_fps": steady,
                "ratio": steady / bare, "end_to_end_fps": total,
            }
            print(f"{capture:<11} {browser.name[:24]:<24} {bare:8.2f} {steady:10.2f} "
                  f"{steady / bare:6.2f} {total:10.2f}  {preset}")
    capture, browser = chosen
    sweep = [int(n) for n in args.sweep.split(",") if n]
    frames = args.frames * 2
    print(f"\nconcurrency sweep: {capture} path, {frames} frames, preset veryfast")
    print(f"{'workers':>7} {'render fps':>10} {'end-to-end':>10} {'speedup':>8}")
    base = None
    for workers in sweep:
        steady, total = await pipeline(
            args.width, args.height, frames, workers, "jpeg", capture, browser
        )
        base = base or total
        report["sweep"][workers] = {"render_fps": steady, "end_to_end_fps": total,
                                    "speedup": total / base}
        print(f"{workers:>7} {steady:10.2f} {total:10.2f} {total / base:8.2f}")
    return report


async def _timed(args: list[str], stdin: bytes | None = None) -> float:
    started = time.perf_counter()
    await trio.run_process(args, stdin=stdin, capture_stdout=True, capture_stderr=True)
    return time.perf_counter() - started


async def codec_report(args: argparse.Namespace) -> dict[str, Any]:
    """Capture fps (the bare capture loop, PNG and JPEG) and the encode fps of every codec,
    on the same frames."""
    ffmpeg = find_ffmpeg()
    available = ffmpeg_encoders(ffmpeg)
    report: dict[str, Any] = {"size": f"{args.width}x{args.height}", "frames": args.frames,
                              "cpus": os.cpu_count(), "codecs": {}}
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        options = helios_render.RenderOptions(
            source=EXAMPLE, output=work / "frames", width=args.width, height=args.height,
            fps=30, frames=args.frames, concurrency=1, codec="png",
        )
        await helios_render.render(options)
        images = b"".join(p.read_bytes() for p in sorted((work / "frames").iterdir()))
        browser = find_browser()
        path = "beginframe" if await probe_begin_frame(browser) else "screenshot"
        for image_format in ("png", "jpeg"):
            fps = await bare_loop(browser, args.width, args.height, args.frames, image_format,
                                  path)
            report[f"capture_fps_{image_format}"] = fps
        print(f"{args.width}x{args.height}, {args.frames} frames of examples/hello, "
              f"{os.cpu_count()} CPUs; capture ({path}, bare loop): "
              f"png {report['capture_fps_png']:.2f} fps, jpeg {report['capture_fps_jpeg']:.2f} fps")
        print(f"{'codec':<8} {'encoder':<12} {'encode fps':>10}  settings")
        for codec in CODECS.values():
            encoder = next((e for e in codec.encoders if e in available), None)
            if encoder is None:
                print(f"{codec.name:<8} {'-':<12} {'missing':>10}")
                continue
            settings = EncoderSettings(fps=Fraction(30), width=args.width, height=args.height,
                                       codec=codec.name, image_format="png", encoder=encoder)
            chunk = work / f"chunk{codec.chunk_suffix}"
            seconds = await _timed(encoder_args(ffmpeg, settings, chunk), images)
            if codec.finish == "gif":
                palette = work / "palette.png"
                seconds += await _timed(palette_args(ffmpeg, chunk, palette))
                seconds += await _timed(gif_args(ffmpeg, chunk, palette, work / "out.gif"))
            fps = args.frames / seconds
            described = []
            if codec.quality is not None:
                described.append(f"crf {codec.quality.default}")
            if codec.speed is not None:
                described.append(f"preset {codec.speed.default}")
            if codec.name == "prores":
                described.append("profile hq")
            report["codecs"][codec.name] = {"encoder": encoder, "encode_fps": fps}
            print(f"{codec.name:<8} {encoder:<12} {fps:10.2f}  {', '.join(described)}")
            chunk.unlink()
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=90)
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--sweep", default="1,2,4")
    parser.add_argument("--shell", default=os.environ.get("HELIOS_HEADLESS_SHELL"),
                        help="a chrome-headless-shell build, to measure the beginFrame path too")
    parser.add_argument("--json", default="bench-results/latest.json")
    parser.add_argument("--codecs", action="store_true",
                        help="encode fps of every codec beside the capture fps")
    arguments = parser.parse_args()
    if arguments.codecs:
        if arguments.json == parser.get_default("json"):
            arguments.json = "bench-results/codecs.json"
        result = trio.run(codec_report, arguments)
    else:
        result = trio.run(main, arguments)
    out = Path(arguments.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {out}")
