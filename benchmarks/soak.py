"""Soak: many renders in a row in one process must not leak file descriptors, threads or
child processes. Prints the figures after each render and fails if they grow.

Usage: python benchmarks/soak.py [--renders 20] [--frames 15]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

import trio

import helios_render
from helios_render._process import OWNER_ENV

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


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=20)
    parser.add_argument("--frames", type=int, default=15)
    arguments = parser.parse_args()
    raise SystemExit(trio.run(main, arguments.renders, arguments.frames))
