"""The chunk worker's instrument: no-op hooks by default, :class:`WorkerTimings` records them
(the browser side of the worker is tested in tests/integration)."""

from __future__ import annotations

import time

import pytest

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
