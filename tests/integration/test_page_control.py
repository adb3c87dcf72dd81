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


def test_a_page_controls_its_web_animations_as_in_a_browser(
    tmp_path: Path, capture: CapturePath
) -> None:
    page = COMPOSITIONS / "waapi_control.html"
    whole = render(tmp_path, page, capture, 16)
    check_rows(whole, WAAPI_ROWS)
    chunk = render(tmp_path, page, capture, 9, start=7)
    check_rows(chunk, WAAPI_ROWS)
    differing = [i for i in chunk if chunk[i].rgb != whole[i].rgb]
    assert not differing, f"the chunk from 7 differs from the whole render at {differing}"


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
    page = COMPOSITIONS / "clock_origin.html"
    whole = render(tmp_path, page, capture, 8)
    check_rows(whole, rows)
    chunk = render(tmp_path, page, capture, 4, start=4)
    check_rows(chunk, rows)
    differing = [i for i in chunk if chunk[i].rgb != whole[i].rgb]
    assert not differing, f"the chunk from 4 differs from the whole render at {differing}"
