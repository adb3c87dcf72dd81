"""Pure frame math: how many frames, which worker renders which, and when frame k happens."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction

__all__ = [
    "MIN_FRAMES_PER_WORKER",
    "Chunk",
    "default_concurrency",
    "frame_time",
    "frames_for_duration",
    "parse_fps",
    "plan_chunks",
]

#: A worker costs a browser launch and a page load (about a second); a chunk shorter than this
#: is merged into fewer workers because starting the worker would cost more than it saves.
MIN_FRAMES_PER_WORKER = 5
#: Memory one worker (Chromium at 1080p plus FFmpeg) needs, used to cap the default concurrency.
WORKER_MEMORY_BYTES = 1536 * 1024 * 1024
#: Never start more workers than this by default.
MAX_DEFAULT_CONCURRENCY = 8


@dataclass(frozen=True, slots=True)
class Chunk:
    """The contiguous frames ``[start, end)`` that one worker renders."""

    index: int
    start: int
    end: int

    @property
    def frames(self) -> int:
        """How many frames the chunk holds."""
        return self.end - self.start


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


def plan_chunks(
    start: int, frames: int, concurrency: int, min_frames: int = MIN_FRAMES_PER_WORKER
) -> list[Chunk]:
    """Split ``[start, start + frames)`` into contiguous chunks, one per worker.

    Uses ``min(concurrency, frames // min_frames)`` workers (at least one), so no chunk is
    empty and none is shorter than ``min_frames`` unless the whole range is. Sizes differ by
    at most one frame; the larger chunks come first.
    """
    if frames < 1:
        raise ValueError("frames must be at least 1")
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    workers = max(1, min(concurrency, frames // max(1, min_frames), frames))
    base, extra = divmod(frames, workers)
    chunks = []
    cursor = start
    for index in range(workers):
        size = base + (1 if index < extra else 0)
        chunks.append(Chunk(index, cursor, cursor + size))
        cursor += size
    return chunks


def default_concurrency(cpu_count: int | None = None, memory_bytes: int | None = None) -> int:
    """Workers to use when the user does not say: half the CPUs (a worker keeps about two
    busy: Chromium's renderer and FFmpeg), capped by memory and :data:`MAX_DEFAULT_CONCURRENCY`.
    """
    cpus = cpu_count if cpu_count is not None else (os.cpu_count() or 1)
    if memory_bytes is None:
        try:
            memory_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            memory_bytes = WORKER_MEMORY_BYTES * MAX_DEFAULT_CONCURRENCY
    by_memory = memory_bytes // WORKER_MEMORY_BYTES
    return int(max(1, min(cpus // 2, by_memory, MAX_DEFAULT_CONCURRENCY)))
