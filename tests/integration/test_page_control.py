"""A composition's own control of its animations and its clock (issue 24): Web Animations that
the page pauses, seeks, speeds up, reverses, finishes, cancels or restarts move as the Web
Animations spec says on the composition's clock; the clock never reads 0. Each page is rendered
on every capture path, whole and as a chunk from a middle frame."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import pytest

from ..conftest import COMPOSITIONS, Frame
from . import test_corpus
from .test_corpus import CapturePath, left_edge

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("clean_processes")]

W, H, FPS = 320, 180, 10
capture = test_corpus.capture
render = functools.partial(test_corpus.render, width=W, height=H, fps=FPS)

#: Row -> (y, the animation's current time in seconds at composition time t), as the Web
#: Animations spec gives it for what waapi_control.html does (each change at its own moment).
WAAPI_ROWS: dict[str, tuple[int, Callable[[float], float]]] = {
    "pause at 0.5 s, play at 1 s": (8, lambda t: t if t < 0.5 else 0.5 if t < 1 else t - 0.5),
    "currentTime = 1500 at 0.5 s": (26, lambda t: t if t < 0.5 else t + 1),
    "playbackRate = 2 at 0.5 s": (44, lambda t: t if t < 0.5 else 0.5 + 2 * (t - 0.5)),
    "updatePlaybackRate(0.5) at 0.5 s": (62, lambda t: t if t < 0.5 else 0.5 + (t - 0.5) / 2),
    "reverse() at 1 s": (80, lambda t: t if t < 1 else 2 - t),
    "finish() at 0.5 s": (98, lambda t: t if t < 0.5 else 2.0),
    "cancel() at 0.5 s": (116, lambda t: t if t < 0.5 else 2.5),
    "startTime = now - 200 at 0.5 s": (134, lambda t: t if t < 0.5 else t - 0.3),
    "rAF: pause at 0.5, seek 300 at 1, play at 1.2": (
        152, lambda t: t if t < 0.5 else 0.5 if t < 1 else 0.3 if t < 1.2 else t - 0.9),
    "currentTime and playState read back": (
        170, lambda t: t if t < 0.5 else 0.5 if t < 1 else t - 0.5),
}


def check_rows(frames: dict[int, Frame], rows: dict[str, tuple[int, Callable[[float], float]]],
               px_per_second: float = 100, tolerance: float = 1.0) -> None:
    errors = []
    for index, frame in frames.items():
        t = index / FPS
        for name, (y, current) in rows.items():
            x = left_edge(frame, y)
            want = px_per_second * current(t)
            if x is None or abs(x - want) > tolerance:
                errors.append(f"{name} at frame {index} (t={t:.1f}): x={x}, expected {want:.1f}")
    assert not errors, "\n".join(errors)


def check_whole_and_chunk(
    tmp_path: Path, page: Path, capture: CapturePath,
    rows: dict[str, tuple[int, Callable[[float], float]]], *, frames: int, start: int,
) -> None:
    """Render ``page`` whole and from ``start``; check every frame of both against ``rows``
    and that the chunk equals the whole render from ``start`` on."""
    whole = render(tmp_path, page, capture, frames)
    check_rows(whole, rows)
    chunk = render(tmp_path, page, capture, frames - start, start=start)
    check_rows(chunk, rows)
    differing = [i for i in chunk if chunk[i].rgb != whole[i].rgb]
    assert not differing, f"the chunk from {start} differs from the whole render at {differing}"


def test_a_page_controls_its_web_animations_as_in_a_browser(
    tmp_path: Path, capture: CapturePath
) -> None:
    check_whole_and_chunk(tmp_path, COMPOSITIONS / "waapi_control.html", capture, WAAPI_ROWS,
                          frames=16, start=7)


def test_loops_that_take_a_zero_clock_for_not_started_move_from_frame_one(
    tmp_path: Path, capture: CapturePath
) -> None:
    """The clock reads 100 ms at frame 0 (not 0): `if (!start) start = t` starts at frame 0,
    so each loop moves by one frame's time at frame 1, as in a browser."""
    rows = {
        "if (!start) start = timestamp": (10, lambda t: t),
        "if (!start) start = performance.now()": (50, lambda t: t),
        "dt = last ? t - last : 0": (90, lambda t: t),
        "performance.now() at load is the origin": (130, lambda t: 0.0),
    }
    check_whole_and_chunk(tmp_path, COMPOSITIONS / "clock_origin.html", capture, rows,
                          frames=8, start=4)


# --- a beginFrame capture that never answers (issue 24, point 6) -------------------------------


def _descendants(root: int) -> dict[int, str]:
    """Command lines of the live descendants of process ``root``, by pid."""
    parents: dict[int, int] = {}
    lines: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            lines[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("PPid:"):
                parents[int(entry.name)] = int(line.split()[1])
    found: dict[int, str] = {}
    for pid in lines:
        parent = parents.get(pid)
        while parent and parent != root and parent in parents:
            parent = parents[parent]
        if parent == root:
            found[pid] = lines[pid]
    return found


@pytest.mark.skipif(test_corpus.SHELL is None, reason="needs the headless shell")
@pytest.mark.beginframe
def test_a_begin_frame_that_never_answers_is_retried_on_a_fresh_browser_and_counted(
    tmp_path: Path,
) -> None:
    """The compositor (the GPU process) is stopped mid-render, as a starved machine holds it:
    the capture times out, and the chunk is retried on a fresh browser, not failed."""
    import os
    import signal
    import threading
    import time

    import helios_render

    from ..factories import make_lossless_options

    stopped: list[int] = []
    retries: list[int] = []
    done = threading.Event()

    def stall_the_first_compositor() -> None:
        while not done.is_set() and not stopped:
            for pid, line in _descendants(os.getpid()).items():
                if "--type=gpu-process" in line:
                    os.kill(pid, signal.SIGSTOP)  # killed with its browser (SIGKILL)
                    stopped.append(pid)
                    return
            time.sleep(0.02)

    def on_progress(progress: helios_render.RenderProgress) -> None:
        retries.append(progress.retries)

    output = tmp_path / "stalled.mp4"
    options = make_lossless_options(
        tmp_path, COMPOSITIONS / "clock_origin.html", output=output, width=W, height=H,
        fps=FPS, frames=12, concurrency=1, capture="beginframe", browser=test_corpus.SHELL,
        timeout=4, retries=1,
    )
    staller = threading.Thread(target=stall_the_first_compositor)
    staller.start()
    try:
        helios_render.render_sync(options, on_progress=on_progress)
    finally:
        done.set()
        staller.join()
    assert stopped, "no GPU process to stop: the test did not stall the compositor"
    assert max(retries) == 1
    from ..conftest import decode_frames

    frames = decode_frames(output)
    assert len(frames) == 12
    check_rows(dict(enumerate(frames)), {"rAF loop": (10, lambda t: t)})
