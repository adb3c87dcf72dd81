"""A batch against the same renders as separate commands, side by side in one run.

12 rows x 60 frames at 640x360 (each row its own colour and text, a CSS animation), with
``--concurrency 2``:

* batch: one ``helios-render batch card.html rows.csv --output 'out/{index:02d}.mp4'``
  (one pool: two browsers kept across the rows, tools probed once, a row stitched while the
  next renders);
* loop: the same 12 renders as ``helios-render render card.html out/NN.mp4 --props {...}``
  commands, one after the other (each launches its browsers, probes, renders, stitches).

Each repetition runs both, alternating which goes first, from fresh outputs. Printed: the
median wall time of each, frames per second end to end, and the ratio loop / batch.

Usage: python benchmarks/bench_batch.py [--rows 12] [--frames 60] [--width 640]
       [--height 360] [--concurrency 2] [--reps 3] [--json bench-results/batch.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CARD = """<!doctype html>
<script type="application/json" id="helios-props-schema">
{"type": "object", "properties": {"name": {"type": "string"},
 "color": {"type": "string", "default": "#336699"}}, "required": ["name"]}
</script>
<style>
  html, body { margin: 0; height: 100%; font: 48px sans-serif; color: #fff; }
  #name { position: absolute; left: 40px; top: 40px; animation: slide 2s linear infinite; }
  @keyframes slide { to { transform: translateX(300px) rotate(20deg); } }
</style>
<div id="name"></div>
<script>
  const props = window.__HELIOS_PROPS__ || {};
  document.body.style.background = props.color;
  document.getElementById("name").textContent = props.name;
</script>
"""

COLOURS = ["#aa3333", "#33aa33", "#3333aa", "#aaaa33", "#33aaaa", "#aa33aa"]


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "helios_render", *args]


def run(args: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(args)}\n{done.stderr[-2000:]}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=12)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="helios-bench-batch-"))
    try:
        (work / "card.html").write_text(CARD)
        rows = [
            {"name": f"Customer {i}", "color": COLOURS[i % len(COLOURS)]}
            for i in range(args.rows)
        ]
        with (work / "rows.csv").open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["name", "color"])
            writer.writeheader()
            writer.writerows(rows)
        common = [
            "--width", str(args.width), "--height", str(args.height), "--fps", "30",
            "--frames", str(args.frames), "--concurrency", str(args.concurrency),
            "--progress", "none",
        ]
        times: dict[str, list[float]] = {"batch": [], "loop": []}

        def fresh() -> None:
            shutil.rmtree(work / "out", ignore_errors=True)
            (work / "out").mkdir()
            (work / ".rows.csv.helios-batch.json").unlink(missing_ok=True)

        def batch() -> float:
            fresh()
            return run(command("batch", "card.html", "rows.csv", "--output",
                               "out/{index:02d}.mp4", *common), work)

        def loop() -> float:
            fresh()
            total = 0.0
            for index, row in enumerate(rows):
                total += run(command("render", "card.html", f"out/{index:02d}.mp4",
                                     "--props", json.dumps(row), *common), work)
            return total

        for rep in range(args.reps):
            order = [("batch", batch), ("loop", loop)]
            if rep % 2:
                order.reverse()
            for name, measure in order:
                seconds = measure()
                times[name].append(seconds)
                print(f"rep {rep + 1}: {name:5s} {seconds:7.2f} s", flush=True)

        frames = args.rows * args.frames
        batch_s = statistics.median(times["batch"])
        loop_s = statistics.median(times["loop"])
        print()
        print(f"{args.rows} rows x {args.frames} frames at {args.width}x{args.height}, "
              f"--concurrency {args.concurrency}, {args.reps} reps (median), "
              f"{os.cpu_count()} CPUs")
        print("| run | wall time | frames/s end to end |")
        print("|---|---|---|")
        print(f"| batch (one command) | {batch_s:.2f} s | {frames / batch_s:.1f} |")
        print(f"| {args.rows} render commands | {loop_s:.2f} s | {frames / loop_s:.1f} |")
        print(f"| ratio (commands / batch) | {loop_s / batch_s:.2f}x | |")
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(
                {"args": vars(args), "times": times, "ratio": loop_s / batch_s}, indent=1
            ))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
