"""Render throughput against the ceiling, measured in one run so that machine noise cancels.

For each capture path the browser has (screenshots always; beginFrame where the browser is a
headless shell that supports it):

* bare loop: the capture command alone, in a loop, on the loaded example (no time control,
  no encoding), over our own CDP client;
* pipeline: ``helios_render.render`` of the same example, one worker;
* ratio: pipeline fps / bare fps.

Then a sweep over concurrency 1, 2 and 4 with the speedup over one worker.

Usage: python benchmarks/bench_render.py [--frames 90] [--width 1920] [--height 1080]
       [--sweep 1,2,4] [--json bench-results/latest.json]
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
from helios_render._page import PageConfig, open_page
from helios_render._server import serve_directory

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "hello" / "index.html"


async def bare_loop(
    browser: Path, width: int, height: int, frames: int, image_format: str, capture: str
) -> float:
    """Frames per second of the bare capture command on the loaded example."""
    async with (
        serve_directory(EXAMPLE.parent) as server,
        launch_browser(
            browser, width=width, height=height, begin_frame_control=capture == "beginframe"
        ) as chromium,
        open_page(
            chromium,
            PageConfig(url=server.url_for(EXAMPLE.name), width=width, height=height,
                       fps=Fraction(30)),
            begin_frame=capture == "beginframe",
        ) as page,
    ):
        for _ in range(3):  # warm up
            await page.capture(image_format, 90)
        started = time.perf_counter()
        for _ in range(frames):
            await page.capture(image_format, 90)
        return frames / (time.perf_counter() - started)


async def pipeline(
    width: int, height: int, frames: int, concurrency: int, image_format: str, capture: str
) -> float:
    """Frames per second of a full render (launch, page load and stitching included)."""
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
        )
        result = await helios_render.render(options)
        return result.frames_per_second


async def main(args: argparse.Namespace) -> dict[str, Any]:
    browser = find_browser()
    paths = ["screenshot"]
    if await probe_begin_frame(browser):
        paths.append("beginframe")
    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                    "platform": platform.platform()},
        "browser": str(browser),
        "size": f"{args.width}x{args.height}",
        "frames": args.frames,
        "paths": {},
    }
    print(f"browser {browser}, {args.width}x{args.height}, {args.frames} frames, jpeg q90")
    print(f"{'path':<11} {'bare fps':>9} {'render fps':>11} {'ratio':>6}")
    for capture in paths:
        bare = await bare_loop(browser, args.width, args.height, args.frames, "jpeg", capture)
        full = await pipeline(args.width, args.height, args.frames, 1, "jpeg", capture)
        report["paths"][capture] = {"bare_fps": bare, "render_fps": full, "ratio": full / bare}
        print(f"{capture:<11} {bare:9.2f} {full:11.2f} {full / bare:6.2f}")
    sweep = [int(n) for n in args.sweep.split(",") if n]
    report["sweep"] = {}
    print(f"\nconcurrency sweep ({paths[-1]} path, {args.frames * 2} frames)")
    print(f"{'workers':>7} {'render fps':>11} {'speedup':>8}")
    base = None
    for workers in sweep:
        fps = await pipeline(args.width, args.height, args.frames * 2, workers, "jpeg",
                             paths[-1])
        base = base or fps
        report["sweep"][workers] = {"render_fps": fps, "speedup": fps / base}
        print(f"{workers:>7} {fps:11.2f} {fps / base:8.2f}")
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=90)
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--sweep", default="1,2,4")
    parser.add_argument("--json", default="bench-results/latest.json")
    arguments = parser.parse_args()
    result = trio.run(main, arguments)
    out = Path(arguments.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {out}")
