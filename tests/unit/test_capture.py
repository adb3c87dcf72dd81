"""The capture paths, without a browser: beginFrame's clock."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helios_render._chromium.capture import BeginFrameCapture


@given(st.lists(st.tuples(st.floats(0, 0.2), st.integers(0, 7)), min_size=1, max_size=40))
def test_begin_frame_times_tell_new_frames_from_retries_and_keep_up_with_the_clock(
    steps: list[tuple[float, int]],
) -> None:
    # (seconds the clock moves before a capture, retries that capture needs)
    clock = [1000.0]
    capture = BeginFrameCapture(Fraction(30), clock=lambda: clock[0])
    interval = 1000 / 30
    previous: float | None = None
    for elapsed, retries in steps:
        clock[0] += elapsed
        first = capture._ticks(0)
        assert first >= clock[0] * 1000  # never behind the clock
        if previous is not None:
            assert first - previous >= interval  # a new frame: at least one interval on
        last = first
        for attempt in range(1, retries + 1):
            ticks = capture._ticks(attempt)
            assert ticks - last == pytest.approx(interval / 64)  # a retry: just after
            last = ticks
        assert last - first < interval / 2  # what the runtime takes for the same frame
        previous = last
