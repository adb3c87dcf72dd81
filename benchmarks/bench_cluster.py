"""The cost of rendering on a Dask cluster, measured on this machine.

* scheduling overhead: 1,000 chunk jobs on a ``local:4`` cluster with a fake chunk function
  (returns a few bytes at once), through the same DaskExecutor path as a render (submission,
  placement, results, progress); reported per chunk.
* end to end: the example at 1080p rendered with ``--cluster local:2`` and with the local
  executor with 2 workers (same chunks), in frames per second.
* ``--raf``: an rAF page of 600 frames in 60 chunks at 320x180 on ``local:1`` against the
  local executor with one worker: seconds, frames the worker replayed (0 when it goes through
  its chunks in order), and the order in which the chunks started.

Usage: python benchmarks/bench_cluster.py [--chunks 1000] [--workers 4] [--frames 60]
       [--width 1920] [--height 1080] [--skip-render] [--raf] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import trio

import helios_render
from helios_render._executors import RunHooks
from helios_render._executors._dask_cluster import local_cluster
from helios_render._executors.dask import DaskExecutor
from helios_render._model.job import (
    BundleSource,
    Chunk,
    ChunkJob,
    ChunkResult,
    EncoderSettings,
    PageConfig,
    UrlSource,
)

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "hello" / "index.html"
RAF = Path(__file__).resolve().parent.parent / "tests" / "compositions" / "raf_canvas.html"


def fake_chunk(job: ChunkJob, bundle: BundleSource | None, render_id: str) -> ChunkResult:
    """A chunk task that renders nothing."""
    return ChunkResult(index=job.index, frames=job.frames, data=b"\0" * 188)


def fake_jobs(count: int) -> list[ChunkJob]:
    page = PageConfig(url="", width=320, height=180, fps=Fraction(30))
    encoder = EncoderSettings(fps=Fraction(30), width=320, height=180)
    return [
        ChunkJob(chunk=Chunk(i, i * 10, i * 10 + 10), source=UrlSource("about:blank"),
                 page=page, encoder=encoder, quality=90, begin_frame=False, digest="bench")
        for i in range(count)
    ]


async def scheduling_overhead(client: Any, chunks: int, workers: int) -> dict[str, float]:
    executor = DaskExecutor(client=client, chunk_task=fake_chunk)
    received: list[int] = []

    async def on_result(result: ChunkResult) -> None:
        received.append(result.index)

    started = time.perf_counter()
    await executor.run(fake_jobs(chunks), RunHooks(on_result=on_result))
    elapsed = time.perf_counter() - started
    assert len(received) == chunks
    return {
        "chunks": chunks,
        "workers": workers,
        "seconds": round(elapsed, 3),
        "ms_per_chunk": round(elapsed / chunks * 1000, 3),
        # With W workers a chunk waits for its turn: the cost a chunk adds to a render.
        "ms_per_chunk_per_worker": round(elapsed / chunks * workers * 1000, 3),
    }


def end_to_end(frames: int, width: int, height: int) -> dict[str, float]:
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, kwargs in (
            ("local_executor_2", {"concurrency": 2}),
            ("cluster_local_2", {"cluster": "local:2"}),
        ):
            options = helios_render.RenderOptions(
                source=EXAMPLE, output=Path(folder) / f"{name}.mp4", width=width,
                height=height, frames=frames, resume=False, **kwargs,
            )
            result = helios_render.render_sync(options)
            results[name] = round(result.frames_per_second, 2)
            results[f"{name}_seconds"] = round(result.elapsed, 2)
    return results


def raf_runs(frames: int = 600, chunk_frames: int = 10) -> dict[str, Any]:
    """An rAF page on ``local:1`` against one local worker: the replay a cluster adds."""
    report: dict[str, Any] = {"frames": frames, "chunks": -(-frames // chunk_frames)}
    with tempfile.TemporaryDirectory() as folder:
        def options(name: str, **kwargs: Any) -> helios_render.RenderOptions:
            return helios_render.RenderOptions(
                source=RAF, output=Path(folder) / name, width=320, height=180, fps=30,
                frames=frames, chunk_frames=chunk_frames, resume=False, **kwargs,
            )

        started = time.perf_counter()
        helios_render.render_sync(options("local.mp4", concurrency=1))
        report["local_1_worker_seconds"] = round(time.perf_counter() - started, 1)
        executor = DaskExecutor("local:1")
        started = time.perf_counter()
        helios_render.render_sync(options("cluster.mp4"), executor=executor)
        report["cluster_local_1_seconds"] = round(time.perf_counter() - started, 1)
        stats = executor.statistics()
        report["cluster_replayed_frames"] = stats.replayed_frames
        report["cluster_start_order"] = [chunk for chunk, _ in stats.starts]
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--skip-render", action="store_true")
    parser.add_argument("--raf", action="store_true",
                        help="only the rAF page of 600 frames in 60 chunks on local:1")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    report: dict[str, Any] = {}
    if args.raf:
        report["raf"] = raf_runs()
        print(json.dumps(report["raf"]), flush=True)
        return 0
    with local_cluster(args.workers) as client:
        client.wait_for_workers(args.workers)
        report["scheduling"] = trio.run(scheduling_overhead, client, args.chunks, args.workers)
    print(json.dumps(report["scheduling"]), flush=True)
    if not args.skip_render:
        report["end_to_end_fps"] = end_to_end(args.frames, args.width, args.height)
        print(json.dumps(report["end_to_end_fps"]), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
