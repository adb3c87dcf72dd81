"""The chunk worker's instrument: no-op hooks by default, :class:`WorkerTimings` records them
(the browser side of the worker is tested in tests/integration)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helios_render._executors import worker
from helios_render._executors.worker import NO_INSTRUMENT, WorkerInstrument, WorkerTimings


def test_the_default_instrument_records_nothing() -> None:
    assert type(NO_INSTRUMENT) is WorkerInstrument
    assert worker.ChunkWorker().instrument is NO_INSTRUMENT
    assert not hasattr(NO_INSTRUMENT, "__dict__"), "no state: one instance serves every worker"


def test_timings_split_each_frame_into_seek_capture_and_encoder_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = iter([10.0, 10.5, 10.75, 11.0, 20.0, 21.0, 23.0, 26.0])
    monkeypatch.setattr(time, "perf_counter", lambda: next(clock))  # the worker's clock
    timings = WorkerTimings()
    for _ in range(2):
        timings.before_seek()
        timings.after_seek()
        timings.after_capture()
        timings.after_send()
    assert timings.seek == [0.5, 1.0]
    assert timings.capture == [0.25, 2.0]
    assert timings.encoder_wait == [0.25, 3.0]
    assert (timings.loop_start, timings.first_frame_at, timings.loop_end) == (10.0, 11.0, 26.0)


def test_timings_record_durations_given_by_the_worker() -> None:
    timings = WorkerTimings()
    timings.frame_replayed(0.1)
    timings.encoder_started(0.2)
    timings.encoder_finished(0.3)
    assert (timings.replay, timings.encoder_start, timings.encoder_finish) == ([0.1], [0.2], [0.3])


class _StubPage:
    """What HeldFrame reads of a page: where it stands."""

    def __init__(self) -> None:
        self.position: int | None = None


@given(st.lists(st.tuples(st.sampled_from(["capture", "seek only", "new page", "format"]),
                          st.integers(0, 3)), max_size=40))
def test_a_held_frame_is_offered_only_to_the_next_frame_of_its_page(
    steps: list[tuple[str, int]],
) -> None:
    """The worker reuses an image only for the frame right after it, on the same page, in
    the same format, with nothing seeked in between (a replay or a drawn frame not kept)."""
    held = worker.HeldFrame()
    page: Any = _StubPage()
    frame, shot = 0, ("jpeg", 90)
    kept: tuple[object, int, tuple[str, int]] | None = None
    for action, jump in steps:
        if action == "new page":
            page, frame = _StubPage(), 0
            continue
        if action == "format":
            shot = ("png", 100) if shot[0] == "jpeg" else ("jpeg", 90)
            continue
        frame += jump  # 0: the same frame again, more: frames skipped over
        expected = kept == (page, frame - 1, shot) and page.position == frame - 1
        assert held.offers(page, frame, shot) == expected
        page.position = frame  # seeked
        if action == "capture":
            held.keep(page, frame, shot, f"image {frame}".encode())
            kept = (page, frame, shot)
        frame += 1
