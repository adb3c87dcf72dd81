"""Concurrent renders with real Chromium: identical to one worker, and a failure stops all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

import helios_render
from helios_render import RenderOptions, RenderProgress

from ..conftest import COMPOSITIONS, EXAMPLES, decode_frames, probe
from ..factories import make_lossless_options

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("clean_processes")]


def _lossless(tmp_path: Path, source: Path, name: str, **kwargs: Any) -> RenderOptions:
    """``source`` into ``name`` at 480x270, lossless."""
    settings: dict[str, Any] = {"output": tmp_path / name, "width": 480, "height": 270}
    settings.update(kwargs)
    return make_lossless_options(tmp_path, source, **settings)


async def test_three_workers_match_one_worker_frame_for_frame(tmp_path: Path) -> None:
    # The example mixes a CSS animation, a Web Animation and a rAF-driven canvas and clock, so
    # the chunks of workers 1 and 2 must replay rAF state to match.
    source = EXAMPLES / "hello" / "index.html"
    one = await helios_render.render(_lossless(tmp_path, source, "one.mp4", frames=30,
                                               concurrency=1))
    states: list[RenderProgress] = []
    three = await helios_render.render(
        _lossless(tmp_path, source, "three.mp4", frames=30, concurrency=3),
        on_progress=states.append,
    )
    assert three.workers == 3
    assert probe(three.output)["nb_read_frames"] == "30"
    assert probe(three.output)["r_frame_rate"] == "30/1"
    a, b = decode_frames(one.output), decode_frames(three.output)
    assert len(a) == len(b) == 30
    # Every frame, the ones on each side of the seams (9|10 and 19|20) included.
    mismatched = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x.rgb != y.rgb]
    assert not mismatched, f"frames differ: {mismatched}"
    values = [s.progress for s in states]
    assert values == sorted(values) and values[-1] == 1.0
    assert {len(s.chunks) for s in states} == {3}


async def test_a_failing_worker_stops_the_others_promptly(tmp_path: Path) -> None:
    output = tmp_path / "out.mp4"
    output.write_bytes(b"old")
    # 60 frames in 3 chunks on 3 workers: frames 40..59 are chunk 2; the page throws at 1.5 s
    # (frame 45) while workers 0 and 1 are still rendering.
    options = _lossless(
        tmp_path, COMPOSITIONS / "throws_at.html", "out.mp4", frames=60, concurrency=3,
        chunk_frames=20, props={"throwAt": 1.5},
    )
    with pytest.raises(helios_render.WorkerError) as caught:
        await helios_render.render(options)
    returned = trio.current_time()
    error = caught.value
    assert error.chunk_index == 2
    assert error.frame == 45
    assert isinstance(error.__cause__, helios_render.PageError)
    assert "boom at 1500.0 ms" in str(error.__cause__)
    assert error.exit_code == 1
    assert error.failed_at is not None
    # Cancelled, not run to the end: rendering the rest would take many seconds. (The bound
    # is loose so that a machine busy with other renders does not fail it.)
    assert returned - error.failed_at < 4.0
    assert output.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


async def test_cancelling_render_stops_everything(tmp_path: Path) -> None:
    options = _lossless(tmp_path, EXAMPLES / "hello" / "index.html", "out.mp4", frames=300,
                        concurrency=2)
    started = trio.Event()

    def progress(state: RenderProgress) -> None:
        if state.frames_done >= 4:
            started.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: helios_render.render(options, on_progress=progress))
        await started.wait()
        t0 = trio.current_time()
        nursery.cancel_scope.cancel()
    assert trio.current_time() - t0 < 2.0
    assert not (tmp_path / "out.mp4").exists()
    # Only the job folder stays, for a resume: finished chunks, nothing half-written.
    (job,) = tmp_path.iterdir()
    assert job.name.startswith(".out.mp4.helios-job-")
    # The released lock file stays too: the next owner of the folder takes it.
    kept = sorted(p.name for p in job.iterdir())
    assert kept == [".helios-lock", "chunks", "manifest.json", "partial"]
    assert list((job / "partial").iterdir()) == []


async def test_three_renders_at_once_in_one_trio_run(tmp_path: Path) -> None:
    pages = ["css_linear.html", "waapi.html", "raf_canvas.html"]
    results: dict[str, helios_render.RenderResult] = {}

    async def one(page: str) -> None:
        options = _lossless(tmp_path, COMPOSITIONS / page, f"{page}.mp4", frames=12,
                            concurrency=1, width=320, height=180)
        results[page] = await helios_render.render(options)

    async with trio.open_nursery() as nursery:
        for page in pages:
            nursery.start_soon(one, page)
    for page in pages:
        assert probe(results[page].output)["nb_read_frames"] == "12"
    # Independent: each output is what its own page shows (the three differ).
    firsts = {page: decode_frames(results[page].output, [11])[0].rgb for page in pages}
    assert len(set(firsts.values())) == 3
