"""Where each frame's time goes, against the bare capture+encode loop, measured in one run.

For each capture path (screenshots on ``--browser``/Debian Chromium; beginFrame on ``--shell``,
a chrome-headless-shell) and each worker count, one repetition runs, side by side:

* bare loop: per worker its own Chromium on the example (no runtime, no time control), one
  capture command per frame piped into its own FFmpeg (mjpeg -> libx264, the same preset and
  crf as ours), which encodes each frame as it arrives, as ours does;
* raw loop: the same with ``raw_capture.py --encode``'s FFmpeg command as it is (the shared
  harness's): FFmpeg's default input probe holds the first 5 MB of frames (about 56 at 1080p
  q80) before it encodes any, so with 45 frames per worker that loop captures with nothing
  encoding beside it and encodes after its loop ends, which its steady fps does not count;
* ours: ``helios_render.render`` of the same example with the same workers, quality and preset,
  with a :class:`~helios_render._executors.worker.WorkerTimings` instrument on every worker.

Printed per path and worker count (medians over the repetitions): the median per-frame time of
seek (the whole ``Runtime.evaluate``), its parts inside the page (runtime work, settling),
capture, waiting on the encoder, replay of frames 0..S-1 (rAF pages), encoder start and finish
per chunk, browser launch and page load, time to first frame, steady and end-to-end fps of both
loops and their ratios (ours steady: from the first frame reported to the last chunk recorded,
encoder flush included; ours loop: frames over the longest worker's capture loop, chunk changes
included, which is how the bare and raw loops' steady fps is measured), and the peak RSS of one
worker's Chromium (all its processes) and of one FFmpeg. ``--memory`` adds the peak RSS at
other sizes (e.g. 4K).

Usage: python benchmarks/bench_render.py [--frames 90] [--workers 1,2] [--reps 3]
       [--width 1920] [--height 1080] [--quality 80] [--preset ultrafast] [--crf 18]
       [--shell PATH] [--paths beginframe,screenshot] [--memory 3840x2160]
       [--json bench-results/latest.json]
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
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager
from fractions import Fraction
from pathlib import Path
from typing import Any

import trio

import helios_render
from helios_render._chromium.browser import find_browser, launch_browser, probe_begin_frame
from helios_render._chromium.page import Page
from helios_render._executors import LocalExecutor
from helios_render._executors.local import ChunkRunner
from helios_render._executors.worker import WorkerTimings, open_chunk_worker
from helios_render._ffmpeg.ffmpeg import (
    encoder_args,
    ffmpeg_encoders,
    find_ffmpeg,
    gif_args,
    palette_args,
)
from helios_render._model.codecs import CODECS
from helios_render._model.job import EncoderSettings, PageConfig
from helios_render._model.plan import encoder_threads
from helios_render._source.server import serve_directory

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "hello" / "index.html"
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
#: Seconds between two samples of the processes' memory.
MEMORY_SAMPLE_INTERVAL = 0.1


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# ---- memory: peak RSS per process group (each Chromium and each FFmpeg is its own group) -----


def _process_groups() -> Iterator[tuple[int, int, str, int]]:
    """(pid, pgid, comm, rss bytes) of every process we can read."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read().decode("utf-8", "replace")
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        # fields[0] is state; ppid=1, pgrp=2, rss (pages)=21
        yield int(entry.name), int(fields[2]), comm, int(fields[21]) * PAGE_SIZE


class MemorySampler:
    """Peak RSS of every process group led by a child of this process, sampled."""

    def __init__(self) -> None:
        self.peaks: dict[int, tuple[str, int]] = {}

    def sample(self) -> None:
        me = os.getpid()
        leaders: dict[int, str] = {}
        sums: dict[int, int] = {}
        rows = list(_process_groups())
        for pid, pgid, comm, _ in rows:
            if pid == pgid:
                try:
                    with open(f"/proc/{pid}/stat", "rb") as handle:
                        text = handle.read().decode("utf-8", "replace")
                    ppid = int(text[text.rindex(")") + 2 :].split()[1])
                except (OSError, ValueError):
                    continue
                if ppid == me:
                    leaders[pid] = comm
        for _, pgid, _, rss in rows:
            if pgid in leaders:
                sums[pgid] = sums.get(pgid, 0) + rss
        for pgid, total in sums.items():
            name, peak = self.peaks.get(pgid, (leaders[pgid], 0))
            self.peaks[pgid] = (name, max(peak, total))

    async def run(self) -> None:
        while True:
            self.sample()
            await trio.sleep(MEMORY_SAMPLE_INTERVAL)

    def peak_mb(self, ffmpeg: bool) -> float:
        values = [peak for name, peak in self.peaks.values() if (name == "ffmpeg") == ffmpeg]
        return max(values) / 2**20 if values else float("nan")


# ---- the bare loop: capture + encode, nothing else -------------------------------------------


def bare_encoder_args(ffmpeg: Path, args: argparse.Namespace, raw: bool, output: Path) -> list[str]:
    """The bare loop's FFmpeg: mjpeg on stdin to libx264 at the preset.

    ``raw`` is ``raw_capture.py --encode``'s command as it is: FFmpeg's default input probe
    holds the first 5 MB of frames (about 56 at 1080p q80) before it encodes any, so a loop
    of 45 frames per worker captures without encoding beside it, and encodes after its loop.
    Without ``raw``, the loop's FFmpeg encodes each frame as it arrives, at the crf ours uses,
    as ours does: the capture+encode loop that ours is compared with.
    """
    probe = [] if raw else ["-probesize", "32"]
    quality = [] if raw else ["-crf", str(args.crf)]
    decoder = "png" if args.image_format == "png" else "mjpeg"
    return [os.fspath(ffmpeg), "-y", "-loglevel", "error", *probe, "-f", "image2pipe",
            "-framerate", "30", "-c:v", decoder, "-i", "-", "-c:v", "libx264", "-preset",
            args.preset, *quality, "-pix_fmt", "yuv420p", os.fspath(output)]


async def bare_worker(
    browser: Path, ffmpeg: Path, url: str, args: argparse.Namespace, frames: int,
    capture: str, folder: Path, index: int, loops: list[float], raw: bool = False,
) -> Path:
    begin_frame = capture == "beginframe"
    width, height = args.width, args.height
    segment = folder / f"bare-{index}.mp4"
    async with launch_browser(browser, width=width, height=height,
                              begin_frame_control=begin_frame) as chromium:
        session = await chromium.open_tab(width=width, height=height, begin_frame=begin_frame)
        await session.execute("Page.enable")
        await session.execute(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        with session.listen("Page.loadEventFired") as loads:
            await session.execute("Page.navigate", {"url": url})
            await loads.receive()
        # The page as it is (no runtime): Page.capture is the capture code the renderer uses.
        page = Page(chromium, session, PageConfig(url="", width=width, height=height,
                                                  fps=Fraction(30)), begin_frame)
        if not begin_frame:
            await trio.sleep(0.5)  # as raw_capture.py: let the page paint once
        encoder = await trio.lowlevel.open_process(
            bare_encoder_args(ffmpeg, args, raw, segment), stdin=subprocess.PIPE)
        assert encoder.stdin is not None
        started = time.perf_counter()
        for _ in range(frames):
            await encoder.stdin.send_all(await page.capture(args.image_format, args.quality))
        loops[index] = time.perf_counter() - started
        await encoder.stdin.aclose()
        await encoder.wait()
    return segment


async def bare_loop(
    browser: Path, capture: str, workers: int, args: argparse.Namespace, raw: bool = False
) -> dict[str, float]:
    """Steady and end-to-end fps of ``workers`` bare capture+encode loops on the example
    (``raw``: with ``raw_capture.py``'s FFmpeg command, see :func:`bare_encoder_args`).
    Memory is sampled as it is for ours, so that both loops carry the sampler."""
    ffmpeg = find_ffmpeg()
    counts = [args.frames // workers + (i < args.frames % workers) for i in range(workers)]
    loops = [0.0] * workers
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        memory = MemorySampler()
        async with serve_directory(EXAMPLE.parent) as server, trio.open_nursery() as outer:
            outer.start_soon(memory.run)
            async with trio.open_nursery() as nursery:
                url = server.url_for(EXAMPLE.name)
                for index, count in enumerate(counts):
                    nursery.start_soon(bare_worker, browser, ffmpeg, url, args, count, capture,
                                       folder, index, loops, raw)
            outer.cancel_scope.cancel()
        listing = folder / "list.txt"
        listing.write_text("".join(f"file 'bare-{i}.mp4'\n" for i in range(workers)))
        await trio.run_process([os.fspath(ffmpeg), "-y", "-loglevel", "error", "-f", "concat",
                                "-safe", "0", "-i", os.fspath(listing), "-c", "copy",
                                os.fspath(folder / "bare.mp4")])
    wall = time.perf_counter() - started
    return {"steady_fps": args.frames / max(loops), "end_to_end_fps": args.frames / wall}


# ---- ours --------------------------------------------------------------------------------------


async def ours(
    browser: Path, capture: str, workers: int, args: argparse.Namespace,
    width: int | None = None, height: int | None = None, frames: int | None = None,
) -> dict[str, Any]:
    """One render with a timing instrument on every worker."""
    sinks: list[WorkerTimings] = []

    def open_worker() -> AbstractAsyncContextManager[ChunkRunner]:
        sink = WorkerTimings()
        sinks.append(sink)
        return open_chunk_worker(sink, encoder_threads(workers))  # as LocalExecutor does

    marks: list[tuple[float, int]] = []

    def on_progress(state: helios_render.RenderProgress) -> None:
        if state.stage in ("rendering", "stitching") and state.frames_done > 0:
            marks.append((time.perf_counter(), state.frames_done))

    memory = MemorySampler()
    frames = frames or args.frames
    with tempfile.TemporaryDirectory() as folder:
        options = helios_render.RenderOptions(
            source=EXAMPLE, output=Path(folder) / "bench.mp4", width=width or args.width,
            height=height or args.height, fps=30, frames=frames, concurrency=workers,
            quality=args.quality, preset=args.preset, crf=args.crf,
            capture=capture,  # type: ignore[arg-type]
            browser=browser,
        )
        started = time.perf_counter()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(memory.run)
            result = await helios_render.render(
                options, on_progress=on_progress, executor=LocalExecutor(
                    workers, open_worker=open_worker)
            )
            nursery.cancel_scope.cancel()
    (t0, f0), (t1, f1) = marks[0], marks[-1]

    def every(name: str) -> list[float]:
        return [value for sink in sinks for value in getattr(sink, name)]

    firsts = [s.first_frame_at for s in sinks if s.first_frame_at is not None]
    ms = {name: median(every(name)) * 1000 for name in (
        "seek", "seek_work", "settle", "capture", "encoder_wait", "replay", "encoder_start",
        "encoder_finish", "launch", "load")}
    return {
        **ms,
        "replayed_frames": len(every("replay")),
        "first_frame_s": (min(firsts) - started) if firsts else float("nan"),
        "steady_fps": (f1 - f0) / (t1 - t0) if t1 > t0 else result.frames_per_second,
        # As the bare loop is measured: frames over the longest worker's capture loop.
        "loop_fps": frames / max(
            (s.loop_end - s.loop_start for s in sinks
             if s.loop_start is not None and s.loop_end is not None), default=float("nan")),
        "end_to_end_fps": result.frames_per_second,
        "chromium_peak_mb": memory.peak_mb(ffmpeg=False),
        "ffmpeg_peak_mb": memory.peak_mb(ffmpeg=True),
    }


COLUMNS = [
    ("seek", "seek", "{:.1f}"), ("seek_work", "work", "{:.2f}"), ("settle", "settle", "{:.2f}"),
    ("capture", "capture", "{:.1f}"), ("encoder_wait", "enc-wait", "{:.1f}"),
    ("replay", "replay", "{:.1f}"), ("encoder_start", "enc-start", "{:.0f}"),
    ("encoder_finish", "enc-fin", "{:.0f}"), ("launch", "launch", "{:.0f}"),
    ("load", "load", "{:.0f}"), ("first_frame_s", "1st(s)", "{:.2f}"),
    ("steady_fps", "fps", "{:.1f}"), ("end_to_end_fps", "e2e", "{:.1f}"),
    ("bare_steady_fps", "bare", "{:.1f}"), ("bare_end_to_end_fps", "bare-e2e", "{:.1f}"),
    ("ratio_steady", "ratio", "{:.2f}"), ("ratio_end_to_end", "ratio-e2e", "{:.2f}"),
    ("loop_fps", "loop", "{:.1f}"), ("ratio_loop", "ratio-loop", "{:.2f}"),
    ("raw_steady_fps", "raw", "{:.1f}"), ("ratio_raw", "ratio-raw", "{:.2f}"),
    ("chromium_peak_mb", "chr-MB", "{:.0f}"), ("ffmpeg_peak_mb", "ff-MB", "{:.0f}"),
]


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


async def main(args: argparse.Namespace) -> dict[str, Any]:
    paths: list[tuple[str, Path]] = []
    for name in args.paths.split(","):
        if name == "screenshot":
            paths.append(("screenshot", find_browser(args.browser)))
        elif name == "beginframe" and args.shell:
            shell = Path(args.shell)
            if await probe_begin_frame(shell):
                paths.append(("beginframe", shell))
            else:
                print(f"note: {shell} has no beginFrame; skipping that path")
    workers_list = [int(n) for n in args.workers.split(",") if n]
    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                    "platform": platform.platform(), "load_before": _load()},
        "settings": vars(args), "runs": [], "table": {}, "memory": {},
    }
    print(f"{args.width}x{args.height}, {args.frames} frames of examples/hello, "
          f"jpeg q{args.quality}, "
          f"x264 {args.preset}, {os.cpu_count()} CPUs, load average {_load()}; "
          f"medians of {args.reps}; times in ms per frame unless marked")
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for rep in range(args.reps):
        for capture, browser in paths:
            for workers in workers_list:
                bare = await bare_loop(browser, capture, workers, args)
                raw = await bare_loop(browser, capture, workers, args, raw=True)
                row = await ours(browser, capture, workers, args)
                row["raw_steady_fps"] = raw["steady_fps"]
                row["ratio_raw"] = row["loop_fps"] / raw["steady_fps"]
                row["bare_steady_fps"] = bare["steady_fps"]
                row["bare_end_to_end_fps"] = bare["end_to_end_fps"]
                row["ratio_steady"] = row["steady_fps"] / bare["steady_fps"]
                row["ratio_end_to_end"] = row["end_to_end_fps"] / bare["end_to_end_fps"]
                row["ratio_loop"] = row["loop_fps"] / bare["steady_fps"]
                row["loadavg"] = _load()
                runs.setdefault((capture, workers), []).append(row)
                report["runs"].append({"rep": rep, "path": capture, "workers": workers, **row})
                print(f"  rep {rep + 1}: {capture} x{workers}: ours {row['steady_fps']:.1f} fps "
                      f"(e2e {row['end_to_end_fps']:.1f}), bare {bare['steady_fps']:.1f} "
                      f"(e2e {bare['end_to_end_fps']:.1f}), raw {raw['steady_fps']:.1f}, ratio "
                      f"{row['ratio_steady']:.2f} / {row['ratio_end_to_end']:.2f}, loop "
                      f"{row['ratio_loop']:.2f}, raw {row['ratio_raw']:.2f}, "
                      f"load {row['loadavg']}\n    " + " ".join(
                          f"{title}={fmt.format(row[key])}" for key, title, fmt in COLUMNS[:11]),
                      flush=True)
    print()
    print(f"{'path':<11} {'w':>1} " + " ".join(f"{title:>9}" for _, title, _ in COLUMNS))
    for (capture, workers), rows in runs.items():
        medians = {key: median([row[key] for row in rows]) for key, _, _ in COLUMNS}
        report["table"][f"{capture}/{workers}"] = medians
        print(f"{capture:<11} {workers:>1} " + " ".join(
            f"{fmt.format(medians[key]):>9}" for key, _, fmt in COLUMNS))
    for size in [s for s in args.memory.split(",") if s]:
        width, height = (int(v) for v in size.split("x"))
        capture, browser = paths[0]
        for workers in workers_list:
            row = await ours(browser, capture, workers, args, width, height, args.memory_frames)
            report["memory"][f"{size}/{capture}/{workers}"] = row
            print(f"memory {size} {capture} x{workers}: Chromium peak "
                  f"{row['chromium_peak_mb']:.0f} MB per worker, FFmpeg peak "
                  f"{row['ffmpeg_peak_mb']:.0f} MB, "
                  f"{row['end_to_end_fps']:.1f} fps")
    report["machine"]["load_after"] = _load()
    print(f"load average after: {_load()}")
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
            settings = argparse.Namespace(**{**vars(args), "image_format": image_format})
            loop = await bare_loop(browser, path, 1, settings)
            report[f"capture_fps_{image_format}"] = loop["steady_fps"]
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
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--quality", type=int, default=80)
    parser.add_argument("--preset", default="ultrafast")
    parser.add_argument("--crf", type=int, default=CODECS["h264"].quality.default,
                        help="x264 crf of ours and the bare loop (default: ours)")
    parser.add_argument("--paths", default="beginframe,screenshot")
    parser.add_argument("--browser", default=None, help="Chromium for the screenshot path")
    parser.add_argument("--shell", default=os.environ.get("HELIOS_HEADLESS_SHELL",
                                                           "/opt/helios-headless-shell/unpacked/chromium"),
                        help="a chrome-headless-shell build, for the beginFrame path")
    parser.add_argument("--memory", default="", help="sizes for a memory run, e.g. 3840x2160")
    parser.add_argument("--memory-frames", type=int, default=30)
    parser.add_argument("--json", default="bench-results/latest.json")
    parser.add_argument("--codecs", action="store_true",
                        help="encode fps of every codec beside the capture fps")
    arguments = parser.parse_args()
    arguments.image_format = "jpeg"
    if arguments.codecs:
        if arguments.json == parser.get_default("json"):
            arguments.json = "bench-results/codecs.json"
        result = trio.run(codec_report, arguments)
    else:
        result = trio.run(main, arguments)
    out = Path(arguments.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str))
    print(f"\nwrote {out}")



