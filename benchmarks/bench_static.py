"""Static frames: the same render with skipping on and off, side by side, in one run.

Two pages, at 1080p with 2 workers on each capture path (beginFrame on ``--shell``, a
chrome-headless-shell; screenshots on ``--browser``/Debian Chromium):

* ``benchmarks/static/index.html``: 300 frames, still for 60 % of them (a title comes in, a
  hold, a transition to a chart, a hold). Skipping on should be at least 2x faster end to end.
* ``examples/hello``: 90 frames that always move. Skipping on should cost at most 3 %.

Repetitions render on then off, then off then on, and so on (so that a drift of the
machine's load hits both alike); the table gives medians. Frames are compared elsewhere (the
lossless equality of on and off is a test: tests/integration/test_static_frames.py), not here.

Usage: python benchmarks/bench_static.py [--reps 3] [--workers 2] [--width 1920]
       [--height 1080] [--paths beginframe,screenshot] [--pages static,moving]
       [--json bench-results/static.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import trio

import helios_render
from helios_render._chromium.browser import find_browser, probe_begin_frame
from helios_render._executors import LocalExecutor
from helios_render._executors.local import ChunkRunner
from helios_render._executors.worker import WorkerTimings, open_chunk_worker
from helios_render._model.plan import encoder_threads

sys.path.insert(0, str(Path(__file__).resolve().parent))
from procs import ProcessSampler

HERE = Path(__file__).resolve().parent
PAGES = {
    "static": (HERE / "static" / "index.html", 300),
    "moving": (HERE.parent / "examples" / "hello" / "index.html", 90),
}


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


async def render_once(
    page: Path, frames: int, browser: Path, capture: str, skip: bool, args: argparse.Namespace
) -> dict[str, Any]:
    """One render; its end-to-end seconds, frames skipped and per-frame medians."""
    sinks: list[WorkerTimings] = []

    def open_worker() -> AbstractAsyncContextManager[ChunkRunner]:
        sink = WorkerTimings()
        sinks.append(sink)
        return open_chunk_worker(sink, encoder_threads(args.workers))  # as LocalExecutor does

    with tempfile.TemporaryDirectory() as folder:
        options = helios_render.RenderOptions(
            source=page, output=Path(folder) / "bench.mp4", width=args.width,
            height=args.height, fps=30, frames=frames, concurrency=args.workers,
            quality=args.quality, preset=args.preset, capture=capture,  # type: ignore[arg-type]
            browser=browser, skip_static=skip, resume=False,
        )
        sampler = ProcessSampler(interval=0.25)
        sampler.sample()
        python_before = sampler.cpu_by_role().get("python", 0.0)
        started = time.perf_counter()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sampler.run)
            result = await helios_render.render(
                options, executor=LocalExecutor(args.workers, open_worker=open_worker)
            )
            seconds = time.perf_counter() - started
            nursery.cancel_scope.cancel()
        cpu = sampler.cpu_by_role()

    def every(name: str) -> list[float]:
        return [value for sink in sinks for value in getattr(sink, name)]

    return {
        "seconds": seconds,
        "skipped": result.frames_skipped,
        "seek_ms": statistics.median(every("seek")) * 1000,
        # The runtime's own work per seek, measured inside the page (its static-frame verdict
        # included): what skipping adds to a frame that moves.
        "work_ms": statistics.median(every("seek_work") or [0.0]) * 1000,
        "capture_ms": statistics.median(every("capture")) * 1000,
        "encoder_wait_ms": statistics.median(every("encoder_wait")) * 1000,
        "encoder_finish_ms": statistics.median(every("encoder_finish") or [0.0]) * 1000,
        # CPU seconds (sampled every 0.25 s: a process's last quarter second may be missed).
        "cpu_chromium_s": cpu.get("chromium", 0.0),
        "cpu_ffmpeg_s": cpu.get("ffmpeg", 0.0),
        "cpu_python_s": cpu.get("python", 0.0) - python_before,
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    paths: list[tuple[str, Path]] = []
    for name in args.paths.split(","):
        if name == "screenshot":
            paths.append(("screenshot", find_browser(args.browser)))
        elif name == "beginframe" and args.shell and await probe_begin_frame(Path(args.shell)):
            paths.append(("beginframe", Path(args.shell)))
    print(f"{args.width}x{args.height}, {args.workers} workers, jpeg q{args.quality}, x264 "
          f"{args.preset}, {os.cpu_count()} CPUs, load average {_load()}; medians of "
          f"{args.reps} (on, off; then off, on; ...)")
    report: dict[str, Any] = {"settings": vars(args), "load_before": _load(), "rows": {}}
    for page_name in args.pages.split(","):
        page, frames = PAGES[page_name]
        for capture, browser in paths:
            times: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
            for rep in range(args.reps):
                for skip in (True, False) if rep % 2 == 0 else (False, True):
                    row = await render_once(page, frames, browser, capture, skip, args)
                    times[skip].append(row)
                    print(f"  {page_name} {capture} skip={'on ' if skip else 'off'} "
                          f"{row['seconds']:.2f} s, skipped {row['skipped']}/{frames}, seek "
                          f"{row['seek_ms']:.1f} ms (runtime work {row['work_ms']:.2f} ms), "
                          f"capture {row['capture_ms']:.1f} ms, "
                          f"encoder wait {row['encoder_wait_ms']:.1f} ms, CPU s chromium "
                          f"{row['cpu_chromium_s']:.1f} ffmpeg {row['cpu_ffmpeg_s']:.1f} python "
                          f"{row['cpu_python_s']:.1f}, load {_load()}",
                          flush=True)
            on = statistics.median(r["seconds"] for r in times[True])
            off = statistics.median(r["seconds"] for r in times[False])
            summary = {"frames": frames, "on_s": on, "off_s": off, "speedup": off / on,
                       "on_fps": frames / on, "off_fps": frames / off,
                       "skipped": times[True][0]["skipped"], "load": _load()}
            report["rows"][f"{page_name}/{capture}"] = {**summary, "runs": times}
            print(f"{page_name:<7} {capture:<11} on {on:6.2f} s ({frames / on:5.1f} fps)  off "
                  f"{off:6.2f} s ({frames / off:5.1f} fps)  speedup {off / on:.2f}x  skipped "
                  f"{summary['skipped']}/{frames}  load {_load()}", flush=True)
    report["load_after"] = _load()
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--quality", type=int, default=80)
    parser.add_argument("--preset", default="ultrafast")
    parser.add_argument("--paths", default="beginframe,screenshot")
    parser.add_argument("--pages", default="static,moving")
    parser.add_argument("--browser", default=None, help="Chromium for the screenshot path")
    parser.add_argument("--shell", default=os.environ.get(
        "HELIOS_HEADLESS_SHELL", "/opt/helios-headless-shell/unpacked/chromium"),
        help="a chrome-headless-shell build, for the beginFrame path")
    parser.add_argument("--json", default="bench-results/static.json")
    arguments = parser.parse_args()
    result = trio.run(main, arguments)
    out = Path(arguments.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str))
    print(f"\nwrote {out}")
