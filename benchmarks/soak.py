"""Soak: many renders in a row in one process must not leak file descriptors, threads or
child processes. Prints the figures after each render and fails if they grow.

``--long``: one long render (default 20,000 frames at 640x360, 2 workers) and ``--big``: one
large render (default 300 frames at 3840x2160, 2 workers), each sampled every ``--interval``
seconds: the resident memory of this Python, of each Chromium (with all its helpers) and of
each FFmpeg, this Python's open descriptors, and the job folder's size (its finished chunks,
which are the video and grow with it, and its scratch ``partial/`` folder, compared while
frames are rendered: the stitch writes the joined video there). After the first minute every
figure but the finished chunks must stay within 10 % of its value at one minute
(the largest FFmpeg at any time against the largest seen in the first minute, since each run
of chunks gets an FFmpeg of its own); the run fails otherwise.

Usage: python benchmarks/soak.py [--renders 20] [--frames 15]
       python benchmarks/soak.py --long [--frames 20000] [--size 640x360] [--workers 2]
       python benchmarks/soak.py --big [--frames 300] [--size 3840x2160] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import trio

import helios_render
from helios_render._process import OWNER_ENV

sys.path.insert(0, str(Path(__file__).resolve().parent))
from procs import ProcessSampler  # a sibling script, not a package

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "hello" / "index.html"


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def child_processes() -> int:
    mark = f"{OWNER_ENV}={os.getpid()}".encode()
    count = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if mark in (entry / "environ").read_bytes().split(b"\0"):
                    count += 1
            except OSError:
                pass
    return count


async def main(renders: int, frames: int) -> int:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for index in range(renders):
            started = time.perf_counter()
            options = helios_render.RenderOptions(
                source=EXAMPLE, output=Path(folder) / "soak.mp4", width=640, height=360,
                frames=frames, concurrency=2,
            )
            await helios_render.render(options)
            row: tuple[int, int, int, int, float] = (
                index + 1,
                open_fds(),
                threading.active_count(),
                child_processes(),
                time.perf_counter() - started,
            )
            rows.append(row)
            print(
                f"render {row[0]:2d}: fds {row[1]:3d}  threads {row[2]:2d}  "
                f"child processes {row[3]}  {row[4]:.2f} s"
            )
    first, last = rows[0], rows[-1]
    grew = last[1] > first[1] or last[3] > 0
    print(f"\nfds {first[1]} -> {last[1]}, threads {first[2]} -> {last[2]}, "
          f"child processes left {last[3]}: {'LEAK' if grew else 'no growth'}")
    return 1 if grew else 0


MB = 1024 * 1024
#: Seconds after which the figures must stay flat, and how much they may grow after it.
WARM_UP = 60.0
GROWTH = 0.10


def _folder_bytes(folder: Path) -> int:
    total = 0
    for path in folder.rglob("*"):
        try:
            if path.is_file():
                total += path.stat().st_size
        except OSError:
            pass
    return total


async def one_render(
    frames: int, width: int, height: int, workers: int, interval: float
) -> int:
    """One render, sampled; 0 when every figure stayed flat after the first minute."""
    sampler = ProcessSampler(interval=interval)
    rows: list[dict[str, float]] = []
    done = [0]
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{frames} frames at {width}x{height}, {workers} workers; load average {load}")
    print(f"{'t(s)':>7} {'frames':>7} {'py MB':>6} {'chromium MB (each)':>24} "
          f"{'ffmpeg MB (each)':>20} {'fds':>4} {'chunks MB':>9} {'partial MB':>10}")
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "soak.mp4"

        async def watch() -> None:
            while True:
                reading = await trio.to_thread.run_sync(sampler.sample)
                jobs = list(Path(folder).glob(".soak.mp4.helios-job-*"))
                chunks = sum(_folder_bytes(job / "chunks") for job in jobs)
                partial = sum(_folder_bytes(job / "partial") for job in jobs)
                chromium = sorted(reading.chromium_rss.values(), reverse=True)
                ffmpeg = sorted(reading.ffmpeg_rss.values(), reverse=True)
                rows.append({
                    "t": reading.at, "frames": done[0], "python": reading.python_rss / MB,
                    "chromium": max(chromium, default=0) / MB,
                    "ffmpeg": max(ffmpeg, default=0) / MB,
                    "fds": reading.python_fds, "chunks": chunks / MB, "partial": partial / MB,
                })
                print(f"{reading.at:7.0f} {done[0]:7d} {reading.python_rss / MB:6.0f} "
                      f"{' '.join(f'{v / MB:.0f}' for v in chromium):>24} "
                      f"{' '.join(f'{v / MB:.0f}' for v in ffmpeg):>20} "
                      f"{reading.python_fds:4d} {chunks / MB:9.1f} {partial / MB:10.1f}",
                      flush=True)
                await trio.sleep(interval)

        def on_progress(state: helios_render.RenderProgress) -> None:
            done[0] = state.frames_done

        options = helios_render.RenderOptions(
            source=EXAMPLE, output=output, width=width, height=height, fps=30,
            frames=frames, concurrency=workers, resume=False,
        )
        started = time.perf_counter()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch)
            result = await helios_render.render(options, on_progress=on_progress)
            nursery.cancel_scope.cancel()
        elapsed = time.perf_counter() - started
    print(f"done: {result.frames} frames in {elapsed:.0f} s ({result.frames / elapsed:.1f} fps); "
          f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    base = [row for row in rows if row["t"] <= WARM_UP]
    later = [row for row in rows if row["t"] > WARM_UP]
    if not base or not later:
        print("shorter than a minute after warm-up: nothing to compare")
        return 0
    failed = False
    rendering = [row for row in later if row["frames"] < frames]
    for key in ("python", "chromium", "ffmpeg", "fds", "partial"):
        reference = max(row[key] for row in base) if key == "ffmpeg" else base[-1][key]
        # The stitch writes the joined video in partial/ (the output before its rename):
        # the scratch folder is compared while frames are rendered.
        compared = rendering if key == "partial" else later
        if not compared:
            continue
        peak = max(row[key] for row in compared)
        limit = reference * (1 + GROWTH) + (1 if key in ("fds", "partial") else 0)
        flat = peak <= limit
        failed |= not flat
        print(f"{key:>8}: {reference:.1f} at one minute, at most {peak:.1f} after: "
              f"{'flat' if flat else 'GROWS'}")
    print(f"  chunks: {base[-1]['chunks']:.1f} MB at one minute, {rows[-1]['chunks']:.1f} MB "
          "at the end (the finished video, as it must)")
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=20)
    parser.add_argument("--frames", type=int, default=None)
    parser.add_argument("--long", action="store_true", help="one 20,000-frame 640x360 render")
    parser.add_argument("--big", action="store_true", help="one 300-frame 3840x2160 render")
    parser.add_argument("--size", default=None, help="WxH of --long or --big")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--interval", type=float, default=5.0)
    arguments = parser.parse_args()
    if arguments.long or arguments.big:
        size = arguments.size or ("640x360" if arguments.long else "3840x2160")
        w, h = (int(v) for v in size.split("x"))
        count = arguments.frames or (20_000 if arguments.long else 300)
        raise SystemExit(trio.run(one_render, count, w, h, arguments.workers, arguments.interval))
    raise SystemExit(trio.run(main, arguments.renders, arguments.frames or 15))
