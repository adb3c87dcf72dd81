"""The plan partitions the frame range exactly once, balanced, for any input."""

from __future__ import annotations

import itertools
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helios_render._plan import (
    MIN_FRAMES_PER_WORKER,
    default_concurrency,
    frame_time,
    frames_for_duration,
    parse_fps,
    plan_chunks,
)


@given(
    start=st.integers(0, 10**6),
    frames=st.integers(1, 100_000),
    concurrency=st.integers(1, 64),
)
def test_plan_partitions_the_range_exactly_once_and_balanced(
    start: int, frames: int, concurrency: int
) -> None:
    chunks = plan_chunks(start, frames, concurrency)
    assert chunks[0].start == start
    assert chunks[-1].end == start + frames
    for before, after in itertools.pairwise(chunks):
        assert before.end == after.start
    sizes = [c.frames for c in chunks]
    assert min(sizes) >= 1
    assert max(sizes) - min(sizes) <= 1
    assert sum(sizes) == frames
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert 1 <= len(chunks) <= min(concurrency, frames)
    if len(chunks) > 1:
        assert min(sizes) >= MIN_FRAMES_PER_WORKER


@given(frames=st.integers(1, 10_000), concurrency=st.integers(1, 16))
def test_plan_uses_every_worker_when_there_are_enough_frames(frames: int, concurrency: int) -> None:
    chunks = plan_chunks(0, frames, concurrency)
    expected = max(1, min(concurrency, frames // MIN_FRAMES_PER_WORKER))
    assert len(chunks) == expected


def test_plan_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        plan_chunks(0, 0, 1)
    with pytest.raises(ValueError):
        plan_chunks(0, 10, 0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30", Fraction(30)), ("30000/1001", Fraction(30000, 1001)), ("29.97", Fraction(2997, 100)),
     (24, Fraction(24)), (59.94, Fraction(5994, 100))],
)
def test_parse_fps_is_exact(text: str | int | float, expected: Fraction) -> None:
    assert parse_fps(text) == expected


@pytest.mark.parametrize("bad", ["0", "-1", "abc", "1/0", float("nan"), float("inf")])
def test_parse_fps_rejects_bad_values(bad: str | float) -> None:
    with pytest.raises(ValueError):
        parse_fps(bad)


def test_frames_for_duration_rounds_half_up() -> None:
    assert frames_for_duration(Fraction(1), Fraction(30000, 1001)) == 30
    assert frames_for_duration(Fraction(3), Fraction(30)) == 90
    assert frames_for_duration(Fraction(1, 60), Fraction(30)) == 1  # 0.5 frame -> 1
    assert frames_for_duration(Fraction(1, 61), Fraction(30)) == 0


@given(frame=st.integers(0, 10**7), num=st.integers(1, 240_000), den=st.integers(1, 1001))
def test_frame_time_is_exact(frame: int, num: int, den: int) -> None:
    fps = Fraction(num, den)
    assert frame_time(frame, fps) * fps == frame


def test_default_concurrency_is_half_the_cpus_capped_by_memory() -> None:
    gib = 1024**3
    assert default_concurrency(2, 24 * gib) == 1
    assert default_concurrency(8, 24 * gib) == 4
    assert default_concurrency(64, 24 * gib) == 8
    assert default_concurrency(16, 3 * gib) == 2
    assert default_concurrency(1, 1) == 1
