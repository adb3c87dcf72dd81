"""Time is exact: fps as Fractions, whole frames for a duration, the time of a frame."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helios_render._model.time import frame_time, frames_for_duration, parse_fps


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
