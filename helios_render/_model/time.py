"""Time of a composition: fps parsed exactly, frames for a duration, the time of frame k.

Pure: Fractions in, Fractions and integers out; no I/O.
"""

from __future__ import annotations

import math
from fractions import Fraction

__all__ = [
    "frame_time",
    "frames_for_duration",
    "parse_fps",
]


def parse_fps(value: str | float | Fraction) -> Fraction:
    """``30``, ``29.97``, ``"30000/1001"`` or a Fraction, as an exact Fraction.

    Raises:
        ValueError: Not a positive finite number.
    """
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"fps must be a finite number, got {value}")
    try:
        fps = Fraction(str(value).strip()) if isinstance(value, str) else Fraction(value)
    except (ValueError, ZeroDivisionError) as exc:
        raise ValueError(f"fps must be a number like 30 or 30000/1001, got {value!r}") from exc
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {value}")
    # 29.97 as a float is not 2997/100 exactly; keep what the user wrote, to the microsecond.
    return fps.limit_denominator(1_000_000)


def frames_for_duration(duration: Fraction, fps: Fraction) -> int:
    """Frames in ``duration`` seconds: ``duration * fps`` rounded to the nearest integer,
    halves up (so 1 s at 29.97 fps is 30 frames). Exact: no float is involved."""
    return math.floor(duration * fps + Fraction(1, 2))


def frame_time(frame: int, fps: Fraction) -> Fraction:
    """The exact time of ``frame`` in seconds: ``frame / fps``."""
    return Fraction(frame) / fps
